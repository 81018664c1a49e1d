package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// defaultPruneBatch bounds the records one pruning transaction examines:
// small enough that a writer (a delivery, a click) never waits long
// behind it, large enough that a day's worth of deliveries for a big
// team takes a few dozen commits, not thousands.
const defaultPruneBatch = 500

// keepPulseSummaries is how many of a channel's newest pulse summaries
// Prune keeps however old they are: the digest's trend reads exactly
// these (nudges.TrendPeriods plus the pulse just closed), so a monthly
// or quarterly digest shows the same sparkline after pruning.
const keepPulseSummaries = nudges.TrendPeriods + 1

// PruneStats says what one Prune removed.
type PruneStats struct {
	Deliveries     int // delivery records (with their index entries)
	PendingKept    int // old deliveries left alone because the outbox still owns them
	Pulses         int // records of pulses that closed before the cutoff
	PulseSummaries int // closed pulses' summaries beyond the channel's trend
	Envelopes      int // handled-envelope records
	Transactions   int // write transactions it took
}

// Removed is the number of records deleted.
func (s PruneStats) Removed() int {
	return s.Deliveries + s.Pulses + s.PulseSummaries + s.Envelopes
}

// Prune removes deliveries whose slot is before before, the records of
// pulses that closed before it, pulse summaries older than it except
// each channel's newest keepPulseSummaries, and envelopes handled before
// it. It works in write transactions that each examine at most batch
// records (batch <= 0 means 500), so it never holds the writer lock for
// long; a failure leaves the batches before it done, and running it again
// carries on. Pending deliveries are kept: the outbox still owns them.
// It does not ask for a compaction: a compaction holds every write for
// its whole copy (seconds on a file of a few hundred MB), and bbolt
// reuses the freed pages, so the file levels off without one.
//
// Nothing a reader of recent history sees changes: subscribers, their
// streak and balance inputs within the retention, reflections and open
// pulses are never touched.
func (db *DB) Prune(before time.Time, batch int) (PruneStats, error) {
	if batch <= 0 {
		batch = defaultPruneBatch
	}
	var st PruneStats
	steps := []struct {
		what string
		step pruneStep
		n    *int
	}{
		{"deliveries", func(tx *bolt.Tx, from []byte, dry bool) (int, []byte, error) {
			n, kept, next, err := pruneDeliveries(tx, before, from, batch, dry)
			if !dry {
				st.PendingKept += kept
			}
			return n, next, err
		}, &st.Deliveries},
		{"closed pulses", func(tx *bolt.Tx, _ []byte, dry bool) (int, []byte, error) {
			return pruneClosedPulses(tx, before, batch, dry)
		}, &st.Pulses},
		{"pulse summaries", func(tx *bolt.Tx, _ []byte, dry bool) (int, []byte, error) {
			return prunePulseHistory(tx, before, batch, dry)
		}, &st.PulseSummaries},
		{"handled envelopes", func(tx *bolt.Tx, _ []byte, dry bool) (int, []byte, error) {
			return pruneSeen(tx, before, batch, dry)
		}, &st.Envelopes},
	}
	for _, s := range steps {
		n, txs, err := db.pruneInBatches(s.step)
		*s.n += n
		st.Transactions += txs
		if err != nil {
			return st, fmt.Errorf("storage: prune %s before %s: %w", s.what, fmtTime(before), err)
		}
	}
	return st, nil
}

// ApplyRetention prunes what is older than the retention Open was given
// (Options.Retention) as of now, logs what it removed, and returns how
// many records that was. With no retention it does nothing.
func (db *DB) ApplyRetention(now time.Time) (int, error) {
	if db.retention <= 0 {
		return 0, nil
	}
	before := now.Add(-db.retention)
	st, err := db.Prune(before, 0)
	if st.Removed() > 0 || st.PendingKept > 0 {
		db.log.Info("removed records older than the retention period",
			"before", fmtTime(before), "deliveries", st.Deliveries, "pulses", st.Pulses,
			"pulse_summaries", st.PulseSummaries, "envelopes", st.Envelopes,
			"pending_kept", st.PendingKept, "transactions", st.Transactions)
	}
	return st.Removed(), err
}

// pruneStep deletes one batch in tx, starting at from (nil: the start),
// and returns how many records it deleted and where the next batch
// starts; a nil next means it is done. With dry it deletes nothing and
// says how many it would have, in a read-only tx.
type pruneStep func(tx *bolt.Tx, from []byte, dry bool) (deleted int, next []byte, err error)

// pruneInBatches runs step in one write transaction after another until
// it is done.
func (db *DB) pruneInBatches(step pruneStep) (deleted, txs int, err error) {
	// Most hours there is nothing to prune: finding that out in a read
	// transaction costs no commit and no fsync.
	var found int
	err = db.view(func(tx *bolt.Tx) error {
		var err error
		found, _, err = step(tx, nil, true)
		return err
	})
	if err != nil || found == 0 {
		return 0, 0, err
	}
	var from []byte
	for {
		var n int
		var next []byte
		err := db.update(func(tx *bolt.Tx) error {
			var err error
			n, next, err = step(tx, from, false)
			return err
		})
		if err != nil {
			return deleted, txs, err
		}
		txs++
		deleted += n
		if next == nil {
			return deleted, txs, nil
		}
		from = next
	}
}

// pruneDeliveries deletes up to limit deliveries older than before, in
// slot order from the record key from, skipping pending ones. Records
// are keyed by slot, so it reads only what it deletes, and frees whole
// pages from the start of the bucket.
func pruneDeliveries(tx *bolt.Tx, before time.Time, from []byte, limit int, dry bool) (deleted, kept int, next []byte, err error) {
	bk, err := bucketsOf(tx)
	if err != nil {
		return 0, 0, nil, err
	}
	if bk, err = bk.dels(); err != nil {
		return 0, 0, nil, err
	}
	if before.Unix() <= 0 {
		return 0, 0, nil, nil // nothing is keyed before 1970
	}
	// Collected (and copied) first: deleting while a cursor walks can
	// skip keys.
	var old [][]byte
	c := bk.records.Cursor()
	k, v := c.First()
	if from != nil {
		k, v = c.Seek(from)
	}
	for ; k != nil; k, v = c.Next() {
		if older, err := recordBefore(k, v, before); err != nil {
			return 0, 0, nil, err
		} else if !older {
			break
		}
		if len(old) == limit {
			next = bytes.Clone(k) // not examined yet: the next batch starts here
			break
		}
		old = append(old, bytes.Clone(k))
	}
	for _, k := range old {
		if bk.outbox.Get(k) != nil {
			kept++
			continue
		}
		if dry {
			deleted++
			continue
		}
		if err := deleteDelivery(bk, k); err != nil {
			return deleted, kept, nil, err
		}
		deleted++
	}
	return deleted, kept, next, nil
}

// recordBefore reports whether the record at k, v has its slot before t;
// only a record of t's own second needs decoding.
func recordBefore(k, v []byte, t time.Time) (bool, error) {
	if len(k) < recordKeyPrefix {
		return false, fmt.Errorf("delivery key %x is too short", k)
	}
	sec := int64(binary.BigEndian.Uint32(k))
	switch {
	case sec < t.Unix():
		return true, nil
	case sec > t.Unix():
		return false, nil
	}
	d, err := decodeDelivery(k, v)
	if err != nil {
		return false, err
	}
	return d.Slot.Before(t), nil
}

// pruneClosedPulses deletes the records of up to limit pulses that closed
// before before. There are a few per channel and digest, so it reads
// them all rather than keeping an index.
func pruneClosedPulses(tx *bolt.Tx, before time.Time, limit int, dry bool) (deleted int, next []byte, err error) {
	pb := tx.Bucket([]byte(bucketPulses))
	if pb == nil {
		return 0, nil, missingBucket(bucketPulses)
	}
	var old [][]byte
	more := false
	err = pb.ForEach(func(k, v []byte) error {
		var p pulseRecord
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("decode pulse %q: %w", k, err)
		}
		if p.Closed.IsZero() || !p.Closed.Before(before) {
			return nil
		}
		if len(old) == limit {
			more = true
			return nil
		}
		old = append(old, bytes.Clone(k))
		return nil
	})
	if err != nil || dry {
		return len(old), nil, err
	}
	for _, k := range old {
		if err := pb.Delete(k); err != nil {
			return deleted, nil, fmt.Errorf("delete pulse %q: %w", k, err)
		}
		deleted++
	}
	if more {
		next = []byte{}
	}
	return deleted, next, nil
}

// prunePulseHistory deletes up to limit pulse summaries that closed
// before before and are not among their channel's newest
// keepPulseSummaries.
func prunePulseHistory(tx *bolt.Tx, before time.Time, limit int, dry bool) (deleted int, next []byte, err error) {
	hb := tx.Bucket([]byte(bucketPulseHistory))
	if hb == nil {
		return 0, nil, missingBucket(bucketPulseHistory)
	}
	var (
		old     [][]byte
		more    bool
		channel []byte
		group   [][]byte // the current channel's keys, oldest first
	)
	flush := func() {
		// Keys sort oldest first within a channel, so the deletable ones
		// are a prefix of the group.
		for _, k := range group[:max(0, len(group)-keepPulseSummaries)] {
			if !keyBefore(k[bytes.IndexByte(k, keySep)+1:], before) {
				break
			}
			if len(old) == limit {
				more = true
				break
			}
			old = append(old, k)
		}
		group = group[:0]
	}
	err = hb.ForEach(func(k, _ []byte) error {
		i := bytes.IndexByte(k, keySep)
		if i < 0 {
			return fmt.Errorf("pulse history key %x has no channel separator", k)
		}
		if !bytes.Equal(k[:i], channel) {
			flush()
			channel = bytes.Clone(k[:i])
		}
		group = append(group, bytes.Clone(k))
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	flush()
	if dry {
		return len(old), nil, nil
	}
	for _, k := range old {
		if err := hb.Delete(k); err != nil {
			return deleted, nil, fmt.Errorf("delete pulse summary %x: %w", k, err)
		}
		deleted++
	}
	if more {
		next = []byte{}
	}
	return deleted, next, nil
}

// pruneSeen deletes up to limit envelopes handled before before, oldest
// first, reading only the entries it deletes.
func pruneSeen(tx *bolt.Tx, before time.Time, limit int, dry bool) (deleted int, next []byte, err error) {
	bk, err := bucketsOf(tx)
	if err != nil {
		return 0, nil, err
	}
	var old [][]byte
	c := bk.seenByTime.Cursor()
	for k, _ := c.First(); k != nil && keyBefore(k, before); k, _ = c.Next() {
		if len(old) == limit {
			next = []byte{}
			break
		}
		old = append(old, bytes.Clone(k))
	}
	if dry {
		return len(old), nil, nil
	}
	for _, k := range old {
		_, key, err := splitTimeKey(k)
		if err != nil {
			return deleted, nil, err
		}
		if err := bk.seen.Delete([]byte(key)); err != nil {
			return deleted, nil, fmt.Errorf("delete envelope %s: %w", key, err)
		}
		if err := bk.seenByTime.Delete(k); err != nil {
			return deleted, nil, fmt.Errorf("delete seen index entry of %s: %w", key, err)
		}
		deleted++
	}
	return deleted, next, nil
}

// ImportDeliveries writes ds as they are, replacing any stored delivery
// with the same id, in transactions of about 5,000, keeping the outbox
// and the person index as StartDelivery would. Subscribers are not touched.
// It is for seeding and restoring many deliveries at once; like
// ImportSubscribers it is not atomic as a whole, and every delivery is
// checked before anything is written.
func (db *DB) ImportDeliveries(ds []nudges.Delivery) error {
	for i := range ds {
		ds[i].Slot = ds[i].Slot.UTC()
		if err := validateDelivery(ds[i]); err != nil {
			return fmt.Errorf("storage: import deliveries: entry %d of %d: %w; nothing was written", i+1, len(ds), err)
		}
	}
	for start := 0; start < len(ds); start += importBatch {
		batch := ds[start:min(start+importBatch, len(ds))]
		err := db.update(func(tx *bolt.Tx) error {
			bk, err := bucketsOf(tx)
			if err != nil {
				return err
			}
			for _, d := range batch {
				if err := saveDelivery(bk, d, false); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("storage: import deliveries %d to %d of %d (the %d before them are written): %w",
				start+1, start+len(batch), len(ds), start, err)
		}
	}
	return nil
}
