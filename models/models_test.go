package models_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/hub/hubtest"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/llama"
	"github.com/aimind/aimind/modelfile"
	"github.com/aimind/aimind/models"
	"github.com/aimind/aimind/selfcheck"
	"github.com/aimind/aimind/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.Cleanup()
	os.Exit(code)
}

type env struct {
	dir, cache string
	fake       *hubtest.Hub
	repo       *hubtest.Repo
}

func newEnv(t *testing.T) *env {
	t.Helper()
	model, err := os.ReadFile(testutil.MustModel(t, synth.Tiny()))
	if err != nil {
		t.Fatal(err)
	}
	other := synth.Tiny()
	other.Seed = 5
	f16, _ := os.ReadFile(testutil.MustModel(t, other))
	repo := &hubtest.Repo{ID: "gpustack/bge-reranker-v2-m3-GGUF", Files: map[string][]byte{
		"bge-reranker-v2-m3-Q8_0.gguf": model, "bge-reranker-v2-m3-FP16.gguf": f16, "README.md": []byte("hi"),
	}}
	fake := hubtest.New(repo)
	t.Cleanup(fake.Close)
	return &env{dir: t.TempDir(), cache: t.TempDir(), fake: fake, repo: repo}
}

// manager opens the store and a manager; online=false points the hub client
// at a closed port.
func (e *env) manager(t *testing.T, online bool) (*models.Manager, *store.Store) {
	t.Helper()
	st, err := store.Open(e.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := e.fake.URL
	if !online {
		url = "http://127.0.0.1:1"
	}
	hf, _ := hub.NewHuggingFace(url, "", e.cache, nil)
	ms, _ := hub.NewModelScope(url, "", filepath.Join(e.cache, "ms"), nil)
	m := models.NewManager(engine.Options{Threads: 1, FlashAttn: true}, st, map[hub.Source]hub.Hub{hub.HuggingFace: hf, hub.ModelScope: ms}, nil)
	return m, st
}

func waitStatus(t *testing.T, m *models.Manager, name string, want models.State) models.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, err := m.Get(name)
		if err == nil && rec.Status == want {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("model %q: status %q (%s), want %q", name, rec.Status, rec.Error, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDeployFromHubThenOfflineRestart(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, true)
	rec, err := m.Deploy(models.Request{Source: hub.HuggingFace, Repo: e.repo.ID}, false)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Name != "bge-reranker-v2-m3" || rec.Status != models.StatePending {
		t.Fatalf("deploy answered %+v", rec)
	}
	rec = waitStatus(t, m, "bge-reranker-v2-m3", models.StateRunning)
	if rec.File != "bge-reranker-v2-m3-Q8_0.gguf" || rec.Commit != e.repo.Commit || len(rec.SHA256) != 64 || rec.Facts == nil || rec.MemoryEst <= rec.Size {
		t.Fatalf("record %+v", rec)
	}
	if _, _, err := m.Resolve("bge-reranker-v2-m3"); err != nil {
		t.Fatal(err)
	}
	m.Close()
	st.Close()

	// A second start works offline, from the cache.
	m, st = e.manager(t, false)
	defer st.Close()
	defer m.Close()
	if err := m.Restore(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, m, "bge-reranker-v2-m3", models.StateRunning)
	eng, _, err := m.Resolve("bge-reranker-v2-m3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Rerank(context.Background(), "q", []string{"a"}); err != nil {
		t.Fatal(err)
	}
}

func TestRestartDuringDownloadResumes(t *testing.T) {
	e := newEnv(t)
	e.fake.Delay = 20 * time.Millisecond // 64 KiB per 20 ms
	m, st := e.manager(t, true)
	if _, err := m.Deploy(models.Request{Source: hub.HuggingFace, Repo: e.repo.ID, Quant: "FP16", Name: "m"}, false); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		rec, _ := m.Get("m")
		if rec.Status == models.StateDownloading && rec.Progress != nil && rec.Progress.Done > 0 {
			if _, _, err := m.Resolve("m"); !errors.Is(err, models.ErrNotReady) {
				t.Fatalf("resolve while downloading: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %+v", rec)
		}
	}
	m.Close() // the process stops mid-download
	st.Close()
	e.fake.Delay = 0
	m, st = e.manager(t, true)
	defer st.Close()
	defer m.Close()
	m.Restore()
	waitStatus(t, m, "m", models.StateRunning)
	if e.fake.Count("range") == 0 {
		t.Fatal("the download started over instead of resuming")
	}
}

func TestBadHashEndsInErrorAndRetryWorks(t *testing.T) {
	e := newEnv(t)
	e.repo.Hashes = map[string]string{"bge-reranker-v2-m3-Q8_0.gguf": strings.Repeat("cd", 32)}
	m, st := e.manager(t, true)
	defer st.Close()
	defer m.Close()
	m.Deploy(models.Request{Source: hub.HuggingFace, Repo: e.repo.ID, Name: "m"}, false)
	rec := waitStatus(t, m, "m", models.StateError)
	if !strings.Contains(rec.Error, "sha256") {
		t.Fatalf("error %q", rec.Error)
	}
	if _, _, err := m.Resolve("m"); !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("resolve failed model: %v", err)
	}
	blobs, _ := os.ReadDir(filepath.Join(e.cache, "models--gpustack--bge-reranker-v2-m3-GGUF", "blobs"))
	if len(blobs) != 0 {
		t.Fatalf("partial files presented: %v", blobs)
	}
	e.repo.Hashes = nil // the hub is fixed; a retry succeeds
	if _, err := m.Start("m"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, m, "m", models.StateRunning)
}

func TestCutConnectionEndsInErrorThenResumes(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, true)
	defer st.Close()
	defer m.Close()
	e.fake.CutAfter = 50_000
	m.Deploy(models.Request{Source: hub.HuggingFace, Repo: e.repo.ID, Name: "m"}, false)
	rec := waitStatus(t, m, "m", models.StateError)
	if !strings.Contains(rec.Error, "resumes") {
		t.Fatalf("error %q", rec.Error)
	}
	m.Start("m")
	waitStatus(t, m, "m", models.StateRunning)
	if e.fake.Count("range") != 1 {
		t.Fatalf("range requests: %d", e.fake.Count("range"))
	}
}

func TestStopStartDelete(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, true)
	defer st.Close()
	defer m.Close()
	m.Deploy(models.Request{Source: hub.HuggingFace, Repo: e.repo.ID, Name: "m"}, false)
	rec := waitStatus(t, m, "m", models.StateRunning)
	if _, err := m.Stop("m"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Resolve("m"); !errors.Is(err, models.ErrUnavailable) || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("stopped: %v", err)
	}
	m.Start("m")
	waitStatus(t, m, "m", models.StateRunning)
	if _, err := m.Delete("m", true); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get("m"); !errors.Is(err, models.ErrUnknown) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.cache, "models--gpustack--bge-reranker-v2-m3-GGUF", "blobs", rec.SHA256)); !os.IsNotExist(err) {
		t.Fatalf("downloaded file kept: %v", err)
	}
	// A deleted model does not come back on restart.
	m2 := models.NewManager(engine.Options{}, st, nil, nil)
	defer m2.Close()
	m2.Restore()
	if len(m2.List()) != 0 {
		t.Fatalf("records after delete: %+v", m2.List())
	}
}

func TestLocalModelAndDuplicateNames(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, false)
	defer st.Close()
	defer m.Close()
	path := testutil.MustModel(t, synth.Tiny())
	rec, err := m.Deploy(models.Request{Path: path, Name: "local"}, false)
	if err != nil || rec.Source != hub.Local {
		t.Fatalf("%+v %v", rec, err)
	}
	waitStatus(t, m, "local", models.StateRunning)
	if _, err := m.Deploy(models.Request{Path: path, Name: "local"}, false); err != nil {
		t.Fatalf("same request twice: %v", err)
	}
	other := synth.Tiny()
	other.Seed = 42
	if _, err := m.Deploy(models.Request{Path: testutil.MustModel(t, other), Name: "local"}, false); !errors.Is(err, models.ErrDuplicate) {
		t.Fatalf("duplicate name: %v", err)
	}
	for _, bad := range []string{"../x", "a/b", "", "-x"} {
		if _, err := m.Deploy(models.Request{Path: path, Name: bad}, false); err == nil && bad != "" {
			t.Errorf("name %q accepted", bad)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	os.WriteFile(bad, []byte("not a model"), 0o644)
	if _, err := m.Deploy(models.Request{Path: bad, Name: "bad"}, false); err == nil {
		t.Fatal("a damaged local file was accepted")
	}
}

func TestLoadRefusedForLackOfMemory(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, false)
	defer st.Close()
	defer m.Close()
	m.MemoryBudget = 1 << 20
	m.Deploy(models.Request{Path: testutil.MustModel(t, synth.Tiny()), Name: "big"}, false)
	rec := waitStatus(t, m, "big", models.StateError)
	if !strings.Contains(rec.Error, "needs about") || !strings.Contains(rec.Error, "MiB") || !strings.Contains(rec.Error, "free") {
		t.Fatalf("error %q", rec.Error)
	}
	// The system's available memory is the default budget.
	m.MemoryBudget = 0
	m.FreeMemory = func() (int64, error) { return 10 << 20, nil }
	m.Start("big")
	rec = waitStatus(t, m, "big", models.StateError)
	if !strings.Contains(rec.Error, "10 MiB are available") {
		t.Fatalf("error %q", rec.Error)
	}
}

func TestModelScopeDeploy(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, true)
	defer st.Close()
	defer m.Close()
	m.Deploy(models.Request{Source: hub.ModelScope, Repo: e.repo.ID, Quant: "FP16", Name: "ms"}, false)
	rec := waitStatus(t, m, "ms", models.StateRunning)
	if rec.File != "bge-reranker-v2-m3-FP16.gguf" {
		t.Fatalf("%+v", rec)
	}
}

// TestStopStartLoopKeepsMemoryFlat: stopping frees the llama.cpp memory.
func TestStopStartLoopKeepsMemoryFlat(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, false)
	defer st.Close()
	defer m.Close()
	spec := synth.Spec{Layers: 2, Hidden: 256, Heads: 4, FFN: 1024, Positions: 512, Seed: 8, ExtraWords: 3000}
	path := testutil.MustModel(t, spec)
	m.Deploy(models.Request{Path: path, Name: "loop"}, false)
	waitStatus(t, m, "loop", models.StateRunning)
	cycle := func() {
		m.Stop("loop")
		m.Start("loop")
		waitStatus(t, m, "loop", models.StateRunning)
	}
	for i := 0; i < 3; i++ {
		cycle()
	}
	before := testutil.RSS(t)
	for i := 0; i < 25; i++ {
		cycle()
	}
	after := testutil.RSS(t)
	size, _ := os.Stat(path)
	t.Logf("RSS %d MiB -> %d MiB over 25 stop/start cycles of a %d MiB model", before>>20, after>>20, size.Size()>>20)
	if after-before > 4*size.Size() {
		t.Fatalf("RSS grew by %d MiB", (after-before)>>20)
	}
}

// TestFullDiskEndsInError: a download that runs out of disk ends in a clear
// error status, with no partial file presented as complete. It mounts a
// 64 KiB tmpfs as the cache (skipped where mounting is not allowed).
func TestFullDiskEndsInError(t *testing.T) {
	e := newEnv(t)
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", small).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot mount a small tmpfs in CI (it runs as root): %v %s", err, out)
		}
		t.Skipf("skipped: cannot mount a small tmpfs here (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", small).Run() })
	e.cache = small
	m, st := e.manager(t, true)
	defer st.Close()
	defer m.Close()
	m.Deploy(models.Request{Source: hub.HuggingFace, Repo: e.repo.ID, Name: "m"}, false)
	rec := waitStatus(t, m, "m", models.StateError)
	if !strings.Contains(rec.Error, "no space left") {
		t.Fatalf("error %q", rec.Error)
	}
	if _, _, err := m.Resolve("m"); !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("resolve: %v", err)
	}
	blobs, _ := os.ReadDir(filepath.Join(small, "models--gpustack--bge-reranker-v2-m3-GGUF", "blobs"))
	for _, b := range blobs {
		if !strings.HasSuffix(b.Name(), ".incomplete") {
			t.Fatalf("a partial download is presented as complete: %s", b.Name())
		}
	}
}

// TestInterruptedLoadIsNotRestarted: the record says "load started" (synced)
// before llama.cpp loads the file; a process that dies there (a crash in
// llama.cpp) leaves it set, and the next start does not load that model
// again by itself.
func TestInterruptedLoadIsNotRestarted(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, false)
	var during models.Record
	open := m.Open
	m.Open = func(p string, o engine.Options) (*engine.Model, error) {
		// What the store holds at the moment llama.cpp would start: the
		// state a crash here would leave behind.
		if err := st.Get("model/local", &during); err != nil {
			t.Errorf("record during load: %v", err)
		}
		return open(p, o)
	}
	if _, err := m.Deploy(models.Request{Path: testutil.MustModel(t, synth.Tiny()), Name: "local"}, false); err != nil {
		t.Fatal(err)
	}
	if rec := waitStatus(t, m, "local", models.StateRunning); rec.LoadStarted {
		t.Fatal("the flag stayed set after a good load")
	}
	m.Close()
	if !during.LoadStarted {
		t.Fatal("the record was not marked before the load")
	}
	// Put back the record as the crash left it, and start again.
	if err := st.Put("model/local", during); err != nil {
		t.Fatal(err)
	}
	st.Close()
	m2, st2 := e.manager(t, false)
	defer st2.Close()
	defer m2.Close()
	opened := 0
	m2.Open = func(p string, o engine.Options) (*engine.Model, error) { opened++; return open(p, o) }
	if err := m2.Restore(); err != nil {
		t.Fatal(err)
	}
	rec, err := m2.Get("local")
	if err != nil || rec.Status != models.StateError || !strings.Contains(rec.Error, "not started automatically") {
		t.Fatalf("after restart: %+v %v", rec, err)
	}
	// Started by hand, it loads (and the flag clears).
	if _, err := m2.Start("local"); err != nil {
		t.Fatal(err)
	}
	if rec := waitStatus(t, m2, "local", models.StateRunning); rec.LoadStarted || opened != 1 {
		t.Fatalf("manual start: %+v, %d loads", rec, opened)
	}
}

// TestConcurrentLoadsShareTheBudget: two models loading at the same time
// each see the other's memory; with room for one, the second is refused
// instead of both loading.
func TestConcurrentLoadsShareTheBudget(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, false)
	defer st.Close()
	defer m.Close()
	path := testutil.MustModel(t, synth.Tiny())
	facts, err := modelfile.Check(path)
	if err != nil {
		t.Fatal(err)
	}
	est := models.Estimate(facts, engine.Options{Threads: 1, FlashAttn: true})
	m.MemoryBudget = est * 3 / 2
	inOpen, release := make(chan struct{}, 2), make(chan struct{})
	open := m.Open
	m.Open = func(p string, o engine.Options) (*engine.Model, error) {
		inOpen <- struct{}{}
		<-release
		return open(p, o)
	}
	if _, err := m.Deploy(models.Request{Path: path, Name: "first"}, false); err != nil {
		t.Fatal(err)
	}
	<-inOpen // the first holds its reservation inside the load
	if _, err := m.Deploy(models.Request{Path: path, Name: "second"}, false); err != nil {
		t.Fatal(err)
	}
	rec := waitStatus(t, m, "second", models.StateError)
	if !strings.Contains(rec.Error, "not enough memory") {
		t.Fatalf("second: %s", rec.Error)
	}
	close(release)
	waitStatus(t, m, "first", models.StateRunning)
}

// TestConcurrentReplaceLeaksNothing: deploys that replace one name at the
// same time leave one model, and every engine the others loaded is closed.
func TestConcurrentReplaceLeaksNothing(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, false)
	defer st.Close()
	defer m.Close()
	var mu sync.Mutex
	var opened []*engine.Model
	open := m.Open
	m.Open = func(p string, o engine.Options) (*engine.Model, error) {
		em, err := open(p, o)
		if err == nil {
			mu.Lock()
			opened = append(opened, em)
			mu.Unlock()
		}
		return em, err
	}
	const n = 6
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		spec := synth.Tiny()
		spec.Seed = uint64(100 + i)
		path := testutil.MustModel(t, spec)
		go func() {
			_, err := m.Deploy(models.Request{Path: path, Name: "x"}, true)
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, m, "x", models.StateRunning)
	if l := m.List(); len(l) != 1 {
		t.Fatalf("%d records", len(l))
	}
	live := m.Engine("x")
	mu.Lock()
	defer mu.Unlock()
	for _, em := range opened {
		if em == live {
			continue
		}
		if _, err := em.Rerank(context.Background(), "q", []string{"a"}); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("a replaced model's engine still serves (err %v): leaked", err)
		}
	}
}

// TestSelfCheckRecorded: a model is checked when it loads and the outcome is
// kept with its record. The synthetic stand-in for bge-reranker-v2-m3 is
// recognised by its repo, held to the guide's answer and flagged; with the
// check off the record says so.
func TestSelfCheckRecorded(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, true)
	defer st.Close()
	defer m.Close()
	if _, err := m.Deploy(models.Request{Source: hub.HuggingFace, Repo: e.repo.ID, Quant: "Q8_0", Name: "m3"}, false); err != nil {
		t.Fatal(err)
	}
	rec := waitStatus(t, m, "m3", models.StateRunning)
	c := rec.SelfCheck
	if c == nil || c.Status != selfcheck.Suspect {
		t.Fatalf("random weights under bge-reranker-v2-m3's name: self-check %+v", c)
	}
	for _, want := range []string{"GPUStack guide request", "relevant first"} {
		if !strings.Contains(c.Reason, want) {
			t.Errorf("reason %q does not name %q", c.Reason, want)
		}
	}
	// The outcome persists with the record.
	var stored models.Record
	if err := st.Get("model/m3", &stored); err != nil {
		t.Fatal(err)
	}
	if stored.SelfCheck == nil || stored.SelfCheck.Status != selfcheck.Suspect {
		t.Errorf("stored record lacks the self-check: %+v", stored.SelfCheck)
	}

	m.SelfCheck = nil
	if _, err := m.Deploy(models.Request{Path: testutil.MustModel(t, synth.Tiny()), Name: "unchecked"}, false); err != nil {
		t.Fatal(err)
	}
	if rec := waitStatus(t, m, "unchecked", models.StateRunning); rec.SelfCheck == nil || rec.SelfCheck.Status != selfcheck.Off {
		t.Errorf("with the check off: %+v", rec.SelfCheck)
	}
}

// TestQ8BF16CopyOnlyWhereMemoryAllows: on a CPU with AVX512-BF16 and no AMX a
// Q8_0 file runs as BF16 by default, and on the Q8_0 kernels when the budget
// has room for the file but not for its BF16 copy.
func TestQ8BF16CopyOnlyWhereMemoryAllows(t *testing.T) {
	cpu := llama.CPU()
	if !cpu.AVX512BF16 || cpu.AMXInt8 {
		t.Skip("skipped: Q8_0 runs as BF16 only on CPUs with AVX512-BF16 and without AMX; this one has BF16 ", cpu.AVX512BF16, ", AMX ", cpu.AMXInt8)
	}
	spec := synth.Tiny()
	spec.Hidden, spec.FFN = 256, 1024 // weights large enough to tell the estimates apart
	path := testutil.MustQuantized(t, spec, llama.FtypeQ8_0)
	opts := engine.Options{Threads: 1, FlashAttn: true, DerivedDir: t.TempDir()}
	facts, err := modelfile.Check(path)
	if err != nil {
		t.Fatal(err)
	}
	bf16Est := models.Estimate(facts, opts)
	off := opts
	off.Q8AsBF16 = "off"
	q8Est := models.Estimate(facts, off)
	if cpu.AimindQ8VNNI {
		// Where aimind's VNNI kernels run, "auto" makes no copy at all
		// (they are faster than it, engine.TestQ8ComputedAsBF16): the
		// estimate is the file's own, whatever the budget.
		if bf16Est != q8Est {
			t.Fatalf("with the VNNI kernels, auto estimates %d and off %d: auto must not plan a BF16 copy", bf16Est, q8Est)
		}
		m := models.NewManager(opts, nil, nil, nil)
		defer m.Close()
		if _, err := m.Deploy(models.Request{Path: path, Name: "q8"}, false); err != nil {
			t.Fatal(err)
		}
		rec := waitStatus(t, m, "q8", models.StateRunning)
		if k := m.Engine("q8").Kernel(); !strings.HasPrefix(k, "Q8_0 AVX512-VNNI, aimind kernels") || rec.MemoryEst != q8Est {
			t.Errorf("kernel %q, estimate %d; want aimind's VNNI kernels, %d", k, rec.MemoryEst, q8Est)
		}
		t.Skip("skipped the budget cases: on this CPU (AVX512-VNNI, no AMX) a Q8_0 file runs aimind's VNNI kernels, and auto never makes the BF16 copy whose memory they are about")
	}
	if bf16Est <= q8Est {
		t.Fatalf("estimates %d (BF16) and %d (Q8_0)", bf16Est, q8Est)
	}
	for _, c := range []struct {
		budget int64
		kernel string
		est    int64
	}{{bf16Est + 1<<20, "BF16", bf16Est}, {(q8Est + bf16Est) / 2, "Q8_0", q8Est}} {
		m := models.NewManager(opts, nil, nil, nil)
		m.MemoryBudget = c.budget
		if _, err := m.Deploy(models.Request{Path: path, Name: "q8"}, false); err != nil {
			t.Fatal(err)
		}
		rec := waitStatus(t, m, "q8", models.StateRunning)
		if k := m.Engine("q8").Kernel(); !strings.HasPrefix(k, c.kernel) || rec.MemoryEst != c.est {
			t.Errorf("budget %d MiB: kernel %q, estimate %d; want %s, %d", c.budget>>20, k, rec.MemoryEst, c.kernel, c.est)
		}
		m.Close()
	}
}
