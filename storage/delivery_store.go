package storage

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// saveDelivery writes d, lists a new one in the person index, and keeps
// the outbox listing exactly the pending deliveries. wasPending says the
// stored record was pending, so its outbox entry is there: writing it
// again would rewrite the outbox's page in every attempt's commit for
// nothing.
func saveDelivery(bk buckets, d nudges.Delivery, wasPending bool) error {
	if err := validateDelivery(d); err != nil {
		return err
	}
	if _, err := bk.dels(); err != nil {
		return err
	}
	k, err := keyOfDelivery(d)
	if err != nil {
		return err
	}
	v, err := encodeDelivery(d)
	if err != nil {
		return err
	}
	had := bk.records.Get(k) != nil
	if err := bk.records.Put(k, v); err != nil {
		return fmt.Errorf("write delivery %s: %w", d.ID, err)
	}
	if !had {
		if err := personAdd(bk, k); err != nil {
			return fmt.Errorf("delivery %s: %w", d.ID, err)
		}
	}
	switch {
	case d.State != nudges.StatePending:
		// Deleting an absent key writes nothing.
		err = bk.outbox.Delete(k)
	case !wasPending || !had:
		err = bk.outbox.Put(k, []byte{})
	}
	if err != nil {
		return fmt.Errorf("outbox entry %s: %w", d.ID, err)
	}
	return nil
}

// loadDelivery decodes the record at key k, reporting whether there is
// one.
func loadDelivery(bk buckets, k []byte) (nudges.Delivery, bool, error) {
	if _, err := bk.dels(); err != nil {
		return nudges.Delivery{}, false, err
	}
	v := bk.records.Get(k)
	if v == nil {
		return nudges.Delivery{}, false, nil
	}
	d, err := decodeDelivery(k, v)
	return d, true, err
}

func mustLoadDelivery(bk buckets, id string) (nudges.Delivery, error) {
	k, ok := keyOfID(id)
	if !ok {
		if _, err := bk.dels(); err != nil {
			return nudges.Delivery{}, err
		}
		return nudges.Delivery{}, nudges.ErrNotFound // no stored delivery has such an id
	}
	d, found, err := loadDelivery(bk, k)
	if err != nil {
		return d, err
	}
	if !found {
		return d, nudges.ErrNotFound
	}
	return d, nil
}

// deliveryExists reports whether a delivery with d's id is stored.
func deliveryExists(bk buckets, d nudges.Delivery) (bool, error) {
	if _, err := bk.dels(); err != nil {
		return false, err
	}
	k, err := keyOfDelivery(d)
	if err != nil {
		return false, err
	}
	return bk.records.Get(k) != nil, nil
}

// deleteDelivery deletes the record at k with its outbox and person
// index entries.
func deleteDelivery(bk buckets, k []byte) error {
	if err := bk.records.Delete(k); err != nil {
		return fmt.Errorf("delete delivery %s: %w", showRecordKey(k), err)
	}
	if err := bk.outbox.Delete(k); err != nil {
		return fmt.Errorf("delete outbox entry %s: %w", showRecordKey(k), err)
	}
	return personDel(bk, k)
}

// personAdd lists the record at k in its person's index entry.
func personAdd(bk buckets, k []byte) error { return personEdit(bk, k, true) }

// personDel takes the record at k out of its person's index entry.
func personDel(bk buckets, k []byte) error { return personEdit(bk, k, false) }

// personEdit adds (or takes out) the record at k to (from) its person's
// period entry; an entry left empty is deleted, and an entry that would
// not change is not rewritten, which would only dirty its page.
func personEdit(bk buckets, k []byte, add bool) error {
	userID, sec, manual, err := splitRecordKey(k)
	if err != nil {
		return err
	}
	pk := personKey(userID, sec)
	var es []personEntry
	if v := bk.byPerson.Get(pk); v != nil {
		if es, err = decodePersonEntries(v); err != nil {
			return fmt.Errorf("person index entry %x: %w", pk, err)
		}
	}
	e := personEntryOf(sec, manual)
	i, found := slices.BinarySearch(es, e)
	switch {
	case found == add:
		return nil
	case add:
		es = slices.Insert(es, i, e)
	default:
		es = slices.Delete(es, i, i+1)
	}
	if len(es) == 0 {
		if err := bk.byPerson.Delete(pk); err != nil {
			return fmt.Errorf("delete person index entry %x: %w", pk, err)
		}
		return nil
	}
	if err := bk.byPerson.Put(pk, encodePersonEntries(es)); err != nil {
		return fmt.Errorf("write person index entry %x: %w", pk, err)
	}
	return nil
}

// personRecordKeys lists (copies of) the record keys of userID's
// deliveries whose slot second is in [from, to], oldest first, from the
// person index.
func personRecordKeys(bk buckets, userID string, from, to uint32) ([][]byte, error) {
	var keys [][]byte
	prefix := append([]byte(userID), keySep)
	c := bk.byPerson.Cursor()
	for k, v := c.Seek(personKey(userID, from)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		_, period, err := splitPersonKey(k)
		if err != nil {
			return nil, err
		}
		if uint32(period) > to>>personPeriodShift {
			break
		}
		es, err := decodePersonEntries(v)
		if err != nil {
			return nil, fmt.Errorf("person index entry %x: %w", k, err)
		}
		for _, e := range es {
			sec := uint32(period)<<personPeriodShift | e>>1
			if sec >= from && sec <= to {
				keys = append(keys, recordKeyOfEntry(userID, period, e))
			}
		}
	}
	return keys, nil
}

// secondsFrom is the range of slot seconds that can hold slots in
// [from, to): from's second through to's (a zero from is the start).
func secondsFrom(from, to time.Time) (lo, hi uint32) {
	lo, hi = 0, math.MaxUint32
	if s := from.Unix(); !from.IsZero() && s > 0 {
		lo = uint32(min(s, math.MaxUint32))
	}
	if s := to.Unix(); !to.IsZero() && s < math.MaxUint32 {
		hi = uint32(max(s, 0))
	}
	return lo, hi
}

// personDeliveries decodes userID's deliveries with slot in [from, to)
// (a zero to: no end), oldest first.
func personDeliveries(bk buckets, userID string, from, to time.Time) ([]nudges.Delivery, error) {
	if _, err := bk.dels(); err != nil {
		return nil, err
	}
	lo, hi := secondsFrom(from, to)
	keys, err := personRecordKeys(bk, userID, lo, hi)
	if err != nil {
		return nil, err
	}
	ds := make([]nudges.Delivery, 0, len(keys))
	c := bk.records.Cursor() // one cursor for all: Get would make one each
	for _, k := range keys {
		rk, v := c.Seek(k)
		if !bytes.Equal(rk, k) {
			return nil, fmt.Errorf("the person index lists delivery %s, which is not stored", showRecordKey(k))
		}
		d, err := decodeDelivery(k, v)
		if err != nil {
			return nil, err
		}
		if d.Slot.Before(from) || (!to.IsZero() && !d.Slot.Before(to)) {
			continue
		}
		ds = append(ds, d)
	}
	sortBySlot(ds)
	return ds, nil
}
