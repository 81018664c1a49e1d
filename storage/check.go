package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// maxIndexErrors caps what checkIndexes reports per index: after a few,
// more lines only bury the first.
const maxIndexErrors = 10

// checkIndexes verifies what bbolt cannot: that the due, outbox,
// deliveries_by_slot and seen_by_time indexes list exactly what their
// records say. It decodes
// every record, so it runs in Check, not at every Open.
//
// pace is called once per record read, so a caller can give memory back
// as the walk goes; an error from it ends the walk.
func checkIndexes(tx *bolt.Tx, pace func() error) error {
	bk, err := bucketsOf(tx)
	if err != nil {
		if v, verr := readSchemaVersion(tx); verr == nil && v < SchemaVersion {
			return nil // an old file opened read-only; migration will build them
		}
		return err
	}
	var errs []error
	for _, check := range []func(*bolt.Tx, buckets, func() error) ([]error, error){checkDueIndex, checkDeliveryIndexes, checkSeenIndex} {
		found, err := check(tx, bk, pace)
		if err != nil {
			return err
		}
		errs = append(errs, found...)
	}
	return errors.Join(errs...)
}

// checkDueIndex checks the due index against the subscribers' NextDue.
func checkDueIndex(_ *bolt.Tx, bk buckets, pace func() error) (errs []error, err error) {
	dueRefs := indexRefs{index: bk.due, name: "due", show: showTimeKey, pace: pace}
	err = bk.subscribers.ForEach(func(k, v []byte) error {
		if err := pace(); err != nil {
			return err
		}
		var s nudges.Subscriber
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("decode subscriber %q: %w", k, err)
		}
		if s.UserID != "" && s.UserID != string(k) {
			errs = append(errs, fmt.Errorf("subscriber stored under %q has user id %q", k, s.UserID))
		}
		if s.NextDue.IsZero() {
			return nil
		}
		dk, err := timeKey(s.NextDue, string(k))
		if err != nil {
			return fmt.Errorf("subscriber %q: %w", k, err)
		}
		dueRefs.want(dk)
		return nil
	})
	if err != nil {
		return nil, err
	}
	extra, err := dueRefs.extras(func(t time.Time, id string) bool {
		var s nudges.Subscriber
		found, err := loadSubscriber(bk, id, &s)
		return err == nil && found && s.NextDue.Equal(t)
	})
	return append(errs, extra...), err
}

// checkDeliveryIndexes checks the outbox and the slot index against the
// deliveries.
func checkDeliveryIndexes(tx *bolt.Tx, bk buckets, pace func() error) (errs []error, err error) {
	wantOutbox := map[string]bool{}
	slotRefs := indexRefs{index: bk.bySlot, name: "deliveries_by_slot", show: showTimeKey, pace: pace}
	err = bk.deliveries.ForEach(func(k, v []byte) error {
		if err := pace(); err != nil {
			return err
		}
		var d nudges.Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode delivery %q: %w", k, err)
		}
		if d.ID != string(k) {
			errs = append(errs, fmt.Errorf("delivery stored under %q has id %q", k, d.ID))
		}
		if d.State == nudges.StatePending {
			wantOutbox[string(k)] = true
		}
		if bk.bySlot != nil {
			sk, err := timeKey(d.Slot, string(k))
			if err != nil {
				return fmt.Errorf("delivery %q: %w", k, err)
			}
			slotRefs.want(sk)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	outbox, err := compareIndex(bk.outbox, wantOutbox, "outbox", func(k []byte) string { return string(k) }, pace)
	if err != nil {
		return nil, err
	}
	errs = append(errs, outbox...)
	if bk.bySlot != nil {
		extra, err := slotRefs.extras(func(t time.Time, id string) bool {
			var d nudges.Delivery
			found, err := getJSON(bk.deliveries, id, &d)
			return err == nil && found && d.Slot.Equal(t)
		})
		if err != nil {
			return nil, err
		}
		errs = append(errs, extra...)
	} else if v, verr := readSchemaVersion(tx); verr != nil || v >= schemaSlotIndex {
		errs = append(errs, errNoSlotIndex)
	}
	return errs, nil
}

// checkSeenIndex checks seen_by_time against the handled envelopes.
func checkSeenIndex(_ *bolt.Tx, bk buckets, pace func() error) ([]error, error) {
	wantSeen := map[string]bool{}
	err := bk.seen.ForEach(func(k, v []byte) error {
		if err := pace(); err != nil {
			return err
		}
		var at time.Time
		if err := json.Unmarshal(v, &at); err != nil {
			return fmt.Errorf("decode envelope %q: %w", k, err)
		}
		ik, err := timeKey(at, string(k))
		if err != nil {
			return fmt.Errorf("envelope %q: %w", k, err)
		}
		wantSeen[string(ik)] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	return compareIndex(bk.seenByTime, wantSeen, "seen_by_time", func(k []byte) string {
		_, key, err := splitTimeKey(k)
		if err != nil {
			return fmt.Sprintf("%x", k)
		}
		return key
	}, pace)
}

// indexRefs checks a large time-keyed index against its records without
// holding every key in memory: each record's key is looked up as the
// records are read, and the index is walked for entries no record wants
// only when the counts disagree. With 100,000 subscribers a map of the
// wanted keys would cost more memory than the rest of the check.
type indexRefs struct {
	index   *bolt.Bucket
	name    string
	show    func([]byte) string
	pace    func() error
	wanted  int
	lacking int
	errs    []error
}

// want notes that a record needs key k in the index.
func (r *indexRefs) want(k []byte) {
	r.wanted++
	if r.index.Get(k) != nil {
		return
	}
	r.lacking++
	if len(r.errs) < maxIndexErrors {
		r.errs = append(r.errs, fmt.Errorf("%s index lacks %s", r.name, r.show(k)))
	}
}

// extras returns the problems found, adding the entries of the index that
// no record wants, as told by owns.
func (r *indexRefs) extras(owns func(t time.Time, id string) bool) ([]error, error) {
	n := 0
	err := r.index.ForEach(func(_, _ []byte) error { n++; return r.pace() })
	// Every wanted key is distinct (it ends in its record's id), so
	// equal counts with nothing lacking mean nothing extra.
	if err != nil || n == r.wanted-r.lacking {
		return r.errs, err
	}
	err = r.index.ForEach(func(k, _ []byte) error {
		t, id, err := splitTimeKey(k)
		if (err != nil || !owns(t, id)) && len(r.errs) < maxIndexErrors {
			r.errs = append(r.errs, fmt.Errorf("%s index lists %s, which its records do not", r.name, r.show(k)))
		}
		return r.pace()
	})
	return r.errs, err
}

func showTimeKey(k []byte) string {
	t, id, err := splitTimeKey(k)
	if err != nil {
		return fmt.Sprintf("%x", k)
	}
	return id + " at " + t.Format(time.RFC3339Nano)
}

// compareIndex reports entries of b that are not in want, and entries of
// want that are not in b. It consumes want. pace is called once per
// entry; an error from it ends the walk.
func compareIndex(b *bolt.Bucket, want map[string]bool, name string, show func([]byte) string, pace func() error) ([]error, error) {
	var errs []error
	add := func(err error) {
		if len(errs) < maxIndexErrors {
			errs = append(errs, err)
		}
	}
	err := b.ForEach(func(k, _ []byte) error {
		if want[string(k)] {
			delete(want, string(k))
		} else {
			add(fmt.Errorf("%s index lists %s, which its records do not", name, show(k)))
		}
		return pace()
	})
	if err != nil {
		return nil, err
	}
	for k := range want {
		add(fmt.Errorf("%s index lacks %s", name, show([]byte(k))))
	}
	return errs, nil
}
