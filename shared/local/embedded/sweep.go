package embedded

import (
	"context"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

var _ store.SweepStore = (*Store)(nil)

// CreateSweepRun stores the run unless its ID exists.
func (s *Store) CreateSweepRun(_ context.Context, run store.SweepRun) (bool, error) {
	created := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucket).Get(itemKey(store.SweepPK(run.ID), store.SKSweepRun)) != nil {
			return nil
		}
		created = true
		run.Batches = nil
		return put(tx, store.SweepPK(run.ID), store.SKSweepRun, run)
	})
	if err != nil {
		return false, fmt.Errorf("create sweep run %s: %w", run.ID, err)
	}
	return created, nil
}

// GetSweepRun reads a run.
func (s *Store) GetSweepRun(_ context.Context, id string) (store.SweepRun, error) {
	var run store.SweepRun
	if err := s.view(store.SweepPK(id), store.SKSweepRun, &run); err != nil {
		return store.SweepRun{}, fmt.Errorf("sweep run %s: %w", id, err)
	}
	return run, nil
}

// updateRun applies change to the stored run in one write transaction.
func (s *Store) updateRun(id string, change func(*store.SweepRun) error) (store.SweepRun, error) {
	var run store.SweepRun
	err := s.db.Update(func(tx *bolt.Tx) error {
		ok, err := get(tx, store.SweepPK(id), store.SKSweepRun, &run)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		if err := change(&run); err != nil {
			return err
		}
		return put(tx, store.SweepPK(id), store.SKSweepRun, run)
	})
	return run, err
}

var errUnchanged = errors.New("unchanged")

// SetSweepTotal sets the batch count once.
func (s *Store) SetSweepTotal(_ context.Context, id string, total int) (store.SweepRun, error) {
	run, err := s.updateRun(id, func(r *store.SweepRun) error {
		switch {
		case r.Total == total:
			return errUnchanged
		case r.Total != 0:
			return fmt.Errorf("the run already has %d batches, not %d", r.Total, total)
		}
		r.Total = total
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return run, nil
	}
	if err != nil {
		return store.SweepRun{}, fmt.Errorf("set batch total of sweep run %s: %w", id, err)
	}
	return run, nil
}

// CompleteSweepBatch marks the batch done and adds its counts, in one transaction.
func (s *Store) CompleteSweepBatch(_ context.Context, id, batch string, c store.SweepCounts) (store.SweepRun, bool, error) {
	run, err := s.updateRun(id, func(r *store.SweepRun) error {
		if slices.Contains(r.Batches, batch) {
			return errUnchanged
		}
		r.Batches = append(r.Batches, batch)
		r.SweepCounts = r.SweepCounts.Add(c)
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return run, false, nil
	}
	if err != nil {
		return store.SweepRun{}, false, fmt.Errorf("complete batch %s of sweep run %s: %w", batch, id, err)
	}
	return run, true, nil
}

// PutSweepPart stores a report part.
func (s *Store) PutSweepPart(_ context.Context, id string, p store.SweepPart) error {
	if len(p.Data) > store.MaxSweepPartBytes {
		return fmt.Errorf("report part %s of sweep run %s is %d bytes, more than %d", p.Name, id, len(p.Data), store.MaxSweepPartBytes)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return put(tx, store.SweepPK(id), store.SweepPartSK(p.Name), p)
	})
}

// SweepParts scans the run's part keys, which sort by name.
func (s *Store) SweepParts(_ context.Context, id string) ([]store.SweepPart, error) {
	var out []store.SweepPart
	err := scan(s.db, string(itemKey(store.SweepPK(id), store.SweepPartSK(""))), func(p store.SweepPart) { out = append(out, p) })
	if err != nil {
		return nil, fmt.Errorf("read report parts of sweep run %s: %w", id, err)
	}
	return out, nil
}

// AppendAudits writes the entries whose keys are absent, in one transaction.
func (s *Store) AppendAudits(_ context.Context, entries []regflow.AuditEntry) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, e := range entries {
			pk, sk := store.AuditPK(e.Subject), store.AuditSK(e.Time, e.ID)
			if tx.Bucket(bucket).Get(itemKey(pk, sk)) != nil {
				continue
			}
			if err := put(tx, pk, sk, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append %d audit entries: %w", len(entries), err)
	}
	return nil
}

// ManifestInfos reads cached manifest facts.
func (s *Store) ManifestInfos(_ context.Context, digests []string) (map[string]store.ManifestInfo, error) {
	out := make(map[string]store.ManifestInfo, len(digests))
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, d := range digests {
			var info store.ManifestInfo
			ok, err := get(tx, store.ManifestPK(d), store.SKMeta, &info)
			if err != nil {
				return fmt.Errorf("decode manifest facts of %s: %w", d, err)
			}
			if ok {
				out[d] = info
			}
		}
		return nil
	})
	return out, err
}

// PutManifestInfos caches manifest facts in one transaction.
func (s *Store) PutManifestInfos(_ context.Context, infos []store.ManifestInfo) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, info := range infos {
			if err := put(tx, store.ManifestPK(info.Digest), store.SKMeta, info); err != nil {
				return fmt.Errorf("cache manifest facts of %s: %w", info.Digest, err)
			}
		}
		return nil
	})
}
