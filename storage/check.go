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

// checkIndexes verifies what bbolt cannot: that the due, outbox and
// seen_by_time indexes list exactly what their records say. It decodes
// every record, so it runs in Check, not at every Open.
func checkIndexes(tx *bolt.Tx) error {
	bk, err := bucketsOf(tx)
	if err != nil {
		if v, verr := readSchemaVersion(tx); verr == nil && v < SchemaVersion {
			return nil // an old file opened read-only; migration will build them
		}
		return err
	}
	var errs []error

	wantDue := map[string]bool{}
	err = bk.subscribers.ForEach(func(k, v []byte) error {
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
		wantDue[string(dk)] = true
		return nil
	})
	if err != nil {
		return err
	}
	errs = append(errs, compareIndex(bk.due, wantDue, "due", func(k []byte) string {
		t, id, err := splitTimeKey(k)
		if err != nil {
			return fmt.Sprintf("%x", k)
		}
		return id + " at " + t.Format(time.RFC3339Nano)
	})...)

	wantOutbox := map[string]bool{}
	err = bk.deliveries.ForEach(func(k, v []byte) error {
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
		return nil
	})
	if err != nil {
		return err
	}
	errs = append(errs, compareIndex(bk.outbox, wantOutbox, "outbox", func(k []byte) string { return string(k) })...)

	wantSeen := map[string]bool{}
	err = bk.seen.ForEach(func(k, v []byte) error {
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
		return err
	}
	errs = append(errs, compareIndex(bk.seenByTime, wantSeen, "seen_by_time", func(k []byte) string {
		_, key, err := splitTimeKey(k)
		if err != nil {
			return fmt.Sprintf("%x", k)
		}
		return key
	})...)

	return errors.Join(errs...)
}

// compareIndex reports entries of b that are not in want, and entries of
// want that are not in b. It consumes want.
func compareIndex(b *bolt.Bucket, want map[string]bool, name string, show func([]byte) string) []error {
	var errs []error
	add := func(err error) {
		if len(errs) < maxIndexErrors {
			errs = append(errs, err)
		}
	}
	_ = b.ForEach(func(k, _ []byte) error {
		if want[string(k)] {
			delete(want, string(k))
		} else {
			add(fmt.Errorf("%s index lists %s, which its records do not", name, show(k)))
		}
		return nil
	})
	for k := range want {
		add(fmt.Errorf("%s index lacks %s", name, show([]byte(k))))
	}
	return errs
}
