package embedded

import (
	"context"
	"errors"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

// putVersioned stores v under pk/SKMeta if the stored version equals prev (absent = 0).
func putVersioned[T any](db *database, pk string, v T, version func(T) int, prev int) error {
	return db.Update(func(tx *bolt.Tx) error {
		var cur T
		ok, err := get(tx, pk, store.SKMeta, &cur)
		if err != nil {
			return err
		}
		have := 0
		if ok {
			have = version(cur)
		}
		if have != prev {
			return regflow.ErrConflict
		}
		return put(tx, pk, store.SKMeta, v)
	})
}

func reqVersion(r regflow.ApprovalRequest) int { return r.Version }
func relVersion(r regflow.Release) int         { return r.Version }

// CreateRequest stores a new request.
func (s *Store) CreateRequest(_ context.Context, r regflow.ApprovalRequest) (bool, error) {
	r.Version = 1
	switch err := putVersioned(s.db, store.RequestPK(r.ID), r, reqVersion, 0); {
	case err == nil:
		return true, nil
	case errors.Is(err, regflow.ErrConflict):
		return false, nil
	default:
		return false, fmt.Errorf("create approval request %s: %w", r.ID, err)
	}
}

// UpdateRequest writes next if nobody else wrote since it was read.
func (s *Store) UpdateRequest(_ context.Context, next regflow.ApprovalRequest) error {
	if next.Version < 2 {
		return fmt.Errorf("update approval request %s: version %d was not advanced", next.ID, next.Version)
	}
	return putVersioned(s.db, store.RequestPK(next.ID), next, reqVersion, next.Version-1)
}

// GetRequest reads a request.
func (s *Store) GetRequest(_ context.Context, id string) (regflow.ApprovalRequest, error) {
	var r regflow.ApprovalRequest
	err := s.view(store.RequestPK(id), store.SKMeta, &r)
	if err != nil {
		return r, fmt.Errorf("approval request %s: %w", id, err)
	}
	return r, nil
}

// Requests scans requests for a status, oldest first.
func (s *Store) Requests(_ context.Context, status string) ([]regflow.ApprovalRequest, error) {
	var out []regflow.ApprovalRequest
	err := scan(s.db, "REQ#", func(r regflow.ApprovalRequest) {
		if r.Status == status {
			out = append(out, r)
		}
	})
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

// PutRelease moves a pointer if nobody else moved it since it was read.
func (s *Store) PutRelease(_ context.Context, next regflow.Release) error {
	return putVersioned(s.db, store.ReleasePK(next.Env, next.Repository), next, relVersion, next.Version-1)
}

// GetRelease reads a pointer.
func (s *Store) GetRelease(_ context.Context, env, repo string) (regflow.Release, error) {
	var r regflow.Release
	if err := s.view(store.ReleasePK(env, repo), store.SKMeta, &r); err != nil {
		return r, fmt.Errorf("release pointer %s/%s: %w", env, repo, err)
	}
	return r, nil
}

// Releases lists every pointer.
func (s *Store) Releases(_ context.Context) ([]regflow.Release, error) {
	var out []regflow.Release
	err := scan(s.db, "REL#", func(r regflow.Release) { out = append(out, r) })
	return out, err
}

// PutVerification records a verification result.
func (s *Store) PutVerification(_ context.Context, v regflow.Verification) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return put(tx, store.VerificationPK(v.Repository, v.Digest), store.VerificationSK(v.Env), v)
	})
}

// GetVerification reads a verification result.
func (s *Store) GetVerification(_ context.Context, env, repo, digest string) (regflow.Verification, error) {
	var v regflow.Verification
	if err := s.view(store.VerificationPK(repo, digest), store.VerificationSK(env), &v); err != nil {
		return v, fmt.Errorf("verification of %s@%s in %s: %w", repo, digest, env, err)
	}
	return v, nil
}

func (s *Store) view(pk, sk string, v any) error {
	return s.db.View(func(tx *bolt.Tx) error {
		ok, err := get(tx, pk, sk, v)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		return nil
	})
}

// scan decodes every item whose key starts with prefix.
func scan[T any](db *database, prefix string, each func(T)) error {
	return db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Next() {
			var item T
			if err := decodeJSON(v, &item); err != nil {
				return fmt.Errorf("decode %q: %w", k, err)
			}
			each(item)
		}
		return nil
	})
}

// PutScan records a scan result on the image.
func (s *Store) PutScan(_ context.Context, sc regflow.Scan) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return put(tx, store.ScanPK(sc.Repository, sc.Digest), store.ScanSK(sc.Env), sc)
	})
}

// GetScan reads a scan result.
func (s *Store) GetScan(_ context.Context, env, repo, digest string) (regflow.Scan, error) {
	var sc regflow.Scan
	if err := s.view(store.ScanPK(repo, digest), store.ScanSK(env), &sc); err != nil {
		return sc, fmt.Errorf("scan of %s@%s in %s: %w", repo, digest, env, err)
	}
	return sc, nil
}
