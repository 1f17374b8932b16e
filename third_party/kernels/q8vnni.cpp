// aimind's Q8_0 GEMM for AVX512-VNNI CPUs without AMX (AMD Zen 4, Intel Ice
// Lake and later).
//
// C = A * W^T with W a Q8_0 weight of N rows of K (blocks of 32 int8 values
// and one FP16 scale) and A the activations (M rows of K floats). The file's
// int8 values and block scales are kept exactly (no second rounding of the
// weights); the activations are quantized per row and 32-block at every call,
// as ggml's own Q8_0 path does, so the arithmetic, and the error against a
// float64 reference, are those of ggml's Q8_0 kernels. What differs is the
// shape of the work:
//
//  - Weights are repacked once at load into panels of 16 output rows: for
//    each group of 4 consecutive K values one 64-byte vector holding the 16
//    rows' 4 values, stored as unsigned bytes (q + 128), which is the operand
//    order VPDPBUSD reads (unsigned x signed, 4 products summed into each
//    int32 lane).
//  - Activations are signed bytes, broadcast 4 at a time from memory as the
//    instruction's signed operand; the +128 of the weights is taken back by
//    starting every block's int32 sums at -128 x (the block's activation sum).
//  - A register tile of kMR rows x 32 columns accumulates int32 over a block
//    of 32, then folds it into FP32 sums with one convert and two multiplies
//    (activation scale, weight scale); the FP32 sums stay in registers over
//    the whole of K and are stored once.
//
// Written for aimind from Intel's published instruction descriptions; no
// third-party code.
#include "i8gemm.h"

#include <string.h>

#include <algorithm>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__) && defined(__F16C__)
#define AIMIND_Q8V 1
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace {

const uint32_t kMagicV  = 0x56384d41;  // "AM8V"
const int      kHeaderV = 64;
const int      kBlock   = 32;   // Q8_0's block
const int      kMR      = 6;    // rows of C per register tile
const int      kMChunkV = 192;  // rows of A per unit of work (a multiple of kMR)

struct header_v {
    uint32_t magic;
    int32_t  reserved;
    int64_t  n, k;
};

inline void share_v(int64_t n, int ith, int nth, int64_t & begin, int64_t & end) {
    const int64_t per = (n + nth - 1) / nth;
    begin = std::min(n, per * ith);
    end   = std::min(n, begin + per);
}

inline float half_to_float(uint16_t h) {
    // IEEE half to float without F16C, for the pack (load time only).
    const uint32_t sign = (uint32_t) (h & 0x8000) << 16;
    uint32_t       exp  = (h >> 10) & 0x1f;
    uint32_t       man  = h & 0x3ff;
    uint32_t       bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {
            exp = 127 - 15 + 1;
            while ((man & 0x400) == 0) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

}  // namespace

extern "C" int aimind_q8v_shape_ok(int64_t N, int64_t K) { return N > 0 && K > 0 && N % 32 == 0 && K % kBlock == 0; }

extern "C" size_t aimind_q8v_packed_size(int64_t N, int64_t K) {
    return kHeaderV + (size_t) (N * K) + sizeof(float) * (size_t) (N * (K / kBlock));
}

extern "C" int aimind_q8v_is_packed(const void * packed) {
    return ((const header_v *) packed)->magic == kMagicV ? 1 : 0;
}

// Q8_0's block in a GGUF: an IEEE half scale, then 32 int8 values.
extern "C" void aimind_q8v_pack(void * dst, const void * q8_0, int64_t N, int64_t K, float scale_fault) {
    header_v h = { kMagicV, 0, N, K };
    memset(dst, 0, kHeaderV);
    memcpy(dst, &h, sizeof(h));
    uint8_t *       q      = (uint8_t *) dst + kHeaderV;
    float *         scale  = (float *) ((char *) dst + kHeaderV + N * K);
    const int64_t   blocks = K / kBlock, quads = K / 4;
    const uint8_t * src    = (const uint8_t *) q8_0;
    for (int64_t n = 0; n < N; n++) {
        for (int64_t b = 0; b < blocks; b++) {
            const uint8_t * blk = src + (n * blocks + b) * 34;
            uint16_t        d16;
            memcpy(&d16, blk, 2);
            const float d    = half_to_float(d16);
            scale[b * N + n] = (scale_fault != 0 && n % 16 == 0) ? d * scale_fault : d;
            for (int i = 0; i < kBlock; i++) {
                const int64_t k = b * kBlock + i;
                // panel n/16, quad k/4; inside the vector: row n%16, byte k%4.
                q[((n / 16) * quads + k / 4) * 64 + (n % 16) * 4 + k % 4] = (uint8_t) ((int8_t) blk[2 + i] + 128);
            }
        }
    }
}

// Work space: int8 activations (rows padded to kMR), then per row and block
// a float scale and an int32 -128 x the block's sum.
extern "C" size_t aimind_q8v_work_size(int64_t M, int64_t K) {
    const int64_t mpad = (M + kMR - 1) / kMR * kMR;
    return (size_t) ((mpad * K + 63) / 64 * 64) + 2 * sizeof(float) * (size_t) (mpad * (K / kBlock)) + 64;
}

#if AIMIND_Q8V

namespace {

inline int64_t mpad_of(int64_t M) { return (M + kMR - 1) / kMR * kMR; }

inline float * work_scales(void * work, int64_t M, int64_t K) {
    return (float *) ((char *) work + (mpad_of(M) * K + 63) / 64 * 64);
}

inline int32_t * work_comp(void * work, int64_t M, int64_t K) {
    return (int32_t *) (work_scales(work, M, K) + mpad_of(M) * (K / kBlock));
}

// tile computes rows [m0, m0+R) x columns [n0, n0+32) of C.
template <int R>
inline void tile(const int8_t * qa, const float * sa, const int32_t * ca, const uint8_t * qw, const float * sw,
                 int64_t m0, int64_t n0, int64_t N, int64_t K, float * C, int64_t ldc) {
    const int64_t   blocks = K / kBlock, quads = K / 4;
    const uint8_t * w0     = qw + (n0 / 16) * quads * 64;
    const uint8_t * w1     = w0 + quads * 64;
    __m512          f[R][2];
    for (int r = 0; r < R; r++) {
        f[r][0] = _mm512_setzero_ps();
        f[r][1] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < blocks; b++) {
        __m512i acc[R][2];
        for (int r = 0; r < R; r++) {
            acc[r][0] = _mm512_set1_epi32(ca[(m0 + r) * blocks + b]);
            acc[r][1] = acc[r][0];
        }
        const uint8_t * p0 = w0 + b * (kBlock / 4) * 64;
        const uint8_t * p1 = w1 + b * (kBlock / 4) * 64;
        const int8_t *  a  = qa + m0 * K + b * kBlock;
#pragma GCC unroll 8
        for (int q = 0; q < kBlock / 4; q++) {
            const __m512i v0 = _mm512_load_si512((const void *) (p0 + q * 64));
            const __m512i v1 = _mm512_load_si512((const void *) (p1 + q * 64));
            for (int r = 0; r < R; r++) {
                int32_t x;
                memcpy(&x, a + r * K + q * 4, 4);
                const __m512i s = _mm512_set1_epi32(x);
                acc[r][0]       = _mm512_dpbusd_epi32(acc[r][0], v0, s);
                acc[r][1]       = _mm512_dpbusd_epi32(acc[r][1], v1, s);
            }
        }
        const __m512 d0 = _mm512_loadu_ps(sw + b * N + n0);
        const __m512 d1 = _mm512_loadu_ps(sw + b * N + n0 + 16);
        for (int r = 0; r < R; r++) {
            const __m512 s = _mm512_set1_ps(sa[(m0 + r) * blocks + b]);
            f[r][0] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][0]), s), d0, f[r][0]);
            f[r][1] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][1]), s), d1, f[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        _mm512_storeu_ps(C + (m0 + r) * ldc + n0, f[r][0]);
        _mm512_storeu_ps(C + (m0 + r) * ldc + n0 + 16, f[r][1]);
    }
}

}  // namespace

extern "C" int aimind_q8v_available(void) {
    static const int ok = [] {
        unsigned a, b, c, d;
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            return 0;
        }
        const bool f = b & (1u << 16), bw = b & (1u << 30), vnni = c & (1u << 11);
        return f && bw && vnni ? 1 : 0;
    }();
    return ok;
}

extern "C" void aimind_q8v_quantize(const float * A, int64_t lda, int64_t M, int64_t K, void * work, int ith,
                                    int nth) {
    const int64_t mpad = mpad_of(M), blocks = K / kBlock;
    int8_t *      q    = (int8_t *) work;
    float *       sa   = work_scales(work, M, K);
    int32_t *     ca   = work_comp(work, M, K);
    int64_t       begin, end;
    share_v(mpad, ith, nth, begin, end);
    for (int64_t m = begin; m < end; m++) {
        if (m >= M) {
            memset(q + m * K, 0, K);
            for (int64_t b = 0; b < blocks; b++) {
                sa[m * blocks + b] = 0;
                ca[m * blocks + b] = 0;
            }
            continue;
        }
        const float * x = A + m * lda;
        for (int64_t b = 0; b < blocks; b++) {
            const __m512 x0   = _mm512_loadu_ps(x + b * kBlock);
            const __m512 x1   = _mm512_loadu_ps(x + b * kBlock + 16);
            const float  amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
            const float  d    = amax / 127;
            const __m512 id   = _mm512_set1_ps(amax > 0 ? 127 / amax : 0);
            // to nearest, ties to even (ggml's quantize_row_q8_0 rounds ties
            // away from zero: the two differ on exact halves only)
            const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, id));
            const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, id));
            _mm_storeu_si128((__m128i *) (q + m * K + b * kBlock), _mm512_cvtsepi32_epi8(i0));
            _mm_storeu_si128((__m128i *) (q + m * K + b * kBlock + 16), _mm512_cvtsepi32_epi8(i1));
            sa[m * blocks + b] = d;
            ca[m * blocks + b] = -128 * _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        }
    }
}

extern "C" void aimind_q8v_gemm(const void * work, const void * packed, int64_t M, int64_t N, int64_t K, float * C,
                                int64_t ldc, int ith, int nth) {
    const uint8_t * qw     = (const uint8_t *) packed + kHeaderV;
    const float *   sw     = (const float *) ((const char *) packed + kHeaderV + N * K);
    const int8_t *  qa     = (const int8_t *) work;
    const float *   sa     = work_scales((void *) work, M, K);
    const int32_t * ca     = work_comp((void *) work, M, K);
    // Chunks of rows of equal size (a multiple of kMR, at most about
    // kMChunkV), so that every unit of work (a chunk x 32 columns) costs
    // the same and the threads' shares end together.
    const int64_t   chunks = (M + kMChunkV - 1) / kMChunkV;
    const int64_t   rows   = ((M + chunks - 1) / chunks + kMR - 1) / kMR * kMR;
    const int64_t   panels = N / 32;
    int64_t         begin, end;
    share_v(chunks * panels, ith, nth, begin, end);
    for (int64_t u = begin; u < end; u++) {
        // panels inner: a thread's units of one chunk are contiguous, so
        // consecutive units reuse the chunk's activations from cache.
        const int64_t chunk = u / panels, n0 = (u % panels) * 32;
        const int64_t mend  = std::min(M, (chunk + 1) * rows);
        int64_t       m0    = chunk * rows;
        for (; m0 + kMR <= mend; m0 += kMR) {
            tile<kMR>(qa, sa, ca, qw, sw, m0, n0, N, K, C, ldc);
        }
        switch (mend - m0) {
            case 1: tile<1>(qa, sa, ca, qw, sw, m0, n0, N, K, C, ldc); break;
            case 2: tile<2>(qa, sa, ca, qw, sw, m0, n0, N, K, C, ldc); break;
            case 3: tile<3>(qa, sa, ca, qw, sw, m0, n0, N, K, C, ldc); break;
            case 4: tile<4>(qa, sa, ca, qw, sw, m0, n0, N, K, C, ldc); break;
            case 5: tile<5>(qa, sa, ca, qw, sw, m0, n0, N, K, C, ldc); break;
            default: break;
        }
    }
}

#else  // no AVX512-VNNI in this build: never chosen

extern "C" int aimind_q8v_available(void) { return 0; }

extern "C" void aimind_q8v_quantize(const float *, int64_t, int64_t, int64_t, void *, int, int) {}

extern "C" void aimind_q8v_gemm(const void *, const void *, int64_t, int64_t, int64_t, float *, int64_t, int, int) {}

#endif
