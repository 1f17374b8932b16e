package main

import (
	"fmt"
	"os"
	"time"

	"github.com/aimind/aimind/auth"
)

// The keys file is edited by one writer (an operator's machine, a CI job)
// and read by every replica (serve --keys-file). Each change replaces the
// file atomically; a lock serialises writers on one machine only.

func createInFile(path, name string, ttl time.Duration, models []string) error {
	plain, rec, err := auth.NewKeyRecord(name, ttl, models, time.Now())
	if err != nil {
		return err
	}
	err = auth.UpdateKeysFile(path, func(keys []auth.APIKey) ([]auth.APIKey, error) {
		return append(keys, rec), nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "API key %s added to %s (its hash only); it is shown once, store it now:\n", rec.ID, path)
	fmt.Println(plain)
	return nil
}

func revokeInFile(path, id string) error {
	err := auth.UpdateKeysFile(path, func(keys []auth.APIKey) ([]auth.APIKey, error) {
		out := keys[:0]
		for _, k := range keys {
			if k.ID != id {
				out = append(out, k)
			}
		}
		if len(out) == len(keys) {
			return nil, fmt.Errorf("cannot revoke API key %q: %w in %s", id, auth.ErrUnknown, path)
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "API key %s removed from %s; replicas reading it refuse the key within a second\n", id, path)
	return nil
}

func listFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read keys file: %w", err)
	}
	keys, err := auth.ParseKeysFile(data)
	if err != nil {
		return fmt.Errorf("cannot list %s: %w", path, err)
	}
	rows := make([]keyRow, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, keyRow{k.ID, k.Name, k.Prefix, k.Created, k.Expires, nil, k.Models})
	}
	return printKeys(rows)
}

func exportToFile(k *auth.Keys, path string) error {
	recs, err := k.Records()
	if err != nil {
		return fmt.Errorf("cannot export keys: %w", err)
	}
	err = auth.UpdateKeysFile(path, func(keys []auth.APIKey) ([]auth.APIKey, error) {
		byID := map[string]int{}
		for i, k := range keys {
			byID[k.ID] = i
		}
		for _, r := range recs {
			r.LastUsed = nil
			if i, ok := byID[r.ID]; ok {
				keys[i] = r
			} else {
				keys = append(keys, r)
			}
		}
		return keys, nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d API keys exported to %s (hashes only)\n", len(recs), path)
	return nil
}
