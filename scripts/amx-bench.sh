#!/usr/bin/env bash
# Alternated rounds of the engine benchmark (BenchmarkRerank20x135: one
# request of 20 documents of ~135-token pairs, 2 threads) on one Q8_0 file:
# aimind's AMX kernels (BF16, the default; int8 per scale group) against
# ggml's AMX kernels (patch 0002) and ggml's stock Q8_0 kernels, in the same
# run; prints each round and the medians. Needs an AMX CPU for anything but
# "stock" to differ.
#   scripts/amx-bench.sh [shape] [rounds]   (default: base 5)
# Environment: BENCH_DIR (model cache, default /tmp/aimind-bench),
# VARIANTS (default "bf16 int8-g64 int8-row ggml-amx stock"; int8-gN is the
# int8 kernel with scale group N, int8-row with whole rows), NO_BUILD=1 to skip
# ./build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${NO_BUILD:-}" ] || ./build.sh >/dev/null
shape=${1:-base}
rounds=${2:-5}
dir=${BENCH_DIR:-/tmp/aimind-bench}
mkdir -p "$dir"
model="$dir/$shape-q8_0.gguf"
[ -f "$model" ] || bin/synthgguf -shape "$shape" -type q8_0 -out "$model"
go test -c -o "$dir/engine-amx.test" ./engine
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(amx|avx512_vnni|avx512_bf16)' | tr '\n' ' ')"
read -r -a variants <<< "${VARIANTS:-bf16 int8-g64 int8-row ggml-amx stock}"
declare -A runs=() cpus=()
for r in $(seq 1 "$rounds"); do
  for v in "${variants[@]}"; do
    env=(AIMIND_BENCH_MODEL="$model")
    case $v in
      bf16) env+=(AIMIND_BENCH_AMX=bf16);;
      int8-row) env+=(AIMIND_BENCH_AMX=int8 AIMIND_BENCH_INT8_GROUP=-1);;
      int8-g*) env+=(AIMIND_BENCH_AMX=int8 AIMIND_BENCH_INT8_GROUP="${v#int8-g}");;
      ggml-amx) env+=(AIMIND_BENCH_AMX=off);;
      stock) env+=(AIMIND_BENCH_NO_EXTRA=1);;
      *) echo "unknown variant $v" >&2; exit 2;;
    esac
    out=$(env "${env[@]}" "$dir/engine-amx.test" -test.run '^$' -test.bench 'Rerank20x135$' -test.benchtime 3x -test.v 2>&1)
    tps=$(awk '/tokens\/s/ {for (i = 1; i <= NF; i++) if ($(i+1) == "tokens/s") print $i}' <<< "$out")
    cps=$(awk '/tokens\/cpu-s/ {for (i = 1; i <= NF; i++) if ($(i+1) == "tokens/cpu-s") print $i}' <<< "$out")
    kernel=$(grep -m1 -o 'kernel: .*' <<< "$out" || true)
    echo "round $r $v: $tps tokens/s, $cps tokens/cpu-s ($kernel)"
    runs[$v]+="$tps "
    cpus[$v]+="$cps "
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for v in "${variants[@]}"; do
  # shellcheck disable=SC2086
  echo "median $v: $(median ${runs[$v]}) tokens/s, $(median ${cpus[$v]}) tokens/cpu-s"
done
