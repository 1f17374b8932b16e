package deploy_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aimind/aimind/internal/testutil"
)

// TestGPUBundleDryRun makes the GPU bundle with build.sh and runs its script
// on this machine without CUDA (AIMIND_GPU=cpu, the CPU build's libraries,
// a tiny model): the C-archive link, the CPU-against-GPU score comparison
// (here CPU against CPU) and the loads all run as they will on the GPU
// machine. The real run needs a GPU (issue "GPU", 7 of 7).
func TestGPUBundleDryRun(t *testing.T) {
	needTool(t, "g++", "g++")
	needTool(t, "xz", "xz-utils")
	bundle := filepath.Join(t.TempDir(), "bundle")
	cmd := exec.Command("./build.sh", "gpu-bundle", bundle)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh gpu-bundle: %v\n%s", err, out)
	}
	var size int64
	filepath.Walk(bundle, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	// What travels to the GPU machine with the working tree: at most 64 MiB.
	if size > 48<<20 {
		t.Errorf("the bundle holds %d MiB; it must travel in 64 MiB with the tree", size>>20)
	}
	libs, err := filepath.Abs("../third_party/out")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	run := exec.Command(filepath.Join(bundle, "run.sh"))
	run.Env = append(os.Environ(), "AIMIND_GPU=cpu", "AIMIND_LLAMA_LIBS="+libs, "SHAPE=tiny", "TYPE=f32",
		"PAIRS=20", "CLIENTS=1 2", "REQUESTS=2", "DOCS=3", "DWORDS=10", "WORK="+work,
		fmt.Sprintf("PORT=%d", testutil.FreePort(t)))
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("run.sh: %v\n%s", err, out)
	}
	text := string(out)
	m := regexp.MustCompile(`(\d+) lines, \d+ queries`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no score comparison in:\n%s", text)
	}
	if n, _ := strconv.Atoi(m[1]); n != 23 { // the seed request's 3 pairs and 20 random ones
		t.Errorf("%d pairs compared, want 23:\n%s", n, text)
	}
	for _, want := range []string{"aimind dev", "clients 1:", "clients 2:", "share of 989 TFLOPS", "one 20-document request at a time:"} {
		if !strings.Contains(text, want) {
			t.Errorf("run.sh output lacks %q:\n%s", want, text)
		}
	}
	// The comparison can fail: a CPU score moved past 1e-2 relative stops the script.
	cpu, err := os.ReadFile(filepath.Join(work, "cpu.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(cpu), "\n", 2)
	bad := regexp.MustCompile(`"score":[-0-9.e+]+`).ReplaceAllString(lines[0], `"score":1000`) + "\n" + lines[1]
	os.WriteFile(filepath.Join(work, "bad.jsonl"), []byte(bad), 0o644)
	chk := exec.Command(filepath.Join(work, "aimind"), "check", "--data-dir", filepath.Join(work, "data"), "--self-check=off",
		"--max-rel-diff", "0.01", "--golden", filepath.Join(work, "bad.jsonl"), filepath.Join(work, "model.gguf"))
	if out, err := chk.CombinedOutput(); err == nil || !strings.Contains(string(out), "--max-rel-diff") {
		t.Errorf("a score off by 1000 passed the comparison: %v\n%s", err, out)
	}
}
