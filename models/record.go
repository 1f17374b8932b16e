// Records: what the store keeps of each model, what a deploy asks for, and
// served names.

package models

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/modelfile"
	"github.com/aimind/aimind/selfcheck"
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
	// Problem explains Error: what happened, what to do, the form field.
	Problem *hub.Problem `json:"problem,omitempty"`
	// LoadStarted is stored (synced) before llama.cpp loads the file and
	// cleared when the load returns: found set at startup, the process died
	// while loading, and the model is not started again automatically.
	LoadStarted bool      `json:"load_started,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
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
			r.Revision = hub.DefaultRevision(r.Source)
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

func (m *Manager) set(e *entry, f func(r *Record)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&e.rec)
	if e.rec.Status != StateError {
		e.rec.Problem = nil
	}
	e.rec.Updated = time.Now().UTC()
	m.persist(e)
}

// persist writes the record (one synced transaction) and tells waiters
// that it changed. Holds m.mu.
func (m *Manager) persist(e *entry) {
	m.broadcast()
	if m.st == nil {
		return
	}
	rec := e.rec
	rec.Progress = nil
	if err := m.st.Put("model/"+rec.Name, rec); err != nil {
		m.log.Error("cannot store model record", "model", rec.Name, "err", err)
	}
}
