#!/usr/bin/env bash
# The GPU check, run from a bundle that `./build.sh gpu-bundle DIR` made on a
# machine with Go (deploy/gpu/README.md). On the GPU machine (nvcc, CMake,
# ninja, gcc; no Go, no network) it:
#   1. builds llama.cpp + ggml-cuda for sm_90 from the pinned, patched source
#      in the bundle, with our recipe (CMakeLists.txt);
#   2. links aimind (libaimind.a, a Go C archive) against them with g++;
#   3. writes a synthetic model (synthgguf; bge-reranker-v2-m3 shape, F16);
#   4. scores the seed request and 200 random pairs on the CPU (--gpu-layers 0)
#      and on the GPU, and fails unless every GPU score is within 1e-2
#      relative (plus 1e-2) of the CPU's;
#   5. serves it and drives rerankload at 1 and 16 clients (20 documents of
#      120 words), printing tokens/s, pairs/s, p50/p95 and the share of the
#      card's dense FP16 peak; and a single 20-document request's latency.
#
# Environment:
#   AIMIND_GPU   cuda (default) or cpu: a dry run without CUDA (the tests)
#   AIMIND_LLAMA_LIBS  a directory with lib/ and include/ of llama.cpp built
#                already: skips step 1 (the tests use the CPU build's)
#   SHAPE (v2m3), TYPE (f16), PAIRS (200), CLIENTS ("1 16"), REQUESTS (32),
#   DOCS (20), DWORDS (120), PEAK_TFLOPS (989: H100/H200 SXM dense FP16),
#   CUDA_ARCH (90), WORK (a temporary folder), OUT (results; default WORK)
set -euo pipefail

bundle=$(cd "$(dirname "$0")" && pwd)
gpu=${AIMIND_GPU:-cuda}
shape=${SHAPE:-v2m3}
type=${TYPE:-f16}
pairs=${PAIRS:-200}
clients=${CLIENTS:-"1 16"}
requests=${REQUESTS:-32}
docs=${DOCS:-20}
dwords=${DWORDS:-120}
peak=${PEAK_TFLOPS:-989}
arch=${CUDA_ARCH:-90}
work=${WORK:-$(mktemp -d)}
out=${OUT:-$work}
mkdir -p "$work" "$out"
say() { echo "gpu-check: $*" >&2; }
die() { say "$*"; exit 1; }

case "$gpu" in cuda|cpu) ;; *) die "AIMIND_GPU=$gpu: want cuda or cpu";; esac

# 1. llama.cpp (+ ggml-cuda)
libs=${AIMIND_LLAMA_LIBS:-}
if [ -z "$libs" ]; then
  say "building llama.cpp ($gpu) in $work/build"
  tar -C "$work" -xJf "$bundle/llama-src.tar.xz"
  opts=(-DGGML_NATIVE=ON -DGGML_OPENMP=ON -DGGML_LLAMAFILE=ON)
  [ "$gpu" = cuda ] && opts+=(-DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$arch")
  gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S "$bundle" -B "$work/build" "${gen[@]}" -DLLAMA_SRC="$work/src" \
    -DCMAKE_INSTALL_PREFIX="$work/install" "${opts[@]}" > "$work/cmake.log" 2>&1 \
    || { cat "$work/cmake.log" >&2; die "cmake configure failed"; }
  cmake --build "$work/build" --parallel "$(nproc)" > "$work/build.log" 2>&1 \
    || { tail -50 "$work/build.log" >&2; die "llama.cpp build failed"; }
  cmake --install "$work/build" > /dev/null
  libs="$work/install"
fi

# 2. link
xz -dc "$bundle/libaimind.a.xz" > "$work/libaimind.a"
link=(-lllama -lggml)
if [ "$gpu" = cuda ]; then
  cuda=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc)")")}
  link+=(-lggml-cuda -lggml-cpu -lggml-base "-L$cuda/lib64" "-L$cuda/lib64/stubs" -lcudart -lcublas -lcublasLt -lcuda)
else
  link+=(-lggml-cpu -lggml-base)
fi
g++ -O2 -o "$work/aimind" "$bundle/main.c" -I"$bundle" "$work/libaimind.a" -L"$libs/lib" "${link[@]}" \
  -lstdc++ -lm -fopenmp -lpthread -ldl
"$work/aimind" version

# 3. model
"$bundle/synthgguf" -shape "$shape" -type "$type" -out "$work/model.gguf" >&2

# 4. GPU scores against CPU scores: the seed request, then random pairs.
words=(the panda bear bamboo china giant forest mountain eats lives black white animal mammal
  search query document answer model server rank score fast slow data report river tree sky)
{
  for d in "hello" "it is a kind of bear" "the giant panda is a bear of china that eats bamboo"; do
    printf '{"query":"what is a panda","document":"%s"}\n' "$d"
  done
  RANDOM=7
  for ((i = 0; i < pairs; i++)); do
    q="" d=""
    for ((j = 0; j < 6; j++)); do q+="${words[RANDOM % ${#words[@]}]} "; done
    for ((j = 0; j < 10 + RANDOM % 60; j++)); do d+="${words[RANDOM % ${#words[@]}]} "; done
    printf '{"query":"%s","document":"%s"}\n' "${q% }" "${d% }"
  done
} > "$work/pairs.jsonl"
"$work/aimind" check --data-dir "$work/data" --self-check=off --gpu-layers 0 \
  --golden "$work/pairs.jsonl" --write-scores "$work/cpu.jsonl" "$work/model.gguf" > "$out/cpu-scores.txt"
"$work/aimind" check --data-dir "$work/data" --self-check=off --max-rel-diff 0.01 \
  --golden "$work/cpu.jsonl" "$work/model.gguf" | tee "$out/gpu-vs-cpu.txt"

# 5. loads
port=${PORT:-18080}
"$work/aimind" serve --model "$work/model.gguf" --alias m --no-auth --port "$port" \
  --data-dir "$work/serve" --cache-bytes 0 --log-level info > "$out/serve.log" 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null; wait $srv 2>/dev/null' EXIT
for ((i = 0; i < 600; i++)); do
  "$work/aimind" health --url "http://127.0.0.1:$port/ready" 2>/dev/null && break
  kill -0 $srv 2>/dev/null || { cat "$out/serve.log" >&2; die "the server stopped"; }
  sleep 0.5
done
grep -m1 "model running" "$out/serve.log" >&2 || true
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv | tee "$out/gpu.csv"
url="http://127.0.0.1:$port/v1/rerank"
# GFLOP per token of the encoder (2 x weights in the layers, plus attention
# over ~135-token pairs): what the share of the FP16 peak is counted from.
case "$shape" in
  v2m3) gflop=$(awk 'BEGIN { h=1024; f=4096; l=24; print 2*l*(4*h*h + 2*h*f)/1e9 + 2*l*2*135*h/1e9 }');;
  base) gflop=$(awk 'BEGIN { h=768; f=3072; l=12; print 2*l*(4*h*h + 2*h*f)/1e9 + 2*l*2*135*h/1e9 }');;
  *) gflop=0;;
esac
for c in $clients; do
  line=$("$bundle/rerankload" -url "$url" -model m -c "$c" -n $((requests * c)) -docs "$docs" -dwords "$dwords" -json)
  echo "$line" >> "$out/loads.jsonl"
  echo "$line" | awk -v c="$c" -v g="$gflop" -v p="$peak" '{
    match($0, /"tokens_per_s":[0-9.]+/); t = substr($0, RSTART + 15, RLENGTH - 15)
    printf "clients %s: %s  share of %s TFLOPS FP16: %.1f%%\n", c, $0, p, 100 * t * g / (p * 1000) }'
done
one=$("$bundle/rerankload" -url "$url" -model m -c 1 -n 20 -docs 20 -dwords 120 -json)
echo "$one" >> "$out/loads.jsonl"
echo "one 20-document request at a time: $one"
