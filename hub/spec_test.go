package hub_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/aimind/aimind/hub"
)

// TestIsLocalSpec: which --model values are local files and which hub repos.
func TestIsLocalSpec(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.MkdirAll(filepath.Join("owner", "name"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("owner", "name", "here.gguf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("plainfile", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		spec  string
		local bool
	}{
		{"model.gguf", true},
		{"MODEL.GGUF", true},
		{"models/model.gguf", true},            // one slash: a folder, not owner/name/file
		{"a/b/c/model.gguf", true},             // three slashes: a path
		{"/srv/models/bge", true},              // absolute, even without .gguf
		{"./bge", true},                        // relative to here
		{"../bge", true},                       // relative to the parent
		{"owner/name/here.gguf", true},         // hub-shaped, but the file exists
		{"plainfile", true},                    // an existing file without .gguf
		{"owner/name", false},                  // a repo
		{"owner/name:Q8_0", false},             // a repo with a quantisation
		{"owner/name/file.gguf", false},        // a repo's file (does not exist here)
		{"hf:owner/name", false},               // prefixed
		{"ms:owner/name/x.gguf", false},        // prefixed, with a file
		{"modelscope:owner/model.gguf", false}, // prefixed, with a colon
		{"owner", false},                       // not local: ParseSpec refuses it
		{"owner/name/", false},                 // a directory-shaped repo name
	}
	for _, c := range cases {
		if got := hub.IsLocalSpec(c.spec); got != c.local {
			t.Errorf("IsLocalSpec(%q) = %v, want %v", c.spec, got, c.local)
		}
	}
}

// TestDefaultRevision: each hub's default branch, as specs and deploys use.
func TestDefaultRevision(t *testing.T) {
	for src, want := range map[hub.Source]string{hub.HuggingFace: "main", hub.ModelScope: "master"} {
		if got := hub.DefaultRevision(src); got != want {
			t.Errorf("DefaultRevision(%s) = %q, want %q", src, got, want)
		}
		sp, err := hub.ParseSpec(map[hub.Source]string{hub.HuggingFace: "hf:", hub.ModelScope: "ms:"}[src] + "owner/name")
		if err != nil || sp.Revision != want {
			t.Errorf("ParseSpec for %s: revision %q, %v", src, sp.Revision, err)
		}
	}
}
