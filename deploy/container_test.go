package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
)

// dockerfile reads the recipe's final stage: its instructions by keyword.
func dockerfile(t *testing.T) (build []string, final map[string][]string) {
	t.Helper()
	f, err := os.Open("container/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, `\`) {
			cur.WriteString(strings.TrimSuffix(l, `\`) + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	stage := -1
	final = map[string][]string{}
	for _, l := range lines {
		kw, rest, _ := strings.Cut(l, " ")
		kw = strings.ToUpper(kw)
		if kw == "FROM" {
			stage++
			final = map[string][]string{}
		}
		if stage == 0 {
			build = append(build, l)
		}
		final[kw] = append(final[kw], rest)
	}
	return build, final
}

// TestContainerRecipeBuildsAndServes runs the recipe's build steps outside a
// container (no container engine runs here): deploy/container/build-rootfs.sh
// on a copy of the repository, as the Dockerfile's build stage does. The
// root file system it lays out is then run as the image would run: chrooted,
// as the non-root user, answering the seed request and the healthcheck.
func TestContainerRecipeBuildsAndServes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running the image's file system needs chroot, which needs root (CI runs as root)")
	}
	build, final := dockerfile(t)
	runsScript := false
	for _, l := range build {
		if strings.Contains(l, "RUN deploy/container/build-rootfs.sh /rootfs") {
			runsScript = true
		}
	}
	if !runsScript || len(final["FROM"]) != 1 || final["FROM"][0] != "scratch" {
		t.Fatalf("the recipe no longer builds with build-rootfs.sh into a scratch image: build %q, final FROM %q", build, final["FROM"])
	}
	if len(final["USER"]) != 1 || final["USER"][0] != "65532:65532" {
		t.Fatalf("the image's user is %q, want 65532:65532", final["USER"])
	}
	var health []string
	if len(final["HEALTHCHECK"]) != 1 || json.Unmarshal([]byte(final["HEALTHCHECK"][0][strings.Index(final["HEALTHCHECK"][0], "CMD ")+4:]), &health) != nil {
		t.Fatalf("HEALTHCHECK: %q", final["HEALTHCHECK"])
	}
	env := []string{}
	for _, e := range final["ENV"] {
		env = append(env, strings.Fields(e)...)
	}

	src := copyRepo(t)
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(src, "deploy/container/build-rootfs.sh"), rootfs).CombinedOutput()
	if err != nil {
		t.Fatalf("build-rootfs.sh: %v\n%s", err, out)
	}

	// Only the binary, its loader and libraries, CA certificates and the
	// small files the image needs.
	var files []string
	filepath.Walk(rootfs, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(rootfs, p)
			files = append(files, rel)
		}
		return nil
	})
	allowed := regexp.MustCompile(`^(usr/local/bin/aimind|(usr/)?lib(64|/x86_64-linux-gnu)?/(ld-linux-x86-64\.so\.2|lib[a-z+_]+\.so\.[0-9]+)|etc/ssl/certs/ca-certificates\.crt|etc/(passwd|group))$`)
	for _, f := range files {
		if !allowed.MatchString(f) {
			t.Errorf("unexpected file in the image: %s", f)
		}
	}

	// x86-64-v3: llama.cpp and ggml (the libraries build.sh linked for the
	// build) hold AVX2 code and no AVX-512 (zmm) instruction. (Go's own
	// runtime picks AVX-512 code at run time; it is not looked at.)
	libs, _ := filepath.Glob(filepath.Join(src, "third_party/out/lib/*.a"))
	if len(libs) == 0 {
		t.Fatal("no llama.cpp libraries under the copy's third_party/out")
	}
	ymm := 0
	for _, lib := range libs {
		dis, err := exec.Command("objdump", "-d", "--no-show-raw-insn", lib).Output()
		if err != nil {
			t.Fatalf("objdump %s: %v", lib, err)
		}
		if n := bytes.Count(dis, []byte("%zmm")); n > 0 {
			t.Errorf("%s in the portable x86-64-v3 build uses AVX-512 registers %d times", filepath.Base(lib), n)
		}
		ymm += bytes.Count(dis, []byte("%ymm"))
	}
	if ymm == 0 {
		t.Fatal("the portable build has no AVX2 code at all")
	}

	// Run it as the image does: its own root, user 65532, the image's ENV.
	model, err := os.ReadFile(testutil.MustModel(t, synth.Tiny()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "data/tiny.gguf"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t)
	inImage := func(args ...string) *exec.Cmd {
		cmd := exec.Command("/usr/local/bin/aimind", args...)
		cmd.Env = env
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
		return cmd
	}
	srv := inImage("serve", "--host", "127.0.0.1", "--port", fmt.Sprint(port), "--model", "/data/tiny.gguf", "--no-auth", "--threads", "1")
	p := &process{cmd: srv, out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	srv.Stdout, srv.Stderr = p.out, p.out
	srv.WaitDelay = 5 * time.Second
	if err := srv.Start(); err != nil {
		t.Fatalf("cannot start the image's binary: %v", err)
	}
	go func() { p.err = srv.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			srv.Process.Kill()
			<-p.done
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitReady(t, p, base, time.Minute)
	code, body, _, err := rerank(base, "")
	if err != nil || code != http.StatusOK {
		t.Fatalf("seed request: %d %v %s", code, err, body)
	}
	var res struct {
		Results []struct {
			Index int     `json:"index"`
			Score float64 `json:"relevance_score"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || len(res.Results) != 3 {
		t.Fatalf("seed answer: %v %s", err, body)
	}
	for i := 1; i < len(res.Results); i++ {
		if res.Results[i].Score > res.Results[i-1].Score {
			t.Fatalf("results not ranked: %s", body)
		}
	}
	if out, err := inImage("version").Output(); err != nil || !strings.Contains(string(out), "CPU target x86-64-v3") {
		t.Fatalf("aimind version in the image: %v %s", err, out)
	}
	// The healthcheck, as the image declares it, healthy now.
	hc := inImage(append(health[1:], "--url", base+"/health")...)
	if out, err := hc.CombinedOutput(); err != nil || health[0] != "/usr/local/bin/aimind" {
		t.Fatalf("healthcheck %q: %v\n%s", health, err, out)
	}
	// The store went to the image's data volume, owned by the image's user.
	if st, err := os.Stat(filepath.Join(rootfs, "data")); err != nil || st.Sys().(*syscall.Stat_t).Uid != 65532 {
		t.Fatalf("/data: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(rootfs, "data")); len(entries) < 2 {
		t.Fatalf("nothing written to /data: %v", entries)
	}
	srv.Process.Signal(syscall.SIGTERM)
	if code := p.waitExit(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.out.String())
	}
}

// copyRepo copies the files git tracks or would track (the build context,
// less what the recipe's .dockerignore leaves out) into a temporary folder.
func copyRepo(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "-C", "..", "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("cannot list the repository's files with git: %v", err)
	}
	dst := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if f == "" || strings.HasSuffix(f, ".gguf") {
			continue
		}
		if _, err := os.Stat(filepath.Join("..", f)); err != nil {
			continue // deleted in the work tree
		}
		copyFile(t, filepath.Join("..", f), filepath.Join(dst, f))
	}
	return dst
}
