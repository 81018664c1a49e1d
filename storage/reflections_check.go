package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// checkReflections verifies what bbolt cannot about reflections: that
// records match their keys, that the follow-up and shared indexes list
// exactly what the records say, that every person with reflections has a
// data key (or a Forget to finish) naming them, and that seq counters are
// ahead of the records.
func checkReflections(tx *bolt.Tx, keys map[string]dataKeyRecord, pace func() error) error {
	rb, err := reflectionBucketsOf(tx)
	if err != nil {
		return nil // an old file opened read-only; opening read-write creates them
	}
	var errs []error
	add := func(err error) {
		if len(errs) < maxIndexErrors {
			errs = append(errs, err)
		}
	}
	wantFollowUps, wantShared := map[string]bool{}, map[string]bool{}
	lastSeq := map[string]int{}
	err = rb.reflections.ForEach(func(k, v []byte) error {
		if err := pace(); err != nil {
			return err
		}
		rec, err := decodeRecord(k, v)
		if err != nil {
			add(err)
			return nil
		}
		lastSeq[rec.UserID] = max(lastSeq[rec.UserID], rec.Seq)
		if rec.followUpPending() {
			if fk, err := followUpKey(rec.UserID, rec.FollowUpDue, rec.Seq); err == nil {
				wantFollowUps[string(fk)] = true
			}
		}
		if rec.Share != nudges.ShareNone {
			if sk, err := sharedKey(rec.UserID, rec.Created, rec.Seq); err == nil {
				wantShared[string(sk)] = true
			}
		}
		dk, found := keys[rec.UserID]
		switch {
		case !found && rb.forgetting.Get([]byte(rec.UserID)) == nil:
			add(fmt.Errorf("reflection %d of %s has no data key", rec.Seq, rec.UserID))
		case found && dk.ID != rec.DataKey && (dk.Prev == nil || dk.Prev.ID != rec.DataKey):
			add(fmt.Errorf("reflection %d of %s names data key %s, but %s has %s", rec.Seq, rec.UserID, rec.DataKey, rec.UserID, dk.ID))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for userID, last := range lastSeq {
		var counter int
		if _, err := getJSON(rb.seq, userID, &counter); err != nil || counter < last {
			add(fmt.Errorf("the seq counter of %s is %d, behind its reflection %d", userID, counter, last))
		}
	}
	found, err := compareReflectionIndexes(rb, wantFollowUps, wantShared, pace)
	if err != nil {
		return err
	}
	return errors.Join(append(errs, found...)...)
}

// compareReflectionIndexes checks follow_ups and shared_by_person against
// the keys the records want.
func compareReflectionIndexes(rb reflBuckets, wantFollowUps, wantShared map[string]bool, pace func() error) ([]error, error) {
	showRefKey := func(k []byte) string {
		userID, seq, err := splitReflectionKey(k)
		if err != nil {
			return fmt.Sprintf("%x", k)
		}
		return fmt.Sprintf("reflection %d of %s", seq, userID)
	}
	followUps, err := compareIndex(rb.followUps, wantFollowUps, "follow_ups", func(k []byte) string {
		if len(k) < timeKeyLen {
			return fmt.Sprintf("%x", k)
		}
		return showRefKey(k[timeKeyLen:]) + " at " + keyTime(k).Format(time.RFC3339Nano)
	}, pace)
	if err != nil {
		return nil, err
	}
	shared, err := compareIndex(rb.shared, wantShared, "shared_by_person", func(k []byte) string {
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k)-i-1 != timeKeyLen+seqLen {
			return fmt.Sprintf("%x", k)
		}
		return fmt.Sprintf("reflection %d of %s", binary.BigEndian.Uint64(k[i+1+timeKeyLen:]), k[:i])
	}, pace)
	return append(followUps, shared...), err
}

// checkSeals opens every reflection with its author's data key, so a
// record altered without the key (its share setting flipped, say) is
// reported. Without keys there is nothing to open with; people being
// forgotten have no data key any more.
func (db *DB) checkSeals(tx *bolt.Tx, keys map[string]dataKeyRecord, pace func() error) error {
	if db.keys == nil {
		return nil
	}
	s, err := db.session(tx)
	if err != nil {
		return nil // an old file opened read-only
	}
	s.fixed = keys
	var errs []error
	err = s.rb.reflections.ForEach(func(k, v []byte) error {
		if err := pace(); err != nil {
			return err
		}
		userID, seq, err := splitReflectionKey(k)
		if _, found := keys[userID]; err != nil || !found {
			return nil // checkReflections reports these
		}
		if _, _, err := s.payload(userID, seq, v, nil); err != nil && len(errs) < maxIndexErrors {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}
