package storage

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// ExportAll calls fn with every record anyone owns: every subscriber in
// user id order, then every delivery by person and slot, then every
// reflection by person and seq (oldest first), decrypted. It walks the
// records themselves, so a person who only ever wrote reflections is
// there too.
//
// A record that cannot be opened (no key for it; it does not decode or
// decrypt) reaches fn as a nudges.Unreadable naming it and saying why,
// and the walk goes on. People whose Forget is unfinished are left out:
// they asked to be deleted, and the next read-write Open finishes it.
// Pulse answers are not anyone's: they are anonymous by design. Indexes,
// seq counters and data keys are not records of their own (see doc.go).
//
// Records are read in short transactions and fn runs outside them, so
// the walk is not a snapshot, but no record is seen twice. An error from
// fn stops the walk and is returned unwrapped.
func (db *DB) ExportAll(fn func(nudges.PersonRecord) error) error {
	return db.walkPeople("", fn)
}

// ExportPerson is ExportAll for userID's records only: the same walk, so
// what a person gets and what an operator exports cannot drift apart.
// It reads only that person's records.
func (db *DB) ExportPerson(userID string, fn func(nudges.PersonRecord) error) error {
	if err := checkUserID(userID); err != nil {
		return fmt.Errorf("storage: export %s: %w", userID, err)
	}
	return db.walkPeople(userID, fn)
}

// walkPeople walks each kind of record a person owns, everyone's if
// userID is empty.
func (db *DB) walkPeople(userID string, fn func(nudges.PersonRecord) error) error {
	var personFrom []byte
	if userID != "" {
		personFrom = personPrefix(userID)
	}
	err := scanTx(db, []byte(userID), func(tx *bolt.Tx) (*bolt.Bucket, decodeFunc[nudges.PersonRecord], error) {
		return exportSubscribers(tx, userID)
	}, fn)
	if err != nil {
		return err
	}
	// A person index entry lists a month or so of a person's deliveries.
	err = scanTx(db, personFrom, func(tx *bolt.Tx) (*bolt.Bucket, decodeFunc[[]nudges.PersonRecord], error) {
		return exportDeliveries(tx, userID)
	}, func(recs []nudges.PersonRecord) error {
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return scanTx(db, personFrom, func(tx *bolt.Tx) (*bolt.Bucket, decodeFunc[nudges.PersonRecord], error) {
		return db.exportReflections(tx, userID)
	}, fn)
}

// beingForgotten lists the people whose Forget is unfinished. Their
// records linger until the next read-write Open erases them, and must
// not be handed out meanwhile.
func beingForgotten(tx *bolt.Tx) (map[string]bool, error) {
	b := tx.Bucket([]byte(bucketForgetting))
	if b == nil {
		return nil, nil // a file older than reflections: nobody is
	}
	gone := map[string]bool{}
	err := b.ForEach(func(k, _ []byte) error {
		gone[string(k)] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: export: read %s: %w", bucketForgetting, err)
	}
	return gone, nil
}

func exportSubscribers(tx *bolt.Tx, userID string) (*bolt.Bucket, decodeFunc[nudges.PersonRecord], error) {
	bk, err := bucketsOf(tx)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: export subscribers: %w", err)
	}
	gone, err := beingForgotten(tx)
	if err != nil {
		return nil, nil, err
	}
	return bk.subscribers, func(k, v []byte) (nudges.PersonRecord, bool, bool, error) {
		if userID != "" && string(k) != userID {
			return nudges.PersonRecord{}, false, false, nil
		}
		if gone[string(k)] {
			return nudges.PersonRecord{}, false, true, nil
		}
		var s nudges.Subscriber
		if err := json.Unmarshal(v, &s); err != nil {
			return damaged(nudges.Unreadable{Kind: nudges.KindSubscriber, UserID: string(k)}, fmt.Errorf("decode subscriber %q: %w", k, err)), true, true, nil
		}
		return nudges.PersonRecord{Subscriber: &s}, true, true, nil
	}, nil
}

// exportDeliveries walks the person index, which lists each person's
// deliveries in slot order, and reads the records it lists.
func exportDeliveries(tx *bolt.Tx, userID string) (*bolt.Bucket, decodeFunc[[]nudges.PersonRecord], error) {
	bk, err := bucketsOf(tx)
	if err == nil {
		bk, err = bk.dels()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("storage: export deliveries: %w", err)
	}
	gone, err := beingForgotten(tx)
	if err != nil {
		return nil, nil, err
	}
	prefix := personPrefix(userID)
	return bk.byPerson, func(k, v []byte) ([]nudges.PersonRecord, bool, bool, error) {
		if userID != "" && !bytes.HasPrefix(k, prefix) {
			return nil, false, false, nil
		}
		owner, period, err := splitPersonKey(k)
		if err != nil {
			u := nudges.Unreadable{Kind: nudges.KindDelivery, UserID: userID, ID: hex.EncodeToString(k)}
			return []nudges.PersonRecord{damaged(u, err)}, true, true, nil
		}
		if gone[owner] {
			return nil, false, true, nil
		}
		es, err := decodePersonEntries(v)
		if err != nil {
			u := nudges.Unreadable{Kind: nudges.KindDelivery, UserID: owner, ID: hex.EncodeToString(k)}
			return []nudges.PersonRecord{damaged(u, fmt.Errorf("person index entry %x: %w", k, err))}, true, true, nil
		}
		recs := make([]nudges.PersonRecord, 0, len(es))
		for _, e := range es {
			rk := recordKeyOfEntry(owner, period, e)
			d, found, err := loadDelivery(bk, rk)
			switch {
			case err != nil:
				u := nudges.Unreadable{Kind: nudges.KindDelivery, UserID: owner, ID: showRecordKey(rk)}
				recs = append(recs, damaged(u, err))
			case !found:
				u := nudges.Unreadable{Kind: nudges.KindDelivery, UserID: owner, ID: showRecordKey(rk)}
				recs = append(recs, damaged(u, fmt.Errorf("the person index lists delivery %s, which is not stored", showRecordKey(rk))))
			default:
				recs = append(recs, nudges.PersonRecord{Delivery: &d})
			}
		}
		return recs, true, true, nil
	}, nil
}

// exportReflections decrypts in a session of the page's transaction, so
// each person's data key is opened once a page.
func (db *DB) exportReflections(tx *bolt.Tx, userID string) (*bolt.Bucket, decodeFunc[nudges.PersonRecord], error) {
	if tx.Bucket([]byte(bucketReflections)) == nil {
		return nil, nil, nil // a file from before reflections, opened read-only
	}
	s, err := db.session(tx)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: export reflections: %w", err)
	}
	gone, err := beingForgotten(tx)
	if err != nil {
		return nil, nil, err
	}
	prefix := personPrefix(userID)
	return s.rb.reflections, func(k, v []byte) (nudges.PersonRecord, bool, bool, error) {
		if userID != "" && !bytes.HasPrefix(k, prefix) {
			return nudges.PersonRecord{}, false, false, nil
		}
		if i := bytes.IndexByte(k, 0); i >= 0 && gone[string(k[:i])] {
			return nudges.PersonRecord{}, false, true, nil
		}
		return s.exportRecord(k, v), true, true, nil
	}, nil
}

// exportRecord opens the reflection at k, v, or names it and says why it
// cannot.
func (s *session) exportRecord(k, v []byte) nudges.PersonRecord {
	userID, seq, err := splitReflectionKey(k)
	if err != nil {
		return damaged(nudges.Unreadable{Kind: nudges.KindReflection, ID: hex.EncodeToString(k)}, err)
	}
	r, err := s.read(k, v)
	if err != nil {
		u := nudges.Unreadable{Kind: nudges.KindReflection, UserID: userID, Seq: seq, Reason: nudges.UnreadableDamaged, Detail: err.Error()}
		switch {
		case errors.Is(err, ErrKeyMissing):
			u.Reason = nudges.UnreadableNoKey
		case !s.hasKey(userID):
			// The session blames an unfinished Forget, but the walk left
			// those out: this data key is simply gone.
			u.Detail = fmt.Sprintf("reflection %d of %s cannot be read: %s has no data key", seq, userID, userID)
		}
		return nudges.PersonRecord{Unreadable: &u}
	}
	return nudges.PersonRecord{Reflection: &r}
}

func damaged(u nudges.Unreadable, err error) nudges.PersonRecord {
	u.Reason, u.Detail = nudges.UnreadableDamaged, err.Error()
	return nudges.PersonRecord{Unreadable: &u}
}
