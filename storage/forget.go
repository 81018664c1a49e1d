package storage

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Forget deletes everything stored about userID. It first deletes their
// data key in a transaction of its own, so their reflections can no
// longer be opened from that commit on, here or in any copy of the file
// made later (a backup taken earlier still holds the data key, sealed
// under the master key, and opens while that key lives); then it deletes
// their records in every bucket. Only if something was deleted does it
// mark the file as needing compaction, so forgetting someone unknown
// costs nothing. If the second step fails, calling Forget again (or the
// next Open) finishes it. Forgetting someone unknown is not an error.
func (db *DB) Forget(userID string) error {
	if err := checkUserID(userID); err != nil {
		return fmt.Errorf("storage: forget: %w", err)
	}
	var hadKey, deleted bool
	err := db.update(func(tx *bolt.Tx) error {
		rb, err := reflectionBucketsOf(tx)
		if err != nil {
			return err
		}
		hadKey = rb.dataKeys.Get([]byte(userID)) != nil
		if !hadKey {
			return nil // no sealed reflection to make unreadable first
		}
		if err := rb.dataKeys.Delete([]byte(userID)); err != nil {
			return fmt.Errorf("delete data key: %w", err)
		}
		// The marker lets Open finish a Forget that was cut short.
		return putJSON(rb.forgetting, userID, db.now().UTC())
	})
	if err != nil {
		return fmt.Errorf("storage: forget %s: %w", userID, err)
	}
	err = db.update(func(tx *bolt.Tx) error {
		var err error
		deleted, err = erasePerson(tx, userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: forget %s: their reflections are unreadable, but deleting their records failed: call Forget again: %w", userID, err)
	}
	if hadKey || deleted {
		db.needsCompaction.Store(true)
	}
	return nil
}

// erasePerson deletes every record about userID, in every bucket that
// holds people's ids, and marks the file as needing compaction if it
// deleted anything. A bucket added to the layout that holds user ids
// must be erased here too.
func erasePerson(tx *bolt.Tx, userID string) (deleted bool, err error) {
	bk, err := bucketsOf(tx)
	if err != nil {
		return false, err
	}
	if deleted, err = deleteSubscriber(bk, userID); err != nil {
		return false, err
	}
	rb, err := reflectionBucketsOf(tx)
	if err != nil {
		return false, err
	}
	prefix := personPrefix(userID)
	for _, b := range []*bolt.Bucket{rb.reflections, rb.shared} {
		n, err := deleteKeysWithPrefix(b, prefix)
		if err != nil {
			return false, err
		}
		deleted = deleted || n > 0
	}
	// The follow-up index is sorted by time, not person, but holds only
	// pending follow-ups; walking all of it also catches stray entries.
	var stale [][]byte
	c := rb.followUps.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) >= timeKeyLen && bytes.HasPrefix(k[timeKeyLen:], prefix) {
			stale = append(stale, bytes.Clone(k))
		}
	}
	for _, k := range stale {
		if err := rb.followUps.Delete(k); err != nil {
			return false, fmt.Errorf("delete follow-up index entry: %w", err)
		}
	}
	deleted = deleted || len(stale) > 0
	for name, b := range map[string]*bolt.Bucket{bucketReflectionSeq: rb.seq, bucketDataKeys: rb.dataKeys, bucketForgetting: rb.forgetting} {
		if b.Get([]byte(userID)) == nil {
			continue
		}
		if err := b.Delete([]byte(userID)); err != nil {
			return false, fmt.Errorf("delete from %s: %w", name, err)
		}
		deleted = true
	}
	// Open pulses keep keyed markers of who answered, which name nobody
	// once the pulse closes and its key is destroyed. They stay: deleting
	// them would let the person vote again and single out a colleague.
	if !deleted {
		return false, nil
	}
	return true, markNeedsCompaction(rb)
}

// deleteKeysWithPrefix deletes every key of b that starts with prefix
// and returns how many it deleted.
func deleteKeysWithPrefix(b *bolt.Bucket, prefix []byte) (int, error) {
	// Collected first: deleting while a cursor walks can skip keys.
	var ks [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ks = append(ks, bytes.Clone(k))
	}
	for _, k := range ks {
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("delete %x: %w", k, err)
		}
	}
	return len(ks), nil
}
