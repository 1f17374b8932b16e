// Package models keeps the set of served models: their names, files and
// lifecycle (loading, running, failed), and hands the rerank path the loaded
// engine for a name.
package models

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/modelfile"
)

// State is where a model is in its lifecycle.
type State string

// Model states.
const (
	StateLoading State = "loading"
	StateRunning State = "running"
	StateError   State = "error"
)

// Sentinel errors.
var (
	ErrUnknown   = errors.New("model not found")
	ErrNotReady  = errors.New("model is not ready")
	ErrDuplicate = errors.New("two models share one name")
	ErrBadName   = errors.New("invalid model name")
)

// Entry is one served model.
type Entry struct {
	Name    string
	Path    string
	State   State
	Err     string
	Facts   *modelfile.Facts
	Created time.Time
	model   *engine.Model
}

// Manager owns the served models.
type Manager struct {
	mu      sync.RWMutex
	entries map[string]*Entry
	opts    engine.Options
	log     *slog.Logger
	wg      sync.WaitGroup

	// Open loads a model file; engine.Open unless replaced before the first Add.
	Open func(path string, o engine.Options) (*engine.Model, error)
}

// NewManager returns an empty manager; models load with opts.
func NewManager(opts engine.Options, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	opts.Logger = log
	return &Manager{entries: map[string]*Entry{}, opts: opts, log: log, Open: engine.Open}
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
	if !validName.MatchString(name) {
		return fmt.Errorf("%w %q: use 1-128 letters, digits, '.', '_' or '-'", ErrBadName, name)
	}
	return nil
}

// Add checks the file in Go at once (a damaged or non-reranker file is an
// error here) and loads it in the background; Wait reports the outcome.
func (m *Manager) Add(name, path string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	facts, err := modelfile.Check(path)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if _, ok := m.entries[name]; ok {
		m.mu.Unlock()
		return fmt.Errorf("%w %q: give each --model its own --alias", ErrDuplicate, name)
	}
	e := &Entry{Name: name, Path: path, State: StateLoading, Facts: facts, Created: time.Now()}
	m.entries[name] = e
	m.mu.Unlock()

	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		start := time.Now()
		model, err := m.Open(path, m.opts)
		m.mu.Lock()
		defer m.mu.Unlock()
		if err != nil {
			e.State, e.Err = StateError, err.Error()
			m.log.Error("cannot load model", "model", name, "path", path, "err", err)
			return
		}
		e.model, e.State = model, StateRunning
		m.log.Info("model running", "model", name, "path", path, "architecture", facts.Architecture,
			"file_type", facts.FileType, "layout", model.Layout().Kind, "max_pair_tokens", model.MaxPairTokens(),
			"load_seconds", time.Since(start).Seconds())
	}()
	return nil
}

// Wait blocks until every started load has finished and returns the first
// load error.
func (m *Manager) Wait() error {
	m.wg.Wait()
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, e := range m.sorted() {
		if e.State == StateError {
			return fmt.Errorf("cannot load model %q: %s", e.Name, e.Err)
		}
	}
	return nil
}

// Resolve returns the running engine for name. An empty name picks the only
// model when exactly one is served.
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
	if e.State != StateRunning {
		msg := fmt.Sprintf("%q is %s", name, e.State)
		if e.Err != "" {
			msg += ": " + e.Err
		}
		return nil, name, fmt.Errorf("%w: %s", ErrNotReady, msg)
	}
	return e.model, name, nil
}

// List returns a snapshot of the entries sorted by name.
func (m *Manager) List() []Entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Entry
	for _, e := range m.sorted() {
		out = append(out, *e)
	}
	return out
}

// Model returns the engine of a running entry (for reporting).
func (e Entry) Model() *engine.Model { return e.model }

func (m *Manager) sorted() []*Entry {
	es := make([]*Entry, 0, len(m.entries))
	for _, e := range m.entries {
		es = append(es, e)
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	return es
}

// Close waits for loads and frees every model.
func (m *Manager) Close() error {
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.entries {
		if e.model != nil {
			e.model.Close()
			e.model = nil
		}
	}
	m.entries = map[string]*Entry{}
	return nil
}
