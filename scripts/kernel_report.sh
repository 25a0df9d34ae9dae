#!/usr/bin/env bash
# kernel_report.sh - what the compiler emitted for every kernel of the real build, read without a
# GPU: for sm_80 and sm_90 (the Hopper kernel's sources: sm_90a only), each kernel's registers,
# spill stores and loads, stack frame and static shared memory (ptxas -v), and for the hot loops
# of the fused attention, softmax and persistent RNN kernels the instruction mix from SASS
# (scripts/sass_loops.py: static instructions in the loop, HMMA, LDSM, LDGSTS, LDG, LDS, MUFU,
# FFMA, BAR, SHFL and instructions per key instruction); for the Hopper kernel's main loop the
# same per HMMA-equivalent of its HGMMAs. The fused kernels' tables add their block size, dynamic
# shared memory and theoretical occupancy (blocks per SM from registers, shared memory and warps).
#
#   scripts/kernel_report.sh [OUT.md]     (default: build/kernel_report.md; printed as well)
#
# ptxas is in the toolkit; cuobjdump/nvdisasm are not in every CUDA 13 install. When they are
# missing the script fetches Debian's non-free nvidia-cuda-toolkit package (apt, its own scratch
# sources list and cache under build/kernel-report/) and unpacks it with dpkg -x there: nothing
# outside the build tree changes. If that fails too, the register table is still printed and the
# SASS part says it could not be produced. Exit status: 1 when any kernel spills or has a stack
# frame (CI fails the same through the build's ptxas flags, CMakeLists.txt), else 0.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-build/kernel_report.md}
work=build/kernel-report
mkdir -p "$work" "$(dirname "$out")"
export PATH="$PATH:/usr/local/cuda/bin"
command -v nvcc >/dev/null || { echo "kernel_report: nvcc not found" >&2; exit 2; }
archs=(80 90)
# The Hopper kernel's sources (flash_hopper*.cu: wgmma, TMA, setmaxnreg) are built by the real
# build for sm_90a alone (CMakeLists.txt, seqk_hopper_objects, the same file rule): compiled for
# sm_80 or sm_90 their primitives are __trap() bodies, whose registers and SASS describe nothing
# that runs. Every other source gets archs.
hopper_archs=(90a)
src_archs() { # kernels/X.cu -> the architectures the report compiles it for
  case "$(basename "$1")" in
    flash_hopper*.cu) echo "${hopper_archs[@]}" ;;
    *) echo "${archs[@]}" ;;
  esac
}
nvflags=(-std=c++17 -Iinclude -Ikernels -Xptxas -v)

# ---- disassembler ----------------------------------------------------------------------------
find_disasm() {
  for d in "$(dirname "$(command -v nvcc)")" "$work/tk/usr/bin"; do
    [ -x "$d/nvdisasm" ] && { echo "$d/nvdisasm"; return 0; }
  done
  return 1
}
fetch_disasm() {
  local s=$work/apt
  mkdir -p "$s/lists/partial" "$s/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie non-free" >"$s/sources.list"
  local o=(-o "Dir::Etc::SourceList=$root/$s/sources.list" -o Dir::Etc::SourceParts=/dev/null
           -o "Dir::State::Lists=$root/$s/lists" -o "Dir::Cache=$root/$s/cache"
           -o Dir::State::Status=/dev/null -o Debug::NoLocking=1)
  apt-get "${o[@]}" update >"$s/log" 2>&1 &&
    (cd "$s" && apt-get "${o[@]}" download nvidia-cuda-toolkit >>log 2>&1) &&
    dpkg -x "$s"/nvidia-cuda-toolkit_*.deb "$work/tk" >>"$s/log" 2>&1
}
disasm=$(find_disasm || true)
if [ -z "$disasm" ]; then
  echo "kernel_report: nvdisasm not in the toolkit; fetching Debian's nvidia-cuda-toolkit into $work" >&2
  fetch_disasm || true
  disasm=$(find_disasm || true)
fi

# ---- per-kernel resources (ptxas -v) ---------------------------------------------------------
# Block sizes: the kernels' __launch_bounds__ (EIATTR_MAX_THREADS, read by cuobjdump -elf when it
# is there); a kernel without them has its block size only in the host code that launches it.
cuobjdump=${disasm:+$(dirname "$disasm")/cuobjdump}
max_threads() { # cubin -> "function<TAB>threads" lines
  [ -n "$cuobjdump" ] && [ -x "$cuobjdump" ] || return 0
  "$cuobjdump" -elf "$1" 2>/dev/null | awk '
    function hex(s,   v, i) { v = 0; s = tolower(substr(s, 3))
      for (i = 1; i <= length(s); ++i) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
      return v }
    /^\.nv\.info\./ { fn = substr($1, 10) }
    /EIATTR_MAX_THREADS/ { want = 1; next }
    want && /Value:/ { print fn "\t" hex($2) * hex($3) * hex($4); want = 0 }'
}
res=$work/resources.tsv
: >"$res"
# Architecture-major over archs then hopper_archs, so the sm_90a rows come after the others.
for a in "${archs[@]}" "${hopper_archs[@]}"; do
  for f in kernels/*.cu; do
    [[ " $(src_archs "$f") " == *" $a "* ]] || continue
    base=$(basename "$f" .cu)
    nvcc "${nvflags[@]}" -arch=sm_$a -cubin "$f" -o "$work/${base}_sm$a.cubin" 2>"$work/${base}_sm$a.ptxas"
    # ptxas prints per function: "Compiling entry function 'X'", then "N bytes stack frame,
    # N bytes spill stores, N bytes spill loads", then "Used N registers, ... N bytes smem".
    awk -v arch="sm_$a" '
      /Compiling entry function/ { match($0, /\x27[^\x27]+\x27/); fn = substr($0, RSTART + 1, RLENGTH - 2) }
      /bytes stack frame/ { stack = $5 + 0; sst = $9 + 0; sld = $13 + 0 }
      /Used [0-9]+ registers/ {
        regs = $0; sub(/.*Used /, "", regs); regs += 0
        smem = 0; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH) + 0
        if (fn != "") print arch "\t" fn "\t" regs "\t" sst "\t" sld "\t" stack "\t" smem
        fn = ""
      }' "$work/${base}_sm$a.ptxas" >>"$res.part"
    max_threads "$work/${base}_sm$a.cubin" >"$work/${base}_sm$a.maxthreads"
    # one row per kernel: the resources, then the block size (0: set by the launching host code)
    awk -F'\t' 'NR == FNR { t[$1] = $2; next } { print $0 "\t" ($2 in t ? t[$2] : 0) }' \
      "$work/${base}_sm$a.maxthreads" "$res.part" >>"$res"
    rm -f "$res.part"
  done
done
# Readable kernel names: demangled, without namespaces, return type and parameter list.
short_name() {
  if command -v c++filt >/dev/null; then c++filt; else cat; fi |
    sed -E 's/^void //; s/\(anonymous namespace\):://g; s/seqk_[a-z_]+:://g; s/\([^()]*\)$//'
}

{
  echo "# Kernel report"
  echo
  echo "$(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (modified)'), $(nvcc --version | tail -n 2 | head -n 1 | sed 's/^Cuda compilation tools, //'), scripts/kernel_report.sh"
  echo
  echo "## Registers, spills, stack, static shared memory (ptxas -v)"
  echo
  echo "Block: the kernel's __launch_bounds__ (\"host\": set where it is launched; \"?\": no cuobjdump)."
  echo "Blocks/SM: theoretical, from registers (64K per SM, 256-register warp granules), warps"
  echo "(64 per SM), 32 blocks, and static shared memory only (dynamic shared memory is chosen at"
  echo "launch; the fused kernels' are in the next tables)."
  echo
  echo "| arch | kernel | regs | spill st/ld (B) | stack (B) | static smem (B) | block | blocks/SM |"
  echo "|---|---|---|---|---|---|---|---|"
  while IFS=$'\t' read -r a fn regs sst sld stack smem thr; do
    name=$(echo "$fn" | short_name)
    block=host occ=-
    if [ -z "$cuobjdump" ] || [ ! -x "$cuobjdump" ]; then
      block="?"
    elif [ "${thr:-0}" -gt 0 ]; then
      block=$thr
      warps=$(((thr + 31) / 32))
      wregs=$(((regs * 32 + 255) / 256 * 256))
      occ=$((65536 / (wregs * warps)))
      [ $((64 / warps)) -lt $occ ] && occ=$((64 / warps))
      [ "$occ" -gt 32 ] && occ=32
      per_sm=$([ "$a" = sm_80 ] && echo $((164 * 1024)) || echo $((228 * 1024)))
      [ "$smem" -gt 0 ] && [ $((per_sm / (smem + 1024))) -lt $occ ] && occ=$((per_sm / (smem + 1024)))
    fi
    echo "| $a | \`$name\` | $regs | $sst/$sld | $stack | $smem | $block | $occ |"
  done <"$res"
  echo
  echo "## Fused attention (tensor cores): block, shared memory, occupancy"
  echo
  echo "Tile traits from kernels/flash_attention.cuh; dynamic shared memory (BM + 4 BN) x (DP + 8) x 2 B;"
  echo "occupancy = blocks per SM from registers (64K per SM, 256-register warp granules), shared"
  echo "memory (sm_80: 164 KB, sm_90: 228 KB per SM, 1 KB reserved per block) and 64 warps per SM."
  echo
  echo "| arch | DP | warps | BM x BN | regs | smem (KB) | blocks/SM | warps/SM |"
  echo "|---|---|---|---|---|---|---|---|"
  grep -E '^template <> struct tc_traits<[0-9]+>' kernels/flash_attention.cuh |
    sed -E 's/.*<([0-9]+)>.*NW = ([0-9]+), MT = ([0-9]+), BN = ([0-9]+).*/\1 \2 \3 \4/' |
    while read -r dp nw mt bn; do
      for a in "${archs[@]}"; do
        regs=$(awk -F'\t' -v a="sm_$a" -v k="flash_tc_kernelI6__halfLi${dp}E" '$1 == a && index($2, k) { print $3 }' "$res" | head -n 1)
        ssm=$(awk -F'\t' -v a="sm_$a" -v k="flash_tc_kernelI6__halfLi${dp}E" '$1 == a && index($2, k) { print $7 }' "$res" | head -n 1)
        bm=$((16 * mt * nw)); thr=$((32 * nw))
        dyn=$(((bm + 4 * bn) * (dp + 8) * 2))
        smem=$((dyn + ${ssm:-0} + 1024))
        per_sm=$([ "$a" = 80 ] && echo $((164 * 1024)) || echo $((228 * 1024)))
        wregs=$(((${regs:-255} * 32 + 255) / 256 * 256))
        by_regs=$((65536 / (wregs * nw)))
        by_smem=$((per_sm / smem))
        by_warps=$((64 / nw))
        blocks=$by_regs; [ $by_smem -lt $blocks ] && blocks=$by_smem; [ $by_warps -lt $blocks ] && blocks=$by_warps
        echo "| sm_$a | $dp | $nw | $bm x $bn | ${regs:-?} | $(((dyn + ${ssm:-0}) / 1024)) | $blocks | $((blocks * nw)) |"
      done
    done
  echo
  echo "## Hopper fused attention (sm_90a, wgmma): block, shared memory, occupancy"
  echo
  echo "Tile traits from kernels/flash_hopper.cuh (hp_traits, kHpBM, kHpThreads); dynamic shared memory"
  echo "as its hp_smem_bytes: 1024 (alignment) + BM x DP x 2 B (Q) + STAGES x 2 x BN x DP x 2 B (the K"
  echo "and V ring). regs: the allocation ptxas gives every thread at launch (setmaxnreg then moves the"
  echo "producer warpgroup to 24 and the consumers to 240 within the block's total). Occupancy as above"
  echo "(228 KB per SM)."
  echo
  echo "| arch | kernel | threads | BM x BN | stages | regs | smem (KB) | blocks/SM | warps/SM |"
  echo "|---|---|---|---|---|---|---|---|---|"
  hp=kernels/flash_hopper.cuh
  hp_bm=$(sed -nE 's/.*constexpr int kHpBM = ([0-9]+);.*/\1/p' "$hp")
  hp_thr=$(sed -nE 's/.*kHpThreads = ([0-9]+);.*/\1/p' "$hp")
  # The shared memory below is hp_smem_bytes's formula; if the source's has changed, say "?"
  # rather than print a stale size.
  hp_formula='return 1024 + (size_t)kHpBM * DP * 2 + (size_t)4 * hp_traits<DP>::STAGES * hp_traits<DP>::BN * DP;'
  grep -qF "$hp_formula" "$hp" && hp_known=1 || hp_known=0
  # hp_traits<DP> specializations span lines: join the file, then one "DP BN STAGES" per struct.
  tr '\n' ' ' <"$hp" | grep -oE 'struct hp_traits<[0-9]+> *\{[^}]*\}' |
    sed -E 's/.*<([0-9]+)>.*BN = ([0-9]+), STAGES = ([0-9]+).*/\1 \2 \3/' |
    while read -r dp bn stages; do
      for a in "${hopper_archs[@]}"; do
        for t in 6__half 13__nv_bfloat16; do
          k="flash_hopper_kernelI${t}Li${dp}E"
          regs=$(awk -F'\t' -v a="sm_$a" -v k="$k" '$1 == a && index($2, k) { print $3 }' "$res" | head -n 1)
          ssm=$(awk -F'\t' -v a="sm_$a" -v k="$k" '$1 == a && index($2, k) { print $7 }' "$res" | head -n 1)
          nw=$((hp_thr / 32))
          wregs=$(((${regs:-255} * 32 + 255) / 256 * 256))
          blocks=$((65536 / (wregs * nw)))
          [ $((64 / nw)) -lt $blocks ] && blocks=$((64 / nw))
          kb="?" bw="? | ?"
          if [ "$hp_known" = 1 ]; then
            dyn=$((1024 + hp_bm * dp * 2 + 4 * stages * bn * dp))
            kb=$(((dyn + ${ssm:-0}) / 1024))
            by_smem=$((228 * 1024 / (dyn + ${ssm:-0} + 1024)))
            [ $by_smem -lt $blocks ] && blocks=$by_smem
            bw="$blocks | $((blocks * nw))"
          fi
          echo "| sm_$a | \`flash_hopper_kernel<${t#"${t%%_*}"}, $dp>\` | $hp_thr | $hp_bm x $bn | $stages | ${regs:-?} | $kb | $bw |"
        done
      done
    done
  echo
  echo "## Hot loops (sm_90 SASS, static instructions)"
  echo
  if [ -z "$disasm" ]; then
    echo "**Not reported**: no nvdisasm (not in this CUDA install, and Debian's nvidia-cuda-toolkit"
    echo "could not be fetched: see $work/apt/log). Registers and spills above are complete."
  else
    echo "Disassembler: \`$disasm\`. The main loop of a kernel is its loop (backward branch) with the"
    echo "most key instructions (HMMA, LDG or FFMA), the smallest such when several tie: for the"
    echo "fused kernel that is the body that runs full key tiles (scripts/sass_loops.py)."
    echo
    echo "LDG.128 in flight: the most 16-byte global loads the loop issues before one of their"
    echo "results is read (per thread). The RNN rows are the innermost FFMA loops (the dot products),"
    echo "one per variant: G gates x R batch rows per item x 4 (f32) or 8 (f16/bf16) FFMA per chunk,"
    echo "in address order (the FFMA count names the variant; kernels/rnn.cu dot_chunks)."
    echo
    echo "| source | kernel | loop | HMMA | HGMMA | LDSM | LDGSTS | LDG | LDS | STG | MUFU | FFMA | BAR | SHFL | BRA | LDG.128 in flight | per key |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    loops() { # cubin key kernel-regex [sass_loops options]
      "$disasm" -c "$work/$1_sm90.cubin" >"$work/$1_sm90.sass"
      python3 scripts/sass_loops.py "$work/$1_sm90.sass" --key "$2" --kernel "$3" "${@:4}" | while IFS=$'\t' read -r fn rest; do
        name=$(echo "$fn" | short_name)
        echo "| $1 | \`$name\` | $(echo "$rest" | tr '\t' '|' | sed 's/|/ | /g') (${2}) |"
      done
    }
    loops flash_attention_f16 HMMA flash_tc_kernel
    loops flash_attention_bf16 HMMA flash_tc_kernel
    loops flash_attention_f16_paged HMMA flash_tc_kernel
    loops flash_attention_bf16_paged HMMA flash_tc_kernel
    loops softmax LDG 'kernel'
    loops rnn FFMA 'persist' --innermost --all
    echo
    echo "### Hopper fused attention main loop (sm_90a SASS, static instructions)"
    echo
    echo "The innermost loop with the most HGMMA (sass_loops.py --key HGMMA --innermost): one key tile,"
    echo "S = Q K^T and O += P V by wgmma. An HGMMA.64xNx16 is a warpgroup's m64nNk16, of which each warp"
    echo "issues its m16nNk16 share: N/8 HMMA-equivalents (m16n8k16, the sm_80 kernel's unit), so \"per"
    echo "HMMA-eq\" compares with that kernel's \"per key\" above. Shapes: HGMMA count x 64xNx16."
    echo
    echo "| source | kernel | loop | HGMMA | shapes | HMMA-eq | MUFU | FFMA | SHFL | BAR | BRA | per HGMMA | per HMMA-eq |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    # sass_loops.py prints the loop's counts, not its instructions, so the HGMMA shapes come from
    # its own functions (parse, loops, mix) choosing the same loop: innermost, most HGMMA, then
    # fewest instructions. A kernel whose loop here differs in size from sass_loops.py's shows "?".
    hgmma_shapes() { # listing -> "kernel<TAB>loop<TAB>HGMMA<TAB>HMMA-eq<TAB>shapes" per kernel
      python3 - "$1" <<'PY'
import re, sys
sys.path.insert(0, "scripts")
import sass_loops as sl
for name, f in sl.parse(open(sys.argv[1]).read().splitlines()).items():
    rs, best = sl.loops(f), None
    for lo, hi in rs:
        if any(lo <= x and y <= hi and (x, y) != (lo, hi) for x, y in rs):
            continue
        ops = [op for a, op, _ in f["insns"] if lo <= a <= hi and sl.in_class(op, ("HGMMA",))]
        n = sl.mix(f, lo, hi)[0]
        if ops and (best is None or len(ops) > len(best[1]) or (len(ops) == len(best[1]) and n < best[0])):
            best = (n, ops)
    if best:
        ns = [int(m.group(1)) if m else 0 for m in (re.match(r"HGMMA\.64x(\d+)x", op) for op in best[1])]
        shapes = ", ".join("%d x 64x%dx16" % (ns.count(x), x) for x in sorted(set(ns), reverse=True))
        eq = "?" if 0 in ns else str(sum(x // 8 for x in ns))
        print("\t".join([name, str(best[0]), str(len(ns)), eq, shapes]))
PY
    }
    for src in flash_hopper_f16 flash_hopper_bf16; do
      for a in "${hopper_archs[@]}"; do
        sass=$work/${src}_sm$a.sass
        "$disasm" -c "$work/${src}_sm$a.cubin" >"$sass"
        hgmma_shapes "$sass" >"$sass.hgmma"
        python3 scripts/sass_loops.py "$sass" --key HGMMA --innermost --kernel flash_hopper_kernel |
          sort -V | while IFS=$'\t' read -r fn n hmma hgmma ldsm ldgsts ldg lds stg mufu ffma bar shfl bra inflight per; do
            if [ -z "${hgmma:-}" ]; then # sass_loops.py's "no loop with HGMMA"
              echo "| $src | \`$(echo "$fn" | short_name)\` | $n | | | | | | | | | | |"
              continue
            fi
            IFS=$'\t' read -r _ sn sk eq shapes < <(awk -F'\t' -v k="$fn" '$1 == k' "$sass.hgmma") || true
            [ "${sn:-}" = "$n" ] && [ "${sk:-}" = "$hgmma" ] || { eq="?" shapes="?"; }
            peq=$([ "$eq" != "?" ] && [ "$eq" -gt 0 ] && awk -v n="$n" -v e="$eq" 'BEGIN { printf "%.2f", n / e }' || echo "?")
            echo "| $src | \`$(echo "$fn" | short_name)\` | $n | $hgmma | $shapes | $eq | $mufu | $ffma | $shfl | $bar | $bra | $per | **$peq** |"
          done || true # sass_loops.py exits 1 when no kernel has such a loop: the row says so
      done
    done
  fi
} >"$out"
cat "$out"

bad=$(awk -F'\t' '$4 > 0 || $5 > 0 || $6 > 0 { print $1 " " $2 }' "$res")
if [ -n "$bad" ]; then
  echo "kernel_report: kernels with spills or a stack frame:" >&2
  echo "$bad" >&2
  exit 1
fi
