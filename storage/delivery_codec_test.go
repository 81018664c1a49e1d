package storage

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

var codecSlot = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func codecDelivery(user string, slot time.Time, manual bool) nudges.Delivery {
	return nudges.Delivery{ID: DeliveryID(user, slot, manual), UserID: user, Slot: slot, Manual: manual, State: nudges.StatePending}
}

// Ensure every kind of delivery reads back exactly as it was written,
// including values the enum tables lack and times off the second.
func TestDeliveryCodec_RoundTrip(t *testing.T) {
	full := codecDelivery("UBENCH0000042", codecSlot, false)
	full.NudgeID, full.Theme, full.Role, full.Reason = "lead-strategy-017", nudges.ThemeAgendaSetter, nudges.RoleBoth, "Alternating with yesterday's managing nudge: today is about leading."
	full.State, full.Round, full.Attempts = nudges.StateSent, 3, 7
	full.TryAt, full.Channel, full.TS = codecSlot.Add(1234567891*time.Nanosecond), "D0123456789", "1772442001.123456"
	full.Created, full.SentAt = codecSlot.Add(-time.Millisecond), codecSlot.Add(2*time.Second)
	full.Outcome, full.ActedAt, full.SnoozeTo, full.Feedback = nudges.OutcomeNotForMe, codecSlot.Add(8*time.Hour), codecSlot.Add(-400*24*time.Hour), nudges.OutcomeHelpful

	odd := full
	odd.Theme, odd.Role, odd.Outcome, odd.Feedback = "a-theme-of-tomorrow", "coach", "shrugged", "meh"
	odd.TS, odd.Round, odd.Attempts = "01772442001.5", -1, -2
	odd.TryAt = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	odd.Created = time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)

	offSecond := codecDelivery("U1", codecSlot.Add(250*time.Millisecond), true)
	offSecond.State = nudges.StateMissed

	for name, d := range map[string]nudges.Delivery{
		"minimal":                     codecDelivery("U1", codecSlot, false),
		"manual":                      codecDelivery("U1", codecSlot, true),
		"every field":                 full,
		"unknown values":              odd,
		"slot off the second, missed": offSecond,
		"failed at 1970": func() nudges.Delivery {
			d := codecDelivery("W0", time.Unix(0, 0).UTC(), false)
			d.State, d.TS = nudges.StateFailed, "0.000001"
			return d
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			if err := validateDelivery(d); err != nil {
				t.Fatal(err)
			}
			k, err := keyOfDelivery(d)
			if err != nil {
				t.Fatal(err)
			}
			if byID, ok := keyOfID(d.ID); !ok || string(byID) != string(k) {
				t.Errorf("keyOfID(%q) = %x, %v; want %x", d.ID, byID, ok, k)
			}
			v, err := encodeDelivery(d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeDelivery(k, v)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, d) {
				t.Errorf("read back\n%+v\nwant\n%+v", got, d)
			}
		})
	}
}

// Ensure the bytes of a record do not change unnoticed: the file
// format. TestRecordFormatPinned pins a record with every field.
func TestDeliveryRecordGolden(t *testing.T) {
	d := codecDelivery("U1", codecSlot, false)
	d.NudgeID, d.Theme, d.Role, d.Created = "n1", nudges.ThemeLeading, nudges.RoleManage, codecSlot.Add(-1500*time.Millisecond)
	k, err := keyOfDelivery(d)
	if err != nil {
		t.Fatal(err)
	}
	v, err := encodeDelivery(d)
	if err != nil {
		t.Fatal(err)
	}
	// Key: 0x69a55190 (2026-03-02T09:00:00Z), kind 0, "U1". Record:
	// format 1, bitmap 0x0207 (nudge id, theme, role, created), pending,
	// "n1", theme 1, role 2, created -2 s + 500,000,000 ns.
	const wantKey, wantRecord = "69a55190005531", "01070201" + "026e31" + "01" + "02" + "07" + "80cab5ee01"
	if got := hex.EncodeToString(k); got != wantKey {
		t.Errorf("key %s, want %s", got, wantKey)
	}
	if got := hex.EncodeToString(v); got != wantRecord {
		t.Errorf("record %s, want %s", got, wantRecord)
	}
}

// Ensure damaged records are refused with an error saying so, never a
// panic or a wrong value.
func TestDeliveryCodec_Damaged(t *testing.T) {
	d := codecDelivery("U1", codecSlot, false)
	d.NudgeID, d.Reason, d.Created = "n1", "why", codecSlot
	k, _ := keyOfDelivery(d)
	v, err := encodeDelivery(d)
	if err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		k, v []byte
		want string
	}{
		"empty":            {k, nil, "record ends early"},
		"other format":     {k, append([]byte{2}, v[1:]...), "format 2"},
		"truncated":        {k, v[:len(v)-1], "bad varint"},
		"trailing bytes":   {k, append(append([]byte{}, v...), 0), "after the last field"},
		"unknown state":    {k, []byte{1, 0, 0, 9}, "unknown state code 9"},
		"string too long":  {k, []byte{1, fNudgeID, 0, 1, 200, 'x'}, "runs past the record's end"},
		"unknown enum":     {k, []byte{1, fTheme, 0, 1, 77}, "unknown code 77"},
		"zero nanoseconds": {k, []byte{1, 0, fCreated >> 8, 1, 1, 0}, "nanoseconds 0"},
		"short key":        {[]byte{1, 2, 3}, v, "not slot ‖ kind ‖ user id"},
		"bad kind":         {append([]byte{0, 0, 0, 1, 7}, 'U'), v, "not slot ‖ kind ‖ user id"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeDelivery(tt.k, tt.v)
			if !errors.Is(err, errBadRecord) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want errBadRecord saying %q", err, tt.want)
			}
		})
	}
}

// FuzzDecodeDelivery: a damaged record gives an error, never a panic,
// and whatever decodes encodes again to the same delivery.
func FuzzDecodeDelivery(f *testing.F) {
	d := codecDelivery("U1", codecSlot, true)
	d.NudgeID, d.Theme, d.Reason, d.State, d.TS, d.SentAt, d.Outcome = "n1", "x-theme", "why", nudges.StateSent, "1772442001.000100", codecSlot.Add(time.Second), nudges.OutcomeDone
	for _, d := range []nudges.Delivery{d, codecDelivery("U2", codecSlot.Add(time.Millisecond), false)} {
		k, _ := keyOfDelivery(d)
		v, err := encodeDelivery(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(k, v)
	}
	f.Fuzz(func(t *testing.T, k, v []byte) {
		d, err := decodeDelivery(k, v)
		if err != nil {
			if !errors.Is(err, errBadRecord) {
				t.Fatalf("err %v does not wrap errBadRecord", err)
			}
			return
		}
		k2, err := keyOfDelivery(d)
		if err != nil {
			t.Fatalf("decoded %+v, whose key fails: %v", d, err)
		}
		v2, err := encodeDelivery(d)
		if err != nil {
			t.Fatalf("decoded %+v, which does not encode: %v", d, err)
		}
		again, err := decodeDelivery(k2, v2)
		if err != nil || !reflect.DeepEqual(again, d) {
			t.Fatalf("decoded %+v; encoded and decoded again: %+v, %v", d, again, err)
		}
	})
}
