#!/usr/bin/env bash
# Every strong global symbol that the emulated archive (libseqk_emu.a) defines must be seqk's:
# a C name starting with seqk, or C++ inside a seqk* namespace. Anything else (a cuda*/cublas*
# stand-in that emu/include/seqk_emu/names.h does not rename, a C++ function outside a
# namespace) could collide with a real CUDA runtime or an application in the same link.
# Weak symbols (inline functions, template instances) are left out: the linker merges them.
#   scripts/check_emu_symbols.sh build/emu/libseqk_emu.a
set -euo pipefail
archive=${1:?usage: check_emu_symbols.sh libseqk_emu.a}
command -v nm >/dev/null || { echo "check_emu_symbols: no nm (binutils): skipped"; exit 77; }
syms=$(nm -g --defined-only "$archive" | awk 'NF == 3 && $2 ~ /^[TDBRGS]$/ { print $3 }' | sort -u)
[ -n "$syms" ] || { echo "check_emu_symbols: no symbols read from $archive" >&2; exit 1; }
bad=$(echo "$syms" | grep -Ev '^(seqk|_ZN[0-9]+seqk|_ZZN[0-9]+seqk|_ZTV[NS]?[0-9]*seqk|_ZTI[NS]?[0-9]*seqk|_ZTS[NS]?[0-9]*seqk)' || true)
if [ -n "$bad" ]; then
  echo "check_emu_symbols: symbols outside seqk's names in $archive:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "check_emu_symbols: $(echo "$syms" | wc -l) strong global symbols, all seqk's"
