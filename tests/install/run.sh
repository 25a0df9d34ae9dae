#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds and runs a consumer through
# find_package(seqk) (shared and static) and through pkg-config.
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
if command -v pkg-config >/dev/null; then
  export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
  cc "$src/consumer.c" -o "$work/pc_consumer" $(pkg-config --cflags --libs seqk) -lm
  LD_LIBRARY_PATH="$work/prefix/lib" "$work/pc_consumer"
  # static: the archive itself, then the private libraries pkg-config lists for it
  cc "$src/consumer.c" -o "$work/pc_static" $(pkg-config --cflags seqk) "$work/prefix/lib/libseqk.a" \
     $(pkg-config --static --libs seqk | sed 's/-lseqk\b//')
  "$work/pc_static"
else
  echo "pkg-config not installed: pkg-config consumer not checked"
fi
