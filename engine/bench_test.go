package engine_test

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/llama"
)

// BenchmarkRerank20x135 scores one request of 20 documents of ~135-token
// pairs, the shape of the project's throughput figures, on the model at
// $AIMIND_BENCH_MODEL (scripts/bench.sh writes them). It reports tokens/s.
func BenchmarkRerank20x135(b *testing.B) {
	path := os.Getenv("AIMIND_BENCH_MODEL")
	if path == "" {
		b.Skip("set AIMIND_BENCH_MODEL to a reranker GGUF")
	}
	m, err := engine.Open(path, benchOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.Logf("kernel: %s", m.Kernel())
	docs := make([]string, 20)
	for i := range docs {
		docs[i] = synth.Text(uint64(i+1), 120)
	}
	pairs, err := m.Tokenize(synth.Text(99, 8), docs)
	if err != nil {
		b.Fatal(err)
	}
	tokens := 0
	for _, p := range pairs {
		tokens += len(p.Tokens)
	}
	if _, err := m.Score(context.Background(), pairs); err != nil { // warm up
		b.Fatal(err)
	}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Score(context.Background(), pairs); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	b.ReportMetric(float64(tokens*b.N)/b.Elapsed().Seconds(), "tokens/s")
	// Tokens per second of CPU time (all threads): on a shared machine the
	// wall clock also counts the time other processes held the cores.
	cpu := time.Duration(after.Utime.Nano() - before.Utime.Nano() + after.Stime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(tokens*b.N)/cpu.Seconds(), "tokens/cpu-s")
}

// benchOptions: flash attention unless $AIMIND_BENCH_FLASH=0, the encoder
// call budget from $AIMIND_BENCH_BATCH (0: the default), the AMX kernels
// from $AIMIND_BENCH_AMX (engine.Options.AMXKernels: bf16, int8, off), the
// int8 scale group from $AIMIND_BENCH_INT8_GROUP, ggml's stock kernels with
// $AIMIND_BENCH_NO_EXTRA=1, aimind's VNNI kernels off with
// $AIMIND_BENCH_VNNI=off, a Q8_0 or F16 file computed as a BF16 copy with
// $AIMIND_BENCH_DERIVED=dir (and $AIMIND_BENCH_Q8_AS_BF16), ggml's
// flash-attention loop instead of aimind's kernel with $AIMIND_BENCH_ATTN=0.
func benchOptions() engine.Options {
	llama.SetAimindAttention(os.Getenv("AIMIND_BENCH_ATTN") != "0")
	batch, _ := strconv.Atoi(os.Getenv("AIMIND_BENCH_BATCH"))
	group, _ := strconv.Atoi(os.Getenv("AIMIND_BENCH_INT8_GROUP"))
	return engine.Options{FlashAttn: os.Getenv("AIMIND_BENCH_FLASH") != "0", BatchTokens: batch,
		AMXKernels: os.Getenv("AIMIND_BENCH_AMX"), Int8Group: group, NoExtraBuffers: os.Getenv("AIMIND_BENCH_NO_EXTRA") == "1",
		VNNIKernels: os.Getenv("AIMIND_BENCH_VNNI"), DerivedDir: os.Getenv("AIMIND_BENCH_DERIVED"), Q8AsBF16: os.Getenv("AIMIND_BENCH_Q8_AS_BF16")}
}

// BenchmarkSeedRequest is the fixed cost of one small request (3 documents
// of 20 words, the seed request's size): tokenizing and one encoder call, on
// the model at $AIMIND_BENCH_MODEL with $AIMIND_BENCH_THREADS threads and
// benchOptions' variants.
func BenchmarkSeedRequest(b *testing.B) {
	path := os.Getenv("AIMIND_BENCH_MODEL")
	if path == "" {
		b.Skip("set AIMIND_BENCH_MODEL to a reranker GGUF")
	}
	o := benchOptions()
	o.Threads, _ = strconv.Atoi(os.Getenv("AIMIND_BENCH_THREADS")) // 0: all CPUs
	m, err := engine.Open(path, o)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	docs := []string{synth.Text(1, 20), synth.Text(2, 20), synth.Text(3, 20)}
	query := synth.Text(99, 12)
	b.Run("tokenize", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := m.Tokenize(query, docs); err != nil {
				b.Fatal(err)
			}
		}
	})
	pairs, err := m.Tokenize(query, docs)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("score", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := m.Score(context.Background(), pairs); err != nil {
				b.Fatal(err)
			}
		}
	})
	// One pair of a handful of tokens: what a call costs besides its
	// arithmetic (graph build, thread wake-up, per-op overhead).
	tiny, err := m.Tokenize("a", []string{"b"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("one-pair-call", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := m.Score(context.Background(), tiny); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(tiny[0].Tokens)), "tokens")
	})
}
