// aimind's int8 and BF16 GEMMs for encoder weights on Intel AMX (see i8gemm.cpp).
// Plain C interface, no ggml types: the glue to ggml is i8gemm-ggml.cpp.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// aimind_i8_available says whether this build has the kernels and the CPU and
// kernel allow AMX tiles (it asks Linux for tile state once).
int aimind_i8_available(void);

// aimind_i8_shape_ok says whether a weight of N output rows by K inputs fits
// the kernels' tiling: K a multiple of 64, N a multiple of 32, group G a
// multiple of 64 that divides K.
int aimind_i8_shape_ok(int64_t N, int64_t K, int G);

// Packed weights: a header, the int8 values in AMX tile order and one float
// scale per output row and K-group of G (symmetric, max|w|/127).
size_t aimind_i8_packed_size(int64_t N, int64_t K, int G);
// aimind_i8_pack quantizes W (N rows of K floats, row-major: ggml's weight
// layout) into dst. scale_fault, for tests only: when nonzero, every 16th
// row's scales are multiplied by it (a deliberately wrong kernel).
void aimind_i8_pack(void * dst, const float * W, int64_t N, int64_t K, int G, float scale_fault);
// aimind_i8_packed_group returns the group G stored in a packed weight.
int aimind_i8_packed_group(const void * packed);

// Work space for activations of M rows: int8 values and per-row, per-group
// scales, rows padded to 32.
size_t aimind_i8_work_size(int64_t M, int64_t K, int G);
// aimind_i8_quantize quantizes this thread's share (ith of nth) of the M rows
// of A (row stride lda floats) into work. All threads must finish before
// aimind_i8_gemm reads work.
void aimind_i8_quantize(const float * A, int64_t lda, int64_t M, int64_t K, int G, void * work, int ith, int nth);
// aimind_i8_gemm computes this thread's share of C = A * W^T: C is M rows of
// N floats with row stride ldc.
void aimind_i8_gemm(const void * work, const void * packed, int64_t M, int64_t N, int64_t K, float * C, int64_t ldc, int ith, int nth);

// The same tiling with BF16 weights and activations (AMX-BF16, TDPBF16PS):
// no scales, FP32 accumulation over all of K. Weights are rounded to BF16
// once at load (a Q8_0 weight q*d to 8 significant bits), activations at
// every call. scale_fault, for tests only: every 16th row times it.
int    aimind_bf16_available(void);
size_t aimind_bf16_packed_size(int64_t N, int64_t K);
void   aimind_bf16_pack(void * dst, const float * W, int64_t N, int64_t K, float scale_fault);
size_t aimind_bf16_work_size(int64_t M, int64_t K);
void   aimind_bf16_convert(const float * A, int64_t lda, int64_t M, int64_t K, void * work, int ith, int nth);
void   aimind_bf16_gemm(const void * work, const void * packed, int64_t M, int64_t N, int64_t K, float * C, int64_t ldc,
                        int ith, int nth);

// Q8_0 weights on AVX512-VNNI CPUs without AMX (q8vnni.cpp): the file's
// int8 values and block scales kept exactly, repacked for VPDPBUSD;
// activations quantized per row and 32-block at every call, as ggml's Q8_0
// path does. N a multiple of 32, K of 32. q8_0 is N rows of K/32 blocks of
// 34 bytes (an IEEE half scale, 32 int8). scale_fault, for tests only: every
// 16th row's scales times it.
int    aimind_q8v_available(void);
int    aimind_q8v_shape_ok(int64_t N, int64_t K);
size_t aimind_q8v_packed_size(int64_t N, int64_t K);
void   aimind_q8v_pack(void * dst, const void * q8_0, int64_t N, int64_t K, float scale_fault);
int    aimind_q8v_is_packed(const void * packed);
size_t aimind_q8v_work_size(int64_t M, int64_t K);
void   aimind_q8v_quantize(const float * A, int64_t lda, int64_t M, int64_t K, void * work, int ith, int nth);
void   aimind_q8v_gemm(const void * work, const void * packed, int64_t M, int64_t N, int64_t K, float * C, int64_t ldc,
                       int ith, int nth);

// aimind_packed_kind says what a packed weight holds: 1 int8, 2 BF16, 0
// neither.
int aimind_packed_kind(const void * packed);

#ifdef __cplusplus
}
#endif
