// aimind's GEMMs for Q8_0 weights (i8gemm.cpp: AMX-BF16, or AMX int8 with
// run-time activation quantization; q8vnni.cpp: the file's Q8_0 blocks on
// AVX512-VNNI) as one of ggml-cpu's extra buffer types, the way ggml's own
// AMX and repack buffers plug in: a weight placed in this buffer is converted
// and repacked once when llama.cpp loads it, and the matrix multiplications
// that read it run our kernels. Compiled into ggml-cpu
// by third_party/CMakeLists.txt; patch 0003 lists the buffer type first.
#include "i8gemm.h"

#include "ggml-backend-impl.h"
#include "ggml-cpu.h"
#include "ggml-impl.h"
#include "traits.h"

#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <vector>

extern "C" {
ggml_backend_buffer_type_t ggml_backend_aimind_i8_buffer_type(void);
void ggml_aimind_i8_configure(int mode, int group, float scale_fault);
int  ggml_aimind_i8_available(int mode);
}

namespace {

// Set by the host before a model loads (aimind's binding, under its load
// lock): whether new weights may go to this buffer and as what (mode 0: not,
// 1: AMX-BF16, 2: AMX int8, 3: Q8_0 blocks on AVX512-VNNI), the K-group of int8 scales (0: the whole row) and, for
// tests only, a scale fault.
int   g_enabled     = 0;
int   g_group       = 0;
float g_scale_fault = 0;

// group_for picks the scale group for a width K: the largest multiple of 64
// at most want that divides K (want 0: K itself).
int group_for(int64_t K) {
    if (g_group <= 0 || g_group >= K) {
        return (int) K;
    }
    for (int g = g_group / 64 * 64; g >= 64; g -= 64) {
        if (K % g == 0) {
            return g;
        }
    }
    return 64;
}

bool mode_available(int mode) {
    switch (mode) {
        case 1: return aimind_bf16_available() != 0;
        case 2: return aimind_i8_available() != 0;
        case 3: return aimind_q8v_available() != 0;
    }
    return false;
}

// packable says whether a weight can be packed for mode: a 2-D Q8_0 matrix
// of a shape the mode's kernels tile.
bool packable(const ggml_tensor * t, int mode) {
    if (t->type != GGML_TYPE_Q8_0 || t->ne[2] != 1 || t->ne[3] != 1 || !ggml_is_contiguous(t)) {
        return false;
    }
    return mode == 3 ? aimind_q8v_shape_ok(t->ne[1], t->ne[0]) != 0 : aimind_i8_shape_ok(t->ne[1], t->ne[0], 64) != 0;
}

class tensor_traits : public ggml::cpu::tensor_traits {
    bool work_size(int, const ggml_tensor * op, size_t & size) override {
        // the smallest group has the most scales: enough for any
        const int64_t M = op->src[1]->ne[1], K = op->src[0]->ne[0];
        size = std::max({ aimind_i8_work_size(M, K, 64), aimind_bf16_work_size(M, K), aimind_q8v_work_size(M, K) }) + 64;
        return true;
    }

    bool compute_forward(ggml_compute_params * params, ggml_tensor * op) override {
        if (op->op != GGML_OP_MUL_MAT) {
            return false;
        }
        const ggml_tensor * w = op->src[0];
        const ggml_tensor * a = op->src[1];
        const int64_t       K = w->ne[0], N = w->ne[1], M = a->ne[1];
        void * work = (void *) (((uintptr_t) params->wdata + 63) & ~(uintptr_t) 63);
        if (aimind_q8v_is_packed(w->data)) {
            aimind_q8v_quantize((const float *) a->data, a->nb[1] / sizeof(float), M, K, work, params->ith,
                                params->nth);
            ggml_barrier(params->threadpool);
            aimind_q8v_gemm(work, w->data, M, N, K, (float *) op->data, op->nb[1] / sizeof(float), params->ith,
                            params->nth);
            return true;
        }
        if (aimind_packed_kind(w->data) == 2) {
            aimind_bf16_convert((const float *) a->data, a->nb[1] / sizeof(float), M, K, work, params->ith,
                                params->nth);
            ggml_barrier(params->threadpool);
            aimind_bf16_gemm(work, w->data, M, N, K, (float *) op->data, op->nb[1] / sizeof(float), params->ith,
                             params->nth);
            return true;
        }
        const int G = aimind_i8_packed_group(w->data);
        GGML_ASSERT(G > 0);
        aimind_i8_quantize((const float *) a->data, a->nb[1] / sizeof(float), M, K, G, work, params->ith, params->nth);
        ggml_barrier(params->threadpool);
        aimind_i8_gemm(work, w->data, M, N, K, (float *) op->data, op->nb[1] / sizeof(float), params->ith,
                       params->nth);
        return true;
    }
};

tensor_traits g_traits;

class extra_buffer_type : public ggml::cpu::extra_buffer_type {
    bool supports_op(ggml_backend_dev_t, const ggml_tensor * op) override {
        if (op->op != GGML_OP_MUL_MAT) {
            return false;
        }
        const ggml_tensor * w = op->src[0];
        const ggml_tensor * a = op->src[1];
        if (!w->buffer || w->buffer->buft != ggml_backend_aimind_i8_buffer_type()) {
            return false;
        }
        // a weight with data was packed at load (buffer_init_tensor marked
        // it); one without is being placed, for the host's mode.
        if (w->data != nullptr ? w->extra == nullptr : !packable(w, g_enabled)) {
            return false;
        }
        if (a->type != GGML_TYPE_F32 || a->ne[2] != 1 || a->ne[3] != 1 || a->nb[0] != sizeof(float) ||
            op->type != GGML_TYPE_F32 || op->nb[0] != sizeof(float)) {
            return false;
        }
        if (a->buffer && !ggml_backend_buft_is_host(a->buffer->buft)) {
            return false;
        }
        // llama.cpp asks with a weight that has no data yet when it chooses
        // where weights go: only then does the host's choice count. A
        // weight already packed here always runs here.
        if (w->data == nullptr && !mode_available(g_enabled)) {
            return false;
        }
        return true;
    }

    ggml::cpu::tensor_traits * get_tensor_traits(const ggml_tensor * op) override {
        if (op->op == GGML_OP_MUL_MAT && op->src[0]->buffer &&
            op->src[0]->buffer->buft == ggml_backend_aimind_i8_buffer_type()) {
            return (ggml::cpu::tensor_traits *) op->src[0]->extra;
        }
        return nullptr;
    }
};

void buffer_free(ggml_backend_buffer_t buffer) { ggml_aligned_free(buffer->context, buffer->size); }

void * buffer_base(ggml_backend_buffer_t buffer) { return buffer->context; }

// Weights are placed, sized, initialised and set during one load, under
// the host's mode (g_enabled): a weight this mode packs is marked through
// extra, any other is kept as it is.
ggml_status buffer_init_tensor(ggml_backend_buffer_t, ggml_tensor * tensor) {
    tensor->extra = packable(tensor, g_enabled) ? &g_traits : nullptr;
    return GGML_STATUS_SUCCESS;
}

void buffer_memset_tensor(ggml_backend_buffer_t, ggml_tensor * tensor, uint8_t value, size_t offset, size_t size) {
    memset((char *) tensor->data + offset, value, size);
}

void buffer_set_tensor(ggml_backend_buffer_t, ggml_tensor * tensor, const void * data, size_t offset, size_t size) {
    if (tensor->extra == nullptr) {
        memcpy((char *) tensor->data + offset, data, size);
        return;
    }
    GGML_ASSERT(offset == 0 && size == ggml_nbytes(tensor));  // whole weights only, as llama.cpp loads them
    const int64_t K = tensor->ne[0], N = tensor->ne[1];
    if (g_enabled == 3) {
        aimind_q8v_pack(tensor->data, data, N, K, g_scale_fault);  // the file's blocks, kept exactly
        return;
    }
    std::vector<float> rows((size_t) (N * K));
    const auto *       traits = ggml_get_type_traits(tensor->type);
    for (int64_t n = 0; n < N; n++) {
        traits->to_float((const char *) data + n * tensor->nb[1], rows.data() + n * K, K);
    }
    if (g_enabled == 1) {
        aimind_bf16_pack(tensor->data, rows.data(), N, K, g_scale_fault);
    } else {
        aimind_i8_pack(tensor->data, rows.data(), N, K, group_for(K), g_scale_fault);
    }
}

void buffer_clear(ggml_backend_buffer_t buffer, uint8_t value) { memset(buffer->context, value, buffer->size); }

const ggml_backend_buffer_i buffer_interface = {
    /* .free_buffer   = */ buffer_free,
    /* .get_base      = */ buffer_base,
    /* .init_tensor   = */ buffer_init_tensor,
    /* .memset_tensor = */ buffer_memset_tensor,
    /* .set_tensor    = */ buffer_set_tensor,
    /* .get_tensor    = */ nullptr,
    /* .cpy_tensor    = */ nullptr,
    /* .clear         = */ buffer_clear,
    /* .reset         = */ nullptr,
};

const char * buft_name(ggml_backend_buffer_type_t) { return "AIMIND"; }

ggml_backend_buffer_t buft_alloc(ggml_backend_buffer_type_t buft, size_t size) {
    void * data = ggml_aligned_malloc(size);
    if (data == nullptr) {
        GGML_LOG_ERROR("cannot allocate %zu bytes for aimind's int8 weights\n", size);
        return nullptr;
    }
    return ggml_backend_buffer_init(buft, buffer_interface, data, size);
}

size_t buft_alignment(ggml_backend_buffer_type_t) { return 64; }

size_t buft_alloc_size(ggml_backend_buffer_type_t, const ggml_tensor * tensor) {
    if (!packable(tensor, g_enabled)) {
        return ggml_nbytes(tensor);
    }
    if (g_enabled == 3) {
        return aimind_q8v_packed_size(tensor->ne[1], tensor->ne[0]);
    }
    if (g_enabled == 1) {
        return aimind_bf16_packed_size(tensor->ne[1], tensor->ne[0]);
    }
    return aimind_i8_packed_size(tensor->ne[1], tensor->ne[0], 64);  // room for any group's scales
}

}  // namespace

extern "C" void ggml_aimind_i8_configure(int mode, int group, float scale_fault) {
    g_enabled     = mode;
    g_group       = group;
    g_scale_fault = scale_fault;
}

extern "C" int ggml_aimind_i8_available(int mode) { return mode_available(mode) ? 1 : 0; }

extern "C" ggml_backend_buffer_type_t ggml_backend_aimind_i8_buffer_type(void) {
    static ggml_backend_buffer_type buft = {
        /* .iface = */ {
            /* .get_name       = */ buft_name,
            /* .alloc_buffer   = */ buft_alloc,
            /* .get_alignment  = */ buft_alignment,
            /* .get_max_size   = */ nullptr,
            /* .get_alloc_size = */ buft_alloc_size,
            /* .is_host        = */ nullptr,
        },
        /* .device  = */ ggml_backend_reg_dev_get(ggml_backend_cpu_reg(), 0),
        /* .context = */ new extra_buffer_type(),
    };
    if (!aimind_i8_available() && !aimind_bf16_available() && !aimind_q8v_available()) {
        return nullptr;
    }
    return &buft;
}
