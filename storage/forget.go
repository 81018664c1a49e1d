package storage

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Forget deletes everything stored about userID. It first marks them as
// being forgotten, deletes their data key from the secrets file and
// compacts that file (forgetKey), so their reflections can no longer be
// opened from then on, here or in any copy of the files made later (a
// backup taken earlier still holds the data key, sealed under the master
// key, and opens while that key lives); then it deletes their records in
// every bucket of the main file. The main file is not compacted: its
// free pages may keep their sealed reflections, which nobody can open
// any more, and their plain records (schedule, deliveries) until bbolt
// reuses those pages. If the second step fails, calling Forget again (or
// the next Open) finishes it. Forgetting someone unknown is not an error.
func (db *DB) Forget(userID string) error {
	if err := checkUserID(userID); err != nil {
		return fmt.Errorf("storage: forget: %w", err)
	}
	if db.secrets == nil {
		return fmt.Errorf("storage: forget %s: the database is open read-only", userID)
	}
	if err := db.forgetKey(userID); err != nil {
		return fmt.Errorf("storage: forget %s: %w", userID, err)
	}
	err := db.update(func(tx *bolt.Tx) error {
		_, err := erasePerson(tx, userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: forget %s: their reflections are unreadable, but deleting their records failed: call Forget again: %w", userID, err)
	}
	return nil
}

// forgetKey marks userID as being forgotten in the main file, then
// deletes their data key from the secrets file and compacts it, so their
// reflections cannot be opened from then on, here or in any copy of the
// files made later.
func (db *DB) forgetKey(userID string) error {
	db.secretsMu.Lock()
	defer db.secretsMu.Unlock()
	_, hadKey, err := db.dataKeyRecordOf(nil, userID)
	if err != nil || !hadKey {
		return err // no sealed reflection to make unreadable first
	}
	err = db.update(func(tx *bolt.Tx) error {
		// The marker lets Open finish a Forget that was cut short.
		return putJSON(tx.Bucket([]byte(bucketForgetting)), userID, db.now().UTC())
	})
	if err != nil {
		return err
	}
	return db.eraseSecrets([]string{userID})
}

// eraseSecrets deletes the data keys of userIDs and the secrets of
// pulses that are no longer open in the main file (a close cut short),
// then compacts the secrets file if it deleted anything.
func (db *DB) eraseSecrets(userIDs []string) error {
	closed, err := db.closedPulseSecrets()
	if err != nil {
		return err
	}
	n := 0
	err = db.updateSecrets(func(stx *bolt.Tx) error {
		n = 0
		keys := stx.Bucket([]byte(secretDataKeys))
		for _, userID := range userIDs {
			if keys.Get([]byte(userID)) == nil {
				continue
			}
			if err := keys.Delete([]byte(userID)); err != nil {
				return fmt.Errorf("delete data key: %w", err)
			}
			n++
		}
		for _, id := range closed {
			if err := deletePulseSecrets(stx, id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil || n == 0 {
		return err
	}
	return db.compactSecrets()
}

// erasePerson deletes every record about userID, in every bucket of the
// main file that holds people's ids, and reports whether it deleted
// anything. A bucket added to the layout that holds user ids
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
	for name, b := range map[string]*bolt.Bucket{bucketReflectionSeq: rb.seq, bucketForgetting: rb.forgetting} {
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
	return deleted, nil
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
