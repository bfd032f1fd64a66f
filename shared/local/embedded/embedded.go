// Package embedded is the local default store.Store: a single bbolt file, no
// server. bbolt serializes write transactions, which gives the same
// exactly-once guarantees as DynamoDB's conditional writes.
package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

var bucket = []byte("regflow")

// Store is a store.Store in a bbolt file.
type Store struct {
	db *database
}

var _ store.Store = (*Store)(nil)

// database runs transactions on the file: on one long-lived handle, or, in shared mode,
// on a handle opened for each transaction so several processes can take turns.
type database struct {
	path   string
	handle *bolt.DB // nil in shared mode
}

func openFile(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: another regflow process holds it (is `regflow local` running?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return db, nil
}

func (d *database) with(fn func(*bolt.DB) error) error {
	if d.handle != nil {
		return fn(d.handle)
	}
	db, err := openFile(d.path)
	if err != nil {
		return err
	}
	err = fn(db)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// Update runs a read-write transaction.
func (d *database) Update(fn func(*bolt.Tx) error) error {
	return d.with(func(db *bolt.DB) error { return db.Update(fn) })
}

// View runs a read-only transaction.
func (d *database) View(fn func(*bolt.Tx) error) error {
	return d.with(func(db *bolt.DB) error { return db.View(fn) })
}

// Open opens or creates the store file and holds it: only this process may use it until Close.
func Open(path string) (*Store, error) {
	db, err := openFile(path)
	if err != nil {
		return nil, err
	}
	s := &Store{db: &database{path: path, handle: db}}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// OpenShared opens the store file for each transaction, so `regflow local` and the CLI's
// --local commands can use the same file in turn.
func OpenShared(path string) (*Store, error) {
	s := &Store{db: &database{path: path}}
	return s, s.init()
}

func (s *Store) init() error {
	if err := s.db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		return fmt.Errorf("initialise store %s: %w", s.db.path, err)
	}
	return nil
}

// Close releases the file.
func (s *Store) Close() error {
	if s.db.handle == nil {
		return nil
	}
	return s.db.handle.Close()
}

func itemKey(pk, sk string) []byte { return []byte(pk + "\x00" + sk) }

func get(tx *bolt.Tx, pk, sk string, v any) (bool, error) {
	b := tx.Bucket(bucket).Get(itemKey(pk, sk))
	if b == nil {
		return false, nil
	}
	return true, json.Unmarshal(b, v)
}

func put(tx *bolt.Tx, pk, sk string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(itemKey(pk, sk), b)
}

// imageRecord is the image item; fields added by later features survive PutImage.
type imageRecord struct {
	regflow.Image
}

// PutImage replaces the image's identity fields and keeps the rest of its record.
func (s *Store) PutImage(_ context.Context, img regflow.Image) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		var rec imageRecord
		if _, err := get(tx, store.ImagePK(img.Repository, img.Digest), store.SKMeta, &rec); err != nil {
			return fmt.Errorf("read image %s: %w", img.Ref(), err)
		}
		commit := rec.Commit
		rec.Image = img
		if rec.Commit == "" {
			rec.Commit = commit
		}
		return put(tx, store.ImagePK(img.Repository, img.Digest), store.SKMeta, rec)
	})
}

// GetImage reads an image record.
func (s *Store) GetImage(_ context.Context, repo, digest string) (regflow.Image, error) {
	var rec imageRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		ok, err := get(tx, store.ImagePK(repo, digest), store.SKMeta, &rec)
		if err != nil {
			return fmt.Errorf("decode image %s@%s: %w", repo, digest, err)
		}
		if !ok {
			return fmt.Errorf("image %s@%s: %w", repo, digest, store.ErrNotFound)
		}
		return nil
	})
	return rec.Image, err
}

// AppendAudit writes the entry unless its key exists.
func (s *Store) AppendAudit(_ context.Context, e regflow.AuditEntry) (bool, error) {
	created := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		k := itemKey(store.AuditPK(e.Subject), store.AuditSK(e.Time, e.ID))
		if tx.Bucket(bucket).Get(k) != nil {
			return nil
		}
		created = true
		return put(tx, store.AuditPK(e.Subject), store.AuditSK(e.Time, e.ID), e)
	})
	if err != nil {
		return false, fmt.Errorf("append audit entry %s for %s: %w", e.ID, e.Subject, err)
	}
	return created, nil
}

// Audit scans the subject's prefix; keys sort by time as in DynamoDB.
func (s *Store) Audit(_ context.Context, subject string) ([]regflow.AuditEntry, error) {
	var out []regflow.AuditEntry
	prefix := itemKey(store.AuditPK(subject), "")
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			var e regflow.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit entry %q: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

func hasPrefix(k, p []byte) bool { return len(k) >= len(p) && string(k[:len(p)]) == string(p) }

type claimRecord struct {
	Until time.Time `json:"until"`
}

// Claim takes key unless an unexpired claim holds it.
func (s *Store) Claim(_ context.Context, key string, now, until time.Time) (bool, error) {
	won := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		var rec claimRecord
		ok, err := get(tx, store.ClaimPK(key), store.SKClaim, &rec)
		if err != nil {
			return err
		}
		if ok && rec.Until.After(now) {
			return nil
		}
		won = true
		return put(tx, store.ClaimPK(key), store.SKClaim, claimRecord{Until: until})
	})
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", key, err)
	}
	return won, nil
}

// Release deletes the claim.
func (s *Store) Release(_ context.Context, key string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Delete(itemKey(store.ClaimPK(key), store.SKClaim))
	})
}

func decodeJSON(b []byte, v any) error { return json.Unmarshal(b, v) }

// Renew sets the claim's expiry, holding it.
func (s *Store) Renew(_ context.Context, key string, until time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return put(tx, store.ClaimPK(key), store.SKClaim, claimRecord{Until: until})
	})
}
