#!/usr/bin/env bash
# Alternated rounds of the engine benchmark (BenchmarkRerank20x135: one
# request of 20 documents of ~135-token pairs) on one Q8_0 file: aimind's
# int8 AMX kernels against ggml's AMX kernels (patch 0002) and ggml's stock
# Q8_0 kernels, in the same run; prints each round and the medians.
#   scripts/int8-bench.sh [shape] [rounds]   (default: base 5)
# Environment: BENCH_DIR (model cache, default /tmp/aimind-bench),
# INT8_GROUPS (int8 scale groups to compare, default "0": whole rows).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${NO_BUILD:-}" ] || ./build.sh >/dev/null
shape=${1:-base}
rounds=${2:-5}
dir=${BENCH_DIR:-/tmp/aimind-bench}
mkdir -p "$dir"
model="$dir/$shape-q8_0.gguf"
[ -f "$model" ] || bin/synthgguf -shape "$shape" -type q8_0 -out "$model"
go test -c -o "$dir/engine.test" ./engine
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(amx|avx512_vnni|avx512_bf16)' | tr '\n' ' ')"
declare -A runs=()
variants=()
for g in ${INT8_GROUPS:-0}; do variants+=("int8-g$g"); done
variants+=(ggml-amx stock)
for r in $(seq 1 "$rounds"); do
  for v in "${variants[@]}"; do
    env=(AIMIND_BENCH_MODEL="$model")
    case $v in
      int8-g*) env+=(AIMIND_BENCH_INT8=auto AIMIND_BENCH_INT8_GROUP="${v#int8-g}");;
      ggml-amx) env+=(AIMIND_BENCH_INT8=off);;
      stock) env+=(AIMIND_BENCH_NO_EXTRA=1);;
    esac
    tps=$(env "${env[@]}" "$dir/engine.test" -test.run '^$' -test.bench 'Rerank20x135$' -test.benchtime 3x -test.v 2>&1 \
      | awk '/tokens\/s/ {for (i = 1; i <= NF; i++) if ($(i+1) == "tokens/s") print $i}')
    echo "round $r $v: $tps tokens/s"
    runs[$v]+="$tps "
  done
done
for v in "${variants[@]}"; do
  # shellcheck disable=SC2086
  echo "median $v: $(printf '%s\n' ${runs[$v]} | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}') tokens/s"
done
