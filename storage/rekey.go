package storage

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// DeleteReflection deletes userID's reflection seq, or returns an error
// wrapping nudges.ErrNotFound. Its sealed bytes may linger in the main
// file's free pages, so it retires the key they were sealed with rather
// than compacting the main file: a new data key re-seals the person's
// other reflections in the transaction that deletes this one, then the
// old key leaves the secrets file, which is compacted (milliseconds).
// That costs a re-seal of the person's reflections. If it is cut short
// after the delete, both keys open meanwhile and the next Open finishes.
func (db *DB) DeleteReflection(userID string, seq int) error {
	err := db.view(func(tx *bolt.Tx) error {
		_, _, _, _, err := db.existing(tx, userID, seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: delete reflection %d of %s: %w", seq, userID, err)
	}
	db.secretsMu.Lock()
	defer db.secretsMu.Unlock()
	if err := db.beginRekey(userID); err != nil {
		return fmt.Errorf("storage: delete reflection %d of %s: a new data key: %w", seq, userID, err)
	}
	err = db.update(func(tx *bolt.Tx) error {
		s, k, _, old, err := db.existing(tx, userID, seq)
		if err != nil {
			return err
		}
		if err := s.unindex(old); err != nil {
			return err
		}
		if err := s.rb.reflections.Delete(k); err != nil {
			return fmt.Errorf("delete record: %w", err)
		}
		return s.resealAll(userID)
	})
	if err != nil {
		return fmt.Errorf("storage: delete reflection %d of %s: %w", seq, userID, err)
	}
	if err := db.finishRekey(userID); err != nil {
		return fmt.Errorf("storage: delete reflection %d of %s: it is deleted, but retiring its key failed (the next start retries): %w", seq, userID, err)
	}
	return nil
}

// beginRekey gives userID a new data key, keeping the current one as
// Prev so that both open until resealAll has moved every reflection to
// the new one. A re-key left unfinished is carried on instead.
func (db *DB) beginRekey(userID string) error {
	if db.secrets == nil {
		return fmt.Errorf("the database is open read-only")
	}
	if db.keys == nil {
		return errNoKeys()
	}
	return db.updateSecrets(func(stx *bolt.Tx) error {
		b := stx.Bucket([]byte(secretDataKeys))
		var rec dataKeyRecord
		found, err := getJSON(b, userID, &rec)
		if err != nil || !found || rec.Prev != nil {
			return err // no key: nothing of theirs opens anyway
		}
		_, next, err := db.keys.newDataKey(userID)
		if err != nil {
			return err
		}
		next.Prev = &rec
		return putJSON(b, userID, next)
	})
}

// finishRekey drops userID's previous data key and compacts the secrets
// file, so it is gone from the file too.
func (db *DB) finishRekey(userID string) error {
	changed := false
	err := db.updateSecrets(func(stx *bolt.Tx) error {
		b := stx.Bucket([]byte(secretDataKeys))
		var rec dataKeyRecord
		found, err := getJSON(b, userID, &rec)
		if err != nil || !found || rec.Prev == nil {
			return err
		}
		rec.Prev, changed = nil, true
		return putJSON(b, userID, rec)
	})
	if err != nil || !changed {
		return err
	}
	return db.compactSecrets()
}

// resealAll seals every reflection of userID not yet sealed with their
// current data key with it.
func (s *session) resealAll(userID string) error {
	dk, err := s.dataKey(userID)
	if err != nil {
		return err
	}
	type stale struct {
		k, v []byte
	}
	var olds []stale
	prefix := personPrefix(userID)
	c := s.rb.reflections.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if rec, err := decodeRecord(k, v); err != nil || rec.DataKey != dk.id {
			olds = append(olds, stale{bytes.Clone(k), bytes.Clone(v)})
		}
	}
	// Written after the walk: writing while a cursor walks can skip keys.
	for _, o := range olds {
		rec, err := decodeRecord(o.k, o.v)
		if err != nil {
			return err
		}
		text, commitment, err := s.payload(rec.UserID, rec.Seq, o.v, &rec)
		if err != nil {
			return fmt.Errorf("re-seal: %w", err)
		}
		next := rec
		next.DataKey = dk.id
		next.Sealed = dk.seal(&next, string(text), string(commitment))
		if err := s.put(&rec, next); err != nil {
			return err
		}
	}
	return nil
}

// finishRekeys carries on the re-keys an earlier run left unfinished.
func (db *DB) finishRekeys() error {
	var users []string
	err := db.eachDataKey(func(k, v []byte) error {
		if bytes.Contains(v, []byte(`"prev":`)) {
			users = append(users, string(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, userID := range users {
		err := db.update(func(tx *bolt.Tx) error {
			s, err := db.session(tx)
			if err != nil {
				return err
			}
			return s.resealAll(userID)
		})
		if err == nil {
			err = db.finishRekey(userID)
		}
		if err != nil {
			return fmt.Errorf("finish retiring the data key of %s: %w", userID, err)
		}
	}
	if len(users) > 0 {
		db.log.Info("finished retiring data keys after deleted reflections", "count", len(users))
	}
	return nil
}
