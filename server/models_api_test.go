package server_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/hub/hubtest"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/models"
)

// TestModelsAPI drives the admin model API: hub search and files, deploy,
// status until running, stop (409), start, delete (404).
func TestModelsAPI(t *testing.T) {
	model, _ := os.ReadFile(testutil.MustModel(t, synth.Tiny()))
	fake := hubtest.New(&hubtest.Repo{ID: "gpustack/bge-reranker-v2-m3-GGUF", Downloads: 7, Likes: 3,
		Files: map[string][]byte{"bge-reranker-v2-m3-Q8_0.gguf": model, "bge-reranker-v2-m3-F16.gguf": model}},
		&hubtest.Repo{ID: "BAAI/bge-reranker-base", Downloads: 900, Files: map[string][]byte{"bge-reranker-base-Q8_0.gguf": model}},
		&hubtest.Repo{ID: "someone/bge-reranker-small", Downloads: 50, Files: map[string][]byte{"small-Q8_0.gguf": model}})
	defer fake.Close()
	s, _, cookie := startModelsAPI(t, fake.URL, engine.Options{Threads: 1, FlashAttn: true}, []string{"k-123456"})

	code, body, _ := s.req(t, "GET", "/api/hub/search?source=huggingface&q=bge-reranker&gguf=true", "", cookie)
	if code != 200 || !strings.Contains(body, `"id":"gpustack/bge-reranker-v2-m3-GGUF"`) || !strings.Contains(body, `"downloads":7`) {
		t.Fatalf("search: %d %s", code, body)
	}
	// Most downloaded first, whatever order the hub answered in.
	_, body, _ = s.req(t, "GET", "/api/hub/search?source=huggingface&q=reranker&gguf=true", "", cookie)
	var found struct{ Data []hub.Repo }
	json.Unmarshal([]byte(body), &found)
	var order []string
	for _, r := range found.Data {
		order = append(order, r.ID)
	}
	if strings.Join(order, " ") != "BAAI/bge-reranker-base someone/bge-reranker-small gpustack/bge-reranker-v2-m3-GGUF" {
		t.Fatalf("search order %v: %s", order, body)
	}
	code, body, _ = s.req(t, "GET", "/api/hub/files?source=huggingface&repo=gpustack/bge-reranker-v2-m3-GGUF", "", cookie)
	if code != 200 || !strings.Contains(body, `"default":"bge-reranker-v2-m3-Q8_0.gguf"`) || !strings.Contains(body, `"name":"bge-reranker-v2-m3"`) {
		t.Fatalf("files: %d %s", code, body)
	}
	if code, body, _ = s.req(t, "GET", "/api/hub/files?repo=../../etc", "", cookie); code != 400 {
		t.Fatalf("hostile repo: %d %s", code, body)
	}
	code, body, _ = s.req(t, "POST", "/api/models", `{"source":"huggingface","repo":"gpustack/bge-reranker-v2-m3-GGUF","file":"bge-reranker-v2-m3-F16.gguf"}`, cookie)
	if code != 202 || !strings.Contains(body, `"status":"pending"`) {
		t.Fatalf("deploy: %d %s", code, body)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, body, _ = s.req(t, "GET", "/api/models/bge-reranker-v2-m3", "", cookie)
		var rec models.Record
		if err := json.Unmarshal([]byte(body), &rec); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if rec.Status == models.StateRunning {
			if rec.File != "bge-reranker-v2-m3-F16.gguf" || rec.Facts == nil {
				t.Fatalf("record %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never running: %s", body)
		}
	}
	key := map[string]string{"Authorization": "Bearer k-123456"}
	rr := `{"model":"bge-reranker-v2-m3","query":"q","documents":["a"]}`
	if code, body, _ := s.req(t, "POST", "/v1/rerank", rr, key); code != 200 {
		t.Fatalf("rerank: %d %s", code, body)
	}
	if code, body, _ := s.req(t, "POST", "/api/models", `{"source":"huggingface","repo":"gpustack/bge-reranker-v2-m3-GGUF"}`, cookie); code != 409 {
		t.Fatalf("second deploy with the same name: %d %s", code, body)
	}
	if code, _, _ := s.req(t, "POST", "/api/models/bge-reranker-v2-m3/stop", "", cookie); code != 200 {
		t.Fatalf("stop: %d", code)
	}
	if code, body, _ := s.req(t, "POST", "/v1/rerank", rr, key); code != 409 || !strings.Contains(body, "stopped") {
		t.Fatalf("rerank on a stopped model: %d %s", code, body)
	}
	if code, _, _ := s.req(t, "POST", "/api/models/bge-reranker-v2-m3/start", "", cookie); code != 200 {
		t.Fatalf("start: %d", code)
	}
	if code, body, _ := s.req(t, "DELETE", "/api/models/bge-reranker-v2-m3?files=true", "", cookie); code != 200 ||
		!strings.Contains(body, `"removed_files":[`) || !strings.Contains(body, `"note":"its downloaded file was removed"`) {
		t.Fatalf("delete: %d %s", code, body)
	}
	if code, _, _ := s.req(t, "POST", "/v1/rerank", rr, key); code != 404 {
		t.Fatalf("rerank on a deleted model: %d", code)
	}
	if code, _, _ := s.req(t, "GET", "/api/models", "", nil); code != 401 {
		t.Fatalf("models API without a session: %d", code)
	}
	if code, _, _ := s.req(t, "POST", "/api/models", `{"source":"local","path":"/etc/passwd","name":"x"}`, cookie); code != 400 {
		t.Fatalf("deploying a non-GGUF local file: %d", code)
	}
}
