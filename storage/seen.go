package storage

import (
	"bytes"
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
// It reads only the entries it deletes.
func (db *DB) PruneSeen(before time.Time) (int, error) {
	var n int
	err := db.update(func(tx *bolt.Tx) error {
		n = 0
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		// Collected (and copied) first: deleting while a cursor walks can
		// skip keys.
		var old [][]byte
		c := bk.seenByTime.Cursor()
		for k, _ := c.First(); k != nil && keyBefore(k, before); k, _ = c.Next() {
			old = append(old, bytes.Clone(k))
		}
		for _, k := range old {
			_, key, err := splitTimeKey(k)
			if err != nil {
				return err
			}
			if err := bk.seen.Delete([]byte(key)); err != nil {
				return fmt.Errorf("delete envelope %s: %w", key, err)
			}
			if err := bk.seenByTime.Delete(k); err != nil {
				return fmt.Errorf("delete seen index entry of %s: %w", key, err)
			}
		}
		n = len(old)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: prune envelopes seen before %s: %w", fmtTime(before), err)
	}
	return n, nil
}

// keyBefore reports whether the time prefix of k is strictly before t.
func keyBefore(k []byte, t time.Time) bool {
	return len(k) >= timeKeyLen && keyTime(k).Before(t)
}
