//go:build !cgo

package llama

// This package needs cgo and the llama.cpp libraries that ./build.sh builds.
// Building without cgo fails here on purpose, with this name in the error:
var _ = aimind_requires_cgo_and_build_sh_to_compile_llama_cpp
