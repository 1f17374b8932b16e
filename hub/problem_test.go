package hub_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/hub/hubtest"
)

// closedURL is an address nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// TestExplain classifies the errors the hub client really returns (a hub
// that is down, an unknown repository, wrong bytes, a cut download, a repo
// without GGUF) into what happened and what to do.
func TestExplain(t *testing.T) {
	ctx := context.Background()
	repo := fakeRepo()
	bad := &hubtest.Repo{ID: "broken/bad-GGUF", Files: map[string][]byte{"bad-Q8_0.gguf": payload(5000, 9)},
		Hashes: map[string]string{"bad-Q8_0.gguf": strings.Repeat("ab", 32)}}
	plain := &hubtest.Repo{ID: "BAAI/bge-reranker-v2-m3", Files: map[string][]byte{"model.safetensors": payload(10, 1)}}
	fake := hubtest.New(repo, bad, plain)
	defer fake.Close()
	check := func(what string, err error, kind, field string, words ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		p := hub.Explain(err, hub.HuggingFace, "gpustack/bge-reranker-v2-m3-GGUF")
		if p.Kind != kind || p.Field != field {
			t.Fatalf("%s: %q classified as %s/%s, want %s/%s", what, err, p.Kind, p.Field, kind, field)
		}
		all := p.What + " " + p.Fix
		for _, w := range words {
			if !strings.Contains(all, w) {
				t.Errorf("%s: %q lacks %q", what, all, w)
			}
		}
		if p.Detail == "" || strings.Contains(p.What, "dial tcp") {
			t.Errorf("%s: the raw error belongs in Detail: %+v", what, p)
		}
	}

	down, _ := hub.NewHuggingFace(closedURL(t), "", t.TempDir(), nil)
	_, err := down.List(ctx, "gpustack/bge-reranker-v2-m3-GGUF", "main")
	check("hub down", err, "unreachable", "repo", "cannot be reached", "HF_ENDPOINT", "aimind pull gpustack/bge-reranker-v2-m3-GGUF", "--offline", "local")

	hf, _ := hub.NewHuggingFace(fake.URL, "", t.TempDir(), nil)
	_, err = hf.List(ctx, "nobody/no-such-repo", "main")
	check("unknown repo", err, "not_found", "repo", "spelling", "HF_TOKEN")

	l, err := hf.List(ctx, bad.ID, "main")
	if err != nil {
		t.Fatal(err)
	}
	_, err = hf.Download(ctx, l, l.Files[0], "main", nil)
	check("wrong bytes", err, "damaged", "file", "checksum", "Retry")

	l, _ = hf.List(ctx, repo.ID, "main")
	f, _ := hub.Pick(l.Files, "bge-reranker-v2-m3-Q8_0.gguf", "")
	fake.CutAfter = 100_000
	_, err = hf.Download(ctx, l, f, "main", nil)
	check("cut download", err, "incomplete", "file", "stopped at 33%", "resumes")

	l, _ = hf.List(ctx, plain.ID, "main")
	_, err = hub.Pick(l.Files, "", "")
	check("no GGUF", err, "no_gguf", "repo", "GGUF files only")

	if p := hub.Explain(context.Canceled, hub.HuggingFace, ""); p.Kind != "hub_error" || p.What == "" {
		t.Fatalf("an unknown error: %+v", p)
	}
}

// TestSanitize: what errors carry from URLs and headers never reaches a
// person or a log.
func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		`Get "https://cdn-lfs.hf.co/repos/ab/cd/file.gguf?X-Amz-Signature=deadbeef&Expires=1": dial tcp 1.2.3.4:443: i/o timeout`: `Get "https://cdn-lfs.hf.co/repos/ab/cd/file.gguf?…": dial tcp 1.2.3.4:443: i/o timeout`,
		`proxy http://user:secret@proxy.local:3128/ refused`:                                                                      `proxy http://proxy.local:3128/ refused`,
		`sent Authorization: Bearer hf_abcdefghijklmnop to the mirror`:                                                            `sent Authorization: Bearer … to the mirror`,
		`set HF_ENDPOINT or HF_TOKEN_PATH, not hf_abcdefghijklmnopqrstu`:                                                          `set HF_ENDPOINT or HF_TOKEN_PATH, not hf_…`,
		`token hf_abcdefghijklmnopqrstu leaked`:                                                                                   `token hf_… leaked`,
		`key aimind_0123abcd_` + strings.Repeat("f", 64) + ` refused`:                                                             `key aimind_… refused`,
		`retry with api_key=abc123&x=1 failed`:                                                                                    `retry with api_key=…&x=1 failed`,
		`plain error: no such file`:                                                                                               `plain error: no such file`,
	} {
		if got := hub.Sanitize(in); got != want {
			t.Errorf("Sanitize(%q)\n = %q\nwant %q", in, got, want)
		}
	}
}

// TestListFromCacheWhenHubDown: a repository downloaded before is listed
// from the local cache when the hub cannot be reached, and can be
// "downloaded" (found) again; a repository not in the cache still fails.
func TestListFromCacheWhenHubDown(t *testing.T) {
	ctx := context.Background()
	repo := fakeRepo()
	fake := hubtest.New(repo)
	cache := t.TempDir()
	hf, _ := hub.NewHuggingFace(fake.URL, "", cache, nil)
	l, err := hf.List(ctx, repo.ID, "main")
	if err != nil || l.FromCache {
		t.Fatalf("list with the hub up: %v %+v", err, l)
	}
	f, _ := hub.Pick(l.Files, "", "")
	want, err := hf.Download(ctx, l, f, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	fake.Close()
	l2, err := hf.List(ctx, repo.ID, "main")
	if err != nil || !l2.FromCache || l2.Commit != l.Commit {
		t.Fatalf("list with the hub down: %v %+v", err, l2)
	}
	if len(l2.Files) != 1 || l2.Files[0].Path != f.Path || l2.Files[0].SHA256 != f.SHA256 || l2.Files[0].Size != f.Size {
		t.Fatalf("cached listing %+v, want only %+v", l2.Files, f)
	}
	got, err := hf.Download(ctx, l2, l2.Files[0], "main", nil)
	if err != nil || got != want {
		t.Fatalf("download with the hub down: %q %v, want %q", got, err, want)
	}
	if _, err := hf.List(ctx, "someone/never-downloaded", "main"); err == nil || hub.Explain(err, hub.HuggingFace, "").Kind != "unreachable" {
		t.Fatalf("a repo not in the cache with the hub down: %v", err)
	}
}
