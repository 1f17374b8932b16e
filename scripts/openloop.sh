#!/usr/bin/env bash
# Open-loop latency benchmark (issue 22, items 4 and 5): aimind and llama.cpp's
# llama-server on the same synthetic GGUF, with ONNX Runtime FP32 and int8 on
# the same weights in the same run.
#
#   LLAMA_SERVER=/path/to/llama-server ORT_DIR=/path/to/ort scripts/openloop.sh
#
# 1. Capacity: each server's closed-loop throughput at the issue's request
#    shape (20 documents x 120 words), CAP_C clients, CAP_N requests.
#    llama-server's requests/s is the reference capacity (CAPACITY=R skips its
#    measurement; without LLAMA_SERVER aimind's own capacity is used).
# 2. Open loop: Poisson arrivals (cmd/rerankload -rate) at each fraction of
#    LOADS of that capacity for DURATION seconds, aimind and llama-server
#    alternately (the order flips every round), the same arrival times and
#    texts for both servers in a round, each cell on a freshly started server.
#    Latency is counted from each request's scheduled time.
# 3. ONNX Runtime (when ORT_DIR is set): bench.js of ../shared/bench/ort on
#    FP32 and --int8 models built from the same GGUF, once per round.
# Tables (CPU named in each) go to stdout and, with every raw line, to
# OUT_DIR (docs/bench-results).
#
# llama-server is not part of this repository: build it yourself from a
# llama.cpp checkout, following its own docs. ORT_DIR is a copy of
# ../shared/bench/ort with `npm install --ignore-scripts onnxruntime-node@1.30.0`
# run in it (see that folder's README; it also wants Debian's python3-onnx and
# python3-numpy under /usr/bin/python3).
#
# Environment: DURATION (seconds per open-loop cell, 300), ROUNDS (3), LOADS
# ("0.5 0.8"), REQUESTS (arrivals per cell instead of DURATION: a trial on a
# busy machine still gets requests), CAP_C (4), CAP_N (12), CAPACITY (requests/s, measured when
# unset), SHAPE (base), TYPE (q8_0), BENCH_DIR (/tmp/aimind-openloop),
# OUT_DIR (docs/bench-results), LABEL (file-name suffix; "trial" marks noisy
# trial figures), AIMIND_FLAGS, LLAMA_FLAGS, ORT_NB (10 batches), PYTHON
# (/usr/bin/python3). Expected time: about
# ROUNDS x (2 x LOADS x (DURATION + drain) + ORT) + capacity; see docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${BENCH_DIR:-/tmp/aimind-openloop}
out_dir=${OUT_DIR:-$root/docs/bench-results}
duration=${DURATION:-300}
rounds=${ROUNDS:-3}
loads=${LOADS:-0.5 0.8}
cap_c=${CAP_C:-4}
cap_n=${CAP_N:-12}
shape=${SHAPE:-base}
type=${TYPE:-q8_0}
python=${PYTHON:-/usr/bin/python3}
threads=$(nproc)
docs=20
dwords=120
mkdir -p "$dir" "$out_dir"
./build.sh >/dev/null
go build -o "$dir/rerankload" ./cmd/rerankload
model="$dir/$shape-$type.gguf"
[ -f "$model" ] || bin/synthgguf -shape "$shape" -type "$type" -out "$model"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
flags=$(grep -m1 '^flags' /proc/cpuinfo)
isa=$(for f in avx2 avx512f avx512_vnni avx512_bf16 amx_int8 amx_bf16; do if [[ " $flags " == *" $f "* ]]; then printf '%s ' "$f"; fi; done)
cpu_line="$cpu, $threads CPUs (${isa% })"
stamp=$(date -u +%Y-%m-%d-%H%M)
name="openloop-$stamp-$shape-$type${LABEL:+-$LABEL}"
results="$out_dir/$name.jsonl"
requests="$out_dir/$name-requests.jsonl"
table="$out_dir/$name.md"
: >"$results"
: >"$requests"
echo "cpu: $cpu_line"
length_line="${duration}s"
[ -n "${REQUESTS:-}" ] && length_line="$REQUESTS requests"
echo "model: $shape $type; $length_line x loads ($loads) x rounds $rounds; raw: $results"

servers=(aimind)
[ -n "${LLAMA_SERVER:-}" ] && servers+=(llama-server)
if [ -n "${LLAMA_SERVER:-}" ]; then
  llama_version=$("$LLAMA_SERVER" --version 2>&1 | grep -m1 -i version || true)
  echo "llama-server: $LLAMA_SERVER ($llama_version)"
fi

# llama-server's extra flags: LLAMA_FLAGS, plus --no-repack when it dies while
# loading (upstream ggml's AMX Q8_0 kernel died with SIGILL on `tilezero` in
# the warm-up run on the 2-core AMX Xeon VM of 2026-12-06; Q8_0 has no other
# repack on x86, so --no-repack only turns the AMX path off there).
llama_flags=${LLAMA_FLAGS:-}
pid=
stop_server() {
  # llama-server of late 2025 segfaults on SIGTERM: its exit status is
  # ignored, and a server that does not go is killed.
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
}
trap stop_server EXIT

start_server() {
  # A fresh port from the kernel every start: a socket left by a crashed server
  # is never reused, and neither is a port another process on a shared
  # machine listens on (a fixed range once answered for someone else's server).
  port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  url="http://127.0.0.1:$port"
  if curl -s -o /dev/null "$url/"; then echo "port $port already answers; retrying" >&2; start_server "$1"; return 0; fi
  case $1 in
    aimind)
      rm -rf "$dir/data"
      # shellcheck disable=SC2086
      bin/aimind serve --model "$model" --alias bench --port $port --no-auth --threads "$threads" \
        --data-dir "$dir/data" --log-level warn ${AIMIND_FLAGS:-} 2>"$dir/aimind.log" &
      ;;
    llama-server)
      # shellcheck disable=SC2086
      "$LLAMA_SERVER" -m "$model" --reranking --host 127.0.0.1 --port $port -t "$threads" $llama_flags >"$dir/llama-server.log" 2>&1 &
      ;;
  esac
  pid=$!
  for _ in $(seq 1 1200); do
    # aimind: /ready is 200 once a model runs; llama-server: /health is 200 once loaded.
    if [ "$1" = aimind ]; then curl -sf "$url/ready" >/dev/null 2>&1 && kill -0 "$pid" 2>/dev/null && return 0
    else curl -sf "$url/health" >/dev/null 2>&1 && kill -0 "$pid" 2>/dev/null && return 0; fi
    if ! kill -0 "$pid" 2>/dev/null && [ "$1" = llama-server ] && [[ " $llama_flags " != *" --no-repack "* ]]; then
      wait "$pid" 2>/dev/null || true
      pid=
      cp "$dir/llama-server.log" "$dir/llama-server-died.log"
      echo "llama-server died while loading (see $dir/llama-server-died.log); running it with --no-repack from here on" >&2
      llama_flags="$llama_flags --no-repack"
      start_server llama-server
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "$1 exited; see $dir/$1.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "$1 did not become ready" >&2
  exit 1
}

# record KIND SERVER ROUND FRACTION JSON: one result line.
record() {
  echo "{\"kind\":\"$1\",\"server\":\"$2\",\"round\":$3,\"fraction\":$4,\"cpu\":\"$cpu_line\",\"llama_flags\":\"${llama_flags# }\",\"result\":$5}" >>"$results"
}

# 1. Closed-loop capacity at the issue's shape.
capacity=${CAPACITY:-}
cap_servers=("${servers[@]}")
for server in "${cap_servers[@]}"; do
  if [ "$server" = llama-server ] && [ -n "$capacity" ]; then continue; fi
  start_server "$server"
  line=$("$dir/rerankload" -url "$url/v1/rerank" -model bench -json -c "$cap_c" -n "$cap_n" -docs $docs -dwords $dwords -warmup 1 -seed 1)
  stop_server
  record capacity "$server" 0 0 "$line"
  echo "capacity $server: $line"
done
if [ -z "$capacity" ]; then
  ref=llama-server
  [ -n "${LLAMA_SERVER:-}" ] || ref=aimind
  capacity=$("$python" -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["kind"] == "capacity" and r["server"] == sys.argv[2]:
        print(r["result"]["achieved_rate"])' "$results" "$ref")
fi
echo "reference capacity: $capacity requests/s"

# ORT models from the same GGUF (cached beside it).
if [ -n "${ORT_DIR:-}" ]; then
  for v in fp32 int8; do
    onnx="$dir/$shape-$type-ort-$v.onnx"
    if [ ! -f "$onnx" ] || [ "$onnx" -ot "$model" ]; then
      extra=()
      [ $v = int8 ] && extra=(--int8)
      (cd "$ORT_DIR" && "$python" build_onnx.py --gguf "$model" --out "$onnx" "${extra[@]}" >/dev/null)
    fi
  done
  [ -f "$dir/$shape-vocab.json" ] && [ "$dir/$shape-vocab.json" -nt "$model" ] ||
    (cd "$ORT_DIR" && "$python" vocab.py "$model" "$dir/$shape-vocab.json")
fi

# 2. and 3. Rounds: open-loop cells alternated between the servers, then ORT.
for round in $(seq 1 "$rounds"); do
  order=("${servers[@]}")
  if (( round % 2 == 0 )) && (( ${#servers[@]} > 1 )); then order=("${servers[1]}" "${servers[0]}"); fi
  k=0
  for frac in $loads; do
    k=$((k + 1))
    rate=$("$python" -c "print(round($frac * $capacity, 6))")
    seed=$((1000 * round + k))
    for server in "${order[@]}"; do
      start_server "$server"
      raw="$dir/raw-$server-$round-$k.jsonl"
      length=(-duration "${duration}s")
      [ -n "${REQUESTS:-}" ] && length=(-n "$REQUESTS")
      line=$("$dir/rerankload" -url "$url/v1/rerank" -model bench -json -rate "$rate" "${length[@]}" \
        -docs $docs -dwords $dwords -warmup 1 -seed "$seed" -raw "$raw")
      stop_server
      record open "$server" "$round" "$frac" "$line"
      "$python" -c '
import json, sys
s, r, f = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
for l in open(sys.argv[1]):
    x = json.loads(l)
    x.update(server=s, round=r, fraction=f)
    print(json.dumps(x))' "$raw" "$server" "$round" "$frac" >>"$requests"
      printf 'round %s  %.0f%% (%s/s)  %-12s %s\n' "$round" "$("$python" -c "print($frac * 100)")" "$rate" "$server" "$line"
    done
  done
  if [ -n "${ORT_DIR:-}" ]; then
    for v in fp32 int8; do
      line=$(cd "$ORT_DIR" && VOCAB_JSON="$dir/$shape-vocab.json" NB=${ORT_NB:-10} node bench.js "$dir/$shape-$type-ort-$v.onnx" "ort-$v" 2>/dev/null | tail -1)
      record ort "ort-$v" "$round" 0 "$line"
      echo "round $round  ort-$v  $line"
    done
  fi
done

"$python" - "$results" "$requests" "$cpu_line" "$length_line" "$rounds" "${LABEL:-}" <<'EOF' | tee "$table"
import json, math, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
reqs = [json.loads(l) for l in open(sys.argv[2])]
cpu, duration, rounds, label = sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]

def pct(xs, p):
    # nearest rank, as cmd/rerankload
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, math.ceil(p * len(xs)) - 1))
    return xs[k]

note = " — NOISY TRIAL FIGURES (shared machine, short cells), not results" if "trial" in label else ""
print(f"# Open-loop benchmark{note}\n")
lf = sorted({r.get("llama_flags", "") for r in rows if r["server"] == "llama-server"})
print(f"CPU: {cpu}. Request: 20 documents x 120 words. Open-loop cells of {duration}, {rounds} round(s)." +
      (f" llama-server extra flags: {', '.join(repr(x) for x in lf)}." if lf else "") + "\n")

cap = {r["server"]: r["result"] for r in rows if r["kind"] == "capacity"}
ort = {}
for r in rows:
    if r["kind"] == "ort":
        ort.setdefault(r["server"], []).append(r["result"])
print(f"## Closed-loop capacity and ONNX Runtime (CPU: {cpu})\n")
print("| engine | requests/s (20 pairs) | pairs/s | tokens/s | p50 ms (closed loop) | 3-pair request p50 ms |")
print("|---|---|---|---|---|---|")
for s, x in cap.items():
    print(f"| {s} ({x['clients']} clients) | {x['achieved_rate']:.3f} | {x['pairs_per_s']:.1f} | {x['tokens_per_s']:.0f} | {x['p50_ms']:.0f} | |")
for s, xs in ort.items():
    med = lambda k: statistics.median(x[k] for x in xs)
    print(f"| {s} (in-process, 1 batch at a time, median of {len(xs)}) | {med('pairs_per_s')/20:.3f} | {med('pairs_per_s'):.1f} | {med('tokens_per_s'):.0f} | {med('batch_p50_ms'):.0f} | {med('small_p50_ms'):.1f} |")
print()

opens = [r for r in rows if r["kind"] == "open"]
fracs = sorted({r["fraction"] for r in opens})
servers = sorted({r["server"] for r in opens}, key=lambda s: s != "aimind")
print(f"## Open loop, Poisson arrivals (CPU: {cpu})\n")
print("Percentiles over every request of all rounds; latency from each request's scheduled send time.\n")
print("| load | server | offered req/s | requests | errors | achieved req/s | p50 ms | p95 ms | p99 ms | max ms | client send lag p99 ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
pooled = {}
for f in fracs:
    for s in servers:
        cells = [r["result"] for r in opens if r["fraction"] == f and r["server"] == s]
        lat = [q["latency_ms"] for q in reqs if q["fraction"] == f and q["server"] == s and "error" not in q]
        lag = [q["sent_ms"] - q["scheduled_ms"] for q in reqs if q["fraction"] == f and q["server"] == s and "error" not in q]
        n = sum(c["requests"] for c in cells)
        err = sum(c["errors"] for c in cells)
        achieved = statistics.median(c["achieved_rate"] for c in cells)
        offered = cells[0]["rate"]
        p = {q: pct(lat, q) for q in (0.5, 0.95, 0.99)}
        pooled[(f, s)] = p
        flag = ""
        if s in cap and offered > cap[s]["achieved_rate"]:
            flag = " (over its capacity)"
        print(f"| {f*100:.0f} % | {s}{flag} | {offered:.3f} | {n} | {err} | {achieved:.3f} | {p[0.5]:.0f} | {p[0.95]:.0f} | {p[0.99]:.0f} | {max(lat) if lat else float('nan'):.0f} | {pct(lag, 0.99):.1f} |")
if any(r["result"]["errors"] for r in opens):
    print("\nErrors (for example 429 past aimind's --max-queue-tokens) are left out of the percentiles: read them with the errors column.")
if len(servers) == 2:
    a, l = servers
    print(f"\n### aimind / llama-server (CPU: {cpu})\n")
    print("| load | p50 | p95 | p99 |")
    print("|---|---|---|---|")
    for f in fracs:
        r = [pooled[(f, a)][q] / pooled[(f, l)][q] for q in (0.5, 0.95, 0.99)]
        print(f"| {f*100:.0f} % | {r[0]:.2f} | {r[1]:.2f} | {r[2]:.2f} |")
    if 0.8 in fracs:
        r = pooled[(0.8, a)][0.95] / pooled[(0.8, l)][0.95]
        print(f"\nTarget (issue 22): at 80 % of llama-server's capacity, aimind p95 <= 0.5x llama-server's: {r:.2f}x, {'met' if r <= 0.5 else 'not met'}.")
    print("\nPer round (p95 ms, aimind / llama-server):", end=" ")
    for f in fracs:
        for rd in sorted({r["round"] for r in opens}):
            x = {r["server"]: r["result"]["p95_ms"] for r in opens if r["fraction"] == f and r["round"] == rd}
            if a in x and l in x:
                print(f"{f*100:.0f}% r{rd}: {x[a]:.0f}/{x[l]:.0f}", end="; ")
    print()
if ort and "aimind" in cap:
    print(f"\n### aimind closed-loop throughput / ONNX Runtime (tokens/s; CPU: {cpu})\n")
    for s, xs in ort.items():
        print(f"- {s}: {cap['aimind']['tokens_per_s'] / statistics.median(x['tokens_per_s'] for x in xs):.2f}x")
EOF
echo "tables: $table; raw: $results, $requests"
