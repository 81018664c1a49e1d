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
	bucketDeliveries  = "deliveries"
	bucketOutbox      = "outbox"
	bucketSeen        = "seen"
	bucketSeenByTime  = "seen_by_time"
	bucketBySlot      = "deliveries_by_slot"

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
		bucketMeta, bucketSubscribers, bucketDue, bucketDeliveries,
		bucketOutbox, bucketSeen, bucketSeenByTime, bucketBySlot,
		bucketDigests, bucketPulses, bucketPulseHistory,
		bucketReflections, bucketReflectionSeq, bucketFollowUps,
		bucketSharedByPerson, bucketForgetting,
	}
}

// buckets are the data buckets of one transaction.
type buckets struct {
	subscribers, due, deliveries, outbox, seen, seenByTime *bolt.Bucket

	// bySlot is nil only in a read-only open of a schema 1 or 2 file, which
	// never writes a delivery; writers get errNoSlotIndex.
	bySlot *bolt.Bucket
}

func bucketsOf(tx *bolt.Tx) (buckets, error) {
	var bk buckets
	for _, p := range []struct {
		name string
		b    **bolt.Bucket
	}{
		{bucketSubscribers, &bk.subscribers},
		{bucketDue, &bk.due},
		{bucketDeliveries, &bk.deliveries},
		{bucketOutbox, &bk.outbox},
		{bucketSeen, &bk.seen},
		{bucketSeenByTime, &bk.seenByTime},
	} {
		*p.b = tx.Bucket([]byte(p.name))
		if *p.b == nil {
			// Only a read-only open of an old file can get here.
			return buckets{}, fmt.Errorf("bucket %s is missing: open the database read-write once with this nudgebot to migrate it", p.name)
		}
	}
	bk.bySlot = tx.Bucket([]byte(bucketBySlot))
	return bk, nil
}

// errNoSlotIndex is what a write needing the slot index gets from a file
// not yet migrated to schema 3; only read-only opens can see one.
var errNoSlotIndex = fmt.Errorf("bucket %s is missing: open the database read-write once with this nudgebot to migrate it", bucketBySlot)

// indexSlot lists d in the slot index. A delivery's slot never changes,
// so writing the entry again is harmless.
func indexSlot(bk buckets, d nudges.Delivery) error {
	if bk.bySlot == nil {
		return errNoSlotIndex
	}
	k, err := timeKey(d.Slot, d.ID)
	if err != nil {
		return fmt.Errorf("delivery %s: %w", d.ID, err)
	}
	if bk.bySlot.Get(k) != nil {
		return nil // a slot never changes: rewriting the entry would only dirty its page
	}
	if err := bk.bySlot.Put(k, []byte{}); err != nil {
		return fmt.Errorf("slot index entry of %s: %w", d.ID, err)
	}
	return nil
}

// unindexSlot removes the slot index entry of the delivery with id.
func unindexSlot(bk buckets, id string, slot time.Time) error {
	if bk.bySlot == nil {
		return errNoSlotIndex
	}
	k, err := timeKey(slot, id)
	if err != nil {
		return fmt.Errorf("delivery %s: %w", id, err)
	}
	if err := bk.bySlot.Delete(k); err != nil {
		return fmt.Errorf("delete slot index entry of %s: %w", id, err)
	}
	return nil
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
	dels, err := tx.CreateBucketIfNotExists([]byte(bucketDeliveries))
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketDeliveries, err)
	}
	due, err := recreateBucket(tx, bucketDue)
	if err != nil {
		return err
	}
	outbox, err := recreateBucket(tx, bucketOutbox)
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
	dels, err := tx.CreateBucketIfNotExists([]byte(bucketDeliveries))
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketDeliveries, err)
	}
	idx, err := recreateBucket(tx, bucketBySlot)
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
