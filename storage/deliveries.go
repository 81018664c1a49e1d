package storage

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// StartDelivery records d and advances its subscriber in one transaction,
// so a slot is claimed exactly once even across crashes and concurrent
// ticks:
//   - if a delivery with d.ID exists, it returns created=false and changes
//     nothing;
//   - else, unless d.Manual, the subscriber's NextDue must equal
//     expectNextDue, or it returns an error wrapping ErrConflict;
//   - else it stores d (pending deliveries also go in the outbox), applies
//     advance to the subscriber and saves both.
//
// d.ID must be DeliveryID(d.UserID, d.Slot, d.Manual). A missing subscriber
// is an error wrapping nudges.ErrNotFound. If advance returns an error,
// nothing is written. advance runs inside the write transaction, possibly
// more than once (see nudges.DeliveryStart): keep it quick and do not call
// other DB methods from it.
func (db *DB) StartDelivery(d nudges.Delivery, expectNextDue time.Time, advance func(*nudges.Subscriber) error) (created bool, err error) {
	cs, errs := db.StartDeliveries([]nudges.DeliveryStart{{Delivery: d, ExpectNextDue: expectNextDue, Advance: advance}})
	return cs[0], errs[0]
}

// StartDeliveries records many planned deliveries, each as StartDelivery
// would, in one shared transaction: a tick writes its people in a few
// commits, not one each. created[i] and errs[i] are what StartDelivery
// would have returned for starts[i]; one start refused (a conflict, a
// missing subscriber, its Advance failing) changes nothing of its own and
// leaves the others to be recorded. Only a failure of the transaction
// itself (a full disk) fails them all, with that error.
func (db *DB) StartDeliveries(starts []nudges.DeliveryStart) (created []bool, errs []error) {
	return StartFrame("storage", starts, func(starts []nudges.DeliveryStart, skip []error, created []bool, refused []error) error {
		return db.write(func(tx *bolt.Tx) error { return startAll(tx, starts, skip, created, refused) })
	})
}

// startAll records the starts not already refused (skip[i] != nil) in
// tx, setting created and refused for each.
func startAll(tx *bolt.Tx, starts []nudges.DeliveryStart, skip []error, created []bool, refused []error) error {
	bk, err := bucketsOf(tx)
	if err != nil {
		return err
	}
	for i, st := range starts {
		// Reset: the transaction may run again (see write).
		created[i], refused[i] = false, nil
		if skip[i] != nil {
			continue
		}
		created[i], refused[i], err = startOne(bk, st)
		if err != nil {
			return fmt.Errorf("delivery %s: %w", st.Delivery.ID, err)
		}
	}
	return nil
}

// startOne records one start in tx. refused is why it was not recorded,
// decided before anything of it was written; err means a write failed
// half-way, which spoils the whole transaction.
func startOne(bk buckets, st nudges.DeliveryStart) (created bool, refused, err error) {
	d := st.Delivery
	if exists, err := deliveryExists(bk, d); err != nil || exists {
		return false, nil, err
	}
	old, err := mustLoadSubscriber(bk, d.UserID)
	if err != nil {
		return false, err, nil
	}
	s, why := DecideStart(old, st)
	if why != nil {
		return false, why, nil
	}
	if err := saveDelivery(bk, d, false); err != nil {
		return false, nil, err
	}
	if err := saveSubscriber(bk, old, s); err != nil {
		return false, nil, fmt.Errorf("subscriber %s: %w", d.UserID, err)
	}
	return true, nil, nil
}

// RecordMissed records each slot as a missed delivery (never in the
// outbox) and advances the subscriber, in one transaction. Slots that
// already have a delivery keep it. Like StartDelivery it returns an error
// wrapping ErrConflict if the subscriber's NextDue is not expectNextDue,
// and writes nothing if advance fails.
func (db *DB) RecordMissed(userID string, slots []time.Time, expectNextDue time.Time, advance func(*nudges.Subscriber) error) error {
	err := db.write(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		old, err := mustLoadSubscriber(bk, userID)
		if err != nil {
			return err
		}
		if err := CheckNextDue(old, expectNextDue); err != nil {
			return err
		}
		created := db.now().UTC()
		for _, slot := range slots {
			d, err := MissedDelivery(userID, slot, created)
			if err != nil {
				return err
			}
			if exists, err := deliveryExists(bk, d); err != nil || exists {
				if err != nil {
					return err
				}
				continue
			}
			if err := saveDelivery(bk, d, false); err != nil {
				return err
			}
		}
		s := old
		if advance != nil {
			if err := advance(&s); err != nil {
				return err
			}
		}
		return saveSubscriber(bk, old, s)
	})
	if err != nil {
		return fmt.Errorf("storage: record missed slots of %s: %w", userID, err)
	}
	return nil
}

// Delivery returns the delivery with id, or an error wrapping
// nudges.ErrNotFound.
func (db *DB) Delivery(id string) (nudges.Delivery, error) {
	var d nudges.Delivery
	err := db.view(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		d, err = mustLoadDelivery(bk, id)
		return err
	})
	if err != nil {
		return nudges.Delivery{}, fmt.Errorf("storage: delivery %s: %w", id, err)
	}
	return d, nil
}

// UpdateDelivery applies fn to the delivery with id and saves it, keeping
// the outbox in step with State == pending. If fn returns an error nothing
// is written. fn may not change ID, UserID, Slot or Manual, from which the
// id derives. A missing delivery is an error wrapping nudges.ErrNotFound.
// The write may share its transaction with others, and fn may run more
// than once, each time on a fresh copy of the stored delivery: it must
// change only that.
func (db *DB) UpdateDelivery(id string, fn func(*nudges.Delivery) error) (nudges.Delivery, error) {
	var d nudges.Delivery
	err := db.write(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		old, err := mustLoadDelivery(bk, id)
		if err != nil {
			return err
		}
		d = old
		if err := fn(&d); err != nil {
			return err
		}
		if err := sameIdentity(old, d); err != nil {
			return err
		}
		return saveDelivery(bk, d, old.State == nudges.StatePending)
	})
	if err != nil {
		return nudges.Delivery{}, fmt.Errorf("storage: update delivery %s: %w", id, err)
	}
	return d, nil
}

// UpdateDeliveryFrom is UpdateDelivery: reading the record inside the
// write costs bbolt nothing, so known only names the delivery.
func (db *DB) UpdateDeliveryFrom(known nudges.Delivery, fn func(*nudges.Delivery) error) (nudges.Delivery, error) {
	return db.UpdateDelivery(known.ID, fn)
}

// RecordOutcome applies fn to a delivery and its subscriber and saves both
// in one transaction, for changes that touch both (an outcome that moves a
// streak, a snooze that moves NextDue). The rules of UpdateDelivery and
// UpdateSubscriber apply; if fn returns an error nothing is written. A
// missing delivery or subscriber is an error wrapping nudges.ErrNotFound.
// Like UpdateDelivery's, fn may run more than once.
func (db *DB) RecordOutcome(deliveryID string, fn func(*nudges.Delivery, *nudges.Subscriber) error) (nudges.Delivery, nudges.Subscriber, error) {
	var (
		d nudges.Delivery
		s nudges.Subscriber
	)
	err := db.write(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		oldD, err := mustLoadDelivery(bk, deliveryID)
		if err != nil {
			return err
		}
		oldS, err := mustLoadSubscriber(bk, oldD.UserID)
		if err != nil {
			return err
		}
		d, s = oldD, oldS
		if err := fn(&d, &s); err != nil {
			return err
		}
		if err := sameIdentity(oldD, d); err != nil {
			return err
		}
		if err := saveDelivery(bk, d, oldD.State == nudges.StatePending); err != nil {
			return err
		}
		if err := saveSubscriber(bk, oldS, s); err != nil {
			return fmt.Errorf("subscriber %s: %w", oldS.UserID, err)
		}
		return nil
	})
	if err != nil {
		return nudges.Delivery{}, nudges.Subscriber{}, fmt.Errorf("storage: record outcome of %s: %w", deliveryID, err)
	}
	return d, s, nil
}

// Pending returns the outbox: every delivery in state pending, oldest
// slot first.
func (db *DB) Pending() ([]nudges.Delivery, error) {
	var ds []nudges.Delivery
	err := db.view(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		if bk, err = bk.dels(); err != nil {
			return err
		}
		return bk.outbox.ForEach(func(k, _ []byte) error {
			d, found, err := loadDelivery(bk, k)
			if err != nil {
				return err
			}
			if !found || d.State != nudges.StatePending {
				// Both are written in one transaction, so this is damage;
				// a stale entry must not stop every other delivery.
				db.log.Warn("outbox entry has no pending delivery; ignoring it", "delivery_id", showRecordKey(k), "found", found, "state", d.State)
				return nil
			}
			ds = append(ds, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("storage: pending deliveries: %w", err)
	}
	sortBySlot(ds)
	return ds, nil
}

// Deliveries returns userID's deliveries whose slot is at or after since,
// oldest first. It reads only that person's deliveries.
func (db *DB) Deliveries(userID string, since time.Time) ([]nudges.Delivery, error) {
	var ds []nudges.Delivery
	err := db.view(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		ds, err = personDeliveries(bk, userID, since, time.Time{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storage: deliveries of %s: %w", userID, err)
	}
	return ds, nil
}

// DeliveriesBetween calls fn for every delivery, of everyone, whose slot
// is in [from, to), until fn returns an error, which it returns unwrapped.
// It reads in short transactions and calls fn outside them, in slot
// order, reading only the deliveries of those slots.
func (db *DB) DeliveriesBetween(from, to time.Time, fn func(nudges.Delivery) error) error {
	if !from.Before(to) {
		return nil
	}
	lo, hi := secondsFrom(from, to)
	start := recordKey("", lo, false)[:recordKeyPrefix-1]
	return scan(db, bucketRecords, start, func(k, v []byte) (nudges.Delivery, bool, bool, error) {
		d, err := decodeDelivery(k, v)
		if err != nil {
			return d, false, false, fmt.Errorf("storage: %w", err)
		}
		if sec, _ := slotSecond(d.Slot); sec > hi {
			return d, false, false, nil
		}
		return d, !d.Slot.Before(from) && d.Slot.Before(to), true, nil
	}, fn)
}

// userRecordKeys lists (copies of) the record keys of userID's
// deliveries.
func userRecordKeys(bk buckets, userID string) ([][]byte, error) {
	if _, err := bk.dels(); err != nil {
		return nil, err
	}
	return personRecordKeys(bk, userID, 0, math.MaxUint32)
}

func mustLoadSubscriber(bk buckets, userID string) (nudges.Subscriber, error) {
	var s nudges.Subscriber
	found, err := loadSubscriber(bk, userID, &s)
	if err != nil {
		return s, err
	}
	if !found {
		return s, fmt.Errorf("subscriber %s: %w", userID, nudges.ErrNotFound)
	}
	return s, nil
}

// validateDelivery guards the invariants the buckets rely on: the id
// places the delivery under its person, and the state decides the outbox.
func validateDelivery(d nudges.Delivery) error {
	if d.UserID == "" {
		return fmt.Errorf("delivery %q has no user id", d.ID)
	}
	if want := DeliveryID(d.UserID, d.Slot, d.Manual); d.ID != want {
		return fmt.Errorf("delivery id %q does not match its user, slot and manual flag: want %q (use storage.DeliveryID)", d.ID, want)
	}
	if _, err := slotSecond(d.Slot); err != nil {
		return fmt.Errorf("delivery %s: %w", d.ID, err)
	}
	switch d.State {
	case nudges.StatePending, nudges.StateSent, nudges.StateMissed, nudges.StateFailed:
		return nil
	}
	return fmt.Errorf("delivery %s has unknown state %q", d.ID, d.State)
}

func sameIdentity(old, d nudges.Delivery) error {
	if d.ID != old.ID || d.UserID != old.UserID || d.Manual != old.Manual || !d.Slot.Equal(old.Slot) {
		return fmt.Errorf("the update changed the delivery's id, user, slot or manual flag; they identify it and cannot change")
	}
	return nil
}

func sortBySlot(ds []nudges.Delivery) {
	slices.SortStableFunc(ds, func(a, b nudges.Delivery) int {
		if c := a.Slot.Compare(b.Slot); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "unset"
	}
	return t.UTC().Format(time.RFC3339Nano)
}
