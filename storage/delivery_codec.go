package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// The delivery record of schema 5 (doc.go, "The delivery record") is
// binary because a deployment keeps millions of them: the JSON of
// schema 4 cost about 450 bytes a record and repeated its id, user and
// slot, which the key already holds. Every table and bit below is part
// of the file format: append to a table, never reorder it, and extend
// TestDeliveryRecordGolden when you do.

// deliveryFormat is the first byte of every record; a decoder meeting
// another refuses the record rather than guess.
const deliveryFormat = 1

// Enum tables: a value is stored as its index + 1; 0 is never written
// (an empty value is left out through the bitmap), and enumOther is
// followed by the value as a string, so a value the table lacks still
// round-trips.
var (
	stateCodes = []string{
		string(nudges.StatePending), string(nudges.StateSent),
		string(nudges.StateMissed), string(nudges.StateFailed),
	}
	outcomeCodes = []string{
		string(nudges.OutcomeDone), string(nudges.OutcomeSnoozed), string(nudges.OutcomeSkipped),
		string(nudges.OutcomeReflected), string(nudges.OutcomeNotForMe), string(nudges.OutcomeHelpful),
	}
	roleCodes  = []string{string(nudges.RoleLead), string(nudges.RoleManage), string(nudges.RoleBoth)}
	themeCodes = []string{
		string(nudges.ThemeLeading), string(nudges.ThemeManaging), string(nudges.ThemeStrategy),
		string(nudges.ThemeGeneralist), string(nudges.ThemeIntegrator), string(nudges.ThemeStrategist),
		string(nudges.ThemeArchitect), string(nudges.ThemeAgendaSetter), string(nudges.ThemeDiplomat),
		string(nudges.ThemeLeadRole), string(nudges.ThemeChange), string(nudges.ThemeOrganisation),
		string(nudges.ThemeDeveloping), string(nudges.ThemeEveryLevel), string(nudges.ThemeOwnLean),
	}
)

const enumOther = 0xff

// Bits of the record's presence bitmap, in the order the fields follow.
const (
	fNudgeID = 1 << iota
	fTheme
	fRole
	fReason
	fRound
	fAttempts
	fTryAt
	fChannel
	fTS
	fCreated
	fSentAt
	fOutcome
	fActedAt
	fSnoozeTo
	fFeedback
	fSlotNanos
)

// Key layout. A record's key is its slot, so a day's deliveries are
// appended at the end of the bucket and retention deletes whole pages
// from its start; the person index finds one person's.
const (
	recordKeyPrefix = 5 // 4-byte big-endian slot second ‖ kind
	kindScheduled   = 0
	kindManual      = 1

	// personPeriodShift groups a person's deliveries in one index entry
	// per 2^21 s (24.3 days): a month of daily nudges costs one key
	// and three bytes each, not a key each.
	personPeriodShift = 21
	personPeriodMask  = 1<<personPeriodShift - 1
)

// slotSecond is the slot's whole second as the key stores it. The key
// has four bytes, so slots outside 1970 to 2106 are refused.
func slotSecond(slot time.Time) (uint32, error) {
	s := slot.Unix()
	if s < 0 || s > math.MaxUint32 {
		return 0, fmt.Errorf("slot %s is outside the range storage can key (1970 to 2106)", slot.UTC().Format(time.RFC3339))
	}
	return uint32(s), nil
}

// recordKey is the key of a delivery record: slot second ‖ kind ‖ user id.
func recordKey(userID string, sec uint32, manual bool) []byte {
	k := make([]byte, recordKeyPrefix, recordKeyPrefix+len(userID))
	binary.BigEndian.PutUint32(k, sec)
	if manual {
		k[4] = kindManual
	}
	return append(k, userID...)
}

// keyOfDelivery is the record key of a (validated) delivery.
func keyOfDelivery(d nudges.Delivery) ([]byte, error) {
	sec, err := slotSecond(d.Slot)
	if err != nil {
		return nil, fmt.Errorf("delivery %s: %w", d.ID, err)
	}
	return recordKey(d.UserID, sec, d.Manual), nil
}

// splitRecordKey reads a record key; it copies the user id.
func splitRecordKey(k []byte) (userID string, sec uint32, manual bool, err error) {
	if len(k) <= recordKeyPrefix || k[4] > kindManual || bytes.IndexByte(k[recordKeyPrefix:], 0) >= 0 {
		return "", 0, false, fmt.Errorf("delivery key %x is not slot ‖ kind ‖ user id", k)
	}
	return string(k[recordKeyPrefix:]), binary.BigEndian.Uint32(k), k[4] == kindManual, nil
}

// idOfKey is the delivery id a record key stands for.
func idOfKey(k []byte) (string, error) {
	userID, sec, manual, err := splitRecordKey(k)
	if err != nil {
		return "", err
	}
	return DeliveryID(userID, time.Unix(int64(sec), 0), manual), nil
}

// showRecordKey names a record key in messages by its delivery id.
func showRecordKey(k []byte) string {
	if id, err := idOfKey(k); err == nil {
		return id
	}
	return fmt.Sprintf("%x", k)
}

// keyOfID is the record key of the delivery with id, which must be
// exactly what DeliveryID makes; ok is false for anything else, which no
// stored delivery can have.
func keyOfID(id string) (key []byte, ok bool) {
	const slotLayout = "20060102T150405Z"
	rest, manual := strings.CutSuffix(id, "-now")
	if len(rest) < len(slotLayout)+2 || rest[len(rest)-len(slotLayout)-1] != '-' {
		return nil, false
	}
	userID := rest[:len(rest)-len(slotLayout)-1]
	slot, err := time.Parse(slotLayout, rest[len(rest)-len(slotLayout):])
	if err != nil || checkUserID(userID) != nil || DeliveryID(userID, slot, manual) != id {
		return nil, false
	}
	sec, err := slotSecond(slot)
	if err != nil {
		return nil, false
	}
	return recordKey(userID, sec, manual), true
}

// encodeDelivery is the record of a validated delivery: format byte,
// 2-byte little-endian presence bitmap, state, then each present field
// in bit order. Times are stored relative to the slot (a zigzag varint
// of seconds, its low bit saying whether nanoseconds follow), so the
// usual ones take a byte or three, exactly.
func encodeDelivery(d nudges.Delivery) ([]byte, error) {
	slot := d.Slot.Unix()
	var bits uint16
	set := func(bit uint16, present bool) {
		if present {
			bits |= bit
		}
	}
	set(fNudgeID, d.NudgeID != "")
	set(fTheme, d.Theme != "")
	set(fRole, d.Role != "")
	set(fReason, d.Reason != "")
	set(fRound, d.Round != 0)
	set(fAttempts, d.Attempts != 0)
	set(fTryAt, !d.TryAt.IsZero())
	set(fChannel, d.Channel != "")
	set(fTS, d.TS != "")
	set(fCreated, !d.Created.IsZero())
	set(fSentAt, !d.SentAt.IsZero())
	set(fOutcome, d.Outcome != "")
	set(fActedAt, !d.ActedAt.IsZero())
	set(fSnoozeTo, !d.SnoozeTo.IsZero())
	set(fFeedback, d.Feedback != "")
	set(fSlotNanos, d.Slot.Nanosecond() != 0)

	state := enumCode(stateCodes, string(d.State))
	if state == enumOther {
		return nil, fmt.Errorf("delivery %s has unknown state %q", d.ID, d.State)
	}
	b := make([]byte, 0, 128)
	b = append(b, deliveryFormat, byte(bits), byte(bits>>8), state)
	var err error
	putTime := func(t time.Time) {
		if err == nil {
			b, err = appendRelTime(b, t, slot)
		}
	}
	if bits&fNudgeID != 0 {
		b = appendString(b, d.NudgeID)
	}
	if bits&fTheme != 0 {
		b = appendEnum(b, themeCodes, string(d.Theme))
	}
	if bits&fRole != 0 {
		b = appendEnum(b, roleCodes, string(d.Role))
	}
	if bits&fReason != 0 {
		b = appendString(b, d.Reason)
	}
	if d.Round > math.MaxInt32 || d.Round < math.MinInt32 || d.Attempts > math.MaxInt32 || d.Attempts < math.MinInt32 {
		return nil, fmt.Errorf("delivery %s: round %d or attempts %d out of range", d.ID, d.Round, d.Attempts)
	}
	if bits&fRound != 0 {
		b = binary.AppendVarint(b, int64(d.Round))
	}
	if bits&fAttempts != 0 {
		b = binary.AppendVarint(b, int64(d.Attempts))
	}
	if bits&fTryAt != 0 {
		putTime(d.TryAt)
	}
	if bits&fChannel != 0 {
		b = appendString(b, d.Channel)
	}
	if bits&fTS != 0 {
		b = appendTS(b, d.TS, slot)
	}
	if bits&fCreated != 0 {
		putTime(d.Created)
	}
	if bits&fSentAt != 0 {
		putTime(d.SentAt)
	}
	if bits&fOutcome != 0 {
		b = appendEnum(b, outcomeCodes, string(d.Outcome))
	}
	if bits&fActedAt != 0 {
		putTime(d.ActedAt)
	}
	if bits&fSnoozeTo != 0 {
		putTime(d.SnoozeTo)
	}
	if bits&fFeedback != 0 {
		b = appendEnum(b, outcomeCodes, string(d.Feedback))
	}
	if bits&fSlotNanos != 0 {
		b = binary.AppendUvarint(b, uint64(d.Slot.Nanosecond()))
	}
	if err != nil {
		return nil, fmt.Errorf("delivery %s: %w", d.ID, err)
	}
	return b, nil
}

// errBadRecord is wrapped by every decoding failure.
var errBadRecord = errors.New("not a delivery record")

// decodeDelivery is the delivery stored at key k with record v. It
// copies everything out of v and refuses, never panics on, a damaged
// key or record.
func decodeDelivery(k, v []byte) (nudges.Delivery, error) {
	userID, sec, manual, err := splitRecordKey(k)
	if err != nil {
		return nudges.Delivery{}, fmt.Errorf("%w: %w", errBadRecord, err)
	}
	d, err := decodeRecord5(v, int64(sec))
	if err != nil {
		return nudges.Delivery{}, fmt.Errorf("delivery record of %s: %w: %w", DeliveryID(userID, time.Unix(int64(sec), 0), manual), errBadRecord, err)
	}
	d.UserID, d.Manual = userID, manual
	d.Slot = time.Unix(int64(sec), int64(d.Slot.Nanosecond())).UTC()
	d.ID = DeliveryID(userID, d.Slot, manual)
	return d, nil
}

// decodeRecord5 reads the fields of a record; the slot it returns holds
// only the nanoseconds.
func decodeRecord5(v []byte, slot int64) (nudges.Delivery, error) {
	var d nudges.Delivery
	r := reader{b: v}
	if f := r.byte(); r.err == nil && f != deliveryFormat {
		return d, fmt.Errorf("format %d, want %d", f, deliveryFormat)
	}
	bits := uint16(r.byte()) | uint16(r.byte())<<8
	if st := r.byte(); r.err == nil {
		if st == 0 || int(st) > len(stateCodes) {
			return d, fmt.Errorf("unknown state code %d", st)
		}
		d.State = nudges.DeliveryState(stateCodes[st-1])
	}
	if bits&fNudgeID != 0 {
		d.NudgeID = r.string()
	}
	if bits&fTheme != 0 {
		d.Theme = nudges.Theme(r.enum(themeCodes))
	}
	if bits&fRole != 0 {
		d.Role = nudges.Role(r.enum(roleCodes))
	}
	if bits&fReason != 0 {
		d.Reason = r.string()
	}
	if bits&fRound != 0 {
		d.Round = r.int()
	}
	if bits&fAttempts != 0 {
		d.Attempts = r.int()
	}
	if bits&fTryAt != 0 {
		d.TryAt = r.time(slot)
	}
	if bits&fChannel != 0 {
		d.Channel = r.string()
	}
	if bits&fTS != 0 {
		d.TS = r.ts(slot)
	}
	if bits&fCreated != 0 {
		d.Created = r.time(slot)
	}
	if bits&fSentAt != 0 {
		d.SentAt = r.time(slot)
	}
	if bits&fOutcome != 0 {
		d.Outcome = nudges.Outcome(r.enum(outcomeCodes))
	}
	if bits&fActedAt != 0 {
		d.ActedAt = r.time(slot)
	}
	if bits&fSnoozeTo != 0 {
		d.SnoozeTo = r.time(slot)
	}
	if bits&fFeedback != 0 {
		d.Feedback = nudges.Outcome(r.enum(outcomeCodes))
	}
	if bits&fSlotNanos != 0 {
		n := r.uvarint()
		if r.err == nil && (n == 0 || n >= 1e9) {
			r.fail("slot nanoseconds %d", n)
		}
		d.Slot = time.Unix(0, int64(n))
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d bytes after the last field", len(r.b))
	}
	return d, r.err
}

func enumCode(table []string, v string) byte {
	for i, s := range table {
		if s == v {
			return byte(i + 1)
		}
	}
	return enumOther
}

func appendEnum(b []byte, table []string, v string) []byte {
	c := enumCode(table, v)
	b = append(b, c)
	if c == enumOther {
		b = appendString(b, v)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// maxRelSeconds bounds a stored time's distance from its slot, so its
// zigzag form shifted left once fits 64 bits; no real time comes near.
const maxRelSeconds = 1 << 61

func appendRelTime(b []byte, t time.Time, slot int64) ([]byte, error) {
	rel := t.Unix() - slot
	if rel > maxRelSeconds || rel < -maxRelSeconds {
		return nil, fmt.Errorf("time %s is too far from the slot to store", t.Format(time.RFC3339))
	}
	v := zigzag(rel) << 1
	if t.Nanosecond() != 0 {
		v |= 1
	}
	b = binary.AppendUvarint(b, v)
	if t.Nanosecond() != 0 {
		b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	}
	return b, nil
}

// Slack's message timestamps ("1767517200.000123") are stored as a
// number relative to the slot when they read back exactly, else as a
// string; the low bit says which.
const maxTSDelta = 1 << 40

func appendTS(b []byte, ts string, slot int64) []byte {
	if sec, micro, ok := parseTS(ts); ok && sec-slot < maxTSDelta && slot-sec < maxTSDelta {
		return binary.AppendUvarint(b, (zigzag(sec-slot)*1e6+uint64(micro))<<1|1)
	}
	b = binary.AppendUvarint(b, uint64(len(ts))<<1)
	return append(b, ts...)
}

// parseTS reads a canonical "seconds.microseconds" Slack timestamp.
func parseTS(ts string) (sec int64, micro int, ok bool) {
	s, m, found := strings.Cut(ts, ".")
	if !found || len(m) != 6 || s == "" || len(s) > 12 || (len(s) > 1 && s[0] == '0') {
		return 0, 0, false
	}
	for _, c := range s + m {
		if c < '0' || c > '9' {
			return 0, 0, false
		}
	}
	sec, err1 := strconv.ParseInt(s, 10, 64)
	mi, err2 := strconv.Atoi(m)
	return sec, mi, err1 == nil && err2 == nil
}

func formatTS(sec int64, micro uint64) string {
	return strconv.FormatInt(sec, 10) + "." + fmt.Sprintf("%06d", micro)
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// reader reads a record, keeping the first error; reads after it return
// zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("record ends early")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) int() int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 || v > math.MaxInt32 || v < math.MinInt32 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("a field of %d bytes runs past the record's end", n)
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) string() string { return string(r.bytes(r.uvarint())) }

func (r *reader) enum(table []string) string {
	c := r.byte()
	switch {
	case r.err != nil:
		return ""
	case c == enumOther:
		return r.string()
	case c == 0 || int(c) > len(table):
		r.fail("unknown code %d", c)
		return ""
	}
	return table[c-1]
}

func (r *reader) time(slot int64) time.Time {
	v := r.uvarint()
	var nanos uint64
	if v&1 != 0 {
		if nanos = r.uvarint(); r.err == nil && (nanos == 0 || nanos >= 1e9) {
			r.fail("nanoseconds %d", nanos)
		}
	}
	rel := unzigzag(v >> 1)
	if r.err == nil && (rel > maxRelSeconds || rel < -maxRelSeconds) {
		r.fail("a time too far from the slot")
	}
	if r.err != nil {
		return time.Time{}
	}
	t := time.Unix(slot+rel, int64(nanos)).UTC()
	if t.IsZero() {
		// Zero times are left out; storing one here is damage.
		r.fail("a present time is zero")
	}
	return t
}

func (r *reader) ts(slot int64) string {
	v := r.uvarint()
	if r.err != nil {
		return ""
	}
	if v&1 == 0 {
		return string(r.bytes(v >> 1))
	}
	n := v >> 1
	rel := unzigzag(n / 1e6)
	sec := slot + rel
	if rel >= maxTSDelta || -rel >= maxTSDelta || sec < 0 {
		r.fail("message timestamp before 1970")
		return ""
	}
	return formatTS(sec, n%1e6)
}

// personKey is the person index key of userID's period holding sec:
// user id ‖ 0x00 ‖ 2-byte big-endian period.
func personKey(userID string, sec uint32) []byte {
	k := make([]byte, 0, len(userID)+3)
	k = append(k, userID...)
	k = append(k, keySep)
	return binary.BigEndian.AppendUint16(k, uint16(sec>>personPeriodShift))
}

// personEntry is one delivery listed in a person index value: its
// offset in the period and kind, as one uvarint (offset<<1 | kind), in
// ascending order.
type personEntry = uint32

func personEntryOf(sec uint32, manual bool) personEntry {
	e := (sec & personPeriodMask) << 1
	if manual {
		e |= kindManual
	}
	return e
}

// splitPersonKey reads a person index key.
func splitPersonKey(k []byte) (userID string, period uint16, err error) {
	i := bytes.IndexByte(k, keySep)
	if i <= 0 || len(k) != i+3 {
		return "", 0, fmt.Errorf("person index key %x is not user id ‖ 0 ‖ period", k)
	}
	return string(k[:i]), binary.BigEndian.Uint16(k[i+1:]), nil
}

// decodePersonEntries reads a person index value; the entries must
// ascend and stay within a period.
func decodePersonEntries(v []byte) ([]personEntry, error) {
	es := make([]personEntry, 0, len(v)/3)
	for len(v) > 0 {
		e, n := binary.Uvarint(v)
		if n <= 0 || e >= 1<<(personPeriodShift+1) || (len(es) > 0 && uint32(e) <= es[len(es)-1]) {
			return nil, fmt.Errorf("person index value is damaged")
		}
		es = append(es, uint32(e))
		v = v[n:]
	}
	if len(es) == 0 {
		return nil, fmt.Errorf("person index value is empty")
	}
	return es, nil
}

func encodePersonEntries(es []personEntry) []byte {
	b := make([]byte, 0, 3*len(es))
	for _, e := range es {
		b = binary.AppendUvarint(b, uint64(e))
	}
	return b
}

// recordKeyOfEntry is the record key a person index entry stands for.
func recordKeyOfEntry(userID string, period uint16, e personEntry) []byte {
	sec := uint32(period)<<personPeriodShift | e>>1
	return recordKey(userID, sec, e&kindManual != 0)
}
