package hub

import "errors"

// listOrCache answers a listing the hub could not give (it cannot be
// reached, or it failed with a 5xx) from the local cache, when the cache
// holds a snapshot of repo at revision: a repository downloaded before can
// be listed, deployed and started with the hub down. Any other error (an
// unknown repository, a refusal) is returned as it is, and so is err when
// the cache has nothing.
func (h *httpBase) listOrCache(repo, revision string, err error) (Listing, error) {
	var status *StatusError
	if !unreachable(err) && !(errors.As(err, &status) && status.Status >= 500) {
		return Listing{}, err
	}
	l, cerr := h.CachedListing(repo, revision)
	if cerr != nil || len(l.Files) == 0 {
		return Listing{}, err
	}
	l.FromCache = true
	return l, nil
}
