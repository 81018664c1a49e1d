package storage

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MarkSeen remembers that the envelope with key was handled at at, and
// reports whether this is the first time. Slack re-sends envelopes it
// thinks were not acknowledged, also across our restarts, so callers
// handle an envelope only when first is true.
func (db *DB) MarkSeen(key string, at time.Time) (first bool, err error) {
	if key == "" {
		return false, errors.New("storage: mark envelope seen: empty key")
	}
	err = db.write(func(tx *bolt.Tx) error {
		first = false
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		if bk.seen.Get([]byte(key)) != nil {
			return nil
		}
		at = at.UTC()
		ik, err := timeKey(at, key)
		if err != nil {
			return err
		}
		if err := putJSON(bk.seen, key, at); err != nil {
			return err
		}
		if err := bk.seenByTime.Put(ik, []byte{}); err != nil {
			return fmt.Errorf("write seen index: %w", err)
		}
		first = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("storage: mark envelope %s seen: %w", key, err)
	}
	return first, nil
}

// PruneSeen forgets envelopes seen before before and returns how many.
// It reads only the entries it deletes, in transactions of at most 500
// so that a backlog never holds the writer lock for long.
func (db *DB) PruneSeen(before time.Time) (int, error) {
	n, _, err := db.pruneInBatches(func(tx *bolt.Tx, _ []byte, dry bool) (int, []byte, error) {
		return pruneSeen(tx, before, defaultPruneBatch, dry)
	})
	if err != nil {
		return n, fmt.Errorf("storage: prune envelopes seen before %s: %w", fmtTime(before), err)
	}
	return n, nil
}

// keyBefore reports whether the time prefix of k is strictly before t.
func keyBefore(k []byte, t time.Time) bool {
	return len(k) >= timeKeyLen && keyTime(k).Before(t)
}
