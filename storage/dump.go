package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// Dump calls fn with every record of the database (records.go), kind by
// kind in the order of Kinds, each kind in key order (deliveries by
// slot), with one Settings record first. It reads one snapshot of both files, so it is for a
// database no bot is writing (`nudgebot migrate` opens it read-only):
// the read transactions stay open for the whole walk, and on a file
// being written they would keep the pages writers want to reuse.
//
// People whose Forget is unfinished are left out, only their mark is
// dumped; so are the secrets of pulses whose close was cut short, which
// the next read-write Open erases. A record that does not decode stops
// the dump with an error wrapping ErrDamaged; an error from fn stops it
// and is returned as it is.
func (db *DB) Dump(fn func(Record) error) error {
	if db.fileVersion < SchemaVersion {
		return fmt.Errorf("storage: dump %s: its schema version is %d, older than this nudgebot's %d: start nudgebot on it once (it migrates the file as it starts), stop it, then try again",
			db.path, db.fileVersion, SchemaVersion)
	}
	if db.secrets == nil {
		return &openError{
			msg:   fmt.Sprintf("the secrets file %s is missing, but the database beside it needs it (it holds the people's data keys and open pulses): restore both files from a backup with `nudgebot restore`", SecretsPath(db.path)),
			kinds: []error{ErrDamaged},
		}
	}
	// Both files as of one instant: no forget or pulse change spanning
	// them is half done meanwhile.
	db.secretsMu.Lock()
	defer db.secretsMu.Unlock()
	err := db.view(func(tx *bolt.Tx) error {
		return db.secrets.view(func(stx *bolt.Tx) error {
			d := dumper{tx: tx, stx: stx, fn: fn}
			return d.all()
		})
	})
	if fe := (fnError{}); errors.As(err, &fe) {
		return fe.err
	}
	if err != nil {
		return fmt.Errorf("storage: dump %s: %w: %w", db.path, err, ErrDamaged)
	}
	return nil
}

// fnError carries an error of Dump's caller through the walk unwrapped.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// dumper walks one snapshot of both files.
type dumper struct {
	tx, stx *bolt.Tx
	fn      func(Record) error
	gone    map[string]bool // people being forgotten
}

func (d *dumper) emit(r Record) error {
	if err := d.fn(r); err != nil {
		return fnError{err}
	}
	return nil
}

func (d *dumper) all() error {
	for _, step := range []func() error{
		d.settings, d.forgetting, d.subscribers, d.deliveries, d.dataKeys,
		d.reflections, d.reflectionSeqs, d.digests, d.pulses, d.pulseVoters, d.pulseHistory,
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func (d *dumper) bucket(name string) (*bolt.Bucket, error) {
	b := d.tx.Bucket([]byte(name))
	if b == nil {
		return nil, missingBucket(name)
	}
	return b, nil
}

func (d *dumper) settings() error {
	meta, err := d.bucket(bucketMeta)
	if err != nil {
		return err
	}
	var s Settings
	var pace learnedPace
	for _, f := range []struct {
		key string
		v   any
		set *bool
	}{
		{keyPausedAll, &s.PausedAll, nil},
		{keyStrategy, &s.StrategyLines, &s.StrategySet},
		{keyLearnedPace, &pace, nil},
	} {
		found, err := getJSON(meta, f.key, f.v)
		if err != nil {
			return err
		}
		if f.set != nil {
			*f.set = found
		}
	}
	s.LearnedPace = pace.PerMinute
	if !s.PausedAll.IsZero() {
		s.PausedAll = s.PausedAll.UTC()
	}
	return d.emit(Record{Settings: &s})
}

func (d *dumper) forgetting() error {
	b, err := d.bucket(bucketForgetting)
	if err != nil {
		return err
	}
	d.gone = map[string]bool{}
	return b.ForEach(func(k, v []byte) error {
		var since time.Time
		if err := json.Unmarshal(v, &since); err != nil {
			return fmt.Errorf("decode the forgetting mark of %s: %w", k, err)
		}
		d.gone[string(k)] = true
		return d.emit(Record{Forgetting: &Forgetting{UserID: string(k), Since: since.UTC()}})
	})
}

func (d *dumper) subscribers() error {
	b, err := d.bucket(bucketSubscribers)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error {
		if d.gone[string(k)] {
			return nil
		}
		var s nudges.Subscriber
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("decode subscriber %q: %w", k, err)
		}
		if s.UserID == "" {
			s.UserID = string(k) // the key is the authority, as loadSubscriber reads it
		}
		return d.emit(Record{Subscriber: &s})
	})
}

func (d *dumper) deliveries() error {
	bk, err := bucketsOf(d.tx)
	if err == nil {
		bk, err = bk.dels()
	}
	if err != nil {
		return err
	}
	return bk.records.ForEach(func(k, v []byte) error {
		del, err := decodeDelivery(k, v)
		if err != nil {
			return err
		}
		if d.gone[del.UserID] {
			return nil
		}
		return d.emit(Record{Delivery: &del})
	})
}

func (d *dumper) dataKeys() error {
	b := d.stx.Bucket([]byte(secretDataKeys))
	if b == nil {
		return missingBucket(secretDataKeys)
	}
	return b.ForEach(func(k, v []byte) error {
		if d.gone[string(k)] {
			return nil
		}
		var rec dataKeyRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode the data key of %s: %w", k, err)
		}
		if rec.Prev != nil {
			return fmt.Errorf("the data key of %s is being replaced (a deleted reflection's key is retired, and that was cut short): start nudgebot on the file once, which finishes it, stop it, then try again", k)
		}
		return d.emit(Record{DataKey: &PersonDataKey{UserID: string(k), Key: sealedOf(rec)}})
	})
}

func (d *dumper) reflections() error {
	b, err := d.bucket(bucketReflections)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error {
		rec, err := decodeRecord(k, v)
		if err != nil {
			return err
		}
		if d.gone[rec.UserID] {
			return nil
		}
		return d.emit(Record{Reflection: &SealedReflection{Reflection: rec.reflection("", ""), DataKey: rec.DataKey, Sealed: rec.Sealed}})
	})
}

func (d *dumper) reflectionSeqs() error {
	b, err := d.bucket(bucketReflectionSeq)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error {
		if d.gone[string(k)] {
			return nil
		}
		var last int
		if err := json.Unmarshal(v, &last); err != nil {
			return fmt.Errorf("decode the reflection counter of %s: %w", k, err)
		}
		return d.emit(Record{ReflectionSeq: &ReflectionSeq{UserID: string(k), Last: last}})
	})
}

func (d *dumper) digests() error {
	b, err := d.bucket(bucketDigests)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error {
		var st DigestRecord
		if err := json.Unmarshal(v, &st); err != nil {
			return fmt.Errorf("decode the digest record of %s: %w", k, err)
		}
		return d.emit(Record{Digest: &ChannelDigest{Channel: string(k), Record: st}})
	})
}

func (d *dumper) pulses() error {
	b, err := d.bucket(bucketPulses)
	if err != nil {
		return err
	}
	ps, err := pulseSecretsOf(d.stx)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error {
		var p pulseRecord
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("decode pulse %q: %w", k, err)
		}
		out := Pulse{ID: string(k), Channel: p.Channel, Opened: p.Opened.UTC()}
		if !p.Closed.IsZero() {
			out.Closed = p.Closed.UTC()
			return d.emit(Record{Pulse: &out})
		}
		out.Voters = p.Voters
		sec, found, err := ps.load(string(k))
		if err != nil {
			return err
		}
		if found { // an open pulse without its secrets stays so: it cannot take answers
			out.VoterKey, out.Totals = sec.VoterKey, sec.Totals
		}
		return d.emit(Record{Pulse: &out})
	})
}

// pulseVoters dumps the markers of open pulses; those of a pulse whose
// close was cut short are left for the next read-write Open to erase.
func (d *dumper) pulseVoters() error {
	pb, err := d.bucket(bucketPulses)
	if err != nil {
		return err
	}
	ps, err := pulseSecretsOf(d.stx)
	if err != nil {
		return err
	}
	open := map[string]bool{}
	return ps.voters.ForEach(func(k, v []byte) error {
		i := bytes.IndexByte(k, keySep)
		if i < 0 {
			return fmt.Errorf("voter marker %x names no pulse", k)
		}
		id := string(k[:i])
		isOpen, seen := open[id]
		if !seen {
			p, err := loadPulse(pb, id)
			isOpen = err == nil && p.Closed.IsZero()
			open[id] = isOpen
		}
		if !isOpen {
			return nil
		}
		var pv pulseVoter
		if err := json.Unmarshal(v, &pv); err != nil {
			return fmt.Errorf("decode a voter marker of pulse %q: %w", id, err)
		}
		return d.emit(Record{PulseVoter: &PulseVoter{PulseID: id, Marker: bytes.Clone(k), Voted: pv.Voted, HearMore: pv.HearMore}})
	})
}

func (d *dumper) pulseHistory() error {
	b, err := d.bucket(bucketPulseHistory)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error {
		i := bytes.IndexByte(k, keySep)
		if i < 0 {
			return fmt.Errorf("pulse history key %x names no channel", k)
		}
		closed, id, err := splitTimeKey(k[i+1:])
		if err != nil {
			return err
		}
		var sum nudges.PulseSummary
		if err := json.Unmarshal(v, &sum); err != nil {
			return fmt.Errorf("decode pulse summary %q: %w", k, err)
		}
		return d.emit(Record{PulseSummary: &FiledSummary{Channel: string(k[:i]), Closed: closed, PulseID: id, Summary: sum}})
	})
}
