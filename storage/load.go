package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// loadBatch is how many records a Loader writes per transaction: large
// enough that a million records take a few hundred commits, small enough
// that one transaction's dirty pages stay a few megabytes.
const loadBatch = 20_000

// loadFill is how full a Loader packs the pages of the buckets a dump
// fills in key order.
const loadFill = 0.9

// ErrNotEmpty means a database that must be empty, to load another's
// records into, holds records.
var ErrNotEmpty = errors.New("the database is not empty")

// Loader writes the records of a Dump (of either engine) into an empty
// database, building the indexes as it goes. It checks each record as
// the engine's own writes would (ids, due times, delivery states,
// reflection fields) but writes it as it is: sealed reflections and data
// keys are not opened.
//
// Commits are not synced to disk until Finish, which syncs both files:
// the load is for a fresh file that counts only once complete (`nudgebot
// migrate` writes one under a temporary name and renames it into place
// after verifying it), and a crash before that leaves a file nobody
// uses.
type Loader struct {
	db      *DB
	main    []Record // for the main file
	secrets []Record // data keys, open pulses' secrets, voter markers
	done    bool
}

// NewLoader starts a load into db, which must be open read-write and
// hold no record (ErrNotEmpty otherwise).
func (db *DB) NewLoader() (*Loader, error) {
	if db.readOnly || db.secrets == nil {
		return nil, fmt.Errorf("storage: load into %s: the database is open read-only", db.path)
	}
	empty, err := db.empty()
	if err != nil {
		return nil, fmt.Errorf("storage: load into %s: %w", db.path, err)
	}
	if !empty {
		return nil, fmt.Errorf("storage: load into %s: %w", db.path, ErrNotEmpty)
	}
	db.mu.Lock()
	db.bolt.NoSync = true
	db.mu.Unlock()
	db.secrets.mu.Lock()
	db.secrets.bolt.NoSync = true
	db.secrets.mu.Unlock()
	return &Loader{db: db}, nil
}

// empty reports whether no bucket of either file holds a record; the
// meta bucket's own entries (schema version, write probe) do not count.
func (db *DB) empty() (bool, error) {
	empty := true
	err := db.view(func(tx *bolt.Tx) error {
		for _, name := range allBuckets() {
			b := tx.Bucket([]byte(name))
			if b == nil {
				return missingBucket(name)
			}
			if name == bucketMeta {
				for _, k := range []string{keyPausedAll, keyStrategy, keyLearnedPace} {
					if b.Get([]byte(k)) != nil {
						empty = false
					}
				}
				continue
			}
			if k, _ := b.Cursor().First(); k != nil {
				empty = false
			}
		}
		return nil
	})
	if err != nil || !empty {
		return false, err
	}
	err = db.secrets.view(func(stx *bolt.Tx) error {
		for _, name := range secretBuckets() {
			if b := stx.Bucket([]byte(name)); b != nil {
				if k, _ := b.Cursor().First(); k != nil {
					empty = false
				}
			}
		}
		return nil
	})
	return empty, err
}

// Add queues r, writing a batch when one is full.
func (l *Loader) Add(r Record) error {
	if l.done {
		return errors.New("storage: load: Add after Finish")
	}
	switch {
	case r.DataKey != nil, r.PulseVoter != nil:
		l.secrets = append(l.secrets, r)
	case r.Pulse != nil && r.Pulse.Closed.IsZero() && r.Pulse.VoterKey != nil:
		l.main = append(l.main, r)
		l.secrets = append(l.secrets, r)
	case r.Kind() == "":
		return errors.New("storage: load: an empty record")
	default:
		l.main = append(l.main, r)
	}
	if len(l.main)+len(l.secrets) >= loadBatch {
		return l.flush()
	}
	return nil
}

// Finish writes what is queued and syncs both files to disk.
func (l *Loader) Finish() error {
	if l.done {
		return nil
	}
	if err := l.flush(); err != nil {
		return err
	}
	l.done = true
	db := l.db
	db.mu.Lock()
	db.bolt.NoSync = false
	err := db.bolt.Sync()
	db.mu.Unlock()
	db.secrets.mu.Lock()
	db.secrets.bolt.NoSync = false
	serr := db.secrets.bolt.Sync()
	db.secrets.mu.Unlock()
	if err := errors.Join(err, serr); err != nil {
		return fmt.Errorf("storage: load into %s: sync: %w", db.path, err)
	}
	return nil
}

func (l *Loader) flush() error {
	db := l.db
	if len(l.secrets) > 0 {
		err := db.secrets.update(func(stx *bolt.Tx) error {
			for _, r := range l.secrets {
				if err := loadSecret(stx, r); err != nil {
					return fmt.Errorf("%s: %w", r.Kind(), err)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("storage: load into %s: %w", db.secretsPath(), err)
		}
		l.secrets = l.secrets[:0]
	}
	if len(l.main) > 0 {
		err := db.update(func(tx *bolt.Tx) error {
			bk, err := bucketsOf(tx)
			if err != nil {
				return err
			}
			s, err := db.session(tx)
			if err != nil {
				return err
			}
			// A dump comes in key order: pages filled as they are
			// appended to, not split half full. (bucketsOf sets the
			// delivery records' own.)
			for _, b := range []*bolt.Bucket{bk.subscribers, s.rb.reflections} {
				b.FillPercent = loadFill
			}
			for _, r := range l.main {
				if err := loadMain(tx, bk, s, r); err != nil {
					return fmt.Errorf("%s: %w", r.Kind(), err)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("storage: load into %s: %w", db.path, err)
		}
		l.main = l.main[:0]
	}
	return nil
}

// loadMain writes one record of the main file, and its index entries.
func loadMain(tx *bolt.Tx, bk buckets, s *session, r Record) error {
	switch {
	case r.Settings != nil:
		return loadSettings(s.rb.meta, *r.Settings)
	case r.Forgetting != nil:
		f := r.Forgetting
		if err := checkUserID(f.UserID); err != nil {
			return err
		}
		return putJSON(s.rb.forgetting, f.UserID, f.Since.UTC())
	case r.Subscriber != nil:
		return saveSubscriber(bk, nudges.Subscriber{}, *r.Subscriber)
	case r.Delivery != nil:
		return saveDelivery(bk, *r.Delivery, false)
	case r.Reflection != nil:
		sr := r.Reflection
		if err := CheckSealedReflection(*sr); err != nil {
			return err
		}
		return s.put(nil, newRecord(sr.Reflection, sr.DataKey, sr.Sealed))
	case r.ReflectionSeq != nil:
		if err := checkUserID(r.ReflectionSeq.UserID); err != nil {
			return err
		}
		return putJSON(s.rb.seq, r.ReflectionSeq.UserID, r.ReflectionSeq.Last)
	case r.Digest != nil:
		if err := checkKeyPart("channel", r.Digest.Channel); err != nil {
			return err
		}
		return putJSON(tx.Bucket([]byte(bucketDigests)), r.Digest.Channel, r.Digest.Record)
	case r.Pulse != nil:
		p := r.Pulse
		if err := errors.Join(checkKeyPart("pulse id", p.ID), checkKeyPart("channel", p.Channel)); err != nil {
			return err
		}
		rec := pulseRecord{Channel: p.Channel, Opened: p.Opened.UTC()}
		if p.Closed.IsZero() {
			rec.Voters = p.Voters
		} else {
			rec.Closed = p.Closed.UTC()
		}
		return putJSON(tx.Bucket([]byte(bucketPulses)), p.ID, rec)
	case r.PulseSummary != nil:
		f := r.PulseSummary
		if err := errors.Join(checkKeyPart("channel", f.Channel), checkKeyPart("pulse id", f.PulseID)); err != nil {
			return err
		}
		hk, err := historyKey(f.Channel, f.Closed, f.PulseID)
		if err != nil {
			return err
		}
		return putJSON(tx.Bucket([]byte(bucketPulseHistory)), string(hk), f.Summary)
	}
	return fmt.Errorf("a record of kind %q has no place in the main file", r.Kind())
}

func loadSettings(meta *bolt.Bucket, s Settings) error {
	if !s.PausedAll.IsZero() {
		if err := putJSON(meta, keyPausedAll, s.PausedAll.UTC()); err != nil {
			return err
		}
	}
	if s.StrategySet {
		lines := s.StrategyLines
		if lines == nil {
			lines = []string{}
		}
		if err := putJSON(meta, keyStrategy, lines); err != nil {
			return err
		}
	}
	if s.LearnedPace != 0 {
		return putJSON(meta, keyLearnedPace, learnedPace{PerMinute: s.LearnedPace})
	}
	return nil
}

// loadSecret writes one record of the secrets file.
func loadSecret(stx *bolt.Tx, r Record) error {
	ps, err := pulseSecretsOf(stx)
	if err != nil {
		return err
	}
	switch {
	case r.DataKey != nil:
		k := r.DataKey
		if err := checkUserID(k.UserID); err != nil {
			return err
		}
		return putJSON(stx.Bucket([]byte(secretDataKeys)), k.UserID, recordOf(k.Key))
	case r.Pulse != nil:
		p := r.Pulse
		if len(p.VoterKey) != voterKeyLen {
			return fmt.Errorf("open pulse %q has a voter key of %d bytes, not %d", p.ID, len(p.VoterKey), voterKeyLen)
		}
		return putJSON(ps.open, p.ID, pulseSecret{VoterKey: p.VoterKey, Totals: p.Totals})
	case r.PulseVoter != nil:
		v := r.PulseVoter
		if err := checkKeyPart("pulse id", v.PulseID); err != nil {
			return err
		}
		if !bytes.HasPrefix(v.Marker, voterKey(v.PulseID, "")) {
			return fmt.Errorf("a voter marker of pulse %q does not start with the pulse's id", v.PulseID)
		}
		raw, err := json.Marshal(pulseVoter{Voted: v.Voted, HearMore: v.HearMore})
		if err != nil {
			return err
		}
		return ps.voters.Put(bytes.Clone(v.Marker), raw)
	}
	return fmt.Errorf("a record of kind %q has no place in the secrets file", r.Kind())
}
