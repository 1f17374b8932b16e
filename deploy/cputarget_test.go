package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimind/aimind/internal/cputarget"
	"github.com/aimind/aimind/internal/testutil"
)

// TestServeRefusesACPUTheBuildCannotRun: a binary that says it was built
// for a target this CPU lacks stops at start, naming what is missing and
// what to use, instead of reaching ggml's instructions.
func TestServeRefusesACPUTheBuildCannotRun(t *testing.T) {
	target := ""
	for _, tg := range []string{"sapphirerapids", "x86-64-v4", "x86-64-v3"} {
		if missing, _ := cputarget.Missing(tg, cputarget.Host()); len(missing) > 0 {
			target = tg
		}
	}
	if target == "" {
		t.Skip("this CPU has every extension of every portable target")
	}
	bin, err := testutil.BuildAimind("-ldflags", "-X main.cpuTarget="+target)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(filepath.Dir(bin))
	out, err := exec.Command(bin, "serve", "--data-dir", t.TempDir(), "--port", "0").CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "this CPU lacks") || !strings.Contains(string(out), "x86-64-v3") {
		t.Fatalf("serve of a %s build on this CPU: %v\n%s", target, err, out)
	}
}
