package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// Bucket names; doc.go describes what each holds.
const (
	bucketMeta        = "meta"
	bucketSubscribers = "subscribers"
	bucketDue         = "due"
	bucketRecords     = "delivery_records"
	bucketByPerson    = "deliveries_by_person"
	bucketOutbox      = "delivery_outbox"
	bucketSeen        = "seen"
	bucketSeenByTime  = "seen_by_time"

	// Schema 4 and older kept deliveries as JSON under their ids; the
	// 4 → 5 migration moves them out and drops these.
	bucketDeliveriesV4 = "deliveries"
	bucketOutboxV4     = "outbox"
	bucketBySlotV4     = "deliveries_by_slot"

	bucketDigests      = "digests"
	bucketPulses       = "pulses"
	bucketPulseVoters  = "pulse_voters" // schema 3 and older; now in the secrets file
	bucketPulseHistory = "pulse_history"

	bucketDataKeys       = "datakeys" // schema 3 and older; now in the secrets file
	bucketReflections    = "reflections"
	bucketReflectionSeq  = "reflection_seq"
	bucketFollowUps      = "follow_ups"
	bucketSharedByPerson = "shared_by_person"
	bucketForgetting     = "forgetting"
)

func allBuckets() []string {
	return []string{
		bucketMeta, bucketSubscribers, bucketDue, bucketRecords,
		bucketByPerson, bucketOutbox, bucketSeen, bucketSeenByTime,
		bucketDigests, bucketPulses, bucketPulseHistory,
		bucketReflections, bucketReflectionSeq, bucketFollowUps,
		bucketSharedByPerson, bucketForgetting,
	}
}

// buckets are the data buckets of one transaction.
type buckets struct {
	subscribers, due, seen, seenByTime *bolt.Bucket

	// records, byPerson and outbox are nil only in a read-only open of a
	// file older than schema 5; use dels, which says so.
	records, byPerson, outbox *bolt.Bucket
}

// recordFill is the records bucket's FillPercent. Records are appended
// in slot order, so bbolt's default (0.5) would leave every page half
// empty for good; a full page would split again as soon as its records
// grow (a pending record gains its channel, timestamp and outcome
// later), so a quarter is left for that.
const recordFill = 0.75

// dels returns bk if it has the delivery buckets, or the error a read
// of an unmigrated file gets.
func (bk buckets) dels() (buckets, error) {
	if bk.records == nil || bk.byPerson == nil || bk.outbox == nil {
		return bk, errOldDeliveries
	}
	return bk, nil
}

// errOldDeliveries is what a delivery read gets from a file not yet
// migrated to schema 5; only read-only opens can see one.
var errOldDeliveries = fmt.Errorf("bucket %s is missing: the deliveries are in the layout of schema 4 or older; open the database read-write once with this nudgebot to migrate it", bucketRecords)

func bucketsOf(tx *bolt.Tx) (buckets, error) {
	var bk buckets
	for _, p := range []struct {
		name string
		b    **bolt.Bucket
	}{
		{bucketSubscribers, &bk.subscribers},
		{bucketDue, &bk.due},
		{bucketSeen, &bk.seen},
		{bucketSeenByTime, &bk.seenByTime},
	} {
		*p.b = tx.Bucket([]byte(p.name))
		if *p.b == nil {
			// Only a read-only open of an old file can get here.
			return buckets{}, fmt.Errorf("bucket %s is missing: open the database read-write once with this nudgebot to migrate it", p.name)
		}
	}
	bk.records = tx.Bucket([]byte(bucketRecords))
	bk.byPerson = tx.Bucket([]byte(bucketByPerson))
	bk.outbox = tx.Bucket([]byte(bucketOutbox))
	if bk.records != nil {
		// A per-handle setting: it must be set in every transaction.
		bk.records.FillPercent = recordFill
	}
	return bk, nil
}

// timeKeyLen is the width of the time prefix of due and seen_by_time keys.
const timeKeyLen = 8

func keyTimeRange() (lo, hi time.Time) { return time.Unix(0, 0), time.Unix(0, math.MaxInt64) }

// timeKey is t as big-endian UnixNano followed by id, so keys sort by
// time. UnixNano only covers 1970 to 2262 without overflowing or sorting
// negative values after positive ones, so other times are refused.
func timeKey(t time.Time, id string) ([]byte, error) {
	if lo, hi := keyTimeRange(); t.Before(lo) || t.After(hi) {
		return nil, fmt.Errorf("time %s is outside the range storage can index (1970 to 2262)", t.Format(time.RFC3339))
	}
	k := make([]byte, timeKeyLen, timeKeyLen+len(id))
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	return append(k, id...), nil
}

// splitTimeKey copies the parts of a timeKey out of bbolt's memory.
func splitTimeKey(k []byte) (time.Time, string, error) {
	if len(k) < timeKeyLen {
		return time.Time{}, "", fmt.Errorf("index key %x is shorter than %d bytes", k, timeKeyLen)
	}
	return keyTime(k), string(k[timeKeyLen:]), nil
}

func keyTime(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:timeKeyLen]))).UTC()
}

// keyNotAfter reports whether the time prefix of k is <= t.
func keyNotAfter(k []byte, t time.Time) bool {
	if len(k) < timeKeyLen {
		return false
	}
	lo, hi := keyTimeRange()
	switch {
	case t.Before(lo):
		return false
	case t.After(hi):
		return true
	}
	return binary.BigEndian.Uint64(k[:timeKeyLen]) <= uint64(t.UnixNano())
}

// DeliveryID names the delivery of one person's slot. The same slot always
// gets the same id, which is what makes StartDelivery idempotent; /nudge
// now deliveries get their own ids so they never collide with the
// schedule's. Ids sort by slot within one person.
func DeliveryID(userID string, slot time.Time, manual bool) string {
	return nudges.DeliveryID(userID, slot, manual)
}

// getJSON decodes the value at key into v, reporting whether it was
// there. Decoding copies everything out of bbolt's memory.
func getJSON(b *bolt.Bucket, key string, v any) (bool, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	if err := b.Put([]byte(key), raw); err != nil {
		return fmt.Errorf("write %q: %w", key, err)
	}
	return nil
}

// rebuildIndexes recreates the due and outbox buckets from subscribers and
// deliveries. It is the 0 → 1 migration and safe to run at any time.
func rebuildIndexes(tx *bolt.Tx) error {
	subs, err := tx.CreateBucketIfNotExists([]byte(bucketSubscribers))
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketSubscribers, err)
	}
	dels, err := tx.CreateBucketIfNotExists([]byte(bucketDeliveriesV4))
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketDeliveriesV4, err)
	}
	due, err := recreateBucket(tx, bucketDue)
	if err != nil {
		return err
	}
	outbox, err := recreateBucket(tx, bucketOutboxV4)
	if err != nil {
		return err
	}
	err = subs.ForEach(func(k, v []byte) error {
		var s nudges.Subscriber
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("decode subscriber %q: %w", k, err)
		}
		if s.NextDue.IsZero() {
			return nil
		}
		dk, err := timeKey(s.NextDue, string(k))
		if err != nil {
			return fmt.Errorf("subscriber %q: %w", k, err)
		}
		return due.Put(dk, []byte{})
	})
	if err != nil {
		return fmt.Errorf("rebuild the due index: %w", err)
	}
	err = dels.ForEach(func(k, v []byte) error {
		var d nudges.Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode delivery %q: %w", k, err)
		}
		if d.State != nudges.StatePending {
			return nil
		}
		return outbox.Put(bytes.Clone(k), []byte{})
	})
	if err != nil {
		return fmt.Errorf("rebuild the outbox: %w", err)
	}
	return nil
}

// buildSlotIndex is the 2 → 3 migration: it lists every delivery in the
// new deliveries_by_slot index, so pruning by age reads only what it
// deletes.
func buildSlotIndex(tx *bolt.Tx) error {
	dels, err := tx.CreateBucketIfNotExists([]byte(bucketDeliveriesV4))
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketDeliveriesV4, err)
	}
	idx, err := recreateBucket(tx, bucketBySlotV4)
	if err != nil {
		return err
	}
	err = dels.ForEach(func(k, v []byte) error {
		var d struct {
			Slot time.Time `json:"slot"`
		}
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode delivery %q: %w", k, err)
		}
		ik, err := timeKey(d.Slot, string(k))
		if err != nil {
			return fmt.Errorf("delivery %q: %w", k, err)
		}
		return idx.Put(ik, []byte{})
	})
	if err != nil {
		return fmt.Errorf("build the slot index: %w", err)
	}
	return nil
}

func recreateBucket(tx *bolt.Tx, name string) (*bolt.Bucket, error) {
	if tx.Bucket([]byte(name)) != nil {
		if err := tx.DeleteBucket([]byte(name)); err != nil {
			return nil, fmt.Errorf("drop bucket %s: %w", name, err)
		}
	}
	b, err := tx.CreateBucket([]byte(name))
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", name, err)
	}
	return b, nil
}
