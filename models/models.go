// Package models keeps the served models: their records in the store, their
// lifecycle (pending → downloading → loading → running, or error, or
// stopped), where their files come from (a hub or a local path), and the
// loaded engine the rerank path asks for by name.
package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/modelfile"
	"github.com/aimind/aimind/selfcheck"
	"github.com/aimind/aimind/store"
)

// State is where a model is in its lifecycle.
type State string

// Model states.
const (
	StatePending     State = "pending"
	StateDownloading State = "downloading"
	StateLoading     State = "loading"
	StateRunning     State = "running"
	StateError       State = "error"
	StateStopped     State = "stopped"
)

// Sentinel errors.
var (
	ErrUnknown     = errors.New("model not found")
	ErrNotReady    = errors.New("model is not ready yet") // 503: pending, downloading, loading
	ErrUnavailable = errors.New("model is not running")   // 409: stopped or failed
	ErrDuplicate   = errors.New("a model with this name exists")
	ErrBadName     = errors.New("invalid model name")
	ErrNoMemory    = errors.New("not enough memory")
	// ErrLoadInterrupted: the process ended while llama.cpp loaded the file.
	ErrLoadInterrupted = errors.New("the process ended while llama.cpp was loading this model (it may have crashed on the file)")
)

// Progress of a download.
type Progress struct {
	Done  int64   `json:"done"`
	Total int64   `json:"total"`
	Rate  float64 `json:"rate"` // bytes per second
}

// Record is what the store keeps of a model.
type Record struct {
	Name       string           `json:"name"`
	Asked      Request          `json:"asked"` // what the deploy asked for
	Source     hub.Source       `json:"source"`
	Repo       string           `json:"repo,omitempty"`
	File       string           `json:"file,omitempty"`
	Quant      string           `json:"quant,omitempty"`
	Revision   string           `json:"revision,omitempty"`
	Commit     string           `json:"commit,omitempty"`
	SHA256     string           `json:"sha256,omitempty"`
	Size       int64            `json:"size,omitempty"`
	Path       string           `json:"path,omitempty"`
	Downloaded bool             `json:"downloaded,omitempty"` // aimind fetched the file
	Status     State            `json:"status"`
	Error      string           `json:"error,omitempty"`
	Desired    State            `json:"desired"` // running or stopped
	Progress   *Progress        `json:"progress,omitempty"`
	Facts      *modelfile.Facts `json:"facts,omitempty"`
	MemoryEst  int64            `json:"memory_estimate,omitempty"`
	// SelfCheck is the outcome of the known-answer check run at each load
	// (nil before the first).
	SelfCheck *selfcheck.Outcome `json:"self_check,omitempty"`
	// Device is where the loaded weights are: "CPU", or a GPU build's
	// device buffers.
	Device string `json:"device,omitempty"`
	// LoadStarted is stored (synced) before llama.cpp loads the file and
	// cleared when the load returns: found set at startup, the process died
	// while loading, and the model is not started again automatically.
	LoadStarted bool      `json:"load_started,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

type entry struct {
	rec      Record
	reserved int64 // memory set aside while its load runs
	model    *engine.Model
	cancel   context.CancelFunc
	done     chan struct{} // closed when the current worker ends
}

// Manager owns the served models.
type Manager struct {
	mu       sync.RWMutex
	deployMu sync.Mutex // serialises Deploy, Start, Stop and Delete
	entries  map[string]*entry
	st       *store.Store // nil: records live in memory only
	hubs     map[hub.Source]hub.Hub
	opts     engine.Options
	log      *slog.Logger
	wg       sync.WaitGroup

	// Open loads a model file; engine.Open unless replaced before use.
	Open func(path string, o engine.Options) (*engine.Model, error)
	// MemoryBudget caps the estimated memory of loaded models (bytes); 0
	// means the memory the system reports available at load time.
	MemoryBudget int64
	// FreeMemory reports available memory; reads /proc/meminfo by default.
	FreeMemory func() (int64, error)
	// SelfCheck is what each model is checked with once loaded; nil turns
	// the check off (recorded as "off"). NewManager sets the default suite.
	SelfCheck *selfcheck.Suite
	// Observe, when set, is told about every encoder call of every model.
	Observe func(model string, pairs, tokens int, d time.Duration)
}

// NewManager returns a manager; st may be nil (nothing persists), hubs may
// be nil (local files only).
func NewManager(opts engine.Options, st *store.Store, hubs map[hub.Source]hub.Hub, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	opts.Logger = log
	suite := selfcheck.Default()
	return &Manager{entries: map[string]*entry{}, st: st, hubs: hubs, opts: opts, log: log,
		Open: engine.Open, FreeMemory: memAvailable, SelfCheck: &suite}
}

var quantSuffix = regexp.MustCompile(`(?i)[-._](f32|f16|fp16|bf16|q[2-8](_[0-9a-z]+)*|iq[1-4](_[a-z0-9]+)*|tq[12]_0|mxfp4)$`)

// NameFromFile derives a served name from a GGUF file name:
// "bge-reranker-v2-m3-Q8_0.gguf" serves as "bge-reranker-v2-m3".
func NameFromFile(path string) string {
	base := filepath.Base(path)
	base = strings.TrimSuffix(base, filepath.Ext(base))
	if n := quantSuffix.ReplaceAllString(base, ""); n != "" {
		return n
	}
	return base
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidName reports whether name is usable in URLs and requests.
func ValidName(name string) error {
	if !validName.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("%w %q: use 1-128 letters, digits, '.', '_' or '-'", ErrBadName, name)
	}
	return nil
}

// Request asks for a model: a local Path, or a hub Source with Repo and
// optionally File, Quant and Revision.
type Request struct {
	Name     string     `json:"name"`
	Source   hub.Source `json:"source"`
	Repo     string     `json:"repo,omitempty"`
	File     string     `json:"file,omitempty"`
	Quant    string     `json:"quant,omitempty"`
	Revision string     `json:"revision,omitempty"`
	Path     string     `json:"path,omitempty"`
}

func (r *Request) normalise() error {
	switch r.Source {
	case hub.Local, "":
		r.Source = hub.Local
		if r.Path == "" {
			return errors.New("a local model needs a path")
		}
		abs, err := filepath.Abs(r.Path)
		if err != nil {
			return err
		}
		r.Path = abs
		if r.Name == "" {
			r.Name = NameFromFile(r.Path)
		}
	case hub.HuggingFace, hub.ModelScope:
		if err := hub.ValidRepo(r.Repo); err != nil {
			return err
		}
		if r.File != "" {
			if err := hub.ValidFile(r.File); err != nil {
				return err
			}
		}
		if r.Revision == "" {
			r.Revision = "main"
			if r.Source == hub.ModelScope {
				r.Revision = "master"
			}
		}
		if err := hub.ValidRevision(r.Revision); err != nil {
			return err
		}
		if r.Name == "" {
			r.Name = hub.Spec{Repo: r.Repo}.ServedName()
		}
	default:
		return fmt.Errorf("unknown source %q (huggingface, modelscope or local)", r.Source)
	}
	return ValidName(r.Name)
}

// same reports whether an existing record serves what r asks for.
func (r Request) same(rec Record) bool {
	a := rec.Asked
	return r.Source == a.Source && r.Path == a.Path && r.Repo == a.Repo && r.File == a.File &&
		strings.EqualFold(r.Quant, a.Quant) && r.Revision == a.Revision
}

// Deploy records a model and starts getting it ready in the background. A
// local file is checked at once. With replace, an existing record of the same
// name that asks for something else is replaced; one that asks for the same
// is started.
func (m *Manager) Deploy(r Request, replace bool) (Record, error) {
	if err := r.normalise(); err != nil {
		return Record{}, fmt.Errorf("cannot deploy: %w", err)
	}
	var facts *modelfile.Facts
	if r.Source == hub.Local {
		f, err := modelfile.Check(r.Path)
		if err != nil {
			return Record{}, err
		}
		facts = f
	} else if m.hubs[r.Source] == nil {
		return Record{}, fmt.Errorf("cannot deploy from %s: no client configured", r.Source)
	}
	// One deploy at a time: a replace unlocks m.mu to delete the old model,
	// and another deploy of the name must not slip into that gap (its entry
	// would be overwritten and its engine leaked).
	m.deployMu.Lock()
	defer m.deployMu.Unlock()
	m.mu.Lock()
	if e, ok := m.entries[r.Name]; ok {
		if r.same(e.rec) {
			m.mu.Unlock()
			return m.start(r.Name)
		}
		if !replace {
			m.mu.Unlock()
			return Record{}, fmt.Errorf("%w: %q (choose another name)", ErrDuplicate, r.Name)
		}
		m.mu.Unlock()
		if _, err := m.delete(r.Name, false); err != nil {
			return Record{}, err
		}
		m.mu.Lock()
	}
	now := time.Now().UTC()
	rec := Record{Name: r.Name, Asked: r, Source: r.Source, Repo: r.Repo, File: r.File, Quant: r.Quant, Revision: r.Revision,
		Path: r.Path, Status: StatePending, Desired: StateRunning, Facts: facts, Created: now, Updated: now}
	if r.Source == hub.Local {
		if st, err := os.Stat(r.Path); err == nil {
			rec.Size = st.Size()
		}
	}
	e := &entry{rec: rec}
	m.entries[r.Name] = e
	m.persist(e)
	m.launch(e)
	snapshot := e.rec
	m.mu.Unlock()
	return snapshot, nil
}

// Restore reads the stored records and starts every model that was running,
// from local files when they are complete (no network), resuming downloads
// that were cut.
func (m *Manager) Restore() error {
	if m.st == nil {
		return nil
	}
	var recs []Record
	err := m.st.View(func(tx *store.Tx) error {
		return tx.Each("model/", func(_ string, decode func(any) error) error {
			var r Record
			if err := decode(&r); err != nil {
				return err
			}
			recs = append(recs, r)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("cannot read model records: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		if _, ok := m.entries[r.Name]; ok {
			continue
		}
		e := &entry{rec: r}
		m.entries[r.Name] = e
		if r.LoadStarted {
			e.rec.Status, e.rec.Error = StateError, ErrLoadInterrupted.Error()+"; it is not started automatically: replace the file, or start it by hand"
			m.log.Error("model load was interrupted by the end of the process", "model", r.Name, "path", r.Path)
			continue
		}
		if r.Desired == StateRunning {
			e.rec.Status, e.rec.Error = StatePending, ""
			m.launch(e)
		} else {
			e.rec.Status = StateStopped
		}
	}
	return nil
}

// launch starts the worker that brings e to running. Holds m.mu.
func (m *Manager) launch(e *entry) {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan struct{})
	m.wg.Add(1)
	go func(done chan struct{}) {
		defer m.wg.Done()
		defer close(done)
		m.bringUp(ctx, e)
	}(e.done)
}

func (m *Manager) set(e *entry, f func(r *Record)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&e.rec)
	e.rec.Updated = time.Now().UTC()
	m.persist(e)
}

// persist writes the record (one synced transaction). Holds m.mu.
func (m *Manager) persist(e *entry) {
	if m.st == nil {
		return
	}
	rec := e.rec
	rec.Progress = nil
	if err := m.st.Put("model/"+rec.Name, rec); err != nil {
		m.log.Error("cannot store model record", "model", rec.Name, "err", err)
	}
}

func (m *Manager) fail(e *entry, err error) {
	m.log.Error("model failed", "model", e.rec.Name, "err", err)
	m.set(e, func(r *Record) { r.Status, r.Error, r.Progress = StateError, err.Error(), nil })
}

func (m *Manager) bringUp(ctx context.Context, e *entry) {
	m.mu.RLock()
	rec := e.rec
	m.mu.RUnlock()
	path := rec.Path
	if rec.Source != hub.Local {
		p, err := m.fetch(ctx, e, rec)
		if err != nil {
			if ctx.Err() == nil {
				m.fail(e, err)
			}
			return
		}
		path = p
	}
	m.set(e, func(r *Record) { r.Status, r.Error, r.Path = StateLoading, "", path })
	facts, err := modelfile.Check(path)
	if err != nil {
		m.fail(e, err)
		return
	}
	opts := m.opts
	est := Estimate(facts, opts)
	// Check and reserve under one lock, so that models loading at the same
	// time (Restore starts them all) each see the others' memory.
	m.mu.Lock()
	inUse, loading := int64(0), int64(0)
	for _, o := range m.entries {
		if o == e {
			continue
		}
		if o.model != nil {
			inUse += o.rec.MemoryEst
		}
		loading += o.reserved
	}
	err = m.checkMemory(est, inUse, loading)
	if err != nil && facts.FileType == "Q8_0" && (opts.Q8AsBF16 == "auto" || opts.Q8AsBF16 == "") && engine.UsesBF16(facts, opts) {
		// The BF16 copy is a speed-up, not a need: without room for it the
		// Q8_0 kernels run the file as it is.
		small := opts
		small.Q8AsBF16 = "off"
		if smallEst := Estimate(facts, small); m.checkMemory(smallEst, inUse, loading) == nil {
			m.log.Info("no memory for the BF16 copy of a Q8_0 file; using the Q8_0 kernels", "model", rec.Name,
				"bf16_estimate_mib", est>>20, "q8_0_estimate_mib", smallEst>>20)
			opts, est, err = small, smallEst, nil
		}
	}
	e.rec.Facts, e.rec.MemoryEst = facts, est
	if err == nil {
		e.reserved = est
	}
	m.mu.Unlock()
	if err != nil {
		m.fail(e, fmt.Errorf("cannot load %q: %w", rec.Name, err))
		return
	}
	defer func() {
		m.mu.Lock()
		e.reserved = 0
		m.mu.Unlock()
	}()
	start := time.Now()
	opts.Digest = rec.SHA256 // verified at download; local files are hashed at load
	if obs := m.Observe; obs != nil {
		name := rec.Name
		opts.OnBatch = func(pairs, tokens int, d time.Duration) { obs(name, pairs, tokens, d) }
	}
	m.set(e, func(r *Record) { r.LoadStarted = true })
	model, err := m.Open(path, opts)
	m.set(e, func(r *Record) { r.LoadStarted = false })
	if err != nil {
		m.fail(e, err)
		return
	}
	if ctx.Err() != nil { // stopped or deleted while loading
		model.Close()
		return
	}
	check := m.selfCheck(ctx, model, rec, path, facts)
	if ctx.Err() != nil {
		model.Close()
		return
	}
	m.mu.Lock()
	e.model, e.reserved = model, 0 // counted through the model from now on
	e.rec.Status, e.rec.Error, e.rec.Progress = StateRunning, "", nil
	e.rec.SelfCheck = check
	e.rec.Device = model.Device()
	e.rec.Updated = time.Now().UTC()
	m.persist(e)
	m.mu.Unlock()
	m.log.Info("model running", "model", rec.Name, "path", path, "architecture", facts.Architecture,
		"file_type", facts.FileType, "kernel", model.Kernel(), "device", model.Device(), "layout", model.Layout().Kind, "max_pair_tokens", model.MaxPairTokens(),
		"memory_estimate_mib", est>>20, "load_seconds", time.Since(start).Seconds())
}

// selfCheck scores the known-answer suite with a model just loaded. A
// suspect model is served all the same: the outcome is a warning, in the
// log, the record, /v1/models and the Models page.
func (m *Manager) selfCheck(ctx context.Context, model *engine.Model, rec Record, path string, facts *modelfile.Facts) *selfcheck.Outcome {
	if m.SelfCheck == nil {
		return &selfcheck.Outcome{Status: selfcheck.Off}
	}
	id := selfcheck.Identity{Repo: rec.Repo, File: rec.File, Name: facts.Name, FileType: facts.FileType}
	if id.File == "" {
		id.File = path
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := selfcheck.Run(ctx, model, id, *m.SelfCheck)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("model self-check could not run", "model", rec.Name, "err", err)
		}
		return &selfcheck.Outcome{Status: selfcheck.Suspect, Reason: "the self-check could not run: " + err.Error()}
	}
	if out.Status == selfcheck.Suspect {
		m.log.Warn("model self-check: scores look wrong; serving it anyway", "model", rec.Name, "reason", out.Reason,
			"seconds", time.Since(start).Seconds())
	} else {
		m.log.Info("model self-check passed", "model", rec.Name, "checks", len(out.Checks), "seconds", time.Since(start).Seconds())
	}
	return &out
}

func (m *Manager) fetch(ctx context.Context, e *entry, rec Record) (string, error) {
	h := m.hubs[rec.Source]
	if h == nil {
		return "", fmt.Errorf("no %s client configured", rec.Source)
	}
	// A complete file from an earlier run (or another tool) needs no network.
	if rec.Commit != "" && rec.File != "" {
		if p, ok := h.Cached(rec.Repo, rec.Commit, rec.File); ok {
			return p, nil
		}
	}
	m.set(e, func(r *Record) { r.Status, r.Error = StateDownloading, "" })
	l, err := h.List(ctx, rec.Repo, rec.Revision)
	if err != nil {
		return "", err
	}
	f, err := hub.Pick(l.Files, rec.File, rec.Quant)
	if err != nil {
		return "", fmt.Errorf("%s: %w", rec.Repo, err)
	}
	if rec.File == "" {
		m.log.Info("picked a file", "model", rec.Name, "repo", rec.Repo, "file", f.Path, "quant", f.Quant)
	}
	m.set(e, func(r *Record) {
		r.File, r.Commit, r.SHA256, r.Size, r.Quant = f.Path, l.Commit, f.SHA256, f.Size, f.Quant
		r.Progress = &Progress{Total: f.Size}
	})
	path, err := h.Download(ctx, l, f, rec.Revision, func(p hub.Progress) {
		m.mu.Lock()
		e.rec.Progress = &Progress{Done: p.Done, Total: p.Total, Rate: p.Rate}
		m.mu.Unlock()
	})
	if err != nil {
		return "", err
	}
	m.set(e, func(r *Record) { r.Downloaded = true; r.Progress = nil })
	return path, nil
}

// checkMemory: inUse is what loaded models take, loading what loads in
// progress have reserved (not yet taken from the system).
func (m *Manager) checkMemory(est, inUse, loading int64) error {
	if m.MemoryBudget > 0 {
		if free := m.MemoryBudget - inUse - loading; est > free {
			return fmt.Errorf("%w: it needs about %d MiB, %d MiB of the --memory-budget of %d MiB is free",
				ErrNoMemory, est>>20, max(free, 0)>>20, m.MemoryBudget>>20)
		}
		return nil
	}
	free, err := m.FreeMemory()
	if err != nil {
		return nil // cannot tell: let llama.cpp try
	}
	if free -= loading; est > free {
		return fmt.Errorf("%w: it needs about %d MiB, %d MiB are available (%d MiB set aside for models loading now)", ErrNoMemory, est>>20, max(free, 0)>>20, loading>>20)
	}
	return nil
}

// Estimate is the memory a model takes once loaded: its weights (the file,
// mapped) plus the encoder's working memory for the largest call.
func Estimate(f *modelfile.Facts, o engine.Options) int64 {
	tokens := int64(max(o.BatchTokens, o.Ctx, engine.DefaultBatchTokens, engine.DefaultCtx))
	e, ff, h := int64(f.Embedding), int64(f.FeedForward), int64(f.Heads)
	work := tokens*(8*e+2*ff)*4 + h*tokens*tokens*4
	weights := f.SizeBytes
	if f.FileType == "Q8_0" && (engine.UsesBF16(f, o) || engine.UsesAMXBF16(f, o)) { // 34 bytes a block of 32 become 64
		weights = weights / 34 * 64
	}
	return weights + work + 32<<20
}

func memAvailable() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "MemAvailable:") {
			var kb int64
			fmt.Sscanf(strings.TrimPrefix(line, "MemAvailable:"), "%d", &kb)
			return kb << 10, nil
		}
	}
	return 0, errors.New("no MemAvailable in /proc/meminfo")
}

// halt cancels the worker, waits for it and frees the engine. The caller
// holds no lock.
func (m *Manager) halt(e *entry, reason string) {
	m.mu.Lock()
	cancel, done := e.cancel, e.done
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	m.mu.Lock()
	model := e.model
	e.model, e.cancel, e.done = nil, nil, nil
	m.mu.Unlock()
	if model != nil {
		model.CloseBecause(reason) // answers queued requests, waits for the call in progress, frees the llama.cpp memory
	}
}

func (m *Manager) entry(name string) (*entry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.entries[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknown, name)
	}
	return e, nil
}

// working reports whether e's worker is still running. Holds m.mu.
func working(e *entry) bool {
	if e.done == nil {
		return false
	}
	select {
	case <-e.done:
		return false
	default:
		return true
	}
}

// Stop frees a model's memory and keeps its record (stopped).
func (m *Manager) Stop(name string) (Record, error) {
	m.deployMu.Lock()
	defer m.deployMu.Unlock()
	e, err := m.entry(name)
	if err != nil {
		return Record{}, err
	}
	m.halt(e, "stopped")
	m.set(e, func(r *Record) { r.Status, r.Desired, r.Progress = StateStopped, StateStopped, nil })
	return m.Get(name)
}

// Start brings a stopped or failed model up again.
func (m *Manager) Start(name string) (Record, error) {
	m.deployMu.Lock()
	defer m.deployMu.Unlock()
	return m.start(name)
}

// start is Start with deployMu held.
func (m *Manager) start(name string) (Record, error) {
	e, err := m.entry(name)
	if err != nil {
		return Record{}, err
	}
	m.mu.Lock()
	if e.model != nil || working(e) { // already starting or running
		rec := e.rec
		m.mu.Unlock()
		return rec, nil
	}
	e.rec.Status, e.rec.Desired, e.rec.Error = StatePending, StateRunning, ""
	m.persist(e)
	m.launch(e)
	rec := e.rec
	m.mu.Unlock()
	return rec, nil
}

// Deleted says what a delete did with the model's file.
type Deleted struct {
	Name    string   `json:"name"`
	Removed []string `json:"removed_files,omitempty"`
	Kept    []string `json:"kept_files,omitempty"`
	// Note is one line for people: what happened to the file and why.
	Note string `json:"note,omitempty"`
}

// Delete stops a model and removes its record. With removeFiles, the file
// aimind downloaded for it (snapshot link, blob, or the unfinished
// ".incomplete" download) is removed too, unless another model's record
// still refers to it; a local file is never removed.
func (m *Manager) Delete(name string, removeFiles bool) (Deleted, error) {
	m.deployMu.Lock()
	defer m.deployMu.Unlock()
	return m.delete(name, removeFiles)
}

// delete is Delete with deployMu held, so no deploy can add a reference
// to the file while the references are counted.
func (m *Manager) delete(name string, removeFiles bool) (Deleted, error) {
	e, err := m.entry(name)
	if err != nil {
		return Deleted{}, err
	}
	m.halt(e, "deleted")
	m.mu.Lock()
	delete(m.entries, name)
	rec := e.rec
	others := map[string]Record{}
	for n, o := range m.entries {
		others[n] = o.rec
	}
	m.mu.Unlock()
	if m.st != nil {
		// One transaction removes the record and reads the others, so the
		// count is over what the store holds once this record is gone.
		err := m.st.Update(func(tx *store.Tx) error {
			if err := tx.Delete("model/" + name); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return tx.Each("model/", func(_ string, decode func(any) error) error {
				var r Record
				if err := decode(&r); err != nil {
					return err
				}
				if _, ok := others[r.Name]; !ok && r.Name != name {
					others[r.Name] = r
				}
				return nil
			})
		})
		if err != nil {
			return Deleted{}, fmt.Errorf("cannot delete model record %q: %w", name, err)
		}
	}
	d := Deleted{Name: name}
	switch {
	case !removeFiles:
		d.Note = "its file is kept (files were not to be removed)"
	case rec.Source == hub.Local:
		d.Kept = []string{rec.Path}
		d.Note = fmt.Sprintf("the local file %s is kept: aimind never removes a file it did not download", rec.Path)
	default:
		m.removeFiles(rec, others, &d)
	}
	m.log.Info("model deleted", "model", name, "removed_files", d.Removed, "kept_files", d.Kept)
	return d, nil
}

// removeFiles removes the cache files of hub model rec that no record in
// others refers to, and notes in d what it did.
func (m *Manager) removeFiles(rec Record, others map[string]Record, d *Deleted) {
	// The snapshot link and its blob only when aimind downloaded them (a
	// file another tool put in the shared cache stays); an unfinished
	// download always.
	var files []string
	if rec.Path != "" && rec.Downloaded {
		files = append(files, rec.Path)
		if target, err := filepath.EvalSymlinks(rec.Path); err == nil && target != rec.Path {
			files = append(files, target)
		}
	}
	if bp, ok := m.hubs[rec.Source].(interface {
		BlobPath(repo, sha256 string) (string, error)
	}); ok && rec.SHA256 != "" {
		if blob, err := bp.BlobPath(rec.Repo, rec.SHA256); err == nil {
			if rec.Downloaded {
				files = append(files, blob)
			}
			files = append(files, blob+".incomplete")
		}
	}
	users := map[string]bool{}
	for _, f := range uniq(files) {
		var by []string
		for _, o := range others {
			if refersTo(o, rec, f) {
				by = append(by, o.Name)
			}
		}
		if len(by) > 0 {
			sort.Strings(by)
			for _, n := range by {
				users[n] = true
			}
			d.Kept = append(d.Kept, f)
			continue
		}
		switch err := os.Remove(f); {
		case err == nil:
			d.Removed = append(d.Removed, f)
		case !errors.Is(err, os.ErrNotExist):
			m.log.Warn("cannot remove a deleted model's file", "model", rec.Name, "path", f, "err", err)
			d.Kept = append(d.Kept, f)
			d.Note = fmt.Sprintf("cannot remove %s: %v", f, err)
		}
	}
	if len(users) > 0 {
		names := make([]string, 0, len(users))
		for n := range users {
			names = append(names, fmt.Sprintf("%q", n))
		}
		sort.Strings(names)
		d.Note = fmt.Sprintf("its file is kept: model %s uses it too", strings.Join(names, ", "))
	} else if d.Note == "" && len(d.Removed) > 0 {
		d.Note = "its downloaded file was removed"
		if strings.HasSuffix(d.Removed[len(d.Removed)-1], ".incomplete") {
			d.Note = "its unfinished download was removed"
		}
	}
}

// refersTo reports whether record o uses file f of the deleted hub model
// rec. A record whose own file is not known yet (its download has not
// listed the repo) counts when it may pick the same file: a file is kept
// rather than pulled from under a download.
func refersTo(o, rec Record, f string) bool {
	if o.Path != "" {
		if o.Path == f {
			return true
		}
		if target, err := filepath.EvalSymlinks(o.Path); err == nil && target == f {
			return true
		}
	}
	if o.Source != rec.Source || o.Source == hub.Local || o.Repo != rec.Repo {
		return false
	}
	switch {
	case o.SHA256 == "": // not listed yet: it may pick this file
		return o.File == "" || o.File == rec.File
	case f == rec.Path: // the snapshot link names one commit's file
		return o.Commit == rec.Commit && o.File == rec.File
	default: // the blob or its unfinished download
		return o.SHA256 == rec.SHA256
	}
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// Get returns one record.
func (m *Manager) Get(name string) (Record, error) {
	e, err := m.entry(name)
	if err != nil {
		return Record{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return e.rec, nil
}

// List returns the records sorted by name.
func (m *Manager) List() []Record {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Record, 0, len(m.entries))
	for _, e := range m.entries {
		out = append(out, e.rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Engine returns the loaded engine of a running model (for reporting).
func (m *Manager) Engine(name string) *engine.Model {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if e, ok := m.entries[name]; ok {
		return e.model
	}
	return nil
}

// Resolve returns the running engine for name. An empty name picks the only
// model when exactly one is recorded.
func (m *Manager) Resolve(name string) (*engine.Model, string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if name == "" {
		if len(m.entries) != 1 {
			return nil, "", fmt.Errorf("%w: no model named and %d are served", ErrUnknown, len(m.entries))
		}
		for n := range m.entries {
			name = n
		}
	}
	e, ok := m.entries[name]
	if !ok {
		return nil, name, fmt.Errorf("%w: %q", ErrUnknown, name)
	}
	switch {
	case e.model != nil && e.rec.Status == StateRunning:
		return e.model, name, nil
	case e.rec.Status == StateStopped || e.rec.Status == StateError:
		msg := fmt.Sprintf("model %q is %s", name, e.rec.Status)
		if e.rec.Error != "" {
			msg += ": " + e.rec.Error
		}
		return nil, name, fmt.Errorf("%w: %s", ErrUnavailable, msg)
	default:
		msg := fmt.Sprintf("model %q is %s", name, e.rec.Status)
		if p := e.rec.Progress; p != nil && p.Total > 0 {
			msg += fmt.Sprintf(" (%d%%)", p.Done*100/p.Total)
		}
		return nil, name, fmt.Errorf("%w: %s", ErrNotReady, msg)
	}
}

// WaitFor blocks until each named model is running or failed, or ctx ends,
// and returns the first failure.
func (m *Manager) WaitFor(ctx context.Context, names ...string) error {
	for _, n := range names {
		for {
			rec, err := m.Get(n)
			if err != nil {
				return err
			}
			if rec.Status == StateRunning {
				break
			}
			if rec.Status == StateError {
				return fmt.Errorf("cannot serve model %q: %s", n, rec.Error)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// Close stops every worker and frees every model; records stay as they are.
func (m *Manager) Close() error {
	m.mu.RLock()
	es := make([]*entry, 0, len(m.entries))
	for _, e := range m.entries {
		es = append(es, e)
	}
	m.mu.RUnlock()
	for _, e := range es {
		m.mu.Lock()
		cancel, done, model := e.cancel, e.done, e.model
		e.model = nil
		m.mu.Unlock()
		if cancel != nil {
			cancel()
			<-done
		}
		if model != nil {
			model.CloseBecause("shutting down")
		}
	}
	m.wg.Wait()
	return nil
}
