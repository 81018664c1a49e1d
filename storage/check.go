package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// maxIndexErrors caps what checkIndexes reports per index: after a few,
// more lines only bury the first.
const maxIndexErrors = 10

// checkIndexes verifies what bbolt cannot: that the due, outbox,
// deliveries_by_person and seen_by_time indexes list exactly what their
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

// checkDeliveryIndexes checks the outbox and the person index against
// the delivery records, and decodes every record.
func checkDeliveryIndexes(tx *bolt.Tx, bk buckets, pace func() error) (errs []error, err error) {
	if bk, err = bk.dels(); err != nil {
		if v, verr := readSchemaVersion(tx); verr == nil && v < schemaCompactDeliveries {
			return nil, nil // an old file opened read-only; migration builds them
		}
		return []error{err}, nil
	}
	wantOutbox := map[string]bool{}
	var listed, lacking int
	add := func(e error) {
		if len(errs) < maxIndexErrors {
			errs = append(errs, e)
		}
	}
	err = bk.records.ForEach(func(k, v []byte) error {
		if err := pace(); err != nil {
			return err
		}
		d, err := decodeDelivery(k, v)
		if err != nil {
			add(err)
			return nil
		}
		if d.State == nudges.StatePending {
			wantOutbox[string(k)] = true
		}
		listed++
		if !personLists(bk, k) {
			lacking++
			add(fmt.Errorf("person index lacks %s", d.ID))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	outbox, err := compareIndex(bk.outbox, wantOutbox, "outbox", showRecordKey, pace)
	if err != nil {
		return nil, err
	}
	errs = append(errs, outbox...)
	// Each record was looked up in the index as it was read; equal counts
	// with nothing lacking mean nothing extra, so the index is walked for
	// entries without a record only when the counts disagree.
	n := 0
	err = bk.byPerson.ForEach(func(k, v []byte) error {
		userID, _, err := splitPersonKey(k)
		if err != nil {
			add(err)
			return nil
		}
		es, err := decodePersonEntries(v)
		if err != nil {
			add(fmt.Errorf("person index entry of %s: %w", userID, err))
			return nil
		}
		n += len(es)
		return pace()
	})
	if err != nil || n == listed-lacking {
		return errs, err
	}
	err = bk.byPerson.ForEach(func(k, v []byte) error {
		userID, period, err := splitPersonKey(k)
		if err != nil {
			return nil
		}
		es, err := decodePersonEntries(v)
		if err != nil {
			return nil
		}
		for _, e := range es {
			if rk := recordKeyOfEntry(userID, period, e); bk.records.Get(rk) == nil {
				add(fmt.Errorf("person index lists %s, which is not stored", showRecordKey(rk)))
			}
		}
		return pace()
	})
	return errs, err
}

// personLists reports whether the person index lists the record at k.
func personLists(bk buckets, k []byte) bool {
	userID, sec, manual, err := splitRecordKey(k)
	if err != nil {
		return false
	}
	v := bk.byPerson.Get(personKey(userID, sec))
	if v == nil {
		return false
	}
	es, err := decodePersonEntries(v)
	if err != nil {
		return false
	}
	_, found := slices.BinarySearch(es, personEntryOf(sec, manual))
	return found
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
