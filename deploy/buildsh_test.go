package deploy_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeMachine is a PATH of links to this machine's programs without cmake
// (and without the programs named in hide), plus a stub apt-get that logs its
// arguments and "installs" cmake by linking the real one into the PATH.
type fakeMachine struct {
	bin, log, repo string
}

func newFakeMachine(t *testing.T, hide ...string) fakeMachine {
	t.Helper()
	realCmake, err := exec.LookPath("cmake")
	if err != nil {
		t.Skip("cmake is not installed here, so there is nothing to hide from build.sh (./build.sh installs it)")
	}
	root := t.TempDir()
	m := fakeMachine{bin: filepath.Join(root, "bin"), log: filepath.Join(root, "apt.log"), repo: filepath.Join(root, "repo")}
	if err := os.Mkdir(m.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	skip := map[string]bool{"cmake": true, "apt-get": true}
	for _, h := range hide {
		skip[h] = true
	}
	goDir := filepath.Dir(mustLook(t, "go"))
	for _, dir := range []string{goDir, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			dst := filepath.Join(m.bin, e.Name())
			if skip[e.Name()] {
				continue
			}
			if _, err := os.Lstat(dst); err == nil {
				continue // the first directory on PATH wins
			}
			os.Symlink(filepath.Join(dir, e.Name()), dst)
		}
	}
	stub := `#!/bin/sh
echo "apt-get $*" >> "` + m.log + `"
case " $* " in
  *" install "*)
    for p in "$@"; do
      [ "$p" = cmake ] && ln -sf "` + realCmake + `" "` + m.bin + `/cmake"
    done;;
esac
exit 0
`
	if err := os.WriteFile(filepath.Join(m.bin, "apt-get"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	// The part of the repository build.sh reads: the recipe, patches and kernels,
	// go.mod for the module download; llama/ receives the build key.
	for _, f := range []string{"build.sh", "go.mod", "go.sum", "third_party/CMakeLists.txt"} {
		copyFile(t, filepath.Join("..", f), filepath.Join(m.repo, f))
	}
	patches, _ := filepath.Glob("../third_party/patches/*.patch")
	for _, p := range patches {
		copyFile(t, p, filepath.Join(m.repo, "third_party/patches", filepath.Base(p)))
	}
	// aimind's own kernels, compiled into ggml-cpu (part of the build key).
	kernels, _ := filepath.Glob("../third_party/kernels/*")
	for _, k := range kernels {
		copyFile(t, k, filepath.Join(m.repo, "third_party/kernels", filepath.Base(k)))
	}
	if err := os.MkdirAll(filepath.Join(m.repo, "llama"), 0o755); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustLook(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not on PATH", name)
	}
	return p
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(src)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

// buildSh runs the copied build.sh with only the fake machine's PATH.
func (m fakeMachine) buildSh(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(m.bin, "bash"), append([]string{filepath.Join(m.repo, "build.sh")}, args...)...)
	cmd.Env = []string{"PATH=" + m.bin, "HOME=" + os.Getenv("HOME")}
	for _, k := range []string{"GOPATH", "GOMODCACHE", "GOCACHE", "GOFLAGS", "GOPROXY", "GONOSUMDB", "GOTOOLCHAIN", "XDG_CACHE_HOME", "AIMIND_CACHE_DIR"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

// TestBuildShInstallsMissingCmake: on a machine without cmake, run as root,
// build.sh installs it with apt-get and goes on to build (here llama.cpp
// from the cache the real build filled).
func TestBuildShInstallsMissingCmake(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("build.sh installs packages itself only as root or with passwordless sudo; this test runs as root")
	}
	m := newFakeMachine(t)
	if _, err := exec.LookPath(filepath.Join(m.bin, "cmake")); err == nil {
		t.Fatal("the fake machine has cmake")
	}
	out, code := m.buildSh(t, "llama")
	if code != 0 {
		t.Fatalf("build.sh llama: exit %d\n%s", code, out)
	}
	log, _ := os.ReadFile(m.log)
	if !strings.Contains(string(log), "apt-get update") || !strings.Contains(string(log), "install -y -qq --no-install-recommends cmake") {
		t.Fatalf("apt-get was not asked for cmake:\n%s\noutput:\n%s", log, out)
	}
	if strings.Contains(string(log), "ninja-build") || strings.Contains(string(log), "g++") {
		t.Fatalf("apt-get was asked for packages that are there:\n%s", log)
	}
	if _, err := os.Lstat(filepath.Join(m.repo, "third_party/out")); err != nil {
		t.Fatalf("build.sh did not go on to link llama.cpp: %v\n%s", err, out)
	}
	// A second run finds everything and installs nothing.
	os.Remove(m.log)
	if out, code := m.buildSh(t, "llama"); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(m.log); err == nil {
		t.Fatal("apt-get ran although nothing was missing")
	}
}

// TestBuildShWithoutRootPrintsTheCommand: not root and no passwordless sudo,
// build.sh prints the one command to run and stops, installing nothing.
func TestBuildShWithoutRootPrintsTheCommand(t *testing.T) {
	m := newFakeMachine(t, "id", "sudo")
	id := "#!/bin/sh\n[ \"$1\" = -u ] && { echo 1000; exit 0; }\nexec /usr/bin/id \"$@\"\n"
	if err := os.WriteFile(filepath.Join(m.bin, "id"), []byte(id), 0o755); err != nil {
		t.Fatal(err)
	}
	out, code := m.buildSh(t, "llama")
	if code == 0 {
		t.Fatalf("build.sh succeeded without cmake:\n%s", out)
	}
	if !strings.Contains(out, "apt-get install -y --no-install-recommends cmake") || !strings.Contains(out, "missing Debian packages: cmake") {
		t.Fatalf("build.sh did not print the command to run:\n%s", out)
	}
	if _, err := os.Stat(m.log); err == nil {
		log, _ := os.ReadFile(m.log)
		t.Fatalf("apt-get ran without root:\n%s", log)
	}
}
