#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds and runs a consumer through
# find_package(seqk) (shared and static) and through pkg-config; when the build has the emulated
# backend, also consumers of seqk::seqk_emu / seqk_emu.pc (CUDA tensors on the CPU, and the app's
# own CUDA calls on the emulator next to the real CUDA runtime).
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib:${LD_LIBRARY_PATH:-}" "$work/consumer/consumer_shared"
"$work/consumer/consumer_static"
emu=0
if [ -f "$build/emu/libseqk_emu.a" ] && grep -q '^SEQK_EMU_SANITIZE:STRING=$' "$build/CMakeCache.txt"; then
  emu=1
  [ -f "$work/prefix/lib/libseqk_emu.a" ] || { echo "seqk_emu was built but not installed" >&2; exit 1; }
  "$work/consumer/consumer_emu"
  if [ -x "$work/consumer/consumer_emu_own_cuda" ]; then
    "$work/consumer/consumer_emu_own_cuda"
  else
    echo "no CUDA toolkit for the consumer: the own-cudaMalloc consumer not checked"
  fi
fi
if command -v pkg-config >/dev/null; then
  export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
  cc "$src/consumer.c" -o "$work/pc_consumer" $(pkg-config --cflags --libs seqk) -lm
  LD_LIBRARY_PATH="$work/prefix/lib" "$work/pc_consumer"
  # static: the archive itself, then the private libraries pkg-config lists for it
  cc "$src/consumer.c" -o "$work/pc_static" $(pkg-config --cflags seqk) "$work/prefix/lib/libseqk.a" \
     $(pkg-config --static --libs seqk | sed 's/-lseqk\b//')
  "$work/pc_static"
  if [ "$emu" = 1 ]; then
    cc "$src/consumer_emu.c" -o "$work/pc_emu" $(pkg-config --cflags --libs seqk_emu)
    "$work/pc_emu"
  fi
else
  echo "pkg-config not installed: pkg-config consumer not checked"
fi
