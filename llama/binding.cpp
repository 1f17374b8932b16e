#include "binding.h"

#include <cstdio>
#include <cstring>
#include "ggml-backend.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <exception>
#include <string>

extern "C" void aimindGoLog(int level, char * text);

// The error text llama.cpp logs during one of our calls is kept per thread:
// a cgo call runs on one thread from start to end, so what that thread
// logged is this call's, whatever other models log at the same time.
static thread_local std::string t_err;
static thread_local bool        t_err_on     = false;
static thread_local int         t_last_level = 0;

// err_scope collects the error lines of one call into the caller's buffer
// (err, err_len bytes, NUL-terminated) when the call returns.
struct err_scope {
    char *  out;
    int32_t len;
    err_scope(char * o, int32_t l) : out(o), len(l) {
        t_err.clear();
        t_err_on = true;
        if (out != nullptr && len > 0) {
            out[0] = '\0';
        }
    }
    ~err_scope() {
        t_err_on = false;
        if (out != nullptr && len > 0) {
            snprintf(out, len, "%s", t_err.c_str());
        }
        t_err.clear();
    }
};

static void aimind_log_cb(enum ggml_log_level level, const char * text, void * /*user*/) {
    if (t_err_on) {
        int lvl = level == GGML_LOG_LEVEL_CONT ? t_last_level : (int) level;
        if (lvl == GGML_LOG_LEVEL_ERROR && t_err.size() < 64 * 1024) {
            t_err += text;
        }
    }
    if (level != GGML_LOG_LEVEL_CONT) {
        t_last_level = level;
    }
    aimindGoLog((int) level, const_cast<char *>(text));
}

static void log_exception(const std::exception & e) {
    std::string msg = std::string(e.what()) + "\n";
    aimind_log_cb(GGML_LOG_LEVEL_ERROR, msg.c_str(), nullptr);
}

// Model weights are read into malloc'd buffers (no mmap). glibc raises its
// mmap threshold to the size of the last freed mapped chunk, after which
// weight-sized buffers come from the heap and stay with the process after a
// model is unloaded; a fixed 1 MiB threshold keeps every large buffer in its
// own mapping, returned to the system when freed.
extern "C" void aimind_allocator_init(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}

extern "C" void aimind_log_install(void) {
    llama_log_set(aimind_log_cb, nullptr);
}

extern "C" int32_t aimind_device_count(void) {
    return (int32_t) ggml_backend_dev_count();
}

extern "C" int32_t aimind_device(int32_t i, char * name, int32_t name_len, char * desc, int32_t desc_len,
                                 uint64_t * mem_free, uint64_t * mem_total) {
    if (i < 0 || (size_t) i >= ggml_backend_dev_count() || name_len < 1 || desc_len < 1) {
        return -1;
    }
    ggml_backend_dev_t d = ggml_backend_dev_get(i);
    snprintf(name, name_len, "%s", ggml_backend_dev_name(d));
    snprintf(desc, desc_len, "%s", ggml_backend_dev_description(d));
    size_t f = 0, t = 0;
    ggml_backend_dev_memory(d, &f, &t);
    *mem_free = f;
    *mem_total = t;
    return (int32_t) ggml_backend_dev_type(d);
}

extern "C" struct llama_model * aimind_model_load(const char * path, bool vocab_only, int32_t n_gpu_layers, bool extra_bufts,
                                                  const char * device, char * err, int32_t err_len) {
    err_scope scope(err, err_len);
    try {
        llama_model_params p = llama_model_default_params();
        // The device was checked in Go against aimind_device's list.
        ggml_backend_dev_t devs[2] = {nullptr, nullptr};
        if (device != nullptr && device[0] != '\0') {
            devs[0] = ggml_backend_dev_by_name(device);
            if (devs[0] == nullptr) {
                return nullptr;
            }
            p.devices = devs;
        }
        p.vocab_only   = vocab_only;
        p.n_gpu_layers = n_gpu_layers;
        // Weights are read into memory, not mapped: a file truncated or
        // rewritten under a served model would raise SIGBUS on the next
        // request through a mapping.
        p.use_mmap     = false;
        p.use_extra_bufts = extra_bufts;
        return llama_model_load_from_file(path, p);
    } catch (const std::exception & e) {
        log_exception(e);
        return nullptr;
    } catch (...) {
        return nullptr;
    }
}

extern "C" struct llama_context * aimind_context_new(struct llama_model * model, uint32_t n_ctx, uint32_t n_seq_max,
                                                     int32_t n_threads, bool flash_attn, bool f32_cache, char * err, int32_t err_len) {
    err_scope scope(err, err_len);
    try {
        llama_context_params p = llama_context_default_params();
        p.n_ctx           = n_ctx;
        p.n_batch         = n_ctx;
        p.n_ubatch        = n_ctx;
        p.n_seq_max       = n_seq_max;
        p.n_threads       = n_threads;
        p.n_threads_batch = n_threads;
        p.embeddings      = true;
        p.pooling_type    = LLAMA_POOLING_TYPE_RANK;
        p.flash_attn_type = flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
        p.no_perf         = true;
        // Sequences share one unified buffer: otherwise llama.cpp splits n_ctx
        // across n_seq_max and rounds it up per sequence.
        p.kv_unified      = true;
        if (f32_cache) {
            p.type_k = GGML_TYPE_F32;
            p.type_v = GGML_TYPE_F32;
        }
        return llama_init_from_model(model, p);
    } catch (const std::exception & e) {
        log_exception(e);
        return nullptr;
    } catch (...) {
        return nullptr;
    }
}

extern "C" int32_t aimind_tokenize(const struct llama_vocab * vocab, const char * text, int32_t len,
                                   int32_t * out, int32_t n_max, bool parse_special, char * err, int32_t err_len) {
    err_scope scope(err, err_len);
    try {
        return llama_tokenize(vocab, text, len, out, n_max, false, parse_special);
    } catch (const std::exception & e) {
        log_exception(e);
        return INT32_MIN;
    } catch (...) {
        return INT32_MIN;
    }
}

// decode_shared_prefix decodes a causal model's sequences whose first
// tokens are the same (the system prompt and, within one request, the
// instruction and query) with that prefix computed once: it is decoded as
// sequence 0, its cache cells are shared with every other sequence, then
// each sequence's own tokens follow at the prefix's positions. Causal
// attention makes the result the same as decoding each sequence whole.
static int32_t decode_shared_prefix(struct llama_context * ctx, struct llama_batch * batch,
                                    const int32_t * tokens, const int32_t * seq_lens, int32_t n_seqs,
                                    int32_t prefix) {
    llama_memory_t mem = llama_get_memory(ctx);
    for (int32_t j = 0; j < prefix; j++) {
        batch->token[j]     = tokens[j];
        batch->pos[j]       = j;
        batch->n_seq_id[j]  = 1;
        batch->seq_id[j][0] = 0;
        batch->logits[j]    = j == prefix - 1; // read and discarded: a pass with no output is not pooled
    }
    batch->n_tokens = prefix;
    int32_t rc = llama_decode(ctx, *batch);
    if (rc != 0) {
        return rc;
    }
    for (int32_t s = 1; s < n_seqs; s++) {
        llama_memory_seq_cp(mem, 0, s, -1, -1);
    }
    int32_t n = 0, off = 0;
    for (int32_t s = 0; s < n_seqs; s++) {
        for (int32_t j = prefix; j < seq_lens[s]; j++, n++) {
            batch->token[n]     = tokens[off + j];
            batch->pos[n]       = j;
            batch->n_seq_id[n]  = 1;
            batch->seq_id[n][0] = s;
            batch->logits[n]    = j == seq_lens[s] - 1;
        }
        off += seq_lens[s];
    }
    batch->n_tokens = n;
    return llama_decode(ctx, *batch);
}

// common_prefix is the number of leading tokens all sequences share, kept
// below the shortest sequence's length so that each has a token of its own.
static int32_t common_prefix(const int32_t * tokens, const int32_t * seq_lens, int32_t n_seqs) {
    int32_t p = seq_lens[0] - 1;
    int32_t off = seq_lens[0];
    for (int32_t s = 1; s < n_seqs && p > 0; s++) {
        if (seq_lens[s] - 1 < p) {
            p = seq_lens[s] - 1;
        }
        int32_t j = 0;
        while (j < p && tokens[off + j] == tokens[j]) {
            j++;
        }
        p = j;
        off += seq_lens[s];
    }
    return p;
}

extern "C" int32_t aimind_encode(struct llama_context * ctx, struct llama_batch * batch,
                                 const int32_t * tokens, const int32_t * seq_lens, int32_t n_seqs,
                                 float * out, int32_t n_out, bool causal, char * err, int32_t err_len) {
    err_scope scope(err, err_len);
    try {
        int32_t rc;
        int32_t prefix = causal && n_seqs > 1 ? common_prefix(tokens, seq_lens, n_seqs) : 0;
        if (causal) {
            // Each call is a fresh set of sequences: nothing of the last
            // call's cache may be attended to.
            llama_memory_clear(llama_get_memory(ctx), true);
        }
        if (prefix > 0) {
            rc = decode_shared_prefix(ctx, batch, tokens, seq_lens, n_seqs, prefix);
        } else {
            int32_t n = 0;
            for (int32_t s = 0; s < n_seqs; s++) {
                for (int32_t j = 0; j < seq_lens[s]; j++, n++) {
                    batch->token[n]     = tokens[n];
                    batch->pos[n]       = j;
                    batch->n_seq_id[n]  = 1;
                    batch->seq_id[n][0] = s;
                    // Only first tokens are read; patch 0001 then skips the
                    // last layer for the others (stock llama.cpp overrides this).
                    // A causal model is read on its last token.
                    batch->logits[n]    = causal ? j == seq_lens[s] - 1 : j == 0;
                }
            }
            batch->n_tokens = n;
            rc = causal ? llama_decode(ctx, *batch) : llama_encode(ctx, *batch);
        }
        if (rc != 0) {
            return rc;
        }
        for (int32_t s = 0; s < n_seqs; s++) {
            const float * e = llama_get_embeddings_seq(ctx, s);
            if (e == nullptr) {
                return -100;
            }
            std::memcpy(out + (size_t) s * n_out, e, sizeof(float) * n_out);
        }
        return 0;
    } catch (const std::exception & e) {
        log_exception(e);
        return -101;
    } catch (...) {
        return -101;
    }
}

extern "C" int32_t aimind_token_to_piece(const struct llama_vocab * vocab, int32_t token, char * buf, int32_t len) {
    try {
        return llama_token_to_piece(vocab, token, buf, len, 0, true);
    } catch (...) {
        return INT32_MIN;
    }
}

extern "C" uint32_t aimind_quantize(const char * in, const char * out, int32_t ftype, int32_t n_threads, char * err, int32_t err_len) {
    err_scope scope(err, err_len);
    try {
        llama_model_quantize_params p = llama_model_quantize_default_params();
        p.ftype   = (enum llama_ftype) ftype;
        p.nthread = n_threads;
        return llama_model_quantize(in, out, &p);
    } catch (...) {
        return 1;
    }
}
