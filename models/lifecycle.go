// Lifecycle: deploy, restore, download, load (with the self-check), stop and
// start; one worker goroutine brings each model up.

package models

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/llama"
	"github.com/aimind/aimind/modelfile"
	"github.com/aimind/aimind/selfcheck"
	"github.com/aimind/aimind/store"
)

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
			e.rec.Problem = Explain(ErrLoadInterrupted, r.Source, r.Repo)
			m.log.Error("model load was interrupted by the end of the process", "model", r.Name, "path", r.Path)
			continue
		}
		if r.Desired == StateRunning {
			e.rec.Status, e.rec.Error, e.rec.Problem = StatePending, "", nil
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

func (m *Manager) fail(e *entry, err error) {
	msg := hub.Sanitize(err.Error()) // no signed URL or token in the record or the log
	m.log.Error("model failed", "model", e.rec.Name, "err", msg)
	m.set(e, func(r *Record) {
		r.Status, r.Error, r.Progress = StateError, msg, nil
		r.Problem = Explain(err, r.Source, r.Repo)
	})
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
	cpu := llama.CPU()
	plan := engine.NewPlan(engine.ShapeOf(facts), m.opts, cpu)
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
	err = m.checkMemory(plan.Memory, inUse, loading)
	if alt, ok := plan.WithoutCopy(cpu); err != nil && ok && m.checkMemory(alt.Memory, inUse, loading) == nil {
		m.log.Info("no memory for the BF16 copy of a Q8_0 file; using the Q8_0 kernels", "model", rec.Name,
			"bf16_estimate_mib", plan.Memory>>20, "q8_0_estimate_mib", alt.Memory>>20)
		plan, err = alt, nil
	}
	opts, est := plan.Options, plan.Memory
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
	m.log.Info("loading", "model", rec.Name, "path", path, "file_type", facts.FileType, "memory_estimate_mib", est>>20)
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
	// Logged before the record says running: whoever waits for the state
	// (WaitFor wakes at once on the change) then finds the line in the
	// model's log.
	m.log.Info("model running", "model", rec.Name, "path", path, "architecture", facts.Architecture,
		"file_type", facts.FileType, "kernel", model.Kernel(), "device", model.Device(), "layout", model.Layout().Kind, "max_pair_tokens", model.MaxPairTokens(),
		"memory_estimate_mib", est>>20, "load_seconds", time.Since(start).Seconds())
	m.mu.Lock()
	e.model, e.reserved = model, 0 // counted through the model from now on
	e.rec.Status, e.rec.Error, e.rec.Progress, e.rec.Problem = StateRunning, "", nil, nil
	e.rec.SelfCheck = check
	e.rec.Device = model.Device()
	e.rec.Updated = time.Now().UTC()
	m.persist(e)
	m.mu.Unlock()
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
	m.log.Info("downloading", "model", rec.Name, "repo", rec.Repo, "file", f.Path, "bytes", f.Size, "commit", l.Commit, "from_cache_listing", l.FromCache)
	started := time.Now()
	path, err := h.Download(ctx, l, f, rec.Revision, func(p hub.Progress) {
		m.mu.Lock()
		e.rec.Progress = &Progress{Done: p.Done, Total: p.Total, Rate: p.Rate}
		m.mu.Unlock()
	})
	if err != nil {
		return "", err
	}
	m.set(e, func(r *Record) { r.Downloaded = true; r.Progress = nil })
	m.log.Info("downloaded and verified (sha256)", "model", rec.Name, "path", path, "seconds", time.Since(started).Seconds())
	return path, nil
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
	m.log.Info("model stopped", "model", name)
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
	e.rec.Status, e.rec.Desired, e.rec.Error, e.rec.Problem = StatePending, StateRunning, "", nil
	m.persist(e)
	m.log.Info("model starting", "model", name)
	m.launch(e)
	rec := e.rec
	m.mu.Unlock()
	return rec, nil
}
