package models

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/aimind/aimind/hub"
)

// LogEntry is one event of a model's life: its download, load, self-check,
// failures, stop and start.
type LogEntry struct {
	Time    time.Time         `json:"time"`
	Level   string            `json:"level"`
	Message string            `json:"message"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

// LogsPerModel is how many entries each model keeps: the oldest go first.
const LogsPerModel = 200

// modelLogs keeps, per model, the last LogsPerModel records the manager
// logged with a "model" attribute, in memory only (a restart starts them
// afresh; the process log has everything).
type modelLogs struct {
	mu   sync.Mutex
	ring map[string][]LogEntry
}

func (l *modelLogs) add(name string, e LogEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.ring[name]
	if len(r) == LogsPerModel {
		r = append(r[:0:0], r[1:]...) // a fresh array: readers hold copies of the old one
	}
	l.ring[name] = append(r, e)
}

func (l *modelLogs) get(name string) []LogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LogEntry{}, l.ring[name]...)
}

func (l *modelLogs) forget(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.ring, name)
}

// Logs returns a model's recent events, oldest first.
func (m *Manager) Logs(name string) ([]LogEntry, error) {
	if _, err := m.entry(name); err != nil {
		return nil, err
	}
	return m.logs.get(name), nil
}

// teeHandler passes every record to the process log and keeps those about
// one model (a "model" attribute) at Info or above in that model's ring.
type teeHandler struct {
	next  slog.Handler
	logs  *modelLogs
	attrs []slog.Attr // from WithAttrs
	group string      // records in a group are passed on only
}

func (h *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.group == "" && r.Level >= slog.LevelInfo {
		e := LogEntry{Time: r.Time.UTC(), Level: r.Level.String(), Message: r.Message, Attrs: map[string]string{}}
		name := ""
		collect := func(a slog.Attr) bool {
			v := a.Value.Resolve().String()
			if a.Key == "model" {
				name = v
				return true
			}
			e.Attrs[a.Key] = hub.Sanitize(v)
			return true
		}
		for _, a := range h.attrs {
			collect(a)
		}
		r.Attrs(collect)
		if name != "" {
			h.logs.add(name, e)
		}
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	if name != "" {
		c.group = name
	}
	return &c
}
