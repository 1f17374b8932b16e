#!/usr/bin/env bash
# Score error of aimind's Q8_0 path and of ONNX Runtime's int8 models, each
# against ONNX Runtime FP32 on the F32 weights (which aimind's F32 path
# matches within 1e-4), on the synthetic base shape: the error side of the
# ONNX Runtime comparison in docs/benchmarks.md.
#   scripts/ort-error.sh
# Environment: BENCH_DIR (default /tmp/aimind-bench), ORT_DIR (a prepared
# copy of ../shared/bench/ort with onnxruntime-node installed; default: a new
# one under BENCH_DIR), NO_BUILD=1 to skip ./build.sh. Needs node, npm, and
# Debian's python3-onnx and python3-numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${NO_BUILD:-}" ] || ./build.sh >/dev/null
dir=${BENCH_DIR:-/tmp/aimind-bench}
mkdir -p "$dir"
ort=${ORT_DIR:-$dir/ort}
if [ ! -d "$ort/node_modules/onnxruntime-node" ]; then
  mkdir -p "$ort" && cp -r ../shared/bench/ort/. "$ort/"
  (cd "$ort" && npm install --ignore-scripts onnxruntime-node@1.30.0 >/dev/null)
fi
# The shared builder reads token_types.weight as (1, H); a Q8_0 file from
# synthgguf stores it with one dimension, and [0] then adds a scalar. Read
# it as rows of H either way (in this copy only).
sed -i "s/W('token_types.weight')\[0\]/W('token_types.weight').reshape(-1, H)[0]/" "$ort/build_onnx.py"
cp bench/ort-error/err.js "$ort/err.js"
for t in f32 q8_0; do [ -f "$dir/base-$t.gguf" ] || bin/synthgguf -shape base -type "$t" -out "$dir/base-$t.gguf"; done
py=/usr/bin/python3
$py "$ort/vocab.py" "$dir/base-f32.gguf" "$ort/vocab.json"
# The synthetic vocabulary lacks some of common.js's words: keep the ones it has.
$py - "$ort/common.js" "$ort/vocab.json" <<'PY'
import json, re, sys
path, vocab = sys.argv[1], set(json.load(open(sys.argv[2])))
src = open(path).read()
words = re.search(r"^const WORDS = '([^']*)'", src, re.M).group(1).split()
kept = " ".join(w for w in words if "\u2581" + w in vocab)
open(path, "w").write(re.sub(r"^const WORDS = '[^']*'", "const WORDS = '%s'" % kept, src, count=1, flags=re.M))
PY
$py "$ort/build_onnx.py" --gguf "$dir/base-f32.gguf" --out "$ort/ref-f32.onnx" >/dev/null
$py "$ort/build_onnx.py" --gguf "$dir/base-f32.gguf" --out "$ort/int8-from-f32.onnx" --int8 >/dev/null
$py "$ort/build_onnx.py" --gguf "$dir/base-q8_0.gguf" --out "$ort/int8-from-q8_0.onnx" --int8 >/dev/null
$py "$ort/build_onnx.py" --gguf "$dir/base-q8_0.gguf" --out "$ort/fp32-from-q8_0.onnx" >/dev/null
port=18851
bin/aimind serve --model "$dir/base-q8_0.gguf" --alias m --port $port --no-auth --data-dir "$dir/data-ort-error" --log-level warn 2>"$dir/ort-error-serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$port/v1/models" | grep -q '"status":"running"' && break
  sleep 0.2
done
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); aimind kernel: $(curl -s "http://127.0.0.1:$port/v1/models" | grep -o '"kernel":"[^"]*"')"
(cd "$ort" && AIMIND_URL="http://127.0.0.1:$port/v1/rerank" node err.js ref-f32.onnx fp32-from-q8_0.onnx int8-from-q8_0.onnx int8-from-f32.onnx 2>/dev/null)
