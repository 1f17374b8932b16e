package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSystemdUnitVerifies checks deploy/systemd/aimind.service with
// systemd-analyze: `verify` (syntax, directives, the binary it starts) and
// the offline `security` score of its sandboxing.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile("systemd/aimind.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=aimind", "NoNewPrivileges=yes", "ExecStart=/usr/local/bin/aimind serve"} {
		if !strings.Contains(string(unit), "\n"+d) {
			t.Errorf("the unit lacks %s", d)
		}
	}
	// verify checks that ExecStart's program exists: point it at the binary
	// this test built, in a copy of the unit with the same name.
	dir := t.TempDir()
	copyUnit := filepath.Join(dir, "aimind.service")
	if err := os.WriteFile(copyUnit, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/aimind", binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copyUnit).CombinedOutput()
	if err != nil || strings.Contains(string(out), "aimind.service:") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=true", "--no-pager", copyUnit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for aimind.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	// 0 is fully sandboxed, 10 not at all; systemd calls under 2 "OK".
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score >= 2 {
		t.Fatalf("exposure level %.1f, want under 2:\n%s", score, out)
	}

	// A unit that names a missing directive fails the same check, so the
	// check above can fail.
	bad := filepath.Join(t.TempDir(), "aimind.service")
	os.WriteFile(bad, []byte(strings.Replace(string(unit), "ProtectSystem=strict", "ProtectSystem=strict\nProtectSystme=yes", 1)), 0o644)
	os.WriteFile(bad, []byte(strings.ReplaceAll(mustRead(t, bad), "/usr/local/bin/aimind", binary)), 0o644)
	if out, _ := exec.Command(analyze, "verify", bad).CombinedOutput(); !strings.Contains(string(out), "ProtectSystme") {
		t.Fatalf("systemd-analyze verify accepted an unknown directive:\n%s", out)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
