#!/usr/bin/env bash
# Side-by-side latency benchmark: aimind and llama.cpp's llama-server on the
# same synthetic GGUF, driven by the same neutral load client (cmd/rerankload),
# rounds alternated (each server is restarted every round,
# so aimind's score cache starts empty), medians printed with the CPU model.
#
#   LLAMA_SERVER=/path/to/llama-server scripts/sidebyside.sh
#
# llama-server is not part of this repository: build it yourself from a
# llama.cpp checkout, following its own docs. Without LLAMA_SERVER only
# aimind is measured.
#
# Loads (issue "Latency", 1 of 7):
#   a  8 clients x 20 documents x 120 words (16 requests)
#   b  1 client, seed-size request: 3 documents x 20 words (20 requests)
#   c  mixed: 1 client sending 200-document requests beside 4 clients sending
#      5-document requests; the small requests' latency is compared with the
#      same 4 clients alone (c-idle4) and with 1 client alone (c-idle1)
#   d  the same 20-document request 10 times: the first, then the other 9
# Environment: ROUNDS (3), SHAPE (base), TYPE (q8_0), LOADS ("a b c d"),
# BENCH_DIR (/tmp/aimind-sbs), AIMIND_FLAGS (extra serve flags),
# LLAMA_FLAGS (extra llama-server flags).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${BENCH_DIR:-/tmp/aimind-sbs}
rounds=${ROUNDS:-3}
shape=${SHAPE:-base}
type=${TYPE:-q8_0}
loads=${LOADS:-a b c d}
threads=$(nproc)
mkdir -p "$dir"
./build.sh >/dev/null
go build -o "$dir/rerankload" ./cmd/rerankload
model="$dir/$shape-$type.gguf"
[ -f "$model" ] || bin/synthgguf -shape "$shape" -type "$type" -out "$model"

servers=(aimind)
[ -n "${LLAMA_SERVER:-}" ] && servers+=(llama-server)
base_port=18941
starts=0
results="$dir/results-$(date +%Y%m%d-%H%M%S).jsonl"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
flags=$(grep -m1 '^flags' /proc/cpuinfo)
isa=$(for f in avx2 avx512f avx512_vnni avx512_bf16 amx_int8 amx_bf16; do if [[ " $flags " == *" $f "* ]]; then printf '%s ' "$f"; fi; done)
echo "cpu: $cpu, $threads CPUs ($isa)"
echo "model: $shape $type; results: $results"

pid=
stop_server() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  pid=
}
trap stop_server EXIT

start_server() {
  # A fresh port every start: llama-server of late 2025 segfaults on
  # SIGTERM, and its socket can outlive the wait for it.
  port=$((base_port + starts % 50))
  starts=$((starts + 1))
  url="http://127.0.0.1:$port"
  case $1 in
    aimind)
      rm -rf "$dir/data"
      # shellcheck disable=SC2086
      bin/aimind serve --model "$model" --alias bench --port $port --no-auth --threads "$threads" \
        --data-dir "$dir/data" --log-level warn ${AIMIND_FLAGS:-} 2>"$dir/aimind.log" &
      ;;
    llama-server)
      # shellcheck disable=SC2086
      "$LLAMA_SERVER" -m "$model" --reranking --port $port -t "$threads" ${LLAMA_FLAGS:-} >"$dir/llama-server.log" 2>&1 &
      ;;
  esac
  pid=$!
  for _ in $(seq 1 600); do
    # aimind: /ready is 200 once a model runs; llama-server: /health is 200 once loaded.
    if [ "$1" = aimind ]; then curl -sf "$url/ready" >/dev/null 2>&1 && return 0
    else curl -sf "$url/health" >/dev/null 2>&1 && return 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "$1 exited; see $dir/$1.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "$1 did not become ready" >&2
  exit 1
}

# load NAME SERVER ROUND ARGS...: one rerankload run, one JSON line recorded.
load() {
  local name=$1 server=$2 round=$3
  shift 3
  local out
  out=$("$dir/rerankload" -url "$url/v1/rerank" -model bench -json "$@")
  echo "{\"load\":\"$name\",\"server\":\"$server\",\"round\":$round,\"result\":$out}" >>"$results"
  printf '  %-8s %-12s %s\n' "$name" "$server" "$out"
}

for round in $(seq 1 "$rounds"); do
  order=("${servers[@]}")
  if (( round % 2 == 0 )) && (( ${#servers[@]} > 1 )); then order=("${servers[1]}" "${servers[0]}"); fi
  for server in "${order[@]}"; do
    echo "round $round: $server"
    seed=$((100 + round))
    for l in $loads; do
      start_server "$server"
      case $l in
        a) load a "$server" "$round" -c 8 -n 16 -docs 20 -dwords 120 -warmup 1 -seed $seed ;;
        b) load b "$server" "$round" -c 1 -n 20 -docs 3 -dwords 20 -warmup 2 -seed $seed ;;
        c)
          load c-idle1 "$server" "$round" -c 1 -n 8 -docs 5 -dwords 120 -warmup 1 -seed $seed
          load c-idle4 "$server" "$round" -c 4 -n 24 -docs 5 -dwords 120 -warmup 0 -seed $((seed + 1000))
          "$dir/rerankload" -url "$url/v1/rerank" -model bench -json -c 1 -n 1 -docs 200 -dwords 120 -warmup 0 -seed $((seed + 2000)) >"$dir/big.json" &
          big=$!
          load c-small "$server" "$round" -c 4 -n 40 -docs 5 -dwords 120 -warmup 0 -seed $((seed + 3000))
          wait $big
          echo "{\"load\":\"c-big\",\"server\":\"$server\",\"round\":$round,\"result\":$(cat "$dir/big.json")}" >>"$results"
          printf '  %-8s %-12s %s\n' c-big "$server" "$(cat "$dir/big.json")"
          ;;
        d)
          load d-first "$server" "$round" -c 1 -n 1 -docs 20 -dwords 120 -warmup 0 -same -seed $((seed + 4000))
          load d-rest "$server" "$round" -c 1 -n 9 -docs 20 -dwords 120 -warmup 0 -same -seed $((seed + 4000))
          ;;
      esac
      stop_server
    done
  done
done

python3 - "$results" "$cpu" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cpu = sys.argv[2]
by = {}
for r in rows:
    by.setdefault((r["load"], r["server"]), []).append(r["result"])
def med(load, server, key):
    v = [x[key] for x in by.get((load, server), []) if x.get("ok")]
    return statistics.median(v) if v else None
servers = sorted({s for _, s in by}, key=lambda s: s != "aimind")
# Clients of each load: with a closed loop, clients x wall / requests is the
# mean latency, which percentiles of few samples can hide.
clients = {"a": 8, "b": 1, "c-idle1": 1, "c-idle4": 4, "c-small": 4, "c-big": 1, "d-first": 1, "d-rest": 1}
for (load, s), xs in by.items():
    for x in xs:
        x["mean_ms"] = clients[load] * x["wall_s"] * 1000 / x["ok"] if x.get("ok") else 0
print(f"\nMedians over rounds, CPU: {cpu}")
print("| load | server | tokens/s | p50 ms | p95 ms | mean ms |")
print("|---|---|---|---|---|---|")
for load in ["a", "b", "c-idle1", "c-idle4", "c-small", "c-big", "d-first", "d-rest"]:
    for s in servers:
        if (load, s) in by:
            t, p50, p95, mean = (med(load, s, k) for k in ("tokens_per_s", "p50_ms", "p95_ms", "mean_ms"))
            print(f"| {load} | {s} | {t:.0f} | {p50:.0f} | {p95:.0f} | {mean:.0f} |")
if len(servers) > 1:
    a, l = servers
    def ratio(load, key):
        x, y = med(load, a, key), med(load, l, key)
        return x / y if x and y else float("nan")
    print(f"\nTargets (aimind / llama-server):")
    print(f"(a) p50 {ratio('a','p50_ms'):.2f} (<= 0.6), p95 {ratio('a','p95_ms'):.2f} (<= 0.7), throughput {ratio('a','tokens_per_s'):.2f} (>= 1.0)")
    print(f"(b) p50 {ratio('b','p50_ms'):.2f} (<= 0.9)")
for s in servers:
    c1, c4, cs = med("c-idle1", s, "p95_ms"), med("c-idle4", s, "p95_ms"), med("c-small", s, "p95_ms")
    d1, dr = med("d-first", s, "p50_ms"), med("d-rest", s, "p50_ms")
    if cs:
        print(f"(c) {s}: small p95 beside the large request / alone (1 client): {cs/c1:.2f}; / the same 4 clients alone: {cs/c4:.2f} (<= 3)")
    if d1 and dr:
        print(f"(d) {s}: first / repeats (p50): {d1/dr:.1f}x (>= 20)")
EOF
