package hub

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
)

// BlobPath is where the cache keeps repo's file with this sha256:
// <cache>/models--owner--name/blobs/<sha256>, with ".incomplete" appended
// while it downloads. Both names are validated before the path is built.
func (h *httpBase) BlobPath(repo, sha256 string) (string, error) {
	if err := ValidRepo(repo); err != nil {
		return "", err
	}
	if err := ValidHash(sha256); err != nil {
		return "", fmt.Errorf("cannot name the cached file: %w", err)
	}
	return filepath.Join(h.repoDir(repo), "blobs", sha256), nil
}

// blobLocks holds one lock per blob path: two models deploying the same file
// at once would otherwise write one ".incomplete" file together, and the
// second rename would fail after the first.
var blobLocks sync.Map // path → chan struct{} (capacity 1)

// lockBlob waits for path's lock, or for ctx to end.
func lockBlob(ctx context.Context, path string) (unlock func(), err error) {
	v, _ := blobLocks.LoadOrStore(path, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
