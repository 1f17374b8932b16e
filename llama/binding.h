// C helpers for the Go binding. Each helper does several llama.cpp calls in
// one cgo crossing and catches C++ exceptions, which must never unwind into Go.
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "llama.h"

// The helpers that can fail take err, err_len last: the error text llama.cpp
// logged during that call, on its thread, is copied there NUL-terminated,
// so two models failing at once never swap messages.

#ifdef __cplusplus
extern "C" {
#endif

void aimind_log_install(void);
void aimind_allocator_init(void);
// device: a ggml backend device name ("CUDA0") the offloaded layers go to,
// or NULL/"" for llama.cpp's choice.
struct llama_model * aimind_model_load(const char * path, bool vocab_only, int32_t n_gpu_layers, bool extra_bufts, const char * device,
                                       char * err, int32_t err_len);

// aimind's AMX kernels (third_party/kernels/i8gemm-ggml.cpp, compiled into
// ggml-cpu): whether a mode (1 BF16, 2 int8) can run here, and what the next
// load does with Q8_0 weights (mode, int8 scale group, a test-only fault).
int  ggml_aimind_i8_available(int mode);
void ggml_aimind_i8_configure(int mode, int group, float scale_fault);
// aimind's tiled attention (third_party/kernels/attn.cpp, patch 0004):
// on by default; off hands flash attention back to ggml's loop.
void aimind_attn_enable(int on);
int  aimind_attn_supported(int64_t DK, int64_t DV);
// aimind_device_count and aimind_device describe ggml's backend devices:
// name and description copied into the buffers, the type returned
// (0 CPU, 1 GPU, 2 integrated GPU, 3 accelerator; -1 for no such index).
int32_t aimind_device_count(void);
int32_t aimind_device(int32_t i, char * name, int32_t name_len, char * desc, int32_t desc_len,
                      uint64_t * mem_free, uint64_t * mem_total);
struct llama_context * aimind_context_new(struct llama_model * model, uint32_t n_ctx, uint32_t n_seq_max,
                                          int32_t n_threads, bool flash_attn, bool f32_cache, char * err, int32_t err_len);
int32_t aimind_tokenize(const struct llama_vocab * vocab, const char * text, int32_t len,
                        int32_t * out, int32_t n_max, bool parse_special, char * err, int32_t err_len);
// aimind_encode runs one pass over n_seqs sequences laid out back to back in
// tokens (seq_lens[i] tokens each) and copies n_out floats per sequence into
// out. An encoder reads each sequence's first token; a causal model (causal)
// runs llama_decode on an emptied cache and reads each sequence's last token.
// Returns 0 on success.
int32_t aimind_encode(struct llama_context * ctx, struct llama_batch * batch,
                      const int32_t * tokens, const int32_t * seq_lens, int32_t n_seqs,
                      float * out, int32_t n_out, bool causal, char * err, int32_t err_len);
int32_t aimind_token_to_piece(const struct llama_vocab * vocab, int32_t token, char * buf, int32_t len);
uint32_t aimind_quantize(const char * in, const char * out, int32_t ftype, int32_t n_threads, char * err, int32_t err_len);

#ifdef __cplusplus
}
#endif
