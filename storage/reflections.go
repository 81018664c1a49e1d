package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// ErrInvalidReflection means a reflection cannot be stored as given: it
// is empty, too long, or malformed. The message says which, never what
// the reflection says.
var ErrInvalidReflection = errors.New("invalid reflection")

// reflBuckets are the reflection buckets of one transaction. They are
// apart from buckets so that a read-only open of a file older than them
// still serves everything else.
type reflBuckets struct {
	meta, reflections, seq, followUps, shared, forgetting *bolt.Bucket
}

func reflectionBucketsOf(tx *bolt.Tx) (reflBuckets, error) {
	var rb reflBuckets
	for _, p := range []struct {
		name string
		b    **bolt.Bucket
	}{
		{bucketMeta, &rb.meta},
		{bucketReflections, &rb.reflections},
		{bucketReflectionSeq, &rb.seq},
		{bucketFollowUps, &rb.followUps},
		{bucketSharedByPerson, &rb.shared},
		{bucketForgetting, &rb.forgetting},
	} {
		*p.b = tx.Bucket([]byte(p.name))
		if *p.b == nil {
			return reflBuckets{}, fmt.Errorf("bucket %s is missing: open the database read-write once with this nudgebot to create it", p.name)
		}
	}
	return rb, nil
}

// Keys of the reflection buckets. A person's entries share the prefix
// user id ‖ 0x00, so they are one contiguous range, and no other
// person's id can extend into it.

const seqLen = 8

func personPrefix(userID string) []byte {
	return append([]byte(userID), 0)
}

// prefixEnd is the first key after every key with personPrefix(userID).
func prefixEnd(userID string) []byte {
	return append([]byte(userID), 1)
}

func reflectionKey(userID string, seq int) []byte {
	return binary.BigEndian.AppendUint64(personPrefix(userID), uint64(seq))
}

// splitReflectionKey copies the parts out of bbolt's memory.
func splitReflectionKey(k []byte) (userID string, seq int, err error) {
	i := bytes.IndexByte(k, 0)
	if i < 0 || len(k)-i-1 != seqLen {
		return "", 0, fmt.Errorf("reflection key %x is not user id, 0x00, 8-byte seq", k)
	}
	return string(k[:i]), int(binary.BigEndian.Uint64(k[i+1:])), nil
}

// sharedKey is personPrefix ‖ 8-byte UnixNano(created) ‖ seq, so one
// person's shared reflections sort by time.
func sharedKey(userID string, created time.Time, seq int) ([]byte, error) {
	tk, err := timeKey(created, "")
	if err != nil {
		return nil, fmt.Errorf("created: %w", err)
	}
	k := append(personPrefix(userID), tk...)
	return binary.BigEndian.AppendUint64(k, uint64(seq)), nil
}

// followUpKey is 8-byte UnixNano(due) ‖ reflection key, so finding
// what is due reads only what is due.
func followUpKey(userID string, due time.Time, seq int) ([]byte, error) {
	k, err := timeKey(due, string(reflectionKey(userID, seq)))
	if err != nil {
		return nil, fmt.Errorf("follow-up due: %w", err)
	}
	return k, nil
}

// reflectionRecord is a reflection as stored: the text and commitment
// sealed, everything else plain so digests and follow-ups need no key.
type reflectionRecord struct {
	// Sealed comes first so that sealedField can find it without decoding
	// the rest: searching reads thousands of records.
	Sealed  []byte `json:"sealed"`
	DataKey string `json:"data_key"`

	UserID     string       `json:"user_id"`
	Seq        int          `json:"seq"`
	Created    time.Time    `json:"created"`
	DeliveryID string       `json:"delivery_id,omitempty"`
	NudgeID    string       `json:"nudge_id,omitempty"`
	Share      nudges.Share `json:"share,omitempty"`
	// ShareChannel, like Share, UserID, Seq and Created, is bound into
	// the sealed payload's additional data: changing who may see a
	// reflection without the key makes it fail to open.
	ShareChannel string    `json:"share_channel,omitempty"`
	MessageTS    string    `json:"message_ts,omitempty"`
	FollowUpDue  time.Time `json:"follow_up_due,omitzero"`
	FollowedUp   time.Time `json:"followed_up,omitzero"`
	Kept         *bool     `json:"kept,omitempty"`
}

func newRecord(r nudges.Reflection, dataKeyID string, sealed []byte) reflectionRecord {
	return reflectionRecord{
		Sealed: sealed, DataKey: dataKeyID,
		UserID: r.UserID, Seq: r.Seq, Created: r.Created,
		DeliveryID: r.DeliveryID, NudgeID: r.NudgeID, Share: r.Share, ShareChannel: r.ShareChannel, MessageTS: r.MessageTS,
		FollowUpDue: r.FollowUpDue, FollowedUp: r.FollowedUp, Kept: r.Kept,
	}
}

func (rec reflectionRecord) reflection(text, commitment string) nudges.Reflection {
	return nudges.Reflection{
		UserID: rec.UserID, Seq: rec.Seq, Created: rec.Created,
		Text: text, Commitment: commitment,
		DeliveryID: rec.DeliveryID, NudgeID: rec.NudgeID, Share: rec.Share, ShareChannel: rec.ShareChannel, MessageTS: rec.MessageTS,
		FollowUpDue: rec.FollowUpDue, FollowedUp: rec.FollowedUp, Kept: rec.Kept,
	}
}

func (rec reflectionRecord) followUpPending() bool {
	return !rec.FollowUpDue.IsZero() && rec.FollowedUp.IsZero()
}

func decodeRecord(k, v []byte) (reflectionRecord, error) {
	userID, seq, err := splitReflectionKey(k)
	if err != nil {
		return reflectionRecord{}, err
	}
	var rec reflectionRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, fmt.Errorf("decode reflection %d of %s: %w", seq, userID, err)
	}
	if rec.UserID != userID || rec.Seq != seq {
		return rec, fmt.Errorf("reflection stored as %d of %s says it is %d of %s", seq, userID, rec.Seq, rec.UserID)
	}
	return rec, nil
}

// checkUserID refuses ids that would break the person prefix: with a
// NUL byte, one id's prefix could reach into another's range.
func checkUserID(userID string) error {
	switch {
	case userID == "":
		return errors.New("empty user id")
	case strings.IndexByte(userID, 0) >= 0:
		return fmt.Errorf("user id %q contains a NUL byte", userID)
	}
	return nil
}

// validateReflection checks what storage relies on and what people are
// told; its messages never quote the reflection.
func validateReflection(r nudges.Reflection) error {
	return checkReflection(r, true)
}

// checkReflection is validateReflection; without withText it checks the
// plain fields only, for a reflection whose text is sealed (a load).
func checkReflection(r nudges.Reflection, withText bool) error {
	var problem string
	switch {
	case r.UserID == "":
		problem = "it has no user id"
	case strings.IndexByte(r.UserID, 0) >= 0:
		problem = "its user id contains a NUL byte"
	case !withText:
	case nudges.ReflectionTextProblem(r.Text) != "":
		problem = nudges.ReflectionTextProblem(r.Text)
	case nudges.CommitmentProblem(r.Commitment) != "":
		problem = nudges.CommitmentProblem(r.Commitment)
	}
	if problem == "" {
		switch r.Share {
		case nudges.ShareNone, nudges.ShareNamed, nudges.ShareAnonymous:
		default:
			problem = fmt.Sprintf("its share setting %q is none of %q, %q or %q", r.Share, nudges.ShareNone, nudges.ShareNamed, nudges.ShareAnonymous)
		}
	}
	if problem == "" {
		switch {
		case strings.IndexByte(r.ShareChannel, 0) >= 0:
			problem = "its share channel contains a NUL byte"
		case r.ShareChannel != "" && r.Share == nudges.ShareNone:
			problem = "it names a channel to share in but is private"
		}
	}
	if problem == "" {
		if _, err := timeKey(r.Created, ""); err != nil {
			problem = "its creation " + err.Error()
		} else if !r.FollowUpDue.IsZero() {
			if _, err := timeKey(r.FollowUpDue, ""); err != nil {
				problem = "its follow-up " + err.Error()
			}
		}
	}
	if problem != "" {
		return fmt.Errorf("%w: %s", ErrInvalidReflection, problem)
	}
	return nil
}

// put writes rec and keeps the follow-up and shared indexes in step;
// old is the stored record, or nil.
func (s *session) put(old *reflectionRecord, rec reflectionRecord) error {
	if old != nil {
		if err := s.unindex(*old); err != nil {
			return err
		}
	}
	if rec.followUpPending() {
		k, err := followUpKey(rec.UserID, rec.FollowUpDue, rec.Seq)
		if err != nil {
			return err
		}
		if err := s.rb.followUps.Put(k, []byte{}); err != nil {
			return fmt.Errorf("write follow-up index: %w", err)
		}
	}
	if rec.Share != nudges.ShareNone {
		k, err := sharedKey(rec.UserID, rec.Created, rec.Seq)
		if err != nil {
			return err
		}
		if err := s.rb.shared.Put(k, []byte{}); err != nil {
			return fmt.Errorf("write shared index: %w", err)
		}
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode reflection %d of %s: %w", rec.Seq, rec.UserID, err)
	}
	if err := s.rb.reflections.Put(reflectionKey(rec.UserID, rec.Seq), raw); err != nil {
		return fmt.Errorf("write reflection %d of %s: %w", rec.Seq, rec.UserID, err)
	}
	return nil
}

func (s *session) unindex(rec reflectionRecord) error {
	if rec.followUpPending() {
		if k, err := followUpKey(rec.UserID, rec.FollowUpDue, rec.Seq); err == nil {
			if err := s.rb.followUps.Delete(k); err != nil {
				return fmt.Errorf("delete follow-up index entry: %w", err)
			}
		}
	}
	if rec.Share != nudges.ShareNone {
		if k, err := sharedKey(rec.UserID, rec.Created, rec.Seq); err == nil {
			if err := s.rb.shared.Delete(k); err != nil {
				return fmt.Errorf("delete shared index entry: %w", err)
			}
		}
	}
	return nil
}

// nextSeq assigns the person's next seq. The counter outlives deleted
// reflections so a seq is never reused; the last key guards against a
// counter behind the records, which would overwrite one.
func (s *session) nextSeq(userID string) (int, error) {
	var last int
	if _, err := getJSON(s.rb.seq, userID, &last); err != nil {
		return 0, fmt.Errorf("seq counter: %w", err)
	}
	if k, _ := lastWithPrefix(s.rb.reflections.Cursor(), userID); k != nil {
		_, seq, err := splitReflectionKey(k)
		if err != nil {
			return 0, err
		}
		last = max(last, seq)
	}
	next := last + 1
	if err := putJSON(s.rb.seq, userID, next); err != nil {
		return 0, fmt.Errorf("seq counter: %w", err)
	}
	return next, nil
}

// lastWithPrefix positions c on userID's last reflection, or returns nil.
func lastWithPrefix(c *bolt.Cursor, userID string) (k, v []byte) {
	if k, _ = c.Seek(prefixEnd(userID)); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, personPrefix(userID)) {
		return nil, nil
	}
	return k, v
}

// SaveReflection seals and stores r, assigning it the person's next Seq
// (from 1, never reused, also after deletes) and Created if zero. It
// returns the reflection as stored. An empty or too long text, a too
// long commitment or an unknown Share is an error wrapping
// ErrInvalidReflection.
func (db *DB) SaveReflection(r nudges.Reflection) (nudges.Reflection, error) {
	if r.Created.IsZero() {
		r.Created = db.now()
	}
	r.Created = r.Created.UTC()
	r.FollowUpDue = utcOrZero(r.FollowUpDue)
	r.FollowedUp = utcOrZero(r.FollowedUp)
	r.Seq = 0
	if err := validateReflection(r); err != nil {
		return nudges.Reflection{}, fmt.Errorf("storage: save reflection of %s: %w", r.UserID, err)
	}
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		r, err = db.saveReflection(tx, r)
		return err
	})
	if err != nil {
		return nudges.Reflection{}, fmt.Errorf("storage: save reflection of %s: %w", r.UserID, err)
	}
	return r, nil
}

func (db *DB) saveReflection(tx *bolt.Tx, r nudges.Reflection) (nudges.Reflection, error) {
	s, err := db.session(tx)
	if err != nil {
		return r, err
	}
	s.forWrite = true
	if s.rb.forgetting.Get([]byte(r.UserID)) != nil {
		return r, fmt.Errorf("%s is being forgotten: call Forget for %s again to finish, then save", r.UserID, r.UserID)
	}
	dk, err := s.dataKey(r.UserID)
	if err != nil {
		return r, err
	}
	r.Seq, err = s.nextSeq(r.UserID)
	if err != nil {
		return r, err
	}
	rec := newRecord(r, dk.id, nil)
	rec.Sealed = dk.seal(&rec, r.Text, r.Commitment)
	return r, s.put(nil, rec)
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// Reflection returns userID's reflection seq, decrypted, or an error
// wrapping nudges.ErrNotFound.
func (db *DB) Reflection(userID string, seq int) (nudges.Reflection, error) {
	var r nudges.Reflection
	err := db.view(func(tx *bolt.Tx) error {
		if err := checkUserID(userID); err != nil {
			return err
		}
		s, err := db.session(tx)
		if err != nil {
			return err
		}
		k := reflectionKey(userID, seq)
		v := s.rb.reflections.Get(k)
		if v == nil || seq <= 0 {
			return nudges.ErrNotFound
		}
		r, err = s.read(k, v)
		return err
	})
	if err != nil {
		return nudges.Reflection{}, fmt.Errorf("storage: reflection %d of %s: %w", seq, userID, err)
	}
	return r, nil
}

// Reflections returns up to limit of userID's reflections (all if
// limit <= 0), decrypted, newest first.
func (db *DB) Reflections(userID string, limit int) ([]nudges.Reflection, error) {
	var rs []nudges.Reflection
	err := db.eachNewest(userID, func(s *session, k, v []byte) (bool, error) {
		if limit > 0 && len(rs) >= limit {
			return false, nil
		}
		r, err := s.read(k, v)
		if err != nil {
			return false, err
		}
		rs = append(rs, r)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: reflections of %s: %w", userID, err)
	}
	return rs, nil
}

// eachNewest calls fn with each of userID's reflection records, newest
// first, in one read transaction, until fn returns false or an error.
func (db *DB) eachNewest(userID string, fn func(s *session, k, v []byte) (bool, error)) error {
	return db.view(func(tx *bolt.Tx) error {
		if err := checkUserID(userID); err != nil {
			return err
		}
		s, err := db.session(tx)
		if err != nil {
			return err
		}
		prefix := personPrefix(userID)
		c := s.rb.reflections.Cursor()
		for k, v := lastWithPrefix(c, userID); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			more, err := fn(s, k, v)
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
}

// UpdateReflection applies fn to userID's reflection seq, decrypted, and
// stores the result, sealed afresh. If fn
// returns an error nothing is written. fn may not change UserID, Seq or
// Created, and the result must be valid (see SaveReflection). A missing
// reflection is an error wrapping nudges.ErrNotFound. fn runs inside
// the write transaction: keep it quick and do not call other DB methods
// from it.
func (db *DB) UpdateReflection(userID string, seq int, fn func(*nudges.Reflection) error) (nudges.Reflection, error) {
	var r nudges.Reflection
	err := db.update(func(tx *bolt.Tx) error {
		s, _, v, old, err := db.existing(tx, userID, seq)
		if err != nil {
			return err
		}
		text, commitment, err := s.payload(userID, seq, v, &old)
		if err != nil {
			return err
		}
		before := old.reflection(string(text), string(commitment))
		r = before
		if err := fn(&r); err != nil {
			return err
		}
		if r.UserID != before.UserID || r.Seq != before.Seq || !r.Created.Equal(before.Created) {
			return errors.New("the update changed the reflection's user, seq or creation time; they identify it and cannot change")
		}
		r.Created = before.Created
		r.FollowUpDue = utcOrZero(r.FollowUpDue)
		r.FollowedUp = utcOrZero(r.FollowedUp)
		if err := validateReflection(r); err != nil {
			return err
		}
		// Sealed afresh every time: the share setting and channel are
		// bound into the seal, and re-sealing costs less than checking.
		dk, err := s.dataKey(userID)
		if err != nil {
			return err
		}
		rec := newRecord(r, dk.id, nil)
		rec.Sealed = dk.seal(&rec, r.Text, r.Commitment)
		return s.put(&old, rec)
	})
	if err != nil {
		return nudges.Reflection{}, fmt.Errorf("storage: update reflection %d of %s: %w", seq, userID, err)
	}
	return r, nil
}

// existing finds userID's reflection seq in tx, or nudges.ErrNotFound.
func (db *DB) existing(tx *bolt.Tx, userID string, seq int) (s *session, k, v []byte, rec reflectionRecord, err error) {
	if err := checkUserID(userID); err != nil {
		return nil, nil, nil, rec, err
	}
	if s, err = db.session(tx); err != nil {
		return nil, nil, nil, rec, err
	}
	k = reflectionKey(userID, seq)
	if v = s.rb.reflections.Get(k); v == nil || seq <= 0 {
		return nil, nil, nil, rec, nudges.ErrNotFound
	}
	rec, err = decodeRecord(k, v)
	return s, k, v, rec, err
}
