#!/usr/bin/env bash
# Installs what the build needs from Debian's packages when it is missing. The CUDA toolkit is
# expected at /usr/local/cuda (its absence only turns the CUDA parts off).
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v cc >/dev/null || need+=(gcc)
command -v c++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "missing build tools: ${need[*]} (install them with apt-get)" >&2
    exit 1
  fi
fi
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "note: nvcc is at /usr/local/cuda/bin; CMake finds it there" >&2
fi
