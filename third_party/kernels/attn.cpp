// aimind's attention kernel for ggml's CPU flash attention (patch 0004), on
// AVX-512 CPUs.
//
// ggml's CPU flash attention walks each query row key by key: a call per key
// for the F16 dot product, a scalar expf for its online softmax, a call per
// key for the F16 multiply-add of V, and a check of every key's mask entry.
// For an encoder call of 512 tokens that is 512 mask checks and ~130 such
// steps per query row and head, for a few hundred multiply-adds each: in
// aimind's profile attention took 28 % of the time for 3 % of the FLOPs.
//
// This kernel does the same arithmetic in tiles instead. Consecutive query
// rows of one head whose unmasked keys start at the same place (the rows of
// one sequence in a packed call) form a tile of up to 16 rows:
//  - the tile's key range is found once (the first and last key any of its
//    rows may see; masked keys inside it still get their -inf from the mask);
//  - K of that range is converted from F16 once, transposed in blocks of 16
//    keys, and the tile's scores are a small matrix product (each query
//    value broadcast against 16 keys), with the mask added;
//  - each row's softmax is computed over the whole range at once (max, a
//    vectorized exp, sum) rather than online;
//  - V is converted once, and P x V is accumulated in FP32 registers for a
//    few rows at a time, then divided by the row's sum.
// The results are those of softmax(QK^T * scale + mask) V computed in FP32
// (ggml's kernel accumulates V in F16). K and V may also be F32 (a decoder's
// F32 cache). Rows with no visible key give zeros,
// as ggml's kernel does.
//
// Written for aimind from the definition of attention; no third-party code.
#include "attn.h"

#include <math.h>
#include <string.h>

#include <algorithm>
#include <vector>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && defined(__F16C__)
#define AIMIND_ATTN 1
#include <immintrin.h>
#endif

#if AIMIND_ATTN

namespace {

const int kTile = 16;  // query rows per tile

// g_enabled: the host may turn the kernel off (0: ggml's loop runs
// instead), for comparisons; it is read when an op runs. Mode 2, for tests
// only, is a deliberately wrong kernel: the scale applied twice (a wrong
// softmax temperature), which the error tests must catch.
int g_enabled = 1;
const uint16_t kNegInfH = 0xfc00;

// exp of 16 floats: 2^n x p(r) with r = x - n ln2 in [-ln2/2, ln2/2] and p
// the degree-7 Taylor polynomial (relative error below 1e-7 there); inputs
// below -87 (masked keys, -inf) give exactly 0.
inline __m512 exp16(__m512 x) {
    const __m512    log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512    ln2hi = _mm512_set1_ps(0.693145751953125f);
    const __m512    ln2lo = _mm512_set1_ps(1.428606765330187045e-06f);
    const __mmask16 zero  = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
    x                     = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    const __m512 n        = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512       r        = _mm512_fnmadd_ps(n, ln2hi, x);
    r                     = _mm512_fnmadd_ps(n, ln2lo, r);
    __m512 p              = _mm512_set1_ps(1.0f / 5040);
    p                     = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p                     = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p                     = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p                     = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p                     = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p                     = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p                     = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_mov_ps(~zero, _mm512_scalef_ps(p, n));
}

// visible finds the first key a mask row lets through and one past the last
// (lo == hi: none).
inline void visible(const uint16_t * m, int64_t n_kv, int64_t & lo, int64_t & hi) {
    lo = 0;
    hi = 0;
    if (m == nullptr) {
        hi = n_kv;
        return;
    }
    const __m512i ninf = _mm512_set1_epi16((short) kNegInfH);
    int64_t       j    = 0;
    for (; j + 32 <= n_kv; j += 32) {
        const __mmask32 open = _mm512_cmpneq_epi16_mask(_mm512_loadu_si512((const void *) (m + j)), ninf);
        if (open) {
            lo = j + __builtin_ctz(open);
            break;
        }
    }
    if (j + 32 > n_kv) {
        for (; j < n_kv && m[j] == kNegInfH; j++) {
        }
        if (j == n_kv) {
            return;  // all masked
        }
        lo = j;
    }
    hi = n_kv;
    while (hi - 32 >= lo) {
        const __mmask32 open = _mm512_cmpneq_epi16_mask(_mm512_loadu_si512((const void *) (m + hi - 32)), ninf);
        if (open) {
            hi = hi - 32 + (32 - __builtin_clz(open));
            return;
        }
        hi -= 32;
    }
    while (hi > lo && m[hi - 1] == kNegInfH) {
        hi--;
    }
}

struct scratch {
    std::vector<float> kf, vf, st, qt;
};

inline const uint16_t * mask_row(const aimind_attn_args * a, int64_t iq1, int64_t iq2, int64_t iq3) {
    return (const uint16_t *) ((const char *) a->mask + iq1 * a->nbm1 + (iq2 % a->nem2) * a->nbm2 +
                               (iq3 % a->nem3) * a->nbm3);
}

// tile computes rows iq1 .. iq1+T-1 of head iq2 over keys [lo, hi); NC =
// DV / 16. Scores are kept transposed, st[key][row] (16 rows, one vector
// per key), so the softmax is element-wise over vectors and nothing is
// reduced horizontally.
template <int NC>
void tile(const aimind_attn_args * a, scratch & w, int64_t iq1, int64_t iq2, int64_t iq3, int T, int64_t lo,
          int64_t hi) {
    const int64_t DK = a->DK, DV = a->DV, n = hi - lo;
    const int64_t ik2 = iq2 / a->rk2, ik3 = iq3 / a->rk3, iv2 = iq2 / a->rv2, iv3 = iq3 / a->rv3;
    w.kf.resize((size_t) (n * DK));
    w.vf.resize((size_t) (n * DV));
    w.st.resize((size_t) (n * kTile));
    w.qt.resize((size_t) (DK * kTile));
    float * kf = w.kf.data();
    float * vf = w.vf.data();
    float * st = w.st.data();
    float * qt = w.qt.data();

    // K and V rows in FP32.
    for (int64_t j = 0; j < n; j++) {
        const void * kp = (const char *) a->k + (lo + j) * a->nbk1 + ik2 * a->nbk2 + ik3 * a->nbk3;
        const void * vp = (const char *) a->v + (lo + j) * a->nbv1 + iv2 * a->nbv2 + iv3 * a->nbv3;
        if (a->kv_f32) {
            memcpy(kf + j * DK, kp, sizeof(float) * DK);
            memcpy(vf + j * DV, vp, sizeof(float) * DV);
            continue;
        }
        const uint16_t * kr = (const uint16_t *) kp;
        const uint16_t * vr = (const uint16_t *) vp;
        for (int64_t d = 0; d < DK; d += 16) {
            _mm512_storeu_ps(kf + j * DK + d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (kr + d))));
        }
        for (int64_t d = 0; d < DV; d += 16) {
            _mm512_storeu_ps(vf + j * DV + d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (vr + d))));
        }
    }
    // Q scaled and transposed: qt[d][row]; rows past T are zeros.
    const float scale = g_enabled == 2 ? a->scale * a->scale : a->scale;
    memset(qt, 0, sizeof(float) * DK * kTile);
    for (int r = 0; r < T; r++) {
        const float * qr = (const float *) ((const char *) a->q + (iq1 + r) * a->nbq1 + iq2 * a->nbq2 + iq3 * a->nbq3);
        for (int64_t d = 0; d < DK; d++) {
            qt[d * kTile + r] = qr[d] * scale;
        }
    }
    // Scores, four keys at a time: st[j] = sum over d of k[j][d] x qt[d].
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        __m512        s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        const float * k0 = kf + j * DK;
        for (int64_t d = 0; d < DK; d++) {
            const __m512 q = _mm512_loadu_ps(qt + d * kTile);
            s0             = _mm512_fmadd_ps(_mm512_set1_ps(k0[d]), q, s0);
            s1             = _mm512_fmadd_ps(_mm512_set1_ps(k0[DK + d]), q, s1);
            s2             = _mm512_fmadd_ps(_mm512_set1_ps(k0[2 * DK + d]), q, s2);
            s3             = _mm512_fmadd_ps(_mm512_set1_ps(k0[3 * DK + d]), q, s3);
        }
        _mm512_storeu_ps(st + j * kTile, s0);
        _mm512_storeu_ps(st + (j + 1) * kTile, s1);
        _mm512_storeu_ps(st + (j + 2) * kTile, s2);
        _mm512_storeu_ps(st + (j + 3) * kTile, s3);
    }
    for (; j < n; j++) {
        __m512 s0 = _mm512_setzero_ps();
        for (int64_t d = 0; d < DK; d++) {
            s0 = _mm512_fmadd_ps(_mm512_set1_ps(kf[j * DK + d]), _mm512_loadu_ps(qt + d * kTile), s0);
        }
        _mm512_storeu_ps(st + j * kTile, s0);
    }
    // The mask: one row for all when the tile's rows share it (the rows of
    // one sequence in an encoder call), else row by row.
    if (a->mask) {
        const uint16_t * m0   = mask_row(a, iq1, iq2, iq3) + lo;
        bool             same = true;
        for (int r = 1; r < T && same; r++) {
            same = memcmp(m0, mask_row(a, iq1 + r, iq2, iq3) + lo, 2 * n) == 0;
        }
        if (same) {
            for (int64_t jj = 0; jj < n; jj++) {
                if (m0[jj] != 0) {  // +0.0 adds nothing
                    _mm512_storeu_ps(st + jj * kTile, _mm512_add_ps(_mm512_loadu_ps(st + jj * kTile),
                                                                    _mm512_set1_ps(_cvtsh_ss(m0[jj]))));
                }
            }
        } else {
            for (int r = 0; r < T; r++) {
                const uint16_t * m = mask_row(a, iq1 + r, iq2, iq3) + lo;
                for (int64_t jj = 0; jj < n; jj++) {
                    st[jj * kTile + r] += _cvtsh_ss(m[jj]);
                }
            }
        }
    }
    // Softmax, element-wise over the 16 rows.
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t jj = 0; jj < n; jj++) {
        mx = _mm512_max_ps(mx, _mm512_loadu_ps(st + jj * kTile));
    }
    // rows past T may have no finite score: keep them finite
    mx         = _mm512_max_ps(mx, _mm512_set1_ps(-1e30f));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t jj = 0; jj < n; jj++) {
        const __m512 p = exp16(_mm512_sub_ps(_mm512_loadu_ps(st + jj * kTile), mx));
        _mm512_storeu_ps(st + jj * kTile, p);
        sum = _mm512_add_ps(sum, p);
    }
    alignas(64) float inv[kTile];
    _mm512_store_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_max_ps(sum, _mm512_set1_ps(1e-30f))));
    // P x V, RG rows at a time with their NC output vectors in registers.
    constexpr int RG = NC >= 8 ? 2 : NC >= 4 ? 4 : 8;
    for (int r0 = 0; r0 < T; r0 += RG) {
        __m512 acc[RG][NC];
        for (int r = 0; r < RG; r++) {
            for (int c = 0; c < NC; c++) {
                acc[r][c] = _mm512_setzero_ps();
            }
        }
        const float * pr = st + r0;
        for (int64_t jj = 0; jj < n; jj++) {
            __m512 vv[NC];
            for (int c = 0; c < NC; c++) {
                vv[c] = _mm512_loadu_ps(vf + jj * DV + c * 16);
            }
            for (int r = 0; r < RG; r++) {
                const __m512 p = _mm512_set1_ps(pr[jj * kTile + r]);  // rows past T: computed, not written
                for (int c = 0; c < NC; c++) {
                    acc[r][c] = _mm512_fmadd_ps(p, vv[c], acc[r][c]);
                }
            }
        }
        for (int r = 0; r < RG && r0 + r < T; r++) {
            // dst is permuted: row (iq1, iq2, iq3) at (iq3*ne2*ne1 + iq2 + iq1*ne1) * nb1
            float *      out = (float *) ((char *) a->dst + (iq3 * a->ne2 * a->ne1 + iq2 + (iq1 + r0 + r) * a->ne1) * a->nb1);
            const __m512 s   = _mm512_set1_ps(inv[r0 + r]);
            for (int c = 0; c < NC; c++) {
                _mm512_storeu_ps(out + c * 16, _mm512_mul_ps(acc[r][c], s));
            }
        }
    }
}

}  // namespace


extern "C" void aimind_attn_enable(int on) { g_enabled = on; }

extern "C" int aimind_attn_supported(int64_t DK, int64_t DV) {
    return g_enabled && DK == DV && (DV == 32 || DV == 64 || DV == 128) ? 1 : 0;
}

extern "C" void aimind_attn_rows(const aimind_attn_args * a, int64_t ir0, int64_t ir1) {
    thread_local scratch w;
    const int64_t        n_q = a->n_q, n_head = a->n_head;
    int64_t              ir  = ir0;
    while (ir < ir1) {
        const int64_t iq3 = ir / (n_head * n_q);
        const int64_t iq2 = (ir - iq3 * n_head * n_q) / n_q;
        const int64_t iq1 = ir - iq3 * n_head * n_q - iq2 * n_q;
        // the tile: following rows of the same head whose visible keys
        // start where this row's do
        const int64_t    limit = std::min<int64_t>({ kTile, ir1 - ir, n_q - iq1 });
        int64_t          lo, hi;
        const uint16_t * m0 = a->mask ? (const uint16_t *) ((const char *) a->mask + iq1 * a->nbm1 +
                                                            (iq2 % a->nem2) * a->nbm2 + (iq3 % a->nem3) * a->nbm3)
                                      : nullptr;
        visible(m0, a->n_kv, lo, hi);
        int T = 1;
        for (; T < limit; T++) {
            const uint16_t * m = a->mask ? (const uint16_t *) ((const char *) m0 + T * a->nbm1) : nullptr;
            int64_t          l, h;
            visible(m, a->n_kv, l, h);
            if (l != lo || h <= l) {
                break;
            }
            hi = std::max(hi, h);
        }
        if (hi <= lo) {
            // no visible key: zeros, as ggml's kernel gives
            for (int r = 0; r < T; r++) {
                float * out = (float *) ((char *) a->dst + (iq3 * a->ne2 * a->ne1 + iq2 + (iq1 + r) * a->ne1) * a->nb1);
                memset(out, 0, sizeof(float) * a->DV);
            }
        } else if (a->DV == 32) {
            tile<2>(a, w, iq1, iq2, iq3, T, lo, hi);
        } else if (a->DV == 64) {
            tile<4>(a, w, iq1, iq2, iq3, T, lo, hi);
        } else {
            tile<8>(a, w, iq1, iq2, iq3, T, lo, hi);
        }
        ir += T;
    }
}

#else

extern "C" void aimind_attn_enable(int) {}

extern "C" int aimind_attn_supported(int64_t, int64_t) { return 0; }

extern "C" void aimind_attn_rows(const aimind_attn_args *, int64_t, int64_t) {}

#endif

// aimind_gelu_f32: GELU in its tanh form, as ggml defines it
// (0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))), written as
// x / (1 + exp(-2u)) and computed 16 values at a time in FP32. ggml's own
// F32 GELU rounds each input to FP16 and reads a 64K-entry table, one value
// at a time (14 % of an encoder call on the VNNI path, docs/benchmarks.md);
// patch 0005 calls this instead.
#if AIMIND_ATTN
extern "C" int aimind_gelu_available(void) { return g_enabled ? 1 : 0; }

extern "C" void aimind_gelu_f32(int n, float * y, const float * x) {
    const __m512 c0 = _mm512_set1_ps(-2.0f * 0.79788456080286535588f);
    const __m512 c1 = _mm512_set1_ps(0.044715f);
    const __m512 one = _mm512_set1_ps(1.0f);
    int          i   = 0;
    for (; i < n; i += 16) {
        const __mmask16 m  = n - i >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << (n - i)) - 1);
        const __m512    v  = _mm512_maskz_loadu_ps(m, x + i);
        const __m512    v2 = _mm512_mul_ps(v, v);
        // -2u = -2 sqrt(2/pi) x (1 + 0.044715 x^2)
        const __m512 t = _mm512_mul_ps(_mm512_mul_ps(c0, v), _mm512_fmadd_ps(c1, v2, one));
        _mm512_mask_storeu_ps(y + i, m, _mm512_div_ps(v, _mm512_add_ps(one, exp16(t))));
    }
}
#else
extern "C" int aimind_gelu_available(void) { return 0; }

extern "C" void aimind_gelu_f32(int, float *, const float *) {}
#endif

// aimind_norm_f32: layer norm without its gain and bias (ggml's
// GGML_OP_NORM): y = (x - mean) / sqrt(var + eps), 16 values at a time.
// ggml's sums the row one value at a time in double and reduces each
// 16-value step horizontally (4 % of an encoder call on the VNNI path);
// patch 0005 calls this instead. The sums are kept in 16 FP32 lanes and
// added in double at the end.
#if AIMIND_ATTN
extern "C" void aimind_norm_f32(int n, float * y, const float * x, float eps) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    int    i  = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
    }
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << (n - i)) - 1);
        s0                = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(m, x + i));
    }
    const float  mean = (float) ((double) _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / n);
    const __m512 mv   = _mm512_set1_ps(mean);
    __m512       v0 = _mm512_setzero_ps(), v1 = v0;
    for (i = 0; i + 32 <= n; i += 32) {
        const __m512 a = _mm512_sub_ps(_mm512_loadu_ps(x + i), mv);
        const __m512 b = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), mv);
        v0             = _mm512_fmadd_ps(a, a, v0);
        v1             = _mm512_fmadd_ps(b, b, v1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << (n - i)) - 1);
        const __m512    a = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), mv);
        v0                = _mm512_fmadd_ps(a, a, v0);
    }
    const double var   = (double) _mm512_reduce_add_ps(_mm512_add_ps(v0, v1)) / n;
    const __m512 scale = _mm512_set1_ps((float) (1.0 / sqrt(var + eps)));
    for (i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv), scale));
    }
}
#else
extern "C" void aimind_norm_f32(int, float *, const float *, float) {}
#endif
