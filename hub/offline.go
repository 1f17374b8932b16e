package hub

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrOffline is returned for anything that would need the network while
// aimind runs offline (serve --offline).
var ErrOffline = errors.New("offline: the network is not used")

// CachedListing lists what the local cache holds of repo at revision (a
// branch or tag whose refs/ entry an earlier download wrote, or a commit),
// without the network. Each file's SHA256 is its blob's name, which the
// download verified.
func (h *httpBase) CachedListing(repo, revision string) (Listing, error) {
	if err := ValidRepo(repo); err != nil {
		return Listing{}, err
	}
	if err := ValidRevision(revision); err != nil {
		return Listing{}, err
	}
	dir := h.repoDir(repo)
	commit := revision
	if ref, err := os.ReadFile(filepath.Join(dir, "refs", filepath.FromSlash(revision))); err == nil {
		commit = strings.TrimSpace(string(ref))
	}
	if ValidRevision(commit) != nil {
		return Listing{}, fmt.Errorf("cannot use the local cache of %s: refs/%s holds %q", repo, revision, commit)
	}
	snap := filepath.Join(dir, "snapshots", commit)
	if st, err := os.Stat(snap); err != nil || !st.IsDir() {
		return Listing{}, fmt.Errorf("cannot find %s at %s in the local cache %s (%w): run `aimind pull %s` where the network is reachable", repo, revision, h.cache, ErrOffline, repo)
	}
	l := Listing{Repo: repo, Commit: commit}
	err := filepath.WalkDir(snap, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(snap, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		st, err := os.Stat(p) // follows the link to the blob
		if ValidFile(name) != nil || err != nil || !st.Mode().IsRegular() {
			return nil // a dangling link or an odd name: not a usable file
		}
		f := File{Path: name, Size: st.Size()}
		if blob, err := filepath.EvalSymlinks(p); err == nil && ValidHash(filepath.Base(blob)) == nil {
			f.SHA256 = filepath.Base(blob)
		}
		l.Files = append(l.Files, f)
		return nil
	})
	if err != nil {
		return Listing{}, fmt.Errorf("cannot list the local cache of %s: %w", repo, err)
	}
	return l, nil
}

// Offline wraps a hub so that it answers from the local cache only: List
// reads the cache, Download returns cached files, Search refuses.
func Offline(h Hub) Hub { return offlineHub{h} }

type cacheLister interface {
	CachedListing(repo, revision string) (Listing, error)
}

type offlineHub struct{ h Hub }

func (o offlineHub) Search(context.Context, string, bool, int) ([]Repo, error) {
	return nil, fmt.Errorf("cannot search the hub: %w (aimind serve --offline)", ErrOffline)
}

func (o offlineHub) List(_ context.Context, repo, revision string) (Listing, error) {
	cl, ok := o.h.(cacheLister)
	if !ok {
		return Listing{}, fmt.Errorf("cannot list %s: %w, and this hub has no local cache", repo, ErrOffline)
	}
	return cl.CachedListing(repo, revision)
}

func (o offlineHub) Download(_ context.Context, l Listing, f File, _ string, _ func(Progress)) (string, error) {
	if p, ok := o.h.Cached(l.Repo, l.Commit, f.Path); ok {
		return p, nil
	}
	return "", fmt.Errorf("cannot get %s of %s: not in the local cache (%w); run `aimind pull %s/%s` where the network is reachable", f.Path, l.Repo, ErrOffline, l.Repo, f.Path)
}

func (o offlineHub) Cached(repo, commit, file string) (string, bool) {
	return o.h.Cached(repo, commit, file)
}

// BlobPath forwards the cache's blob path, so that deleting a model under
// --offline removes its unfinished download too.
func (o offlineHub) BlobPath(repo, sha256 string) (string, error) {
	bp, ok := o.h.(interface {
		BlobPath(repo, sha256 string) (string, error)
	})
	if !ok {
		return "", fmt.Errorf("cannot find the blobs of %s: this hub has no local cache", repo)
	}
	return bp.BlobPath(repo, sha256)
}
