/* The GPU build's program: aimind's Go code comes as libaimind.a
 * (go build -buildmode=c-archive), llama.cpp and ggml-cuda as static
 * libraries built on the GPU machine; this is only the entry point. */
#include "libaimind.h"

int main(int argc, char **argv) {
    return aimind_main(argc, argv);
}
