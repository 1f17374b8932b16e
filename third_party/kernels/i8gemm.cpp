// aimind's int8 and BF16 GEMMs for encoder weights on Intel AMX.
//
// C = A * W^T with A the activations (M rows of K floats) and W a weight of N
// rows of K. Both are quantized to int8 symmetrically per K-group of G values:
// W once at load (per output row and group), A at every call (per row and
// group). The AMX tiles accumulate int32 over a whole group; each group's
// int32 sums are converted to float and scaled by (activation scale x weight
// scale), so G = K is one dequantization per output and smaller groups trade
// speed for error (aimind measures both, docs/benchmarks.md).
//
// Layout of a packed weight: a 64-byte header, then for each panel of 16
// weight rows and each K step of 64 one 1 KiB tile in the order AMX's
// TDPBSSD reads its second operand (16 rows of K/4 quads, each 16 weights x 4
// consecutive K values), then float scales [K/G][N].
//
// The BF16 variant has the same tiling with TDPBF16PS: weights rounded to BF16
// once at load, tiles of 16 weight rows x 32 K values (pairs), activations
// rounded to BF16 at every call, FP32 sums over all of K and no scales.
//
// Written for aimind from Intel's published AMX instruction descriptions;
// no third-party code.
#include "i8gemm.h"

#include <string.h>

#include <algorithm>

#if defined(__AMX_INT8__) && defined(__AMX_TILE__) && defined(__AVX512F__) && defined(__AVX512BW__)
#define AIMIND_I8_AMX 1
#include <cpuid.h>
#include <immintrin.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace {

const uint32_t kMagic  = 0x38494d41;  // "AMI8"
const uint32_t kMagicB = 0x46424d41;  // "AMBF"
const int      kHeader = 64;
const int      kMBlock = 32;   // rows of C per kernel call (2 tiles)
const int      kMChunk = 256;  // rows of A kept in L2 while the panels pass

struct header {
    uint32_t magic;
    int32_t  group;
    int64_t  n, k;
};

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

inline void share(int64_t n, int ith, int nth, int64_t & begin, int64_t & end) {
    const int64_t per = (n + nth - 1) / nth;
    begin = std::min(n, per * ith);
    end   = std::min(n, begin + per);
}

}  // namespace

extern "C" int aimind_i8_shape_ok(int64_t N, int64_t K, int G) {
    return K > 0 && N > 0 && K % 64 == 0 && N % 32 == 0 && G >= 64 && G % 64 == 0 && K % G == 0;
}

extern "C" size_t aimind_i8_packed_size(int64_t N, int64_t K, int G) {
    return kHeader + (size_t) (N * K) + sizeof(float) * (size_t) (N * (K / G));
}

extern "C" int aimind_i8_packed_group(const void * packed) {
    const header * h = (const header *) packed;
    return h->magic == kMagic ? h->group : 0;
}

extern "C" void aimind_i8_pack(void * dst, const float * W, int64_t N, int64_t K, int G, float scale_fault) {
    header h = { kMagic, G, N, K };
    memset(dst, 0, kHeader);
    memcpy(dst, &h, sizeof(h));
    int8_t * q     = (int8_t *) dst + kHeader;
    float *  scale = (float *) ((char *) dst + kHeader + N * K);
    const int64_t steps = K / 64, groups = K / G;
    for (int64_t n = 0; n < N; n++) {
        const float * w = W + n * K;
        for (int64_t g = 0; g < groups; g++) {
            float amax = 0;
            for (int64_t k = g * G; k < (g + 1) * G; k++) {
                amax = std::max(amax, w[k] < 0 ? -w[k] : w[k]);
            }
            const float d  = amax / 127;
            const float id = amax > 0 ? 127 / amax : 0;
            scale[g * N + n] = (scale_fault != 0 && n % 16 == 0) ? d * scale_fault : d;
            for (int64_t k = g * G; k < (g + 1) * G; k++) {
                int v = (int) __builtin_lrintf(w[k] * id);
                v     = std::min(127, std::max(-127, v));
                // panel n/16, step k/64; inside the tile: quad row (k%64)/4,
                // weight n%16, byte k%4.
                const int64_t tile = (n / 16) * steps + k / 64;
                q[tile * 1024 + ((k % 64) / 4) * 64 + (n % 16) * 4 + k % 4] = (int8_t) v;
            }
        }
    }
}

extern "C" int aimind_packed_kind(const void * packed) {
    const header * h = (const header *) packed;
    return h->magic == kMagic ? 1 : h->magic == kMagicB ? 2 : 0;
}

extern "C" size_t aimind_bf16_packed_size(int64_t N, int64_t K) { return kHeader + 2 * (size_t) (N * K); }

extern "C" void aimind_bf16_pack(void * dst, const float * W, int64_t N, int64_t K, float scale_fault) {
    header h = { kMagicB, 0, N, K };
    memset(dst, 0, kHeader);
    memcpy(dst, &h, sizeof(h));
    uint16_t *    q     = (uint16_t *) ((char *) dst + kHeader);
    const int64_t steps = K / 32;
    for (int64_t n = 0; n < N; n++) {
        const float f = (scale_fault != 0 && n % 16 == 0) ? scale_fault : 1;
        for (int64_t k = 0; k < K; k++) {
            const float v = W[n * K + k] * f;
            uint32_t    u;
            memcpy(&u, &v, 4);
            u += 0x7fff + ((u >> 16) & 1);  // round to nearest even (weights are finite)
            // panel n/16, step k/32; inside the tile: pair row (k%32)/2,
            // weight n%16, element k%2.
            const int64_t tile = (n / 16) * steps + k / 32;
            q[tile * 512 + ((k % 32) / 2) * 32 + (n % 16) * 2 + k % 2] = (uint16_t) (u >> 16);
        }
    }
}

extern "C" size_t aimind_bf16_work_size(int64_t M, int64_t K) {
    return 2 * (size_t) (round_up(M, kMBlock) * K) + 64;
}

extern "C" size_t aimind_i8_work_size(int64_t M, int64_t K, int G) {
    const int64_t mpad = round_up(M, kMBlock);
    return (size_t) round_up(mpad * K, 64) + sizeof(float) * (size_t) (mpad * (K / G)) + 64;
}

#if AIMIND_I8_AMX

namespace {

struct tile_config {
    uint8_t  palette_id;
    uint8_t  start_row;
    uint8_t  reserved[14];
    uint16_t colsb[16];
    uint8_t  rows[16];
};

inline int8_t * work_q(void * work) { return (int8_t *) work; }
inline float * work_scale(void * work, int64_t M, int64_t K) {
    return (float *) ((char *) work + round_up(round_up(M, kMBlock) * K, 64));
}

inline float hmax(__m512 v) { return _mm512_reduce_max_ps(v); }

// block computes rows [m0, m0+32) x columns [n0, n0+32) of C, writing the
// rows below M.
inline void block(const int8_t * qa, const float * sa, const int8_t * qw, const float * sw, int64_t m0, int64_t n0,
                  int64_t M, int64_t N, int64_t K, int G, float * C, int64_t ldc) {
    const int64_t steps = K / 64, groups = K / G, per = G / 64;
    const int8_t * a0 = qa + m0 * K;
    const int8_t * a1 = a0 + 16 * K;
    const int8_t * b0 = qw + (n0 / 16) * steps * 1024;
    const int8_t * b1 = b0 + steps * 1024;
    alignas(64) int32_t c[4][256];
    alignas(64) float   acc[32][32];
    for (int64_t g = 0; g < groups; g++) {
        _tile_zero(4);
        _tile_zero(5);
        _tile_zero(6);
        _tile_zero(7);
        for (int64_t t = g * per; t < (g + 1) * per; t++) {
            _tile_loadd(0, a0 + t * 64, K);
            _tile_loadd(1, a1 + t * 64, K);
            _tile_loadd(2, b0 + t * 1024, 64);
            _tile_loadd(3, b1 + t * 1024, 64);
            _tile_dpbssd(4, 0, 2);
            _tile_dpbssd(5, 0, 3);
            _tile_dpbssd(6, 1, 2);
            _tile_dpbssd(7, 1, 3);
        }
        _tile_stored(4, c[0], 64);
        _tile_stored(5, c[1], 64);
        _tile_stored(6, c[2], 64);
        _tile_stored(7, c[3], 64);
        const __m512 w0 = _mm512_loadu_ps(sw + g * N + n0);
        const __m512 w1 = _mm512_loadu_ps(sw + g * N + n0 + 16);
        for (int r = 0; r < 32; r++) {
            const __m512  s   = _mm512_set1_ps(sa[(m0 + r) * groups + g]);
            const int32_t *cr = c[(r / 16) * 2] + (r % 16) * 16;
            const __m512  v0  = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(cr)), _mm512_mul_ps(s, w0));
            const __m512  v1  = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(cr + 256)), _mm512_mul_ps(s, w1));
            if (g == 0) {
                _mm512_store_ps(acc[r], v0);
                _mm512_store_ps(acc[r] + 16, v1);
            } else {
                _mm512_store_ps(acc[r], _mm512_add_ps(_mm512_load_ps(acc[r]), v0));
                _mm512_store_ps(acc[r] + 16, _mm512_add_ps(_mm512_load_ps(acc[r] + 16), v1));
            }
        }
    }
    const int64_t rows = std::min<int64_t>(32, M - m0);
    for (int64_t r = 0; r < rows; r++) {
        _mm512_storeu_ps(C + (m0 + r) * ldc + n0, _mm512_load_ps(acc[r]));
        _mm512_storeu_ps(C + (m0 + r) * ldc + n0 + 16, _mm512_load_ps(acc[r] + 16));
    }
}

// tiles loads our tile shapes (all eight 16 rows x 64 bytes) for one call
// and restores whatever configuration the thread had (ggml's AMX kernels
// keep theirs loaded) when it goes out of scope.
struct tiles {
    alignas(64) tile_config saved;
    tiles() {
        alignas(64) tile_config cfg;
        _tile_storeconfig(&saved);
        memset(&cfg, 0, sizeof(cfg));
        cfg.palette_id = 1;
        for (int i = 0; i < 8; i++) {
            cfg.rows[i]  = 16;
            cfg.colsb[i] = 64;
        }
        _tile_loadconfig(&cfg);
    }
    ~tiles() {
        if (saved.palette_id != 0) {
            _tile_loadconfig(&saved);
        } else {
            _tile_release();
        }
    }
};

bool tiles_allowed() {
#if defined(__linux__)
    // ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA: Linux grants tile state
    // per process on request.
    static const bool ok = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    return ok;
#else
    return false;
#endif
}

#if defined(__AMX_BF16__) && defined(__AVX512BF16__)
#define AIMIND_BF16_AMX 1
// block_bf16 computes rows [m0, m0+32) x columns [n0, n0+32) of C.
inline void block_bf16(const uint16_t * a, const uint16_t * w, int64_t m0, int64_t n0, int64_t M, int64_t K,
                       float * C, int64_t ldc) {
    const int64_t    steps = K / 32;
    const uint16_t * a0    = a + m0 * K;
    const uint16_t * a1    = a0 + 16 * K;
    const uint16_t * b0    = w + (n0 / 16) * steps * 512;
    const uint16_t * b1    = b0 + steps * 512;
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
    for (int64_t t = 0; t < steps; t++) {
        _tile_loadd(0, a0 + t * 32, K * 2);
        _tile_loadd(1, a1 + t * 32, K * 2);
        _tile_loadd(2, b0 + t * 512, 64);
        _tile_loadd(3, b1 + t * 512, 64);
        _tile_dpbf16ps(4, 0, 2);
        _tile_dpbf16ps(5, 0, 3);
        _tile_dpbf16ps(6, 1, 2);
        _tile_dpbf16ps(7, 1, 3);
    }
    if (m0 + 32 <= M) {
        _tile_stored(4, C + m0 * ldc + n0, ldc * 4);
        _tile_stored(5, C + m0 * ldc + n0 + 16, ldc * 4);
        _tile_stored(6, C + (m0 + 16) * ldc + n0, ldc * 4);
        _tile_stored(7, C + (m0 + 16) * ldc + n0 + 16, ldc * 4);
        return;
    }
    alignas(64) float c[4][256];
    _tile_stored(4, c[0], 64);
    _tile_stored(5, c[1], 64);
    _tile_stored(6, c[2], 64);
    _tile_stored(7, c[3], 64);
    for (int64_t r = 0; r < 32 && m0 + r < M; r++) {
        const float * cr = c[(r / 16) * 2] + (r % 16) * 16;
        _mm512_storeu_ps(C + (m0 + r) * ldc + n0, _mm512_load_ps(cr));
        _mm512_storeu_ps(C + (m0 + r) * ldc + n0 + 16, _mm512_load_ps(cr + 256));
    }
}
#endif

}  // namespace

#if AIMIND_BF16_AMX

extern "C" int aimind_bf16_available(void) {
    static const int ok = [] {
        unsigned a, b, c, d;
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24))) {
            return 0;  // AMX-BF16, AMX-TILE
        }
        if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5))) {
            return 0;  // AVX512-BF16 converts the activations
        }
        return tiles_allowed() ? 1 : 0;
    }();
    return ok;
}

extern "C" void aimind_bf16_convert(const float * A, int64_t lda, int64_t M, int64_t K, void * work, int ith, int nth) {
    const int64_t mpad = round_up(M, kMBlock);
    uint16_t *    q    = (uint16_t *) work;
    int64_t       begin, end;
    share(mpad, ith, nth, begin, end);
    for (int64_t m = begin; m < end; m++) {
        if (m >= M) {
            memset(q + m * K, 0, 2 * K);
            continue;
        }
        const float * x = A + m * lda;
        for (int64_t k = 0; k < K; k += 32) {
            const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(x + k));
            _mm512_storeu_si512((void *) (q + m * K + k), (__m512i) v);
        }
    }
}

extern "C" void aimind_bf16_gemm(const void * work, const void * packed, int64_t M, int64_t N, int64_t K, float * C,
                                 int64_t ldc, int ith, int nth) {
    const uint16_t * w      = (const uint16_t *) ((const char *) packed + kHeader);
    const uint16_t * a      = (const uint16_t *) work;
    const int64_t    mpad   = round_up(M, kMBlock);
    const int64_t    chunks = (mpad + kMChunk - 1) / kMChunk;
    const int64_t    panels = N / 32;
    int64_t          begin, end;
    share(chunks * panels, ith, nth, begin, end);
    if (begin >= end) {
        return;
    }
    tiles t;
    for (int64_t u = begin; u < end; u++) {
        const int64_t chunk = u / panels, n0 = (u % panels) * 32;
        const int64_t mend  = std::min(mpad, (chunk + 1) * kMChunk);
        for (int64_t m0 = chunk * kMChunk; m0 < mend; m0 += kMBlock) {
            block_bf16(a, w, m0, n0, M, K, C, ldc);
        }
    }
}

#else

extern "C" int aimind_bf16_available(void) { return 0; }

extern "C" void aimind_bf16_convert(const float *, int64_t, int64_t, int64_t, void *, int, int) {}

extern "C" void aimind_bf16_gemm(const void *, const void *, int64_t, int64_t, int64_t, float *, int64_t, int, int) {}

#endif

extern "C" int aimind_i8_available(void) {
    static const int ok = [] {
        unsigned a, b, c, d;
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            return 0;
        }
        if (!(d & (1u << 24)) || !(d & (1u << 25))) {  // AMX-TILE, AMX-INT8
            return 0;
        }
        return tiles_allowed() ? 1 : 0;
    }();
    return ok;
}

extern "C" void aimind_i8_quantize(const float * A, int64_t lda, int64_t M, int64_t K, int G, void * work, int ith,
                                   int nth) {
    const int64_t mpad = round_up(M, kMBlock), groups = K / G;
    int8_t *      q    = work_q(work);
    float *       sa   = work_scale(work, M, K);
    int64_t       begin, end;
    share(mpad, ith, nth, begin, end);
    for (int64_t m = begin; m < end; m++) {
        if (m >= M) {
            memset(q + m * K, 0, K);
            for (int64_t g = 0; g < groups; g++) {
                sa[m * groups + g] = 0;
            }
            continue;
        }
        const float * x = A + m * lda;
        for (int64_t g = 0; g < groups; g++) {
            __m512 mx = _mm512_setzero_ps();
            for (int64_t k = g * G; k < (g + 1) * G; k += 16) {
                mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(x + k)));
            }
            const float amax = hmax(mx);
            sa[m * groups + g] = amax / 127;
            const __m512 id    = _mm512_set1_ps(amax > 0 ? 127 / amax : 0);
            for (int64_t k = g * G; k < (g + 1) * G; k += 16) {
                const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + k), id));
                _mm_storeu_si128((__m128i *) (q + m * K + k), _mm512_cvtsepi32_epi8(v));
            }
        }
    }
}

extern "C" void aimind_i8_gemm(const void * work, const void * packed, int64_t M, int64_t N, int64_t K, float * C,
                               int64_t ldc, int ith, int nth) {
    const header * h  = (const header *) packed;
    const int      G  = h->group;
    const int8_t * qw = (const int8_t *) packed + kHeader;
    const float *  sw = (const float *) ((const char *) packed + kHeader + N * K);
    const int8_t * qa = work_q((void *) work);
    const float *  sa = work_scale((void *) work, M, K);

    const int64_t mpad   = round_up(M, kMBlock);
    const int64_t chunks = (mpad + kMChunk - 1) / kMChunk;
    const int64_t panels = N / 32;
    int64_t       begin, end;
    share(chunks * panels, ith, nth, begin, end);
    if (begin >= end) {
        return;
    }

    tiles tc;

    for (int64_t u = begin; u < end; u++) {
        const int64_t chunk = u / panels, n0 = (u % panels) * 32;
        const int64_t mend  = std::min(mpad, (chunk + 1) * kMChunk);
        for (int64_t m0 = chunk * kMChunk; m0 < mend; m0 += kMBlock) {
            block(qa, sa, qw, sw, m0, n0, M, N, K, G, C, ldc);
        }
    }
}

#else  // no AMX in this build: the kernels are absent and never chosen

extern "C" int aimind_i8_available(void) { return 0; }

extern "C" int aimind_bf16_available(void) { return 0; }

extern "C" void aimind_bf16_convert(const float *, int64_t, int64_t, int64_t, void *, int, int) {}

extern "C" void aimind_bf16_gemm(const void *, const void *, int64_t, int64_t, int64_t, float *, int64_t, int, int) {}

extern "C" void aimind_i8_quantize(const float *, int64_t, int64_t, int64_t, int, void *, int, int) {}

extern "C" void aimind_i8_gemm(const void *, const void *, int64_t, int64_t, int64_t, float *, int64_t, int, int) {}

#endif
