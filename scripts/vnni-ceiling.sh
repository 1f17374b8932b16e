#!/usr/bin/env bash
# Measures what bounds aimind's Q8_0 GEMM on an AVX512-VNNI CPU
# (bench/vnniceiling/ceiling.cpp): VPDPBUSD's rate alone and beside the FP32
# work of the per-block fold, and the kernel against the same tile without
# the fold. Prints the CPU first. Needs g++ with C++20 and AVX512-VNNI.
#   scripts/vnni-ceiling.sh [M]   (rows per GEMM, default 396: 3 pairs of 132 tokens)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(amx|avx512_vnni|avx512_bf16)' | tr '\n' ' ')"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
g++ -O3 -march=native -std=c++20 -pthread -o "$out/ceiling" bench/vnniceiling/ceiling.cpp third_party/kernels/q8vnni.cpp
"$out/ceiling" "${1:-396}"
