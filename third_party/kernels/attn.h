// aimind's tiled attention for ggml's CPU flash attention (attn.cpp), wired
// in by patch 0004. Plain C interface: the patch fills the arguments from
// ggml's tensors.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The operands of one flash-attention op: Q F32 [DK, n_q, n_head, n3],
// K and V F16 (or both F32) [D, n_kv, heads_kv, n3], the mask F16 [n_kv, >= n_q, nem2,
// nem3] (or NULL), dst F32 permuted as ggml's op writes it. Strides in
// bytes, as ggml's nb.
typedef struct {
    const void * q;
    const void * k;
    const void * v;
    const void * mask;
    void *       dst;
    int64_t      DK, DV, n_q, n_head, n_kv;
    size_t       nbq1, nbq2, nbq3, nbk1, nbk2, nbk3, nbv1, nbv2, nbv3, nbm1, nbm2, nbm3;
    int64_t      nem2, nem3;
    int64_t      rk2, rk3, rv2, rv3;  // query heads per K and V head (grouped-query attention)
    size_t       nb1;                 // dst row stride
    int64_t      ne1, ne2;            // dst's ne[1], ne[2]
    float        scale;
    int          kv_f32;  // K and V are F32 (a decoder's F32 cache) rather than F16
} aimind_attn_args;

// aimind_attn_supported says whether the kernel takes heads of these sizes
// in this build (AVX-512 F/BW/VL/DQ and F16C; DK == DV in 32, 64, 128).
int aimind_attn_supported(int64_t DK, int64_t DV);

// aimind_attn_enable turns the kernel on (the default) or off (ggml's own
// loop runs), process-wide, for the ops that start after it.
void aimind_attn_enable(int on);

// aimind_attn_rows computes query rows [ir0, ir1) (ggml's row index:
// position fastest, then head, then the fourth dimension).
void aimind_attn_rows(const aimind_attn_args * a, int64_t ir0, int64_t ir1);

// aimind_gelu_f32 is ggml's GELU (tanh form) on n floats, vectorized in
// FP32 (patch 0005); aimind_gelu_available says whether this build has it
// and the kernels are on (aimind_attn_enable turns both).
int  aimind_gelu_available(void);
void aimind_gelu_f32(int n, float * y, const float * x);
// aimind_norm_f32 is ggml's GGML_OP_NORM on one row of n floats (patch
// 0005), available where aimind_gelu_available says so.
void aimind_norm_f32(int n, float * y, const float * x, float eps);

#ifdef __cplusplus
}
#endif
