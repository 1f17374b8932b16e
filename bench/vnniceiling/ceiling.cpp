// ceiling measures what bounds aimind's Q8_0 VNNI GEMM (third_party/kernels/
// q8vnni.cpp) on the machine it runs on, for docs/benchmarks.md:
//
//  1. instruction level: the rate of independent VPDPBUSD (zmm) alone, with
//     one FP32 multiply or FMA beside every 4 of them (the kernel's block fold:
//     per 32-value block, 8 VPDPBUSD per accumulator and one multiply (the
//     activation's block scale) and one FMA (the weight's block scale) per
//     accumulator), and with one int-to-float convert and add per 4 instead;
//  2. kernel level: one BERT-base layer's GEMMs (Q, K, V, O 768x768, FFN up
//     768->3072 and down 3072->768) on M rows, 1 and 2 threads: aimind's
//     kernel as built for ggml, against the same register tile with no fold
//     (int32 sums over all of K, one scale per output at the end), which is
//     the loop a per-column weight scale and a per-row (or per-tensor)
//     activation scale allow, as ONNX Runtime's int8 MatMul uses.
//
// Built and run by scripts/vnni-ceiling.sh; needs AVX512-VNNI.
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "../../third_party/kernels/i8gemm.h"

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// mode 0: VPDPBUSD only; 1: + 3 FMA per 12; 2: + 3 multiplies per 12; 3: + 3 converts and adds per 12.
template <int mode> double dpbusd_rate(long n) {
    __m512i a0 = _mm512_set1_epi32(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
            a9 = a0, a10 = a0, a11 = a0;
    const __m512i w = _mm512_set1_epi32(0x01020304), x = _mm512_set1_epi32(0x05060708);
    __m512        f0 = _mm512_set1_ps(0), f1 = f0, f2 = f0, s = _mm512_set1_ps(1.0000001f);
    const double  t0 = now();
    for (long it = 0; it < n / 12; it++) {
#define D(i) a##i = _mm512_dpbusd_epi32(a##i, w, x);
        D(0) D(1) D(2) D(3) D(4) D(5) D(6) D(7) D(8) D(9) D(10) D(11)
#undef D
        if (mode == 1) {
            f0 = _mm512_fmadd_ps(f0, s, s); f1 = _mm512_fmadd_ps(f1, s, s); f2 = _mm512_fmadd_ps(f2, s, s);
        } else if (mode == 2) {
            f0 = _mm512_mul_ps(f0, s); f1 = _mm512_mul_ps(f1, s); f2 = _mm512_mul_ps(f2, s);
        } else if (mode == 3) {
            f0 = _mm512_add_ps(f0, _mm512_cvtepi32_ps(a0)); f1 = _mm512_add_ps(f1, _mm512_cvtepi32_ps(a1));
            f2 = _mm512_add_ps(f2, _mm512_cvtepi32_ps(a2));
        }
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7),
                         "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
        __asm__ volatile("" : "+v"(f0), "+v"(f1), "+v"(f2));
    }
    const double t = now() - t0;
    volatile int sink = _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a11)) + (int) _mm512_reduce_add_ps(f0 + f1 + f2);
    (void) sink;
    return n / t;  // VPDPBUSD per second
}

// The packed layout of q8vnni.cpp: a 64-byte header, then panels of 16
// output rows, for each group of 4 K values one 64-byte vector.
const int kHeader = 64, kMR = 6;

// nofold_tile: q8vnni.cpp's 6x32 register tile with the block fold taken
// out: int32 sums over all of K, converted and scaled once.
template <int R>
void nofold_tile(const int8_t * qa, const uint8_t * qw, int64_t m0, int64_t n0, int64_t K, float * C, int64_t ldc) {
    const int64_t   quads = K / 4;
    const uint8_t * w0    = qw + (n0 / 16) * quads * 64;
    const uint8_t * w1    = w0 + quads * 64;
    __m512i         acc[R][2];
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int64_t q = 0; q < quads; q++) {
        const __m512i v0 = _mm512_load_si512((const void *) (w0 + q * 64));
        const __m512i v1 = _mm512_load_si512((const void *) (w1 + q * 64));
        for (int r = 0; r < R; r++) {
            int32_t x;
            memcpy(&x, qa + (m0 + r) * K + q * 4, 4);
            const __m512i s = _mm512_set1_epi32(x);
            acc[r][0]       = _mm512_dpbusd_epi32(acc[r][0], v0, s);
            acc[r][1]       = _mm512_dpbusd_epi32(acc[r][1], v1, s);
        }
    }
    const __m512 sc = _mm512_set1_ps(1.0f / 4096);
    for (int r = 0; r < R; r++) {
        _mm512_storeu_ps(C + (m0 + r) * ldc + n0, _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][0]), sc));
        _mm512_storeu_ps(C + (m0 + r) * ldc + n0 + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][1]), sc));
    }
}

// nofold_gemm shares the work as aimind_q8v_gemm does (row chunks x 32-column panels).
void nofold_gemm(const int8_t * qa, const void * packed, int64_t M, int64_t N, int64_t K, float * C, int ith, int nth) {
    const uint8_t * qw     = (const uint8_t *) packed + kHeader;
    const int64_t   chunks = (M + 191) / 192, rows = ((M + chunks - 1) / chunks + kMR - 1) / kMR * kMR;
    const int64_t   panels = N / 32, units = chunks * panels, per = (units + nth - 1) / nth;
    for (int64_t u = per * ith; u < std::min(units, per * (ith + 1)); u++) {
        const int64_t chunk = u / panels, n0 = (u % panels) * 32, mend = std::min(M, (chunk + 1) * rows);
        int64_t       m0 = chunk * rows;
        for (; m0 + kMR <= mend; m0 += kMR) nofold_tile<kMR>(qa, qw, m0, n0, K, C, N);
        for (; m0 < mend; m0++) nofold_tile<1>(qa, qw, m0, n0, K, C, N);
    }
}

struct Weight {
    int64_t N, K;
    void *  packed;
};

// layer_rate returns GMAC/s for one layer's GEMMs on M rows with nth threads.
double layer_rate(std::vector<Weight> & layer, int64_t M, int nth, bool fold, int iters) {
    std::mt19937                    g(3);
    std::normal_distribution<float> nd;
    std::vector<float>              A(M * 3072), C(M * 3072);
    for (auto & x : A) x = nd(g);
    void * work = aligned_alloc(64, (aimind_q8v_work_size(M, 3072) + 63) / 64 * 64);
    std::vector<int8_t> qa(M * 3072 + 64);
    for (size_t i = 0; i < qa.size(); i++) qa[i] = (int8_t) (g() % 255 - 127);
    double macs = 0;
    for (auto & w : layer) macs += (double) M * w.N * w.K;
    double       best = 1e9;
    std::barrier sync(nth);
    for (int it = 0; it < iters; it++) {
        const double             t0 = now();
        std::vector<std::thread> ts;
        for (int t = 0; t < nth; t++) {
            ts.emplace_back([&, t] {
                for (auto & w : layer) {
                    if (fold) {
                        aimind_q8v_quantize(A.data(), w.K, M, w.K, work, t, nth);
                        sync.arrive_and_wait();
                        aimind_q8v_gemm(work, w.packed, M, w.N, w.K, C.data(), w.N, t, nth);
                    } else {
                        // the same activation pass (its result unused), so
                        // that only the fold differs between the two
                        aimind_q8v_quantize(A.data(), w.K, M, w.K, work, t, nth);
                        sync.arrive_and_wait();
                        nofold_gemm(qa.data(), w.packed, M, w.N, w.K, C.data(), t, nth);
                    }
                    sync.arrive_and_wait();
                }
            });
        }
        for (auto & t : ts) t.join();
        best = std::min(best, now() - t0);
    }
    free(work);
    return macs / best / 1e9;
}

}  // namespace

int main(int argc, char ** argv) {
    if (!aimind_q8v_available()) {
        printf("skipped: this CPU has no AVX512-VNNI (aimind's VNNI kernel does not run here)\n");
        return 0;
    }
    const int64_t M     = argc > 1 ? atoll(argv[1]) : 396;
    const long    n     = 1200000000L;
    double        r[4]  = { dpbusd_rate<0>(n), dpbusd_rate<1>(n), dpbusd_rate<2>(n), dpbusd_rate<3>(n) };
    const double  peak  = r[0] * 64 / 1e9;  // int8 MACs per VPDPBUSD zmm: 16 lanes x 4
    printf("instruction level (1 thread):\n");
    printf("  VPDPBUSD zmm alone:                     %.2f G/s = %.0f GMAC/s (the int8 peak of one core)\n", r[0] / 1e9, peak);
    printf("  + 1 FMA per 4 VPDPBUSD:                 %.2f G/s (%.0f %% of alone)\n", r[1] / 1e9, 100 * r[1] / r[0]);
    printf("  + 1 multiply per 4 VPDPBUSD:            %.2f G/s (%.0f %% of alone)\n", r[2] / 1e9, 100 * r[2] / r[0]);
    printf("  + 1 convert and 1 add per 4 VPDPBUSD:   %.2f G/s (%.0f %% of alone)\n", r[3] / 1e9, 100 * r[3] / r[0]);
    printf("  the kernel's fold: 1 multiply + 1 FMA per 8 VPDPBUSD per accumulator -> at most %.0f %% of peak if they share ports\n",
           100.0 * 8 / 10);

    std::mt19937        g(1);
    std::vector<Weight> layer = { { 768, 768 }, { 768, 768 }, { 768, 768 }, { 768, 768 }, { 3072, 768 }, { 768, 3072 } };
    for (auto & w : layer) {
        std::vector<uint8_t> q8(w.N * (w.K / 32) * 34);
        for (int64_t i = 0; i < w.N * (w.K / 32); i++) {
            const uint16_t d = 0x2000;  // a half scale
            memcpy(&q8[i * 34], &d, 2);
            for (int j = 0; j < 32; j++) q8[i * 34 + 2 + j] = (uint8_t) (int8_t) (g() % 255 - 127);
        }
        w.packed = aligned_alloc(64, (aimind_q8v_packed_size(w.N, w.K) + 63) / 64 * 64);
        aimind_q8v_pack(w.packed, q8.data(), w.N, w.K, 0);
    }
    printf("kernel level: one BERT-base layer's GEMMs (Q, K, V, O, FFN up, down), M=%ld rows:\n", (long) M);
    for (int nth = 1; nth <= 2; nth++) {
        const double f = layer_rate(layer, M, nth, true, 10), nf = layer_rate(layer, M, nth, false, 10);
        printf("  %d thread(s): aimind Q8_0 (per-block fold, activations quantized) %.0f GMAC/s = %.0f %% of %d x peak;"
               " same tile without the fold %.0f GMAC/s = %.0f %%; ratio %.2f\n",
               nth, f, 100 * f / (nth * peak), nth, nf, 100 * nf / (nth * peak), nf / f);
    }
    return 0;
}
