package bench

/*
#cgo CFLAGS: -O2
#include <stdint.h>
#include <immintrin.h>

typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));

// Twelve independent FMA chains hide the FMA latency; the result is returned
// so the compiler cannot drop the loop.
__attribute__((target("avx512f")))
static float fma_avx512(int64_t iters) {
	// Distinct starting values keep the compiler from merging the chains.
	v16 a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, x, y;
	for (int i = 0; i < 16; i++) {
		x[i] = 1.0f + i * 1e-7f; y[i] = 0.999999f;
		a0[i] = 0.1f; a1[i] = 0.2f; a2[i] = 0.3f; a3[i] = 0.4f; a4[i] = 0.5f; a5[i] = 0.6f;
		a6[i] = 0.7f; a7[i] = 0.8f; a8[i] = 0.9f; a9[i] = 1.1f; a10[i] = 1.2f; a11[i] = 1.3f;
	}
	for (int64_t i = 0; i < iters; i++) {
		a0 = (v16)_mm512_fmadd_ps((__m512)a0, (__m512)y, (__m512)x); a1 = (v16)_mm512_fmadd_ps((__m512)a1, (__m512)y, (__m512)x);
		a2 = (v16)_mm512_fmadd_ps((__m512)a2, (__m512)y, (__m512)x); a3 = (v16)_mm512_fmadd_ps((__m512)a3, (__m512)y, (__m512)x);
		a4 = (v16)_mm512_fmadd_ps((__m512)a4, (__m512)y, (__m512)x); a5 = (v16)_mm512_fmadd_ps((__m512)a5, (__m512)y, (__m512)x);
		a6 = (v16)_mm512_fmadd_ps((__m512)a6, (__m512)y, (__m512)x); a7 = (v16)_mm512_fmadd_ps((__m512)a7, (__m512)y, (__m512)x);
		a8 = (v16)_mm512_fmadd_ps((__m512)a8, (__m512)y, (__m512)x); a9 = (v16)_mm512_fmadd_ps((__m512)a9, (__m512)y, (__m512)x);
		a10 = (v16)_mm512_fmadd_ps((__m512)a10, (__m512)y, (__m512)x); a11 = (v16)_mm512_fmadd_ps((__m512)a11, (__m512)y, (__m512)x);
	}
	v16 s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
	float r = 0; for (int i = 0; i < 16; i++) r += s[i];
	return r;
}

__attribute__((target("avx2,fma")))
static float fma_avx2(int64_t iters) {
	// Distinct starting values keep the compiler from merging the chains.
	v8 a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, x, y;
	for (int i = 0; i < 8; i++) {
		x[i] = 1.0f + i * 1e-7f; y[i] = 0.999999f;
		a0[i] = 0.1f; a1[i] = 0.2f; a2[i] = 0.3f; a3[i] = 0.4f; a4[i] = 0.5f; a5[i] = 0.6f;
		a6[i] = 0.7f; a7[i] = 0.8f; a8[i] = 0.9f; a9[i] = 1.1f; a10[i] = 1.2f; a11[i] = 1.3f;
	}
	for (int64_t i = 0; i < iters; i++) {
		a0 = (v8)_mm256_fmadd_ps((__m256)a0, (__m256)y, (__m256)x); a1 = (v8)_mm256_fmadd_ps((__m256)a1, (__m256)y, (__m256)x);
		a2 = (v8)_mm256_fmadd_ps((__m256)a2, (__m256)y, (__m256)x); a3 = (v8)_mm256_fmadd_ps((__m256)a3, (__m256)y, (__m256)x);
		a4 = (v8)_mm256_fmadd_ps((__m256)a4, (__m256)y, (__m256)x); a5 = (v8)_mm256_fmadd_ps((__m256)a5, (__m256)y, (__m256)x);
		a6 = (v8)_mm256_fmadd_ps((__m256)a6, (__m256)y, (__m256)x); a7 = (v8)_mm256_fmadd_ps((__m256)a7, (__m256)y, (__m256)x);
		a8 = (v8)_mm256_fmadd_ps((__m256)a8, (__m256)y, (__m256)x); a9 = (v8)_mm256_fmadd_ps((__m256)a9, (__m256)y, (__m256)x);
		a10 = (v8)_mm256_fmadd_ps((__m256)a10, (__m256)y, (__m256)x); a11 = (v8)_mm256_fmadd_ps((__m256)a11, (__m256)y, (__m256)x);
	}
	v8 s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
	float r = 0; for (int i = 0; i < 8; i++) r += s[i];
	return r;
}

// flops_per_iter reports the FP32 operations of one loop iteration of the
// kernel fma_run picks (12 FMAs of 16 or 8 lanes, 2 operations each).
static int64_t flops_per_iter(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") ? 12 * 16 * 2 : 12 * 8 * 2;
}

static float fma_run(int64_t iters) {
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f")) return fma_avx512(iters);
	return fma_avx2(iters);
}
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
)

// PeakGFLOPS measures the machine's FP32 FMA throughput on all CPUs, the
// ceiling the rerank benchmark's GFLOP/s is compared with.
func PeakGFLOPS() float64 {
	threads := runtime.NumCPU()
	const iters = 50_000_000
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < threads; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			C.fma_run(C.int64_t(iters))
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	return float64(threads) * float64(iters) * float64(C.flops_per_iter()) / secs / 1e9
}
