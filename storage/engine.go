package storage

import (
	"errors"
	"fmt"
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
