package main_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aimind/aimind/internal/spmref"
	"github.com/aimind/aimind/internal/synth"
)

// TestCheckGolden runs `aimind check --golden` as a user would, with a golden
// file computed elsewhere: token ids from the reference SentencePiece and
// scores from the float64 forward pass, never from aimind.
func TestCheckGolden(t *testing.T) {
	sp := spmref.Trained(t)
	spec := synth.Tiny()
	spec.Seed = 44
	spec.Custom = sp.Vocab
	model := filepath.Join(t.TempDir(), "stand-in-F32.gguf")
	if err := synth.Write(model, spec); err != nil {
		t.Fatal(err)
	}
	queries := []string{"什么是熊猫？", "panda bamboo forest", "Панда медведь"}
	docs := []string{"大熊猫 吃 竹子", "the giant panda lives in the mountains of china", "Кraków żółw", "🐼 🎋", "hello world", "ＡＢＣ １２３"}
	var lines []string
	for _, q := range queries {
		scores, _ := sp.Scores(t, model, q, docs)
		for di, d := range docs {
			b, _ := json.Marshal(map[string]any{"query": q, "document": d, "score": scores[di]})
			lines = append(lines, string(b))
		}
	}
	write := func(ls []string) string {
		p := filepath.Join(t.TempDir(), "golden.jsonl")
		if err := os.WriteFile(p, []byte(strings.Join(ls, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := []string{"check", "--data-dir", t.TempDir(), "--threads", "1", "--self-check=off", "--max-diff", "0.05"}
	worst := regexp.MustCompile(`worst ([0-9.e+-]+) at line (\d+)`)

	out, code := run(t, append(base, "--golden", write(lines), model)...)
	m := worst.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if w, _ := strconv.ParseFloat(m[1], 64); w > 0.05 {
		t.Fatalf("worst difference %g against the reference:\n%s", w, out)
	}
	n := len(docs) * (len(docs) - 1) / 2 * len(queries)
	if !strings.Contains(out, fmt.Sprintf("ordered as expected: %d of %d", n, n)) {
		t.Errorf("ranking agreement missing or short:\n%s", out)
	}

	// One expected score off by 3: found, named by its line, and a failure.
	bad := append([]string{}, lines...)
	var g map[string]any
	json.Unmarshal([]byte(bad[7]), &g)
	g["score"] = g["score"].(float64) + 3
	b, _ := json.Marshal(g)
	bad[7] = string(b)
	out, code = run(t, append(base, "--golden", write(bad), model)...)
	if m := worst.FindStringSubmatch(out); code == 0 || m == nil || m[2] != "8" || !strings.Contains(out, "--max-diff") {
		t.Fatalf("a golden score 3 off: exit %d:\n%s", code, out)
	}

	// Sigmoid golden scores compare in that space.
	sig := make([]string, len(lines))
	for i, l := range lines {
		var g map[string]any
		json.Unmarshal([]byte(l), &g)
		g["score"] = 1 / (1 + math.Exp(-g["score"].(float64)))
		b, _ := json.Marshal(g)
		sig[i] = string(b)
	}
	if out, code := run(t, append(base, "--scores", "sigmoid", "--golden", write(sig), model)...); code != 0 {
		t.Fatalf("sigmoid golden file: exit %d:\n%s", code, out)
	}

	// A malformed line is named; nothing is loaded.
	out, code = run(t, append(base, "--golden", write([]string{lines[0], `{"query": "q", "document": "d"}`}), model)...)
	if code == 0 || !strings.Contains(out, "golden.jsonl:2") {
		t.Fatalf("malformed golden line: exit %d:\n%s", code, out)
	}

	// With the self-check on, random weights are suspect and the exit says so.
	out, code = run(t, "check", "--data-dir", t.TempDir(), "--threads", "1", model)
	if code == 0 || !strings.Contains(out, "self-check: suspect") || !strings.Contains(out, "FAIL relevant first") {
		t.Fatalf("self-check of random weights: exit %d:\n%s", code, out)
	}
}
