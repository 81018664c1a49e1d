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

// Subscriber returns what is stored about userID, or an error wrapping
// nudges.ErrNotFound.
func (db *DB) Subscriber(userID string) (nudges.Subscriber, error) {
	var s nudges.Subscriber
	err := db.view(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		found, err := loadSubscriber(bk, userID, &s)
		if err != nil {
			return err
		}
		if !found {
			return nudges.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return nudges.Subscriber{}, fmt.Errorf("storage: subscriber %s: %w", userID, err)
	}
	return s, nil
}

// SubscribersByID reads the records of userIDs in one transaction;
// those with no record are left out.
func (db *DB) SubscribersByID(userIDs []string) (map[string]nudges.Subscriber, error) {
	subs := make(map[string]nudges.Subscriber, len(userIDs))
	err := db.view(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		for _, id := range userIDs {
			var s nudges.Subscriber
			found, err := loadSubscriber(bk, id, &s)
			if err != nil {
				return err
			}
			if found {
				subs[id] = s
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: %d subscribers: %w", len(userIDs), err)
	}
	return subs, nil
}

// UpdateSubscriber applies fn to userID's record, starting from
// Subscriber{UserID: userID} if there is none, and saves the result. If fn
// returns an error nothing is written and that error is returned, wrapped.
// fn must not change UserID. fn runs inside the write transaction: keep it
// quick and do not call other DB methods from it. The write may share its
// transaction with others, and fn may run more than once, each time on a
// fresh copy of the stored record: it must change only that.
func (db *DB) UpdateSubscriber(userID string, fn func(*nudges.Subscriber) error) (nudges.Subscriber, error) {
	if userID == "" {
		return nudges.Subscriber{}, errors.New("storage: update subscriber: empty user id")
	}
	var s nudges.Subscriber
	err := db.write(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		old := nudges.Subscriber{}
		if _, err := loadSubscriber(bk, userID, &old); err != nil {
			return err
		}
		s = old
		if s.UserID == "" {
			s.UserID = userID
		}
		if err := fn(&s); err != nil {
			return err
		}
		if s.UserID != userID {
			return fmt.Errorf("the update changed the user id to %q; it cannot", s.UserID)
		}
		return saveSubscriber(bk, old, s)
	})
	if err != nil {
		return nudges.Subscriber{}, fmt.Errorf("storage: update subscriber %s: %w", userID, err)
	}
	return s, nil
}

// ForEachSubscriber calls fn for every subscriber in user id order until
// fn returns an error, which it returns unwrapped. Records are read in
// short transactions and fn runs outside them, so fn may call other DB
// methods; the walk is not a snapshot, but no subscriber is seen twice.
func (db *DB) ForEachSubscriber(fn func(nudges.Subscriber) error) error {
	return scan(db, bucketSubscribers, nil, func(k, v []byte) (nudges.Subscriber, bool, bool, error) {
		var s nudges.Subscriber
		if err := json.Unmarshal(v, &s); err != nil {
			return s, false, false, fmt.Errorf("storage: decode subscriber %q: %w", k, err)
		}
		return s, true, true, nil
	}, fn)
}

// CountSubscribers counts everyone stored (total) and those who are
// subscribed and not marked inactive (active).
func (db *DB) CountSubscribers() (total, active int, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		return bk.subscribers.ForEach(func(k, v []byte) error {
			// Decode only the two flags: counting must stay cheap with
			// many subscribers.
			var s struct {
				Subscribed bool `json:"subscribed"`
				Inactive   bool `json:"inactive"`
			}
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("decode subscriber %q: %w", k, err)
			}
			total++
			if s.Subscribed && !s.Inactive {
				active++
			}
			return nil
		})
	})
	if err != nil {
		return 0, 0, fmt.Errorf("storage: count subscribers: %w", err)
	}
	return total, active, nil
}

// DeleteSubscriber forgets userID: their record, their place in the due
// index, and all their deliveries (and outbox entries). It returns an
// error wrapping nudges.ErrNotFound only if there was nothing to delete.
// The bytes may linger in free pages until the file is compacted.
func (db *DB) DeleteSubscriber(userID string) error {
	if userID == "" {
		return errors.New("storage: delete subscriber: empty user id")
	}
	err := db.update(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		found, err := deleteSubscriber(bk, userID)
		if err != nil {
			return err
		}
		if !found {
			return nudges.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: delete subscriber %s: %w", userID, err)
	}
	return nil
}

// deleteSubscriber deletes userID's record, due index entry, deliveries
// and outbox entries, reporting whether there was any of them.
func deleteSubscriber(bk buckets, userID string) (found bool, err error) {
	var old nudges.Subscriber
	found, err = loadSubscriber(bk, userID, &old)
	if err != nil {
		return false, err
	}
	if found {
		if err := unindexDue(bk, old); err != nil {
			return false, err
		}
		if err := bk.subscribers.Delete([]byte(userID)); err != nil {
			return false, fmt.Errorf("delete record: %w", err)
		}
	}
	keys, err := userRecordKeys(bk, userID)
	if err != nil {
		return false, err
	}
	// Collected first: deleting while a cursor walks can skip keys.
	for _, k := range keys {
		if err := deleteDelivery(bk, k); err != nil {
			return false, err
		}
	}
	return found || len(keys) > 0, nil
}

// Due returns the ids of up to limit subscribers (all if limit <= 0) whose
// NextDue is at or before now, oldest first. It reads only the entries it
// returns, however many subscribers there are.
func (db *DB) Due(now time.Time, limit int) ([]string, error) {
	var ids []string
	err := db.view(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		c := bk.due.Cursor()
		for k, _ := c.First(); k != nil && keyNotAfter(k, now); k, _ = c.Next() {
			if limit > 0 && len(ids) >= limit {
				break
			}
			_, id, err := splitTimeKey(k)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: due subscribers: %w", err)
	}
	return ids, nil
}

// OldestDue returns the earliest NextDue of anyone scheduled, and false if
// no one is, so the scheduler can sleep until then.
func (db *DB) OldestDue() (time.Time, bool, error) {
	var (
		t  time.Time
		ok bool
	)
	err := db.view(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		k, _ := bk.due.Cursor().First()
		if k == nil {
			return nil
		}
		t, _, err = splitTimeKey(k)
		ok = err == nil
		return err
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("storage: oldest due: %w", err)
	}
	return t, ok, nil
}

func loadSubscriber(bk buckets, userID string, s *nudges.Subscriber) (bool, error) {
	found, err := getJSON(bk.subscribers, userID, s)
	if err != nil {
		return found, fmt.Errorf("subscriber record: %w", err)
	}
	if found && s.UserID == "" {
		s.UserID = userID // the key is the authority
	}
	return found, nil
}

// saveSubscriber writes s and moves its due index entry from old's
// NextDue to s's. old is the stored record, or zero if there was none.
func saveSubscriber(bk buckets, old, s nudges.Subscriber) error {
	if err := checkSubscriber(old, s); err != nil {
		return err
	}
	// An unchanged due time keeps its entry: deleting and writing it
	// again would rewrite the index's pages in the commit for nothing.
	if old.UserID == "" || !old.NextDue.Equal(s.NextDue) {
		if err := unindexDue(bk, old); err != nil {
			return err
		}
		if !s.NextDue.IsZero() {
			k, err := timeKey(s.NextDue, s.UserID)
			if err != nil {
				return fmt.Errorf("next due: %w", err)
			}
			if err := bk.due.Put(k, []byte{}); err != nil {
				return fmt.Errorf("write due index: %w", err)
			}
		}
	}
	return putJSON(bk.subscribers, s.UserID, s)
}

// checkSubscriber says whether saveSubscriber can save s over old, before
// it writes anything.
func checkSubscriber(old, s nudges.Subscriber) error {
	if old.UserID != "" && s.UserID != old.UserID {
		return fmt.Errorf("the user id changed from %q to %q; it cannot", old.UserID, s.UserID)
	}
	if s.UserID == "" {
		return errors.New("the user id is empty")
	}
	if !s.NextDue.IsZero() {
		if _, err := timeKey(s.NextDue, s.UserID); err != nil {
			return fmt.Errorf("next due: %w", err)
		}
	}
	return nil
}

func unindexDue(bk buckets, old nudges.Subscriber) error {
	if old.NextDue.IsZero() {
		return nil
	}
	k, err := timeKey(old.NextDue, old.UserID)
	if err != nil {
		return nil // such a time was never indexed
	}
	if err := bk.due.Delete(k); err != nil {
		return fmt.Errorf("delete due index entry: %w", err)
	}
	return nil
}

// scanPageSize bounds how long scan holds a read transaction open; a long
// one would stall a writer that needs to grow the file.
const scanPageSize = 256

// decodeFunc turns a bucket entry into an item for scan, saying whether
// to keep it and whether to go on.
type decodeFunc[T any] func(k, v []byte) (item T, keep, more bool, err error)

// scan walks bucket from key start in pages, each in its own read
// transaction. decode turns an entry into an item, saying whether to keep
// it and whether to go on; fn then runs on the kept items outside the
// transaction.
func scan[T any](db *DB, bucket string, start []byte, decode decodeFunc[T], fn func(T) error) error {
	return scanTx(db, start, func(tx *bolt.Tx) (*bolt.Bucket, decodeFunc[T], error) {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil, nil, fmt.Errorf("storage: bucket %s is missing: open the database read-write once with this nudgebot to migrate it", bucket)
		}
		return b, decode, nil
	}, fn)
}

// scanTx is scan for decoders that need their transaction, to open
// sealed records or to look beside the bucket: begin picks the bucket
// and makes the decoder afresh in each page's transaction. A nil bucket
// ends the walk.
func scanTx[T any](db *DB, start []byte, begin func(*bolt.Tx) (*bolt.Bucket, decodeFunc[T], error), fn func(T) error) error {
	next := bytes.Clone(start)
	for {
		var (
			items []T
			done  = true
		)
		err := db.view(func(tx *bolt.Tx) error {
			b, decode, err := begin(tx)
			if err != nil || b == nil {
				return err
			}
			c := b.Cursor()
			var k, v []byte
			if len(next) == 0 {
				k, v = c.First()
			} else {
				k, v = c.Seek(next)
			}
			for n := 0; k != nil; k, v = c.Next() {
				if n == scanPageSize {
					next, done = bytes.Clone(k), false
					return nil
				}
				n++
				item, keep, more, err := decode(k, v)
				if err != nil {
					return err
				}
				if keep {
					items = append(items, item)
				}
				if !more {
					return nil
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}
