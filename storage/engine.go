package storage

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// This file is what another storage engine (storage/pgstore) shares with
// this one, so that both seal reflections and check records the same
// way: the sealing code and the validation rules are these, not a copy.

// SealedDataKey is a person's data key as stored: its id, the master key
// it is sealed under, and the sealed bytes.
type SealedDataKey struct {
	ID     string `json:"id"`
	Master string `json:"master"`
	Sealed []byte `json:"sealed"`
}

// sealedOf and recordOf convert between the shared form and this
// engine's record, which can also hold a key being retired (Prev).
func sealedOf(rec dataKeyRecord) SealedDataKey {
	return SealedDataKey{ID: rec.ID, Master: rec.Master, Sealed: rec.Sealed}
}

func recordOf(s SealedDataKey) dataKeyRecord {
	return dataKeyRecord{ID: s.ID, Master: s.Master, Sealed: s.Sealed}
}

// DataKey seals and opens one person's reflections.
type DataKey struct{ dk *dataKey }

// ID is the data key's id, which each sealed reflection names.
func (d DataKey) ID() string { return d.dk.id }

// NewDataKey makes a fresh data key for userID, and its record sealed
// under the current master key.
func (k *Keys) NewDataKey(userID string) (DataKey, SealedDataKey, error) {
	dk, rec, err := k.newDataKey(userID)
	if err != nil {
		return DataKey{}, SealedDataKey{}, err
	}
	return DataKey{dk}, sealedOf(rec), nil
}

// OpenDataKey opens userID's stored data key. A record sealed under a
// master key the ring lacks is an error wrapping ErrKeyMissing; one that
// does not open, ErrCorrupt.
func (k *Keys) OpenDataKey(userID string, rec SealedDataKey) (DataKey, error) {
	raw, err := k.openDataKey(userID, recordOf(rec))
	if errors.Is(err, errUnknownMaster) {
		return DataKey{}, fmt.Errorf("the data key of %s is sealed with key %s, which is not configured: set %s (or storage.key_file) to that key: %w", userID, rec.Master, EnvSecretKey, ErrKeyMissing)
	}
	if err != nil {
		return DataKey{}, err
	}
	dk, err := dataKeyFrom(raw)
	clear(raw)
	if err != nil {
		return DataKey{}, err
	}
	return DataKey{dk}, nil
}

// ResealDataKey seals rec's data key again under the current master key
// (rotation); rec must open with one of the ring's keys.
func (k *Keys) ResealDataKey(userID string, rec SealedDataKey) (SealedDataKey, error) {
	raw, err := k.openDataKey(userID, recordOf(rec))
	if err != nil {
		return rec, err
	}
	defer clear(raw)
	return sealedOf(k.sealDataKey(userID, rec.ID, raw)), nil
}

// HasMaster says whether the ring holds the master key with this id.
func (k *Keys) HasMaster(id string) bool { return k != nil && k.byID(id) != nil }

// Seal seals r's text and commitment, bound to its author, seq, creation
// time, share setting and share channel exactly as this engine binds
// them, so a record sealed by one engine opens in the other.
func (d DataKey) Seal(r nudges.Reflection) []byte {
	rec := boundFields(r)
	return d.dk.seal(&rec, r.Text, r.Commitment)
}

// Open opens a payload sealed for r's bound fields and returns its text
// and commitment. A payload that does not open (damaged, or a bound
// field changed without the key) is an error wrapping ErrTampered and
// ErrCorrupt.
func (d DataKey) Open(r nudges.Reflection, sealed []byte) (text, commitment string, err error) {
	rec := boundFields(r)
	plain, err := d.dk.aead.Open(nil, nil, sealed, appendReflectionAAD(nil, &rec))
	if err != nil {
		return "", "", fmt.Errorf("reflection %d of %s does not open: it is damaged, or who may see it (author, share setting, channel, date) was changed without the key: %w: %w", r.Seq, r.UserID, ErrTampered, ErrCorrupt)
	}
	defer clear(plain)
	t, c, err := splitPayload(plain)
	if err != nil {
		return "", "", fmt.Errorf("reflection %d of %s: %w: %w", r.Seq, r.UserID, err, ErrCorrupt)
	}
	return string(t), string(c), nil
}

func boundFields(r nudges.Reflection) reflectionRecord {
	return reflectionRecord{UserID: r.UserID, Seq: r.Seq, Created: r.Created, Share: r.Share, ShareChannel: r.ShareChannel}
}

// ValidateReflection is the check SaveReflection and UpdateReflection
// make; its messages never quote the reflection.
func ValidateReflection(r nudges.Reflection) error { return validateReflection(r) }

// ValidateDelivery is the check every delivery write makes: the id
// derives from the person, slot and manual flag, and the state is known.
func ValidateDelivery(d nudges.Delivery) error { return validateDelivery(d) }

// CheckSubscriber says whether s may be saved over old (the stored
// record, or zero): same user id, a due time the index can hold.
func CheckSubscriber(old, s nudges.Subscriber) error { return checkSubscriber(old, s) }

// CheckKeyPart refuses ids (channels, pulses, users) that are empty or
// hold a NUL byte.
func CheckKeyPart(what, s string) error { return checkKeyPart(what, s) }

// ContainsFold reports whether s contains word under Unicode simple case
// folding: how SearchReflections matches.
func ContainsFold(s, word string) bool { return containsFold([]byte(s), []byte(word)) }

// IndexableTime says whether t fits the time indexes (1970 to 2262).
func IndexableTime(t time.Time) bool {
	_, err := timeKey(t, "")
	return err == nil
}

// VoterMarker is what marks that userID answered pulse id, keyed by the
// pulse's voter key; NewVoterKey makes such a key.
func VoterMarker(id string, key []byte, userID string) []byte {
	return voterMarker(id, key, userID)
}

// NewVoterKey is a fresh random key for a pulse's voter markers.
func NewVoterKey() []byte { return newVoterKey() }

// VoterKeyLen is the size of a pulse's voter key.
const VoterKeyLen = voterKeyLen

// DigestRecord is what both engines keep per channel for its digest, with
// the rules for marking it broken, so the two cannot drift apart.
type DigestRecord = digestState

// The rules of a delivery's start, recorded once per slot: both engines
// decide a start, a missed slot and an update by these, so exactly once
// means the same on either.

// StartFrame is StartDeliveries around an engine's one transaction: it
// normalises each start's slot to UTC and validates it, runs record when
// any start is valid (the transaction that decides the valid ones, with
// DecideStart, and records those it accepts: created[i], or refused[i]
// saying why not; skip[i] marks the invalid, and record must reset
// created and refused, since it may run more than once), then gives each
// start its answer: invalid, refused, or the transaction's failure,
// which fails every start it held. Errors read "<engine>: start delivery
// <id>: …".
func StartFrame(engine string, starts []nudges.DeliveryStart, record func(starts []nudges.DeliveryStart, skip []error, created []bool, refused []error) error) (created []bool, errs []error) {
	starts = slices.Clone(starts) // the slots are normalised in the copy
	created = make([]bool, len(starts))
	errs = make([]error, len(starts))
	refused := make([]error, len(starts))
	valid := 0
	for i := range starts {
		starts[i].Delivery.Slot = starts[i].Delivery.Slot.UTC()
		if errs[i] = validateDelivery(starts[i].Delivery); errs[i] == nil {
			valid++
		}
	}
	var err error
	if valid > 0 {
		err = record(starts, errs, created, refused)
	}
	for i, st := range starts {
		switch {
		case errs[i] != nil:
		case err != nil:
			created[i], errs[i] = false, err
		default:
			errs[i] = refused[i]
		}
		if errs[i] != nil {
			errs[i] = fmt.Errorf("%s: start delivery %s: %w", engine, st.Delivery.ID, errs[i])
		}
	}
	return created, errs
}

// DecideStart applies st to old, the person's stored record, and returns
// what to save, or why the start is refused: planned from a due time the
// person no longer has (ErrConflict; a manual start is not planned), or
// its Advance failing or leaving a record that cannot be saved. It is
// decided before anything of the start is written.
func DecideStart(old nudges.Subscriber, st nudges.DeliveryStart) (nudges.Subscriber, error) {
	if !st.Delivery.Manual {
		if err := CheckNextDue(old, st.ExpectNextDue); err != nil {
			return old, err
		}
	}
	next := old
	if st.Advance != nil {
		if err := st.Advance(&next); err != nil {
			return old, err
		}
	}
	if err := checkSubscriber(old, next); err != nil {
		return old, fmt.Errorf("subscriber %s: %w", old.UserID, err)
	}
	return next, nil
}

// CheckNextDue refuses, with ErrConflict, a change planned from a due
// time the person no longer has: another worker moved them on first.
func CheckNextDue(old nudges.Subscriber, expect time.Time) error {
	if !old.NextDue.Equal(expect) {
		return fmt.Errorf("next due is %s, expected %s: %w", fmtTime(old.NextDue), fmtTime(expect), ErrConflict)
	}
	return nil
}

// MissedDelivery is the record of userID's slot missed (never pending),
// made at created.
func MissedDelivery(userID string, slot, created time.Time) (nudges.Delivery, error) {
	d := nudges.Delivery{
		ID:      DeliveryID(userID, slot, false),
		UserID:  userID,
		Slot:    slot.UTC(),
		State:   nudges.StateMissed,
		Created: created,
	}
	return d, validateDelivery(d)
}

// CheckDeliveryUpdate refuses an update of old that changed what
// identifies the delivery (id, person, slot, manual flag) or left it
// invalid.
func CheckDeliveryUpdate(old, d nudges.Delivery) error {
	if err := sameIdentity(old, d); err != nil {
		return err
	}
	return validateDelivery(d)
}
