package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// This file is the engine-neutral form of a whole database, which
// `nudgebot migrate` streams from one engine into the other: each engine
// dumps its records as these values (DB.Dump, pgstore's Dump) and loads
// them (DB.NewLoader, pgstore's BeginLoad). They are the domain values
// and the sealed forms both engines already share (SealedDataKey, the
// sealed payload DataKey.Seal makes, DigestRecord), not any engine's
// bytes, so a change of either engine's layout changes its own dump and
// load and nothing here.
//
// Reflections travel sealed: the ciphertext and each person's data key
// sealed under the master key move as they are, so the target needs the
// same master key, and no reflection is ever decrypted on the way.
// Indexes (due, outbox, slot, follow-ups, shared) are not records: each
// loader builds its own from the records. Handled Socket Mode envelopes
// are not copied: Slack stops retrying an envelope within minutes, long
// before a migration's downtime ends.

// Record is one record of a database; exactly one field is set.
type Record struct {
	Settings      *Settings          `json:"settings,omitempty"`
	Subscriber    *nudges.Subscriber `json:"subscriber,omitempty"`
	Delivery      *nudges.Delivery   `json:"delivery,omitempty"`
	DataKey       *PersonDataKey     `json:"data_key,omitempty"`
	Reflection    *SealedReflection  `json:"reflection,omitempty"`
	ReflectionSeq *ReflectionSeq     `json:"reflection_seq,omitempty"`
	Digest        *ChannelDigest     `json:"digest,omitempty"`
	Pulse         *Pulse             `json:"pulse,omitempty"`
	PulseVoter    *PulseVoter        `json:"pulse_voter,omitempty"`
	PulseSummary  *FiledSummary      `json:"pulse_summary,omitempty"`
	Forgetting    *Forgetting        `json:"forgetting,omitempty"`
}

// Settings are the company-wide values: one record per database.
type Settings struct {
	PausedAll     time.Time `json:"paused_all,omitzero"`
	StrategyLines []string  `json:"strategy_lines,omitempty"`
	StrategySet   bool      `json:"strategy_set,omitempty"`
	LearnedPace   float64   `json:"learned_pace,omitempty"`
}

// PersonDataKey is a person's data key, sealed under a master key.
type PersonDataKey struct {
	UserID string        `json:"user_id"`
	Key    SealedDataKey `json:"key"`
}

// SealedReflection is a reflection as stored: every field plain but the
// text and commitment (empty here), which are in Sealed, sealed under
// the author's data key DataKey and bound to the plain fields.
type SealedReflection struct {
	Reflection nudges.Reflection `json:"reflection"`
	DataKey    string            `json:"data_key"`
	Sealed     []byte            `json:"sealed"`
}

// ReflectionSeq is the last seq given a person, kept so a seq is never
// reused after deletes.
type ReflectionSeq struct {
	UserID string `json:"user_id"`
	Last   int    `json:"last"`
}

// ChannelDigest is a channel's digest record.
type ChannelDigest struct {
	Channel string       `json:"channel"`
	Record  DigestRecord `json:"record"`
}

// Pulse is a clarity pulse. While it is open it has its voter key, its
// running totals and the channel's members as it was posted (Voters,
// nil when none were kept); once closed (Closed set) it has none of
// them, and its summary is a FiledSummary.
type Pulse struct {
	ID       string              `json:"id"`
	Channel  string              `json:"channel"`
	Opened   time.Time           `json:"opened"`
	Closed   time.Time           `json:"closed,omitzero"`
	Voters   []string            `json:"voters,omitempty"`
	VoterKey []byte              `json:"voter_key,omitempty"`
	Totals   nudges.PulseSummary `json:"totals,omitzero"`
}

// PulseVoter is the keyed marker of someone who answered an open pulse
// (VoterMarker), naming nobody without the pulse's key: whether it voted
// and how many answers it added, never what.
type PulseVoter struct {
	PulseID  string `json:"pulse_id"`
	Marker   []byte `json:"marker"`
	Voted    bool   `json:"voted,omitempty"`
	HearMore int    `json:"hear_more,omitempty"`
}

// FiledSummary is a closed pulse's summary in its channel's history.
type FiledSummary struct {
	Channel string              `json:"channel"`
	Closed  time.Time           `json:"closed"`
	PulseID string              `json:"pulse_id"`
	Summary nudges.PulseSummary `json:"summary"`
}

// Forgetting marks a person whose Forget is unfinished. Their records
// are not dumped (they asked to be erased: copying them would spread
// what is being deleted); the mark is, so the target finishes the
// erasure as the source would.
type Forgetting struct {
	UserID string    `json:"user_id"`
	Since  time.Time `json:"since"`
}

// Kind names the kind of record; the summary of a migration counts by it.
type Kind string

// The kinds of record, in the order Dump yields them.
const (
	KindSettings      Kind = "settings"
	KindForgetting    Kind = "forgetting marks"
	KindSubscriber    Kind = "subscribers"
	KindDelivery      Kind = "deliveries"
	KindDataKey       Kind = "data keys"
	KindReflection    Kind = "reflections"
	KindReflectionSeq Kind = "reflection counters"
	KindDigest        Kind = "digests"
	KindPulse         Kind = "pulses"
	KindPulseVoter    Kind = "pulse voter markers"
	KindPulseSummary  Kind = "pulse history"
)

// Kinds are every kind, in dump order.
func Kinds() []Kind {
	return []Kind{KindSettings, KindForgetting, KindSubscriber, KindDelivery, KindDataKey, KindReflection,
		KindReflectionSeq, KindDigest, KindPulse, KindPulseVoter, KindPulseSummary}
}

// Kind says which field is set; "" when none is.
func (r Record) Kind() Kind {
	switch {
	case r.Settings != nil:
		return KindSettings
	case r.Forgetting != nil:
		return KindForgetting
	case r.Subscriber != nil:
		return KindSubscriber
	case r.Delivery != nil:
		return KindDelivery
	case r.DataKey != nil:
		return KindDataKey
	case r.Reflection != nil:
		return KindReflection
	case r.ReflectionSeq != nil:
		return KindReflectionSeq
	case r.Digest != nil:
		return KindDigest
	case r.Pulse != nil:
		return KindPulse
	case r.PulseVoter != nil:
		return KindPulseVoter
	case r.PulseSummary != nil:
		return KindPulseSummary
	}
	return ""
}

// Tally counts records by kind and sums a digest of each, so two
// databases holding the same records in any order tally alike, and a
// record changed on the way (a field, a byte of ciphertext) shows.
type Tally struct {
	counts map[Kind]int
	sums   map[Kind][4]uint64
}

// Add counts r.
func (t *Tally) Add(r Record) error {
	k := r.Kind()
	if k == "" {
		return fmt.Errorf("an empty record")
	}
	raw, err := Canonical(r)
	if err != nil {
		return fmt.Errorf("encode a %s record: %w", k, err)
	}
	sum := sha256.Sum256(raw)
	if t.counts == nil {
		t.counts, t.sums = map[Kind]int{}, map[Kind][4]uint64{}
	}
	t.counts[k]++
	// Lane-wise addition: order does not matter, and unlike XOR two
	// copies of one record do not cancel out.
	s := t.sums[k]
	for i := range s {
		s[i] += binary.BigEndian.Uint64(sum[8*i:])
	}
	t.sums[k] = s
	return nil
}

// Canonical is r's encoding as Tally compares it: the JSON of r with
// every time in UTC. encoding/json writes struct fields in order and map
// keys sorted, so a record always encodes alike; times are made UTC
// because the engines keep the same instant in different zones (the
// bbolt file's delivery records hold UTC, PostgreSQL's JSON the zone it
// was given).
func Canonical(r Record) ([]byte, error) {
	if !zoned(r) {
		return json.Marshal(r)
	}
	// A deep copy to change, leaving the caller's record as it was.
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var c Record
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	inUTC(reflect.ValueOf(&c).Elem())
	return json.Marshal(c)
}

var timeType = reflect.TypeFor[time.Time]()

// deliveryTimes are the indexes of nudges.Delivery's time fields, or nil
// if some other field could hold a time (then the general walk looks).
var deliveryTimes = directTimes(reflect.TypeFor[nudges.Delivery]())

// directTimes lists struct t's time fields, or nil if another of its
// fields is of a kind that could hold one.
func directTimes(t reflect.Type) []int {
	var out []int
	for i := range t.NumField() {
		f := t.Field(i)
		switch {
		case f.Type == timeType:
			out = append(out, i)
		case f.Type.Kind() <= reflect.Complex128 || f.Type.Kind() == reflect.String:
		default:
			return nil
		}
	}
	return out
}

// zoned reports whether r holds a time not in UTC. A delivery, most of
// a database's records, is looked at through its time fields alone.
func zoned(r Record) bool {
	if d := r.Delivery; d != nil && deliveryTimes != nil {
		v := reflect.ValueOf(d).Elem()
		for _, i := range deliveryTimes {
			if v.Field(i).Addr().Interface().(*time.Time).Location() != time.UTC {
				return true
			}
		}
		return false
	}
	return hasZonedTime(reflect.ValueOf(r))
}

// hasZonedTime reports whether v holds a time not in UTC.
func hasZonedTime(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return !v.IsNil() && hasZonedTime(v.Elem())
	case reflect.Struct:
		if v.Type() == timeType {
			return v.Interface().(time.Time).Location() != time.UTC
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && hasZonedTime(v.Field(i)) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if hasZonedTime(v.Index(i)) {
				return true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if hasZonedTime(it.Value()) {
				return true
			}
		}
	}
	return false
}

// inUTC sets every time in v, which must be addressable, to UTC.
func inUTC(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			inUTC(v.Elem())
		}
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(v.Interface().(time.Time).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				inUTC(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			inUTC(v.Index(i))
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			e := reflect.New(it.Value().Type()).Elem()
			e.Set(it.Value())
			inUTC(e)
			v.SetMapIndex(it.Key(), e)
		}
	}
}

// Count is how many records of kind k were added.
func (t *Tally) Count(k Kind) int { return t.counts[k] }

// Total is how many records were added.
func (t *Tally) Total() int {
	n := 0
	for _, c := range t.counts {
		n += c
	}
	return n
}

// Same reports whether t and o hold the same records of kind k.
func (t *Tally) Same(o *Tally, k Kind) bool {
	return t.counts[k] == o.counts[k] && t.sums[k] == o.sums[k]
}

// CheckSealedReflection is ValidateReflection for a reflection that
// travels sealed: its plain fields as a save checks them, a seq, the
// data key it names, a payload, and no text or commitment in the clear.
func CheckSealedReflection(sr SealedReflection) error {
	r := sr.Reflection
	switch {
	case r.Text != "" || r.Commitment != "":
		return fmt.Errorf("%w: reflection %d of %s carries its text in the clear beside its sealed payload", ErrInvalidReflection, r.Seq, r.UserID)
	case r.Seq <= 0:
		return fmt.Errorf("%w: a reflection of %s has seq %d", ErrInvalidReflection, r.UserID, r.Seq)
	case sr.DataKey == "" || len(sr.Sealed) == 0:
		return fmt.Errorf("%w: reflection %d of %s has no sealed payload or names no data key", ErrInvalidReflection, r.Seq, r.UserID)
	}
	return checkReflection(r, false)
}
