package batch_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBuildsWithoutCgo keeps the seam: engine/batch and everything it
// imports build with CGO_ENABLED=0, so its tests run on a machine without
// llama.cpp (a dependency on llama/ would fail here).
func TestBuildsWithoutCgo(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("skipped: no go tool on PATH")
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}} {{len .CgoFiles}}", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list with CGO_ENABLED=0: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, cgoFiles, _ := strings.Cut(line, " ")
		if strings.HasPrefix(pkg, "github.com/aimind/") && (cgoFiles != "0" || strings.HasSuffix(pkg, "/llama")) {
			t.Errorf("engine/batch depends on %s (cgo files: %s)", pkg, cgoFiles)
		}
	}
	build := exec.Command(goTool, "vet", ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go vet with CGO_ENABLED=0 (builds the tests too): %v\n%s", err, out)
	}
}
