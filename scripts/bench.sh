#!/usr/bin/env bash
# Runs the rerank benchmark matrix on synthetic models: 20 documents of ~135
# tokens per request, 1 client (sequential) and 8 concurrent clients.
#   scripts/bench.sh [base|v2m3 ...]   (default: base v2m3)
# Environment: BENCH_DIR (model cache, default /tmp/aimind-bench), TYPES
# (default "f16 q8_0"), REQUESTS8 (requests per client at 8 clients, default 1),
# EXTRA (extra serve flags).
set -euo pipefail
cd "$(dirname "$0")/.."
./build.sh >/dev/null
dir=${BENCH_DIR:-/tmp/aimind-bench}
mkdir -p "$dir"
shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(base v2m3)
types=${TYPES:-f16 q8_0}
port=18931

# GFLOP per token: 2 x (per-layer weights) x layers, plus attention over ~135 tokens.
declare -A gflop=([base]=0.175 [v2m3]=0.617)

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs"
for shape in "${shapes[@]}"; do
  for t in $types; do
    model="$dir/$shape-$t.gguf"
    [ -f "$model" ] || bin/synthgguf -shape "$shape" -type "$t" -out "$model"
    # shellcheck disable=SC2086
    bin/aimind serve --model "$model" --alias bench --port $port --no-auth --data-dir "$dir/data-$shape-$t" --log-level warn ${EXTRA:-} 2>"$dir/serve.log" &
    pid=$!
    trap 'kill $pid 2>/dev/null || true' EXIT
    for _ in $(seq 1 600); do
      curl -sf "http://127.0.0.1:$port/v1/models" | grep -q '"status":"running"' && break
      sleep 0.2
    done
    echo "== $shape $t ${EXTRA:-}"
    bin/aimind bench --url "http://127.0.0.1:$port" --model bench --clients 1 --requests 3 --doc-words 120 --gflop-per-token "${gflop[$shape]}"
    bin/aimind bench --url "http://127.0.0.1:$port" --model bench --clients 8 --requests "${REQUESTS8:-1}" --doc-words 120 --warmup 0 --gflop-per-token "${gflop[$shape]}"
    kill $pid; wait $pid 2>/dev/null || true
  done
done
