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
	"sort"
	"sync"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/hub"
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
	logs     *modelLogs // each model's recent events (logs.go)
	wg       sync.WaitGroup
	// changed is closed and replaced whenever a record changes or goes
	// (under mu): WaitFor wakes on it instead of polling.
	changed chan struct{}

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

// Options build a Manager.
type Options struct {
	Engine engine.Options         // how each model loads (the kernel path follows engine.Plan)
	Store  *store.Store           // nil: records live in memory only
	Hubs   map[hub.Source]hub.Hub // nil: local files only
	Logger *slog.Logger           // nil: slog.Default()
	// MemoryBudget caps the estimated memory of loaded models (bytes); 0
	// means the memory the system reports available at load time.
	MemoryBudget int64
	// Observe, when set, is told about every encoder call of every model.
	Observe func(model string, pairs, tokens int, d time.Duration)
}

// New returns a manager with the default self-check suite, loading files
// with engine.Open and reading free memory from /proc/meminfo (fields a
// test may replace before use).
func New(o Options) *Manager {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	opts := o.Engine
	opts.Logger = log
	logs := &modelLogs{ring: map[string][]LogEntry{}}
	log = slog.New(&teeHandler{next: log.Handler(), logs: logs}) // the manager's own lines also go to each model's log
	suite := selfcheck.Default()
	return &Manager{entries: map[string]*entry{}, st: o.Store, hubs: o.Hubs, opts: opts, log: log, logs: logs,
		changed: make(chan struct{}), Open: engine.Open, FreeMemory: memAvailable, SelfCheck: &suite,
		MemoryBudget: o.MemoryBudget, Observe: o.Observe}
}

// NewManager is New with the engine options, store, hubs and logger alone.
func NewManager(opts engine.Options, st *store.Store, hubs map[hub.Source]hub.Hub, log *slog.Logger) *Manager {
	return New(Options{Engine: opts, Store: st, Hubs: hubs, Logger: log})
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

// broadcast wakes every WaitFor. Holds m.mu.
func (m *Manager) broadcast() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// WaitFor blocks until each named model is running or failed, or ctx ends,
// and returns the first failure. It wakes on each change of a record.
func (m *Manager) WaitFor(ctx context.Context, names ...string) error {
	for _, n := range names {
		for {
			e, err := m.entry(n)
			if err != nil {
				return err
			}
			m.mu.RLock()
			rec, changed := e.rec, m.changed
			m.mu.RUnlock()
			if rec.Status == StateRunning {
				break
			}
			if rec.Status == StateError {
				return fmt.Errorf("cannot serve model %q: %s", n, rec.Error)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-changed:
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
