#!/usr/bin/env bash
# check_layers.sh - the tree's layering, checked (CTest `layering`; README "Layout"):
#   1. kernels/ includes only its own headers (and the public seqk.h for its plain enums, and the
#      emulator's header beside it): nothing from host/;
#   2. the headers of host/ include each other without a cycle;
#   3. given the library's object files: no kernel object calls into host code, and the host's
#      files call each other without a cycle (each file's undefined symbols resolved to the file
#      that defines them; tsort finds the loops).
#   scripts/check_layers.sh [OBJECT.o ...]
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0

includes() { sed -n 's/^#include "\([^"]*\)".*/\1/p' "$1"; }

# 1. kernels/ -> only kernels/
for f in kernels/*; do
  for inc in $(includes "$f"); do
    if [ -e "kernels/$inc" ] || [ "$inc" = seqk.h ] || [[ "$inc" == seqk_emu/* ]]; then continue; fi
    echo "layering: $f includes \"$inc\", which is not one of kernels/' own headers"
    fail=1
  done
done

# 2. host/ headers: an acyclic include graph
edges=""
for f in host/*.h; do
  h=$(basename "$f")
  edges+="$h $h"$'\n'
  for inc in $(includes "$f"); do
    if [ -e "host/$inc" ]; then edges+="$h $inc"$'\n'; fi
  done
done
if ! printf '%s' "$edges" | tsort > /dev/null 2> /tmp/seqk_layers.$$; then
  echo "layering: host/ headers include each other in a cycle:"
  cat /tmp/seqk_layers.$$
  fail=1
fi
rm -f /tmp/seqk_layers.$$

# 3. calls between the library's object files
if [ $# -gt 0 ]; then
  defs=$(mktemp)
  for o in "$@"; do
    name=$(basename "$o" .o)
    nm -g --defined-only "$o" | awk -v f="$name" '$2 ~ /^[TDBRC]$/ { print $3, f }' >> "$defs"
  done
  sort -u -k1,1 "$defs" -o "$defs"
  calls=""
  for o in "$@"; do
    name=$(basename "$o" .o)
    calls+="$name $name"$'\n'
    while read -r callee; do
      [ -z "$callee" ] || [ "$callee" = "$name" ] && continue
      calls+="$name $callee"$'\n'
      if [[ "$name" == *.cu && "$callee" == *.c ]]; then
        echo "layering: kernels/$name calls into host/$callee"
        fail=1
      fi
    done < <(nm -u "$o" | awk '{ print $2 }' | sort -u | join - "$defs" | awk '{ print $2 }' | sort -u)
  done
  rm -f "$defs"
  host_calls=$(printf '%s' "$calls" | awk '$1 ~ /\.c$/ && $2 ~ /\.c$/')
  if ! printf '%s\n' "$host_calls" | tsort > /dev/null 2> /tmp/seqk_layers.$$; then
    echo "layering: host/ files call each other in a cycle:"
    cat /tmp/seqk_layers.$$
    fail=1
  fi
  rm -f /tmp/seqk_layers.$$
  echo "layering: $(printf '%s\n' "$host_calls" | awk '$1 != $2' | wc -l) calls between host/ files" \
       "($# objects)"
fi

if [ "$fail" -ne 0 ]; then exit 1; fi
echo "layering: ok"
