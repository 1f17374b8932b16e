// Delete: a model's record goes, and its downloaded files unless another
// model uses them.

package models

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/store"
)

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
	m.broadcast()
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
	case !removeFiles && rec.Source != hub.Local:
		if rec.Path != "" {
			d.Kept = []string{rec.Path}
		}
		d.Note = "its downloaded file is kept"
	case rec.Source == hub.Local:
		d.Kept = []string{rec.Path}
		d.Note = fmt.Sprintf("the local file %s is kept: aimind never removes a file it did not download", rec.Path)
	default:
		m.removeFiles(rec, others, &d)
	}
	m.log.Info("model deleted", "model", name, "removed_files", d.Removed, "kept_files", d.Kept)
	m.logs.forget(name)
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
