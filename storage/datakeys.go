package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// keyMissing tells the operator which master keys to configure.
func (db *DB) keyMissing(ids ...string) error {
	what, that := "key "+ids[0]+", which is", "that key"
	if len(ids) > 1 {
		what, that = "keys "+strings.Join(ids, ", ")+", which are", "those keys"
	}
	return &openError{
		msg: fmt.Sprintf("reflections in %s were sealed with %s not configured: set %s (or storage.key_file) to %s; to rotate, list the new key first and the old one after it",
			db.path, what, EnvSecretKey, that),
		kinds: []error{ErrKeyMissing},
	}
}

func errNoKeys() error {
	return fmt.Errorf("no key is configured to seal reflections: pass the result of storage.LoadKeys as Options.Keys: %w", ErrKeyMissing)
}

// session decrypts within one transaction, opening each person's data
// key once and reusing its buffers across records.
type session struct {
	db       *DB
	tx       *bolt.Tx
	rb       reflBuckets
	fixed    map[string]dataKeyRecord // a check's snapshot of the data keys, if set
	keys     map[string]*dataKey
	sealed   []byte
	plain    []byte
	aad      []byte
	forWrite bool // may create data keys
}

func (db *DB) session(tx *bolt.Tx) (*session, error) {
	rb, err := reflectionBucketsOf(tx)
	if err != nil {
		return nil, err
	}
	return &session{db: db, tx: tx, rb: rb, keys: map[string]*dataKey{}}, nil
}

// keyRecord reads userID's data key record.
func (s *session) keyRecord(userID string) (dataKeyRecord, bool, error) {
	if s.fixed != nil {
		rec, found := s.fixed[userID]
		return rec, found, nil
	}
	return s.db.dataKeyRecordOf(s.tx, userID)
}

// hasKey reports whether userID has a data key; a record that does not
// decode counts, so the damage is reported by whoever opens it.
func (s *session) hasKey(userID string) bool {
	_, found, err := s.keyRecord(userID)
	return found || err != nil
}

// dataKeyRecordOf reads userID's data key record from the secrets file,
// or from tx in a file not yet migrated to it (opened read-only).
func (db *DB) dataKeyRecordOf(tx *bolt.Tx, userID string) (rec dataKeyRecord, found bool, err error) {
	if db.secrets == nil {
		var b *bolt.Bucket
		if tx != nil {
			b = tx.Bucket([]byte(bucketDataKeys))
		}
		if b == nil {
			return rec, false, nil
		}
		found, err = getJSON(b, userID, &rec)
		return rec, found, err
	}
	err = db.secrets.view(func(stx *bolt.Tx) error {
		b := stx.Bucket([]byte(secretDataKeys))
		if b == nil {
			return missingBucket(secretDataKeys)
		}
		found, err = getJSON(b, userID, &rec)
		return err
	})
	return rec, found, err
}

// eachDataKey calls fn with every data key record, raw, from the
// secrets file or, for a file not yet migrated, from the main one.
func (db *DB) eachDataKey(fn func(userID, v []byte) error) error {
	if db.secrets == nil {
		return db.view(func(tx *bolt.Tx) error {
			if b := tx.Bucket([]byte(bucketDataKeys)); b != nil {
				return b.ForEach(fn)
			}
			return nil
		})
	}
	return db.secrets.view(func(stx *bolt.Tx) error {
		if b := stx.Bucket([]byte(secretDataKeys)); b != nil {
			return b.ForEach(fn)
		}
		return nil
	})
}

// putDataKey stores a new data key record in the secrets file, committed
// at once: before the reflection it seals, so no record is ever without
// its key (a key whose reflection failed to commit is harmless).
func (db *DB) putDataKey(userID string, rec dataKeyRecord) error {
	if db.secrets == nil {
		return fmt.Errorf("the database is not migrated to its secrets file: open it read-write")
	}
	return db.updateSecrets(func(stx *bolt.Tx) error {
		return putJSON(stx.Bucket([]byte(secretDataKeys)), userID, rec)
	})
}

// snapshotDataKeys reads every data key record, for a check that must
// see them as of one instant.
func (db *DB) snapshotDataKeys() (map[string]dataKeyRecord, error) {
	out := map[string]dataKeyRecord{}
	err := db.eachDataKey(func(k, v []byte) error {
		var rec dataKeyRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode data key of %s: %w", k, err)
		}
		out[string(k)] = rec
		return nil
	})
	return out, err
}

// dataKey opens userID's data key, creating it if the session writes and
// the person has none.
func (s *session) dataKey(userID string) (*dataKey, error) {
	if dk := s.keys[userID]; dk != nil {
		return dk, nil
	}
	rec, found, err := s.keyRecord(userID)
	if err != nil {
		return nil, fmt.Errorf("data key record: %w", err)
	}
	var dk *dataKey
	switch {
	case !found && !s.forWrite:
		return nil, fmt.Errorf("the reflections of %s cannot be read: their data key was deleted by a Forget that did not finish: call Forget for %s again", userID, userID)
	case s.db.keys == nil && found:
		return nil, s.db.keyMissing(rec.Master)
	case s.db.keys == nil:
		return nil, errNoKeys()
	case !found:
		dk, rec, err = s.db.keys.newDataKey(userID)
		if err != nil {
			return nil, err
		}
		if err := s.db.putDataKey(userID, rec); err != nil {
			return nil, fmt.Errorf("data key record: %w", err)
		}
	default:
		raw, err := s.db.keys.openDataKey(userID, rec)
		if errors.Is(err, errUnknownMaster) {
			return nil, s.db.keyMissing(rec.Master)
		}
		if err != nil {
			return nil, err
		}
		dk, err = dataKeyFrom(raw)
		clear(raw)
		if err != nil {
			return nil, err
		}
		if rec.Prev != nil {
			if dk.prev, err = s.db.openKeyRecord(userID, *rec.Prev); err != nil {
				return nil, err
			}
		}
	}
	s.keys[userID] = dk
	return dk, nil
}

// openKeyRecord opens a sealed data key record.
func (db *DB) openKeyRecord(userID string, rec dataKeyRecord) (*dataKey, error) {
	raw, err := db.keys.openDataKey(userID, rec)
	if errors.Is(err, errUnknownMaster) {
		return nil, db.keyMissing(rec.Master)
	}
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	return dataKeyFrom(raw)
}

// payload decrypts the sealed text and commitment of userID's record seq,
// encoded as v (or already decoded as rec), into the session's buffer:
// what it returns is only valid until the next call. A record whose
// bound fields (author, seq, created, share setting, channel) were
// changed without the key does not open: ErrTampered with ErrCorrupt.
func (s *session) payload(userID string, seq int, v []byte, rec *reflectionRecord) (text, commitment []byte, err error) {
	dk, err := s.dataKey(userID)
	if err != nil {
		return nil, nil, err
	}
	var sealed []byte
	fast := false
	if rec == nil {
		if sealed, s.sealed, fast = sealedField(v, s.sealed); fast {
			s.aad, fast = appendRawAAD(s.aad[:0], userID, seq, v)
		}
		if !fast {
			if rec, err = decodeAs(userID, seq, v); err != nil {
				return nil, nil, err
			}
		}
	}
	if rec != nil {
		if rec.UserID != userID || rec.Seq != seq {
			return nil, nil, fmt.Errorf("reflection stored as %d of %s says it is %d of %s: %w", seq, userID, rec.Seq, rec.UserID, ErrCorrupt)
		}
		sealed = rec.Sealed
		s.aad = appendReflectionAAD(s.aad[:0], rec)
	}
	s.plain, err = dk.aead.Open(s.plain[:0], nil, sealed, s.aad)
	if err != nil && dk.prev != nil {
		// Not re-sealed yet by a re-key under way.
		s.plain, err = dk.prev.aead.Open(s.plain[:0], nil, sealed, s.aad)
	}
	if err != nil && s.db.fileVersion < schemaSealedShare {
		// A file not yet migrated, opened read-only: sealed the old way.
		s.aad = appendReflectionAADv1(s.aad[:0], userID, uint64(seq))
		s.plain, err = dk.aead.Open(s.plain[:0], nil, sealed, s.aad)
	}
	if err != nil {
		if rec == nil {
			rec, _ = decodeAs(userID, seq, v)
		}
		if rec != nil && rec.DataKey != dk.id {
			return nil, nil, fmt.Errorf("reflection %d of %s was sealed with data key %s, but %s has data key %s: it cannot be read: %w", seq, userID, rec.DataKey, userID, dk.id, ErrCorrupt)
		}
		return nil, nil, fmt.Errorf("reflection %d of %s does not open: it is damaged, or who may see it (author, share setting, channel, date) was changed without the key: %w: %w", seq, userID, ErrTampered, ErrCorrupt)
	}
	text, commitment, err = splitPayload(s.plain)
	if err != nil {
		return nil, nil, fmt.Errorf("reflection %d of %s: %w: %w", seq, userID, err, ErrCorrupt)
	}
	return text, commitment, nil
}

func decodeAs(userID string, seq int, v []byte) (*reflectionRecord, error) {
	var rec reflectionRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("decode reflection %d of %s: %w", seq, userID, err)
	}
	return &rec, nil
}

// read decodes and decrypts the record at k, v.
func (s *session) read(k, v []byte) (nudges.Reflection, error) {
	rec, err := decodeRecord(k, v)
	if err != nil {
		return nudges.Reflection{}, err
	}
	text, commitment, err := s.payload(rec.UserID, rec.Seq, v, &rec)
	if err != nil {
		return nudges.Reflection{}, err
	}
	return rec.reflection(string(text), string(commitment)), nil
}

// RotateKeys re-seals every data key that is not sealed under the current
// master key, and returns how many it re-sealed. Reflections are not
// touched: they are sealed with the data keys, which do not change.
// Afterwards older master keys can be dropped from the configuration.
func (db *DB) RotateKeys() (int, error) {
	if db.keys == nil {
		return 0, fmt.Errorf("storage: rotate keys: %w", errNoKeys())
	}
	if db.secrets == nil {
		return 0, fmt.Errorf("storage: rotate keys: the database is open read-only: open it read-write to rotate")
	}
	db.secretsMu.Lock()
	defer db.secretsMu.Unlock()
	var n int
	err := db.updateSecrets(func(stx *bolt.Tx) error {
		n = 0
		b := stx.Bucket([]byte(secretDataKeys))
		current := db.keys.CurrentID()
		type stale struct {
			userID string
			rec    dataKeyRecord
		}
		var olds []stale
		err := b.ForEach(func(k, v []byte) error {
			var rec dataKeyRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode data key of %s: %w", k, err)
			}
			if rec.Master != current || (rec.Prev != nil && rec.Prev.Master != current) {
				olds = append(olds, stale{string(k), rec})
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Re-sealed after the walk: bbolt forbids writing a bucket while
		// iterating it.
		for _, o := range olds {
			raw, err := db.keys.openDataKey(o.userID, o.rec)
			if errors.Is(err, errUnknownMaster) {
				return db.keyMissing(o.rec.Master)
			}
			if err != nil {
				return err
			}
			rec := db.keys.sealDataKey(o.userID, o.rec.ID, raw)
			clear(raw)
			if o.rec.Prev != nil { // a re-key left unfinished keeps its previous key
				prev, err := db.keys.openDataKey(o.userID, *o.rec.Prev)
				if err != nil {
					return err
				}
				resealed := db.keys.sealDataKey(o.userID, o.rec.Prev.ID, prev)
				clear(prev)
				rec.Prev = &resealed
			}
			if err := putJSON(b, o.userID, rec); err != nil {
				return fmt.Errorf("data key of %s: %w", o.userID, err)
			}
		}
		n = len(olds)
		return nil
	})
	if err == nil && n > 0 {
		// The records sealed under the older keys must leave the file
		// too, or dropping an older key would protect nothing.
		err = db.compactSecrets()
	}
	if err != nil {
		return 0, fmt.Errorf("storage: rotate keys: %w", err)
	}
	if n > 0 {
		db.log.Info("re-sealed data keys under the current key; older keys can now be removed from the configuration", "count", n, "key", db.keys.CurrentID())
	}
	return n, nil
}

// openReflections runs at Open: it reads the compaction flag, finishes
// Forgets that were cut short, and makes sure every data key opens with
// the configured keys, so a missing key stops start-up instead of
// surfacing later as unreadable reflections.
func (db *DB) openReflections() error {
	var forgetting []string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket([]byte(bucketMeta)); meta != nil {
			db.needsCompaction.Store(string(meta.Get([]byte(keyNeedsCompaction))) == "true")
		}
		if b := tx.Bucket([]byte(bucketForgetting)); b != nil {
			return b.ForEach(func(k, _ []byte) error {
				forgetting = append(forgetting, string(k))
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open database %s: %w", db.path, err)
	}
	if !db.readOnly {
		if err := db.eraseSecrets(forgetting); err != nil {
			return fmt.Errorf("open database %s: finish forgetting people and closing pulses: %w", db.path, err)
		}
		if err := db.finishRekeys(); err != nil {
			return fmt.Errorf("open database %s: %w", db.path, err)
		}
		for _, userID := range forgetting {
			err := db.bolt.Update(func(tx *bolt.Tx) error {
				_, err := erasePerson(tx, userID)
				return err
			})
			if err != nil {
				return fmt.Errorf("open database %s: finish forgetting a person: %w", db.path, err)
			}
		}
		if len(forgetting) > 0 {
			db.log.Info("finished forgetting people whose Forget was cut short", "count", len(forgetting))
		}
	}
	if !db.readOnly || db.keys == nil {
		// Read-write opens checked the keys before anything was written;
		// check and backup tools without keys read no reflection.
		return nil
	}
	return db.checkKeys()
}

// checkKeys opens one data key per master key that sealed any, and
// tells the operator about every master key that is missing.
func (db *DB) checkKeys() error {
	type sample struct {
		userID string
		rec    dataKeyRecord
		count  int
	}
	var masters []string
	samples := map[string]*sample{}
	err := db.eachDataKey(func(k, v []byte) error {
		var rec dataKeyRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return corruptError(db.secretsPath(), fmt.Errorf("decode data key of %s: %w", k, err))
		}
		if s := samples[rec.Master]; s != nil {
			s.count++
			return nil
		}
		masters = append(masters, rec.Master)
		samples[rec.Master] = &sample{userID: string(k), rec: rec, count: 1}
		return nil
	})
	if err != nil {
		return err
	}
	var missing, older []string
	var olderCount int
	for _, id := range masters {
		if db.keys == nil || db.keys.byID(id) == nil {
			missing = append(missing, id)
			continue
		}
		s := samples[id]
		raw, err := db.keys.openDataKey(s.userID, s.rec)
		if err != nil {
			return corruptError(db.secretsPath(), err)
		}
		clear(raw)
		if id != db.keys.CurrentID() {
			older = append(older, id)
			olderCount += s.count
		}
	}
	if len(missing) > 0 {
		return db.keyMissing(missing...)
	}
	if len(older) > 0 {
		db.log.Info("some data keys are sealed with older keys; RotateKeys re-seals them under the current one",
			"count", olderCount, "older_keys", strings.Join(older, ","), "current_key", db.keys.CurrentID())
	}
	return nil
}

// secretsPath is the file data keys are read from: the secrets file, or
// the main one while it is not migrated.
func (db *DB) secretsPath() string {
	if db.secrets == nil {
		return db.path
	}
	return db.secrets.path
}
