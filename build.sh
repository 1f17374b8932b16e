#!/usr/bin/env bash
# build.sh            installs missing Debian packages, builds llama.cpp (cached) and bin/aimind
# build.sh test       the same plus the test dependencies, then runs every test
#                     (and the concurrent packages under -race)
# build.sh llama      only builds llama.cpp into the cache and links third_party/out
# build.sh portable [TARGET] [OUT]
#                     builds OUT (default bin/aimind) for a CPU TARGET instead of
#                     this machine's: x86-64-v3 (default), x86-64-v4, sapphirerapids
set -euo pipefail
cd "$(dirname "$0")"

OLLAMA_MOD=github.com/ollama/ollama
OLLAMA_VERSION=v0.17.4
OLLAMA_SUM='h1:X3KNm9x4BlHqk/AXMGtC7pBAFd46nmJmy8yDaBZLo9s='

die() { echo "build.sh: $*" >&2; exit 1; }

# Debian packages each step needs, as "command:package" (the command tells
# whether the package is there; a command that is there is enough; a path
# instead of a command must exist).
BUILD_DEBS=(cmake:cmake ninja:ninja-build c++:g++ patch:patch)
# chromium: the web UI test; nginx: the replicas test; the SentencePiece
# library for /usr/bin/python3 and the protobuf module its sentencepiece_model_pb2
# imports (Debian does not pull it in): the tokenizer parity test (internal/spmref);
# systemd-analyze: the unit file check; xz: the GPU bundle's dry run.
# internal/testdeps checks that this list covers every program and Python
# module the tests use, and that each entry is needed.
TEST_DEBS=(chromium:chromium nginx:nginx /usr/lib/python3/dist-packages/sentencepiece/__init__.py:python3-sentencepiece /usr/lib/python3/dist-packages/google/protobuf/__init__.py:python3-protobuf systemd-analyze:systemd xz:xz-utils node:nodejs curl:curl)

# install_debs installs the packages whose command is missing: as root, or
# through passwordless sudo; otherwise it prints the one command to run and
# stops.
install_debs() {
  local missing=() pair
  for pair in "$@"; do
    case "${pair%%:*}" in
      /*) [ -e "${pair%%:*}" ] && continue;;
      *) command -v "${pair%%:*}" >/dev/null && continue;;
    esac
    # nginx lives in /usr/sbin, which a non-root PATH may lack.
    [ -x "/usr/sbin/${pair%%:*}" ] && continue
    missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  local sudo=()
  if ! command -v apt-get >/dev/null; then
    die "missing ${missing[*]} and no apt-get here: install them with this system's package manager"
  elif [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      printf 'build.sh: missing Debian packages: %s\nrun this once (as root), then build.sh again:\n  sudo sh -c '\''%s'\''\n' "${missing[*]}" "$cmd" >&2
      exit 1
    fi
  fi
  echo "build.sh: installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    || die "cannot install ${missing[*]}: apt-get update failed"
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    # An earlier install cut short (a killed run) leaves dpkg half done:
    # finish it, then try once more.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive dpkg --configure -a || true
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      || die "cannot install ${missing[*]}: apt-get install failed"
  fi
}

need() {
  command -v go >/dev/null || die "missing go (Go 1.26.8 or newer, https://go.dev/dl; Debian's golang package is older)"
  install_debs "${BUILD_DEBS[@]}"
  command -v ninja >/dev/null || command -v make >/dev/null || die "missing ninja or make"
}

# portable_options prints the llama.cpp options for a CPU target that is not
# this machine. The pinned ggml selects CPU variants at run time only as
# shared libraries (GGML_CPU_ALL_VARIANTS needs GGML_BACKEND_DL, which needs
# BUILD_SHARED_LIBS), and aimind links ggml statically: so one build per
# target.
portable_options() {
  local base="-DGGML_NATIVE=OFF -DGGML_OPENMP=ON -DGGML_LLAMAFILE=ON -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_F16C=ON -DGGML_FMA=ON -DGGML_BMI2=ON -DGGML_AVX2=ON"
  case "$1" in
    x86-64-v3) echo "$base -DCMAKE_C_FLAGS=-march=x86-64-v3 -DCMAKE_CXX_FLAGS=-march=x86-64-v3";;
    x86-64-v4) echo "$base -DGGML_AVX512=ON -DCMAKE_C_FLAGS=-march=x86-64-v4 -DCMAKE_CXX_FLAGS=-march=x86-64-v4";;
    # x86-64-v4 and exactly ggml's AVX-512/AMX extensions (not -march=sapphirerapids, whose
    # other extensions internal/cputarget would not check at start).
    sapphirerapids) echo "$base -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON -DGGML_AMX_TILE=ON -DGGML_AMX_INT8=ON -DGGML_AMX_BF16=ON -DCMAKE_C_FLAGS=-march=x86-64-v4 -DCMAKE_CXX_FLAGS=-march=x86-64-v4";;
    *) die "unknown CPU target '$1' (x86-64-v3, x86-64-v4, sapphirerapids)";;
  esac
}

# cpu_features prints what the compiled code depends on: GGML_NATIVE compiles
# for the host's instruction set, so a cache built on one CPU must not be
# reused on another.
cpu_features() {
  if [ -r /proc/cpuinfo ]; then
    grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(sse|ssse|avx|fma|f16c|bmi|amx|vnni|avx512)' | sort | tr '\n' ' '
  else
    uname -m
  fi
}

# llama_source DEST copies the pinned llama.cpp and ggml sources, verified
# against the pinned checksum, to DEST/src and applies our patches.
llama_source() {
  local json dir sum p
  json=$(go mod download -json "$OLLAMA_MOD@$OLLAMA_VERSION") || die "cannot download $OLLAMA_MOD@$OLLAMA_VERSION through the Go module proxy"
  dir=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  sum=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p')
  [ "$sum" = "$OLLAMA_SUM" ] || die "refusing to build: $OLLAMA_MOD@$OLLAMA_VERSION has Sum '$sum', pinned '$OLLAMA_SUM'"
  [ -d "$dir" ] || die "module directory '$dir' is missing"
  mkdir -p "$1/src/llama" "$1/src/ml/backend/ggml"
  cp -r "$dir/llama/llama.cpp" "$1/src/llama/"
  cp -r "$dir/ml/backend/ggml/ggml" "$1/src/ml/backend/ggml/"
  chmod -R u+w "$1/src"
  for p in third_party/patches/*.patch; do
    [ -e "$p" ] || continue
    echo "build.sh: applying $p"
    patch -d "$1/src" -p1 --quiet < "$p" || die "patch $p does not apply"
  done
}

build_llama() {
  local options="${AIMIND_LLAMA_OPTIONS:--DGGML_NATIVE=ON -DGGML_OPENMP=ON -DGGML_LLAMAFILE=ON}"
  local host=""
  [ -n "$CPU_TARGET" ] && options=$(portable_options "$CPU_TARGET")
  # Only a native build depends on the host's instruction set.
  [ -z "$CPU_TARGET" ] && host=$(cpu_features)
  local key
  key=$( {
    echo "$OLLAMA_SUM"; echo "$options"; printf %s "$host"; (c++ --version 2>/dev/null || g++ --version) | head -1
    cat third_party/CMakeLists.txt
    for p in third_party/patches/*.patch third_party/kernels/*; do if [ -e "$p" ]; then echo "$p"; cat "$p"; fi; done
  } | sha256sum | cut -c1-16)

  local cache="${AIMIND_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aimind}"
  local out="$cache/llama-$key"
  if [ ! -f "$out/lib/libllama.a" ] && [ -n "${AIMIND_LLAMA_DEV_DIR:-}" ]; then
    # Developers: one kept CMake build (AIMIND_LLAMA_DEV_DIR) that a change
    # to our kernels recompiles file by file instead of from scratch. The
    # source is copied again when the pin, the options or a patch change.
    local dev=$AIMIND_LLAMA_DEV_DIR srckey
    mkdir -p "$cache"
    srckey=$( { echo "$OLLAMA_SUM"; echo "$options"; cat third_party/CMakeLists.txt third_party/patches/*.patch 2>/dev/null; } | sha256sum | cut -c1-16)
    if [ "$(cat "$dev/srckey" 2>/dev/null)" != "$srckey" ]; then
      rm -rf "$dev" && mkdir -p "$dev"
      llama_source "$dev"
      local gen=()
      command -v ninja >/dev/null && gen=(-G Ninja)
      # shellcheck disable=SC2086
      cmake -S third_party -B "$dev/build" "${gen[@]}" -DLLAMA_SRC="$dev/src" $options >"$dev/cmake.log" 2>&1 \
        || { cat "$dev/cmake.log" >&2; die "cmake configure failed"; }
      echo "$srckey" > "$dev/srckey"
    fi
    echo "build.sh: compiling llama.cpp incrementally in $dev (key $key)"
    cmake --build "$dev/build" --parallel "$(nproc 2>/dev/null || echo 2)" || die "llama.cpp compile failed"
    rm -rf "$out.tmp" && cmake --install "$dev/build" --prefix "$out.tmp" >/dev/null && rm -rf "$out" && mv "$out.tmp" "$out"
  fi
  if [ ! -f "$out/lib/libllama.a" ]; then
    echo "build.sh: compiling llama.cpp ($OLLAMA_VERSION, key $key); this takes a few minutes once"
    local work
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/work-XXXXXX")
    trap 'rm -rf "$work"' EXIT
    llama_source "$work"
    local gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    # shellcheck disable=SC2086
    cmake -S third_party -B "$work/build" "${gen[@]}" -DLLAMA_SRC="$work/src" \
      -DCMAKE_INSTALL_PREFIX="$work/install" $options >"$work/cmake.log" 2>&1 \
      || { cat "$work/cmake.log" >&2; die "cmake configure failed"; }
    cmake --build "$work/build" --parallel "$(nproc 2>/dev/null || echo 2)" \
      || die "llama.cpp compile failed"
    cmake --install "$work/build" >/dev/null
    rm -rf "$out"
    mv "$work/install" "$out"
    rm -rf "$work"
    trap - EXIT
  fi
  ln -sfn "$out" third_party/out
  # The Go build cache does not hash the static libraries cgo links, so name
  # the build in a cgo flag: a new llama.cpp build recompiles and relinks.
  printf '// Code generated by build.sh; DO NOT EDIT.\n\npackage llama\n\n// #cgo CPPFLAGS: -DAIMIND_LLAMA_BUILD=%s\nimport "C"\n' "$key" > llama/zz_build_key.go
}

CPU_TARGET=""
[ "${1:-}" = portable ] && CPU_TARGET="${2:-x86-64-v3}"
need
[ "${1:-}" = test ] && install_debs "${TEST_DEBS[@]}"
build_llama
mkdir -p bin
case "${1:-build}" in
  llama) ;;
  build)
    go build -o bin/aimind ./cmd/aimind
    go build -o bin/synthgguf ./cmd/synthgguf
    echo "build.sh: built bin/aimind and bin/synthgguf"
    ;;
  portable)
    out="${3:-bin/aimind}"
    go build -trimpath -ldflags "-X main.cpuTarget=$CPU_TARGET" -o "$out" ./cmd/aimind
    echo "build.sh: built $out for $CPU_TARGET (third_party/out now links that build; ./build.sh relinks the native one)"
    ;;
  test)
    # The container recipe's test builds llama.cpp for x86-64-v3: compile it
    # into the cache now, before the test packages run side by side, then
    # link the native build back.
    CPU_TARGET=x86-64-v3 build_llama
    CPU_TARGET="" build_llama
    go build -o bin/aimind ./cmd/aimind
    go build -o bin/synthgguf ./cmd/synthgguf
    go vet ./...
    go test -count=1 -timeout 40m "${@:2}" ./...
    # The packages whose tests exercise goroutines, again under the race detector.
    go test -race -count=1 -timeout 30m "${@:2}" ./engine/... ./server ./models ./auth ./store ./hub ./deploy ./cmd/rerankload
    # The Kubernetes manifests' test has its own module (kustomize and the
    # k8s.io types stay out of aimind's dependencies).
    (cd deploy/kubernetes && go vet ./... && go test -count=1 "${@:2}" ./...)
    ;;
  gpu-bundle)
    # What the GPU machine needs to build and check aimind with CUDA, with
    # no Go toolchain and no network there (deploy/gpu/README.md): aimind as
    # a C archive, the pinned and patched llama.cpp source, our recipe, the
    # synthetic-model writer and the load client.
    out="${2:-bin/gpu-bundle}"
    rm -rf "$out" && mkdir -p "$out" && out=$(cd "$out" && pwd)
    go build -buildmode=c-archive -tags aimind_carchive -trimpath -ldflags "-s -w" -o "$out/libaimind.a" ./cmd/aimind
    CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -o "$out/synthgguf" ./cmd/synthgguf
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/rerankload" ./cmd/rerankload
    src=$(mktemp -d)
    llama_source "$src" > /dev/null
    rm -rf "$src/src/ml/backend/ggml/ggml/src/ggml-metal" "$src/src/ml/backend/ggml/ggml/src/ggml-vulkan" "$src/src/ml/backend/ggml/ggml/src/ggml-hip"
    tar -C "$src" -cJf "$out/llama-src.tar.xz" src
    rm -rf "$src"
    cp third_party/CMakeLists.txt "$out/"
    cp -r third_party/kernels "$out/"
    cp deploy/gpu/main.c deploy/gpu/run.sh "$out/"
    xz -T0 -6 "$out/libaimind.a"
    du -sh "$out"
    echo "build.sh: GPU bundle in $out (run $out/run.sh on the GPU machine)"
    ;;
  *) die "unknown command '$1' (build, test, llama, portable, gpu-bundle)";;
esac
