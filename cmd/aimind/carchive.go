//go:build aimind_carchive

package main

// The GPU build path: built with -buildmode=c-archive -tags aimind_carchive,
// this package becomes libaimind.a with one C entry point, and the machine
// with the GPU links it with g++ against the llama.cpp and ggml-cuda static
// libraries it builds itself (deploy/gpu/run.sh). No Go toolchain is needed
// there.

import "C"

import "unsafe"

//export aimind_main
func aimind_main(argc C.int, argv **C.char) C.int {
	args := make([]string, int(argc))
	for i, a := range unsafe.Slice(argv, int(argc)) {
		args[i] = C.GoString(a)
	}
	return C.int(run(args))
}
