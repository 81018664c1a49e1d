package storage

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/nudgebot/nudgebot/nudges"
)

// ErrInvalidReflection means a reflection cannot be stored as given: it
// is empty, too long, or malformed. The message says which, never what
// the reflection says.
var ErrInvalidReflection = errors.New("invalid reflection")

// keyNeedsCompaction in the meta bucket is true once deleted reflections
// or a forgotten person's records may linger in free pages; Compact
// clears it.
const keyNeedsCompaction = "needs_compaction"

// keyPruned is true once retention removed records since the last
// compaction, and keyCompactedAt holds when that was (RFC 3339); with
// them NeedsCompaction gives retention's space back at most every
// reclaimEvery.
const (
	keyPruned      = "pruned_since_compaction"
	keyCompactedAt = "compacted_at"
)

// compactTxMaxSize bounds the memory one transaction of Compact's copy
// takes.
const compactTxMaxSize = 64 << 20

// reflBuckets are the reflection buckets of one transaction. They are
// apart from buckets so that a read-only open of a file older than them
// still serves everything else.
type reflBuckets struct {
	meta, dataKeys, reflections, seq, followUps, shared, forgetting *bolt.Bucket
}

func reflectionBucketsOf(tx *bolt.Tx) (reflBuckets, error) {
	var rb reflBuckets
	for _, p := range []struct {
		name string
		b    **bolt.Bucket
	}{
		{bucketMeta, &rb.meta},
		{bucketDataKeys, &rb.dataKeys},
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

var sealedPrefix = []byte(`{"sealed":"`)

// sealedField decodes the sealed payload of an encoded record into buf,
// reporting false if the record does not start as reflectionRecord
// encodes it. JSON writes []byte as standard base64, which needs no
// escaping, so the field ends at the next quote.
func sealedField(v, buf []byte) ([]byte, []byte, bool) {
	rest, ok := bytes.CutPrefix(v, sealedPrefix)
	if !ok {
		return nil, buf, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, buf, false
	}
	if need := base64.StdEncoding.DecodedLen(end); cap(buf) < need {
		buf = make([]byte, need, 2*need)
	}
	n, err := base64.StdEncoding.Decode(buf[:cap(buf)], rest[:end])
	if err != nil {
		return nil, buf, false
	}
	return buf[:n], buf, true
}

// appendRawAAD appends what appendReflectionAAD would for the encoded
// record v, stored under userID and seq, without decoding it: the search
// path opens thousands of records and decodes only the ones that match.
// ok is false for anything unexpected (an escape inside a value, no
// creation time); the caller then decodes the record. No key it looks
// for can occur inside a value: JSON escapes every quote there.
func appendRawAAD(dst []byte, userID string, seq int, v []byte) (_ []byte, ok bool) {
	created, ok := rawField(v, `,"created":"`)
	if !ok || len(created) == 0 {
		return dst, false
	}
	share, ok := rawField(v, `,"share":"`)
	if !ok {
		return dst, false
	}
	channel, ok := rawField(v, `,"share_channel":"`)
	if !ok {
		return dst, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(created))
	if err != nil {
		return dst, false
	}
	rec := reflectionRecord{UserID: userID, Seq: seq, Created: t, Share: nudges.Share(share), ShareChannel: string(channel)}
	return appendReflectionAAD(dst, &rec), true
}

// rawField returns the string value after key in v, nil if key is
// absent, and false if the value holds an escape.
func rawField(v []byte, key string) ([]byte, bool) {
	i := bytes.Index(v, []byte(key))
	if i < 0 {
		return nil, true
	}
	rest := v[i+len(key):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, false
	}
	return rest[:end], true
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
	var problem string
	switch {
	case r.UserID == "":
		problem = "it has no user id"
	case strings.IndexByte(r.UserID, 0) >= 0:
		problem = "its user id contains a NUL byte"
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

// keyMissing tells the operator which master keys to configure.
func (db *DB) keyMissing(ids ...string) error {
	what, that := "key "+ids[0]+", which is", "that key"
	if len(ids) > 1 {
		what, that = "keys "+strings.Join(ids, ", ")+", which are", "those keys"
	}
	return &openError{
		msg: fmt.Sprintf("reflections in %s were sealed with %s not configured: set %s (or storage.key_file) to %s; to rotate, list the new key first and the old one after it",
			db.path, what, EnvSecretKey, that),
		kinds: []error{ErrKeyMissing},
	}
}

func errNoKeys() error {
	return fmt.Errorf("no key is configured to seal reflections: pass the result of storage.LoadKeys as Options.Keys: %w", ErrKeyMissing)
}

// session decrypts within one transaction, opening each person's data
// key once and reusing its buffers across records.
type session struct {
	db       *DB
	rb       reflBuckets
	keys     map[string]*dataKey
	sealed   []byte
	plain    []byte
	aad      []byte
	forWrite bool // may create data keys
}

func (db *DB) session(tx *bolt.Tx) (*session, error) {
	rb, err := reflectionBucketsOf(tx)
	if err != nil {
		return nil, err
	}
	return &session{db: db, rb: rb, keys: map[string]*dataKey{}}, nil
}

// dataKey opens userID's data key, creating it if the session writes and
// the person has none.
func (s *session) dataKey(userID string) (*dataKey, error) {
	if dk := s.keys[userID]; dk != nil {
		return dk, nil
	}
	var rec dataKeyRecord
	found, err := getJSON(s.rb.dataKeys, userID, &rec)
	if err != nil {
		return nil, fmt.Errorf("data key record: %w", err)
	}
	var dk *dataKey
	switch {
	case !found && !s.forWrite:
		return nil, fmt.Errorf("the reflections of %s cannot be read: their data key was deleted by a Forget that did not finish: call Forget for %s again", userID, userID)
	case s.db.keys == nil && found:
		return nil, s.db.keyMissing(rec.Master)
	case s.db.keys == nil:
		return nil, errNoKeys()
	case !found:
		dk, rec, err = s.db.keys.newDataKey(userID)
		if err != nil {
			return nil, err
		}
		if err := putJSON(s.rb.dataKeys, userID, rec); err != nil {
			return nil, fmt.Errorf("data key record: %w", err)
		}
	default:
		raw, err := s.db.keys.openDataKey(userID, rec)
		if errors.Is(err, errUnknownMaster) {
			return nil, s.db.keyMissing(rec.Master)
		}
		if err != nil {
			return nil, err
		}
		dk, err = dataKeyFrom(raw)
		clear(raw)
		if err != nil {
			return nil, err
		}
	}
	s.keys[userID] = dk
	return dk, nil
}

// payload decrypts the sealed text and commitment of userID's record seq,
// encoded as v (or already decoded as rec), into the session's buffer:
// what it returns is only valid until the next call. A record whose
// bound fields (author, seq, created, share setting, channel) were
// changed without the key does not open: ErrTampered with ErrCorrupt.
func (s *session) payload(userID string, seq int, v []byte, rec *reflectionRecord) (text, commitment []byte, err error) {
	dk, err := s.dataKey(userID)
	if err != nil {
		return nil, nil, err
	}
	var sealed []byte
	fast := false
	if rec == nil {
		if sealed, s.sealed, fast = sealedField(v, s.sealed); fast {
			s.aad, fast = appendRawAAD(s.aad[:0], userID, seq, v)
		}
		if !fast {
			if rec, err = decodeAs(userID, seq, v); err != nil {
				return nil, nil, err
			}
		}
	}
	if rec != nil {
		if rec.UserID != userID || rec.Seq != seq {
			return nil, nil, fmt.Errorf("reflection stored as %d of %s says it is %d of %s: %w", seq, userID, rec.Seq, rec.UserID, ErrCorrupt)
		}
		sealed = rec.Sealed
		s.aad = appendReflectionAAD(s.aad[:0], rec)
	}
	s.plain, err = dk.aead.Open(s.plain[:0], nil, sealed, s.aad)
	if err != nil && s.db.fileVersion < schemaSealedShare {
		// A file not yet migrated, opened read-only: sealed the old way.
		s.aad = appendReflectionAADv1(s.aad[:0], userID, uint64(seq))
		s.plain, err = dk.aead.Open(s.plain[:0], nil, sealed, s.aad)
	}
	if err != nil {
		if rec == nil {
			rec, _ = decodeAs(userID, seq, v)
		}
		if rec != nil && rec.DataKey != dk.id {
			return nil, nil, fmt.Errorf("reflection %d of %s was sealed with data key %s, but %s has data key %s: it cannot be read: %w", seq, userID, rec.DataKey, userID, dk.id, ErrCorrupt)
		}
		return nil, nil, fmt.Errorf("reflection %d of %s does not open: it is damaged, or who may see it (author, share setting, channel, date) was changed without the key: %w: %w", seq, userID, ErrTampered, ErrCorrupt)
	}
	text, commitment, err = splitPayload(s.plain)
	if err != nil {
		return nil, nil, fmt.Errorf("reflection %d of %s: %w: %w", seq, userID, err, ErrCorrupt)
	}
	return text, commitment, nil
}

func decodeAs(userID string, seq int, v []byte) (*reflectionRecord, error) {
	var rec reflectionRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("decode reflection %d of %s: %w", seq, userID, err)
	}
	return &rec, nil
}

// read decodes and decrypts the record at k, v.
func (s *session) read(k, v []byte) (nudges.Reflection, error) {
	rec, err := decodeRecord(k, v)
	if err != nil {
		return nudges.Reflection{}, err
	}
	text, commitment, err := s.payload(rec.UserID, rec.Seq, v, &rec)
	if err != nil {
		return nudges.Reflection{}, err
	}
	return rec.reflection(string(text), string(commitment)), nil
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

func markNeedsCompaction(rb reflBuckets) error {
	if err := rb.meta.Put([]byte(keyNeedsCompaction), []byte("true")); err != nil {
		return fmt.Errorf("write %s: %w", keyNeedsCompaction, err)
	}
	return nil
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

// ReflectionByMessage returns the person's reflection typed as the Slack
// message ts, newest first; nudges.ErrNotFound when there is none. It
// reads the plain fields only, and decrypts just the one it returns.
func (db *DB) ReflectionByMessage(userID, ts string) (nudges.Reflection, error) {
	var r nudges.Reflection
	found := false
	err := db.eachNewest(userID, func(s *session, k, v []byte) (bool, error) {
		rec, err := decodeRecord(k, v)
		if err != nil {
			return false, err
		}
		if ts == "" || rec.MessageTS != ts {
			return true, nil
		}
		r, err = s.read(k, v)
		found = err == nil
		return false, err
	})
	if err == nil && !found {
		err = nudges.ErrNotFound
	}
	if err != nil {
		return nudges.Reflection{}, fmt.Errorf("storage: reflection of %s from message %s: %w", userID, ts, err)
	}
	return r, nil
}

// SearchReflections returns up to limit (all if limit <= 0) of userID's
// reflections whose text or commitment contains word, ignoring case,
// newest first. It decrypts every reflection of the person but decodes
// only the ones that match.
func (db *DB) SearchReflections(userID, word string, limit int) ([]nudges.Reflection, error) {
	word = strings.TrimSpace(word)
	if word == "" {
		return nil, fmt.Errorf("storage: search reflections of %s: %w: the search word is empty: give a word to look for", userID, ErrInvalidReflection)
	}
	needle := []byte(word)
	var rs []nudges.Reflection
	prefixLen := len(personPrefix(userID))
	err := db.eachNewest(userID, func(s *session, k, v []byte) (bool, error) {
		if limit > 0 && len(rs) >= limit {
			return false, nil
		}
		if len(k) != prefixLen+seqLen {
			return false, fmt.Errorf("reflection key %x is malformed", k)
		}
		seq := int(binary.BigEndian.Uint64(k[prefixLen:]))
		text, commitment, err := s.payload(userID, seq, v, nil)
		if err != nil {
			return false, err
		}
		if !containsFold(text, needle) && !containsFold(commitment, needle) {
			return true, nil
		}
		rec, err := decodeRecord(k, v)
		if err != nil {
			return false, err
		}
		rs = append(rs, rec.reflection(string(text), string(commitment)))
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: search reflections of %s: %w", userID, err)
	}
	return rs, nil
}

// CountReflections counts userID's reflections without decrypting them.
func (db *DB) CountReflections(userID string) (int, error) {
	var n int
	err := db.view(func(tx *bolt.Tx) error {
		if err := checkUserID(userID); err != nil {
			return err
		}
		rb, err := reflectionBucketsOf(tx)
		if err != nil {
			return err
		}
		prefix := personPrefix(userID)
		c := rb.reflections.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: count reflections of %s: %w", userID, err)
	}
	return n, nil
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

// DeleteReflection deletes userID's reflection seq, or returns an error
// wrapping nudges.ErrNotFound. Its sealed bytes may linger in free pages
// until Compact, so it marks the file as needing compaction.
func (db *DB) DeleteReflection(userID string, seq int) error {
	err := db.update(func(tx *bolt.Tx) error {
		s, k, _, old, err := db.existing(tx, userID, seq)
		if err != nil {
			return err
		}
		if err := s.unindex(old); err != nil {
			return err
		}
		if err := s.rb.reflections.Delete(k); err != nil {
			return fmt.Errorf("delete record: %w", err)
		}
		return markNeedsCompaction(s.rb)
	})
	if err != nil {
		return fmt.Errorf("storage: delete reflection %d of %s: %w", seq, userID, err)
	}
	db.needsCompaction.Store(true)
	return nil
}

// SharedReflections returns the reflections of userIDs whose authors
// chose to share them (Share is not ShareNone) and that were created in
// [from, to), decrypted, oldest first. It reads only those reflections.
// A record whose seal does not match it (ErrTampered) is left out and
// logged as an error.
func (db *DB) SharedReflections(userIDs []string, from, to time.Time) ([]nudges.Reflection, error) {
	users := slices.DeleteFunc(slices.Clone(userIDs), func(u string) bool { return checkUserID(u) != nil })
	slices.Sort(users)
	users = slices.Compact(users)
	var rs []nudges.Reflection
	err := db.view(func(tx *bolt.Tx) error {
		s, err := db.session(tx)
		if err != nil {
			return err
		}
		c := s.rb.shared.Cursor()
		for _, userID := range users {
			prefix := personPrefix(userID)
			start := prefix
			if lo, _ := keyTimeRange(); from.After(lo) {
				if start, err = sharedKey(userID, from, 0); err != nil {
					start = prefixEnd(userID) // from is past every indexable time
				}
			}
			for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				rest := k[len(prefix):]
				if len(rest) != timeKeyLen+seqLen {
					return fmt.Errorf("shared index key %x is malformed", k)
				}
				if !keyTime(rest).Before(to) {
					break
				}
				seq := int(binary.BigEndian.Uint64(rest[timeKeyLen:]))
				rk := reflectionKey(userID, seq)
				v := s.rb.reflections.Get(rk)
				if v == nil {
					db.log.Warn("shared index lists a reflection that does not exist; ignoring it", "user_id", userID, "seq", seq)
					continue
				}
				r, err := s.read(rk, v)
				if errors.Is(err, ErrTampered) {
					// Refused, not fatal: one altered record must not stop
					// the digest, and must never be shown.
					db.log.Error("refused a shared reflection whose seal does not match its record: it was damaged, or who may see it was changed without the key; it is left out of the digest",
						"user_id", userID, "seq", seq)
					continue
				}
				if err != nil {
					return err
				}
				if r.Share == nudges.ShareNone || r.Created.Before(from) || !r.Created.Before(to) {
					continue // a stale index entry must not share what was not
				}
				rs = append(rs, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: shared reflections: %w", err)
	}
	slices.SortStableFunc(rs, func(a, b nudges.Reflection) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		if c := strings.Compare(a.UserID, b.UserID); c != 0 {
			return c
		}
		return a.Seq - b.Seq
	})
	return rs, nil
}

// DueFollowUps returns up to limit (all if limit <= 0) reflections,
// decrypted, whose commitment is due to be quoted back (FollowUpDue at or
// before now) and was not yet (FollowedUp zero), oldest due first. It
// reads only the entries it returns. A reflection that cannot be read
// is logged and skipped, so one person's damage does not stop everyone's
// follow-ups.
func (db *DB) DueFollowUps(now time.Time, limit int) ([]nudges.Reflection, error) {
	var rs []nudges.Reflection
	err := db.view(func(tx *bolt.Tx) error {
		s, err := db.session(tx)
		if err != nil {
			return err
		}
		c := s.rb.followUps.Cursor()
		for k, _ := c.First(); k != nil && keyNotAfter(k, now); k, _ = c.Next() {
			if limit > 0 && len(rs) >= limit {
				break
			}
			if len(k) < timeKeyLen {
				return fmt.Errorf("follow-up index key %x is malformed", k)
			}
			rk := k[timeKeyLen:]
			userID, seq, err := splitReflectionKey(rk)
			if err != nil {
				return fmt.Errorf("follow-up index: %w", err)
			}
			v := s.rb.reflections.Get(rk)
			if v == nil {
				db.log.Warn("follow-up index lists a reflection that does not exist; ignoring it", "user_id", userID, "seq", seq)
				continue
			}
			r, err := s.read(rk, v)
			if err != nil {
				db.log.Warn("cannot read a reflection due for follow-up; skipping it", "user_id", userID, "seq", seq, "error", err)
				continue
			}
			if r.FollowUpDue.IsZero() || !r.FollowedUp.IsZero() || r.FollowUpDue.After(now) {
				continue // stale index entry
			}
			rs = append(rs, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: due follow-ups: %w", err)
	}
	return rs, nil
}

// DueFollowUp returns the person's oldest commitment due to be quoted
// back by now, from the follow-up index: it reads index keys only, and
// opens no reflection but the one it returns, however many the person
// wrote since.
func (db *DB) DueFollowUp(userID string, now time.Time) (r nudges.Reflection, found bool, err error) {
	if err := checkUserID(userID); err != nil {
		return nudges.Reflection{}, false, err
	}
	prefix := personPrefix(userID)
	err = db.view(func(tx *bolt.Tx) error {
		s, err := db.session(tx)
		if err != nil {
			return err
		}
		c := s.rb.followUps.Cursor()
		for k, _ := c.First(); k != nil && keyNotAfter(k, now); k, _ = c.Next() {
			if len(k) < timeKeyLen {
				return fmt.Errorf("follow-up index key %x is malformed", k)
			}
			rk := k[timeKeyLen:]
			if !bytes.HasPrefix(rk, prefix) {
				continue
			}
			v := s.rb.reflections.Get(rk)
			if v == nil {
				continue // a stale index entry; Check reports it
			}
			got, err := s.read(rk, v)
			if err != nil {
				return err
			}
			if got.FollowUpDue.IsZero() || !got.FollowedUp.IsZero() || got.FollowUpDue.After(now) {
				continue
			}
			r, found = got, true
			return nil
		}
		return nil
	})
	if err != nil {
		return nudges.Reflection{}, false, fmt.Errorf("storage: due follow-up: %w", err)
	}
	return r, found, nil
}

// Forget deletes everything stored about userID. It first deletes their
// data key in a transaction of its own, so their reflections can no
// longer be opened from that commit on, here or in any copy of the file
// made later (a backup taken earlier still holds the data key, sealed
// under the master key, and opens while that key lives); then it deletes
// their records in every bucket. Only if something was deleted does it
// mark the file as needing compaction, so forgetting someone unknown
// costs nothing. If the second step fails, calling Forget again (or the
// next Open) finishes it. Forgetting someone unknown is not an error.
func (db *DB) Forget(userID string) error {
	if err := checkUserID(userID); err != nil {
		return fmt.Errorf("storage: forget: %w", err)
	}
	var hadKey, deleted bool
	err := db.update(func(tx *bolt.Tx) error {
		rb, err := reflectionBucketsOf(tx)
		if err != nil {
			return err
		}
		hadKey = rb.dataKeys.Get([]byte(userID)) != nil
		if !hadKey {
			return nil // no sealed reflection to make unreadable first
		}
		if err := rb.dataKeys.Delete([]byte(userID)); err != nil {
			return fmt.Errorf("delete data key: %w", err)
		}
		// The marker lets Open finish a Forget that was cut short.
		return putJSON(rb.forgetting, userID, db.now().UTC())
	})
	if err != nil {
		return fmt.Errorf("storage: forget %s: %w", userID, err)
	}
	err = db.update(func(tx *bolt.Tx) error {
		var err error
		deleted, err = erasePerson(tx, userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: forget %s: their reflections are unreadable, but deleting their records failed: call Forget again: %w", userID, err)
	}
	if hadKey || deleted {
		db.needsCompaction.Store(true)
	}
	return nil
}

// erasePerson deletes every record about userID, in every bucket that
// holds people's ids, and marks the file as needing compaction if it
// deleted anything. A bucket added to the layout that holds user ids
// must be erased here too.
func erasePerson(tx *bolt.Tx, userID string) (deleted bool, err error) {
	bk, err := bucketsOf(tx)
	if err != nil {
		return false, err
	}
	if deleted, err = deleteSubscriber(bk, userID); err != nil {
		return false, err
	}
	rb, err := reflectionBucketsOf(tx)
	if err != nil {
		return false, err
	}
	prefix := personPrefix(userID)
	for _, b := range []*bolt.Bucket{rb.reflections, rb.shared} {
		n, err := deleteKeysWithPrefix(b, prefix)
		if err != nil {
			return false, err
		}
		deleted = deleted || n > 0
	}
	// The follow-up index is sorted by time, not person, but holds only
	// pending follow-ups; walking all of it also catches stray entries.
	var stale [][]byte
	c := rb.followUps.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) >= timeKeyLen && bytes.HasPrefix(k[timeKeyLen:], prefix) {
			stale = append(stale, bytes.Clone(k))
		}
	}
	for _, k := range stale {
		if err := rb.followUps.Delete(k); err != nil {
			return false, fmt.Errorf("delete follow-up index entry: %w", err)
		}
	}
	deleted = deleted || len(stale) > 0
	for name, b := range map[string]*bolt.Bucket{bucketReflectionSeq: rb.seq, bucketDataKeys: rb.dataKeys, bucketForgetting: rb.forgetting} {
		if b.Get([]byte(userID)) == nil {
			continue
		}
		if err := b.Delete([]byte(userID)); err != nil {
			return false, fmt.Errorf("delete from %s: %w", name, err)
		}
		deleted = true
	}
	// Open pulses keep keyed markers of who answered, which name nobody
	// once the pulse closes and its key is destroyed. They stay: deleting
	// them would let the person vote again and single out a colleague.
	if !deleted {
		return false, nil
	}
	return true, markNeedsCompaction(rb)
}

// deleteKeysWithPrefix deletes every key of b that starts with prefix
// and returns how many it deleted.
func deleteKeysWithPrefix(b *bolt.Bucket, prefix []byte) (int, error) {
	// Collected first: deleting while a cursor walks can skip keys.
	var ks [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ks = append(ks, bytes.Clone(k))
	}
	for _, k := range ks {
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("delete %x: %w", k, err)
		}
	}
	return len(ks), nil
}

// RotateKeys re-seals every data key that is not sealed under the current
// master key, and returns how many it re-sealed. Reflections are not
// touched: they are sealed with the data keys, which do not change.
// Afterwards older master keys can be dropped from the configuration.
func (db *DB) RotateKeys() (int, error) {
	if db.keys == nil {
		return 0, fmt.Errorf("storage: rotate keys: %w", errNoKeys())
	}
	var n int
	err := db.update(func(tx *bolt.Tx) error {
		n = 0
		rb, err := reflectionBucketsOf(tx)
		if err != nil {
			return err
		}
		current := db.keys.CurrentID()
		type stale struct {
			userID string
			rec    dataKeyRecord
		}
		var olds []stale
		err = rb.dataKeys.ForEach(func(k, v []byte) error {
			var rec dataKeyRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode data key of %s: %w", k, err)
			}
			if rec.Master != current {
				olds = append(olds, stale{string(k), rec})
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Re-sealed after the walk: bbolt forbids writing a bucket while
		// iterating it.
		for _, o := range olds {
			raw, err := db.keys.openDataKey(o.userID, o.rec)
			if errors.Is(err, errUnknownMaster) {
				return db.keyMissing(o.rec.Master)
			}
			if err != nil {
				return err
			}
			rec := db.keys.sealDataKey(o.userID, o.rec.ID, raw)
			clear(raw)
			if err := putJSON(rb.dataKeys, o.userID, rec); err != nil {
				return fmt.Errorf("data key of %s: %w", o.userID, err)
			}
		}
		n = len(olds)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: rotate keys: %w", err)
	}
	if n > 0 {
		db.log.Info("re-sealed data keys under the current key; older keys can now be removed from the configuration", "count", n, "key", db.keys.CurrentID())
	}
	return n, nil
}

// openReflections runs at Open: it reads the compaction flag, finishes
// Forgets that were cut short, and makes sure every data key opens with
// the configured keys, so a missing key stops start-up instead of
// surfacing later as unreadable reflections.
func (db *DB) openReflections() error {
	var forgetting []string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket([]byte(bucketMeta)); meta != nil {
			db.needsCompaction.Store(string(meta.Get([]byte(keyNeedsCompaction))) == "true")
			db.pruned.Store(string(meta.Get([]byte(keyPruned))) == "true")
			if at, err := time.Parse(time.RFC3339Nano, string(meta.Get([]byte(keyCompactedAt)))); err == nil {
				db.compactedAt.Store(at.UnixNano())
			}
		}
		if b := tx.Bucket([]byte(bucketForgetting)); b != nil {
			return b.ForEach(func(k, _ []byte) error {
				forgetting = append(forgetting, string(k))
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open database %s: %w", db.path, err)
	}
	if !db.readOnly {
		for _, userID := range forgetting {
			err := db.bolt.Update(func(tx *bolt.Tx) error {
				_, err := erasePerson(tx, userID)
				return err
			})
			if err != nil {
				return fmt.Errorf("open database %s: finish forgetting a person: %w", db.path, err)
			}
		}
		if len(forgetting) > 0 {
			db.needsCompaction.Store(true)
			db.log.Info("finished forgetting people whose Forget was cut short", "count", len(forgetting))
		}
	}
	if !db.readOnly || db.keys == nil {
		// Read-write opens checked the keys before anything was written;
		// check and backup tools without keys read no reflection.
		return nil
	}
	return db.checkKeys()
}

// checkKeys opens one data key per master key that sealed any, and
// tells the operator about every master key that is missing.
func (db *DB) checkKeys() error {
	type sample struct {
		userID string
		rec    dataKeyRecord
		count  int
	}
	var masters []string
	samples := map[string]*sample{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketDataKeys))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var rec dataKeyRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return corruptError(db.path, fmt.Errorf("decode data key of %s: %w", k, err))
			}
			if s := samples[rec.Master]; s != nil {
				s.count++
				return nil
			}
			masters = append(masters, rec.Master)
			samples[rec.Master] = &sample{userID: string(k), rec: rec, count: 1}
			return nil
		})
	})
	if err != nil {
		return err
	}
	var missing, older []string
	var olderCount int
	for _, id := range masters {
		if db.keys == nil || db.keys.byID(id) == nil {
			missing = append(missing, id)
			continue
		}
		s := samples[id]
		raw, err := db.keys.openDataKey(s.userID, s.rec)
		if err != nil {
			return corruptError(db.path, err)
		}
		clear(raw)
		if id != db.keys.CurrentID() {
			older = append(older, id)
			olderCount += s.count
		}
	}
	if len(missing) > 0 {
		return db.keyMissing(missing...)
	}
	if len(older) > 0 {
		db.log.Info("some data keys are sealed with older keys; RotateKeys re-seals them under the current one",
			"count", olderCount, "older_keys", strings.Join(older, ","), "current_key", db.keys.CurrentID())
	}
	return nil
}

// NeedsCompaction reports whether Compact is worth the pause it brings
// (every write waits for its whole copy): deleted reflections or
// forgotten people may linger in the file's free pages, which must leave
// the file; or at least a quarter of the file, and reclaimMin, is free;
// or retention has removed records and the last compaction was at least
// reclaimEvery ago. bbolt reuses free pages but never gives them back,
// and the pages it fills while records come and go end up half empty:
// in a bench of three years of daily nudges the file settled at 586 MB
// without compactions and at 270 MB with weekly ones.
func (db *DB) NeedsCompaction() bool {
	if db.needsCompaction.Load() {
		return true
	}
	if db.pruned.Load() && db.now().Sub(time.Unix(0, db.compactedAt.Load())) >= reclaimEvery {
		return true
	}
	free, size, err := db.freeSpace()
	return err == nil && free >= reclaimMin && free*4 >= size
}

// reclaimEvery is how often retention's freed space is compacted away.
const reclaimEvery = 7 * 24 * time.Hour

// reclaimMin is the least free space NeedsCompaction compacts a file for.
const reclaimMin = 16 << 20

// freeSpace is how many bytes of the file are free pages (and pages
// freed but held for readers), as of the last commit, and how large it is.
func (db *DB) freeSpace() (free, size int64, err error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return 0, 0, bolterrors.ErrDatabaseNotOpen
	}
	size, err = db.Size()
	return int64(db.bolt.Stats().FreeAlloc), size, err
}

// Compact rewrites the database without its free pages, so that deleted
// and forgotten data leaves the file. It copies the live data to a new
// file beside it (<path>.compact-<random>, created exclusively, so no
// file or symlink already there is ever opened or followed), syncs it,
// checks it, then swaps it in for the file and reopens it. Other calls wait meanwhile (they never see a closed
// handle); the file's lock is released for the instant of the swap. On
// an error before the swap the database is left as it was.
func (db *DB) Compact() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return fmt.Errorf("storage: compact %s: %w", db.path, bolterrors.ErrDatabaseNotOpen)
	}
	if db.readOnly {
		return fmt.Errorf("storage: compact %s: the database is open read-only: open it read-write to compact it", db.path)
	}
	before, _ := fileSize(db.path)
	tmp, err := compactionFile(db.path)
	if err != nil {
		return fmt.Errorf("storage: compact %s: %w; the database is unchanged", db.path, err)
	}
	compactedAt := db.now()
	if err := db.writeCompacted(tmp, compactedAt); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("storage: compact %s: %w; the database is unchanged", db.path, err)
	}
	if err := db.bolt.Close(); err != nil {
		_ = os.Remove(tmp)
		db.closed = true
		return fmt.Errorf("storage: compact %s: close the database: %w: restart nudgebot", db.path, err)
	}
	swapErr := os.Rename(tmp, db.path)
	if swapErr != nil {
		_ = os.Remove(tmp)
	} else {
		swapErr = syncDir(filepath.Dir(db.path))
	}
	bdb, err := openBolt(db.path, Options{Timeout: db.timeout})
	if err != nil {
		db.closed = true
		return fmt.Errorf("storage: compact %s: reopen the database: %w: restart nudgebot", db.path, errors.Join(swapErr, err))
	}
	db.bolt = bdb
	if swapErr != nil {
		return fmt.Errorf("storage: compact %s: replace the file: %w; the database is unchanged", db.path, swapErr)
	}
	db.needsCompaction.Store(false)
	db.pruned.Store(false)
	db.compactedAt.Store(compactedAt.UnixNano())
	after, _ := fileSize(db.path)
	db.log.Info("compacted database", "path", db.path, "bytes_before", before, "bytes_after", after)
	return nil
}

// compactionFile creates the empty file a compaction copies into: a
// random name in the database's own directory (so the swap is a rename
// on one file system), created with O_EXCL and mode 0600. A name chosen
// in advance could be planted as a symlink to any file the bot may
// write, or be an operator's own file.
func compactionFile(dbPath string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(dbPath), filepath.Base(dbPath)+".compact-*")
	if err != nil {
		return "", fmt.Errorf("create the compaction copy: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("create the compaction copy: %w", err)
	}
	return f.Name(), nil
}

// writeCompacted writes a compacted copy of the database into path, an
// empty file compactionFile made, and makes it durable. The caller holds
// the write lock.
func (db *DB) writeCompacted(path string, at time.Time) (err error) {
	// One sync at the end is enough: the copy only counts once renamed.
	dst, err := bolt.Open(path, fileMode, &bolt.Options{Timeout: db.timeout, NoSync: true})
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		if cerr := dst.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
	}()
	if err := bolt.Compact(dst, db.bolt, compactTxMaxSize); err != nil {
		return fmt.Errorf("copy into %s: %w", path, err)
	}
	err = dst.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			return nil
		}
		return errors.Join(meta.Delete([]byte(keyNeedsCompaction)), meta.Delete([]byte(keyPruned)),
			meta.Put([]byte(keyCompactedAt), []byte(at.UTC().Format(time.RFC3339Nano))))
	})
	if err != nil {
		return fmt.Errorf("record the compaction in %s: %w", path, err)
	}
	var size int64
	if err := dst.View(func(tx *bolt.Tx) error { size = tx.Size(); return checkTx(tx) }); err != nil {
		return fmt.Errorf("the compacted copy %s fails its check: %w", path, err)
	}
	// bbolt grows a file it writes in doubling steps, but the copy needs
	// only its pages: cut at the last one, a compaction never leaves a
	// file (a restored backup is exactly its data's length) larger than
	// it found it.
	if err := os.Truncate(path, size); err != nil {
		return fmt.Errorf("trim %s to its %d bytes of pages: %w", path, size, err)
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

func fileSize(path string) (int64, error) {
	info, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

// checkReflections verifies what bbolt cannot about reflections: that
// records match their keys, that the follow-up and shared indexes list
// exactly what the records say, that every person with reflections has a
// data key (or a Forget to finish) naming them, and that seq counters are
// ahead of the records.
func checkReflections(tx *bolt.Tx, pace func() error) error {
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
		var dk dataKeyRecord
		found, err := getJSON(rb.dataKeys, rec.UserID, &dk)
		switch {
		case err != nil:
			add(fmt.Errorf("data key of %s: %w", rec.UserID, err))
		case !found && rb.forgetting.Get([]byte(rec.UserID)) == nil:
			add(fmt.Errorf("reflection %d of %s has no data key", rec.Seq, rec.UserID))
		case found && dk.ID != rec.DataKey:
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
func (db *DB) checkSeals(tx *bolt.Tx, pace func() error) error {
	if db.keys == nil {
		return nil
	}
	s, err := db.session(tx)
	if err != nil {
		return nil // an old file opened read-only
	}
	var errs []error
	err = s.rb.reflections.ForEach(func(k, v []byte) error {
		if err := pace(); err != nil {
			return err
		}
		userID, seq, err := splitReflectionKey(k)
		if err != nil || s.rb.dataKeys.Get([]byte(userID)) == nil {
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
