#!/usr/bin/env bash
# build.sh        builds llama.cpp (cached) and bin/aimind
# build.sh test   the same, then runs every test
# build.sh llama  only builds llama.cpp into the cache and links third_party/out
set -euo pipefail
cd "$(dirname "$0")"

OLLAMA_MOD=github.com/ollama/ollama
OLLAMA_VERSION=v0.17.4
OLLAMA_SUM='h1:X3KNm9x4BlHqk/AXMGtC7pBAFd46nmJmy8yDaBZLo9s='

die() { echo "build.sh: $*" >&2; exit 1; }

need() {
  local missing=()
  command -v go >/dev/null || missing+=("go (Go 1.26 or newer, https://go.dev/dl)")
  command -v cmake >/dev/null || missing+=("cmake (Debian: apt-get install cmake)")
  command -v ninja >/dev/null || command -v make >/dev/null || missing+=("ninja or make (Debian: apt-get install ninja-build)")
  command -v c++ >/dev/null || command -v g++ >/dev/null || missing+=("a C++ compiler (Debian: apt-get install g++)")
  command -v patch >/dev/null || missing+=("patch (Debian: apt-get install patch)")
  if [ ${#missing[@]} -gt 0 ]; then
    printf 'build.sh: missing prerequisites:\n' >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
  fi
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

build_llama() {
  local json dir sum
  json=$(go mod download -json "$OLLAMA_MOD@$OLLAMA_VERSION") || die "cannot download $OLLAMA_MOD@$OLLAMA_VERSION through the Go module proxy"
  dir=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  sum=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p')
  [ "$sum" = "$OLLAMA_SUM" ] || die "refusing to build: $OLLAMA_MOD@$OLLAMA_VERSION has Sum '$sum', pinned '$OLLAMA_SUM'"
  [ -d "$dir" ] || die "module directory '$dir' is missing"

  local options="${AIMIND_LLAMA_OPTIONS:--DGGML_NATIVE=ON -DGGML_OPENMP=ON -DGGML_LLAMAFILE=ON}"
  local key
  key=$( {
    echo "$OLLAMA_SUM"; echo "$options"; cpu_features; (c++ --version 2>/dev/null || g++ --version) | head -1
    cat third_party/CMakeLists.txt
    for p in third_party/patches/*.patch; do if [ -e "$p" ]; then echo "$p"; cat "$p"; fi; done
  } | sha256sum | cut -c1-16)

  local cache="${AIMIND_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aimind}"
  local out="$cache/llama-$key"
  if [ ! -f "$out/lib/libllama.a" ]; then
    echo "build.sh: compiling llama.cpp ($OLLAMA_VERSION, key $key); this takes a few minutes once"
    local work
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/work-XXXXXX")
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/src/llama" "$work/src/ml/backend/ggml"
    cp -r "$dir/llama/llama.cpp" "$work/src/llama/"
    cp -r "$dir/ml/backend/ggml/ggml" "$work/src/ml/backend/ggml/"
    chmod -R u+w "$work/src"
    for p in third_party/patches/*.patch; do
      [ -e "$p" ] || continue
      echo "build.sh: applying $p"
      patch -d "$work/src" -p1 --quiet < "$p" || die "patch $p does not apply"
    done
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
}

need
build_llama
mkdir -p bin
case "${1:-build}" in
  llama) ;;
  build)
    go build -o bin/aimind ./cmd/aimind
    go build -o bin/synthgguf ./cmd/synthgguf
    echo "build.sh: built bin/aimind and bin/synthgguf"
    ;;
  test)
    go build -o bin/aimind ./cmd/aimind
    go build -o bin/synthgguf ./cmd/synthgguf
    go vet ./...
    go test -count=1 -timeout 40m "${@:2}" ./...
    ;;
  *) die "unknown command '$1' (build, test, llama)";;
esac
