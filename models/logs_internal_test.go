package models

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"
)

// TestModelLogsRing: records with a model attribute land in that model's
// ring whatever the process log's level, the ring keeps the last
// LogsPerModel, secrets are stripped, and the process log still gets only
// what its level lets through.
func TestModelLogsRing(t *testing.T) {
	var out bytes.Buffer
	logs := &modelLogs{ring: map[string][]LogEntry{}}
	log := slog.New(&teeHandler{next: slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}), logs: logs})
	for i := range LogsPerModel + 50 {
		log.Info("event", "model", "m", "i", i)
	}
	log.With("model", "w").Warn("cannot reach", "err", `Get "https://cdn.example/x.gguf?X-Amz-Signature=abc": EOF`)
	log.Info("no model here")
	log.WithGroup("g").Info("grouped", "model", "m")
	log.Debug("debug", "model", "m")

	m := logs.get("m")
	if len(m) != LogsPerModel || m[0].Attrs["i"] != "50" || m[len(m)-1].Attrs["i"] != fmt.Sprint(LogsPerModel+49) {
		t.Fatalf("ring of m: %d entries, first %v, last %v", len(m), m[0].Attrs, m[len(m)-1].Attrs)
	}
	w := logs.get("w")
	if len(w) != 1 || w[0].Level != "WARN" || w[0].Attrs["err"] != `Get "https://cdn.example/x.gguf?…": EOF` {
		t.Fatalf("ring of w: %+v", w)
	}
	if len(logs.ring) != 2 {
		t.Fatalf("rings for %d models, want 2", len(logs.ring))
	}
	if bytes.Contains(out.Bytes(), []byte("msg=event")) || !bytes.Contains(out.Bytes(), []byte("msg=\"cannot reach\"")) {
		t.Fatalf("the process log at WARN got:\n%s", out.String())
	}
	logs.forget("m")
	if len(logs.get("m")) != 0 {
		t.Fatal("forget kept the ring")
	}
}
