package storage_test

import (
	"encoding/hex"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/internal/simclock"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// The subscribers, deliveries and pulse_history buckets hold the JSON
// encoding of nudges.Subscriber, nudges.Delivery and nudges.PulseSummary
// (see the package doc). These are the encodings of fully populated
// values; a change to them is a change to the file format.
const (
	goldenSubscriber = `{"user_id":"U1","subscribed":true,"subscribed_at":"2026-03-01T09:00:00Z",` +
		`"profile_tz":"Europe/Berlin","tz_override":"Asia/Tokyo","time":"08:30","days":42,"focus":"lead",` +
		`"paused_until":"2026-03-09T00:00:00Z","inactive":true,"inactive_reason":"account_inactive",` +
		`"dm_channel":"D1","next_due":"2026-03-03T07:30:00Z","last_slot":"2026-03-02T07:30:00Z",` +
		`"contexts":{"known":true,"has":["standup","one-to-ones"]},"arc":{"theme":"generalist","steps":2},` +
		`"team_lean":{"lean":{"sooner":true,"reason":"Your team's clarity pulse went from 3.9 to 3.1."},"until":"2026-03-09T09:00:00Z"},"streak":3,` +
		`"seen":["n1","n2"],"last_role":"lead","stats":{"strategy":{"up":2,"down":1}}}`
	// The key: slot second (0x69a55190 = 2026-03-02T09:00:00Z) ‖ kind
	// (1, manual) ‖ user id "U1". The record (delivery_codec.go): format
	// 1, bitmap 0x7fff (all but the slot's nanoseconds), state sent, then
	// nudge id, theme, role, reason, round, attempts, try_at (+1 s),
	// channel, ts (as a number: +1 s, 100 µs), created (+0), sent_at
	// (+2 s), outcome, acted_at and snooze_to (+1 h), feedback.
	goldenDeliveryKey    = "69a55190015531"
	goldenDeliveryRecord = "01ff7f02026e3103010f737472617465677920697320647565020404024431c993f401000801c070c07006"

	goldenDelivery = `{"id":"U1-20260302T090000Z-now","user_id":"U1","nudge_id":"n1","theme":"strategy","role":"lead",` +
		`"slot":"2026-03-02T09:00:00Z","reason":"strategy is due","manual":true,"state":"sent","round":1,"attempts":2,` +
		`"try_at":"2026-03-02T09:00:01Z","channel":"D1","ts":"1772442001.000100","created":"2026-03-02T09:00:00Z",` +
		`"sent_at":"2026-03-02T09:00:02Z","outcome":"done","acted_at":"2026-03-02T10:00:00Z",` +
		`"snooze_to":"2026-03-02T10:00:00Z","feedback":"helpful"}`
	goldenPulseSummary = `{"period_end":"2026-03-06T16:00:00Z","responses":2,"sum":7,"counts":[0,0,1,1,0],` +
		`"hear_more":["how the roadmap was chosen"],"hear_more_writers":1}`
)

// Ensure the stored form of the domain types is exactly the pinned one,
// and reads back to the same values. A renamed field or JSON tag in
// nudges fails here instead of silently changing the file format: such a
// change needs a schema version and a migration (see storage/doc.go).
func TestRecordFormatPinned(t *testing.T) {
	clock := simclock.New(base)
	path := filepath.Join(t.TempDir(), "nudgebot.db")
	db := MustOpenAt(t, path, storage.Options{Now: clock.Now})

	wantSub := nudges.Subscriber{
		UserID: "U1", Subscribed: true, SubscribedAt: base.Add(-24 * time.Hour),
		ProfileTZ: "Europe/Berlin", TZOverride: "Asia/Tokyo", Time: "08:30",
		Days:  nudges.Weekdays(0).With(time.Monday).With(time.Wednesday).With(time.Friday),
		Focus: "lead", PausedUntil: time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC),
		Inactive: true, InactiveReason: "account_inactive", DMChannel: "D1",
		NextDue: base.Add(22*time.Hour + 30*time.Minute), LastSlot: base.Add(-90 * time.Minute),
		Streak: 3, Seen: []string{"n1", "n2"}, LastRole: nudges.RoleLead,
		Stats:    map[nudges.Theme]nudges.BetaStat{nudges.ThemeStrategy: {Up: 2, Down: 1}},
		Contexts: nudges.Situation{Known: true, Has: nudges.ContextsOf(nudges.ContextStandup, nudges.ContextOneToOnes)},
		Arc:      nudges.ArcProgress{Theme: nudges.ThemeGeneralist, Steps: 2},
		TeamLean: nudges.TeamLean{Lean: nudges.Lean{Sooner: true, Reason: "Your team's clarity pulse went from 3.9 to 3.1."}, Until: base.Add(7 * 24 * time.Hour)},
	}
	if _, err := db.UpdateSubscriber("U1", func(s *nudges.Subscriber) error {
		*s = wantSub
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	id := storage.DeliveryID("U1", base, true)
	pending := nudges.Delivery{ID: id, UserID: "U1", NudgeID: "n1", Theme: nudges.ThemeStrategy, Role: nudges.RoleLead,
		Slot: base, Manual: true, State: nudges.StatePending, Created: base}
	if _, err := db.StartDelivery(pending, wantSub.NextDue, nil); err != nil {
		t.Fatal(err)
	}
	wantDel := pending
	wantDel.Reason, wantDel.State, wantDel.Round, wantDel.Attempts = "strategy is due", nudges.StateSent, 1, 2
	wantDel.TryAt, wantDel.Channel, wantDel.TS = base.Add(time.Second), "D1", "1772442001.000100"
	wantDel.SentAt, wantDel.Outcome, wantDel.ActedAt = base.Add(2*time.Second), nudges.OutcomeDone, base.Add(time.Hour)
	wantDel.SnoozeTo, wantDel.Feedback = base.Add(time.Hour), nudges.OutcomeHelpful
	if _, err := db.UpdateDelivery(id, func(d *nudges.Delivery) error {
		*d = wantDel
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	if err := db.OpenPulse("C1", "p1", base); err != nil {
		t.Fatal(err)
	}
	for user, score := range map[string]int{"U1": 3, "U2": 4} {
		if _, err := db.VotePulse("p1", user, score); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AddHearMore("p1", "U2", "how the roadmap was chosen"); err != nil {
		t.Fatal(err)
	}
	clock.Set(time.Date(2026, 3, 6, 16, 0, 0, 0, time.UTC))
	wantSum, err := db.ClosePulse("p1")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Every field set, so a field added to nudges shows up here too.
	for _, v := range []any{wantSub, wantDel, wantSum} {
		rv := reflect.ValueOf(v)
		for i := range rv.NumField() {
			if rv.Field(i).IsZero() {
				t.Errorf("%s.%s is zero in the pinned value: set it and add it to the golden record", rv.Type(), rv.Type().Field(i).Name)
			}
		}
	}

	raw := rawContents(t, path)
	for _, tt := range []struct{ bucket, want string }{
		{"subscribers", goldenSubscriber},
		{"pulse_history", goldenPulseSummary},
	} {
		if n := len(raw[tt.bucket]); n != 1 {
			t.Errorf("%s holds %d records, want 1", tt.bucket, n)
			continue
		}
		if got := string(raw[tt.bucket][0][1]); got != tt.want {
			t.Errorf("%s record is\n%s\nwant\n%s", tt.bucket, got, tt.want)
		}
	}

	// The delivery is stored in the binary record of schema 5; its JSON
	// is what exports and the PostgreSQL engine keep.
	if got := string(mustJSON(t, wantDel)); got != goldenDelivery {
		t.Errorf("delivery JSON is\n%s\nwant\n%s", got, goldenDelivery)
	}
	if recs := raw[storage.RawRecordsBucket]; len(recs) != 1 {
		t.Errorf("%s holds %d records, want 1", storage.RawRecordsBucket, len(recs))
	} else if k, v := hex.EncodeToString(recs[0][0]), hex.EncodeToString(recs[0][1]); k != goldenDeliveryKey || v != goldenDeliveryRecord {
		t.Errorf("delivery record is\n%s → %s\nwant\n%s → %s", k, v, goldenDeliveryKey, goldenDeliveryRecord)
	}

	db = MustOpenAt(t, path, storage.Options{})
	if got, err := db.Subscriber("U1"); err != nil || !reflect.DeepEqual(got, wantSub) {
		t.Errorf("Subscriber read back as %+v, %v\nwant %+v", got, err, wantSub)
	}
	if got, err := db.Delivery(id); err != nil || !reflect.DeepEqual(got, wantDel) {
		t.Errorf("Delivery read back as %+v, %v\nwant %+v", got, err, wantDel)
	}
	if got, err := db.PulseHistory("C1", 0); err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], wantSum) {
		t.Errorf("PulseHistory read back as %+v, %v\nwant [%+v]", got, err, wantSum)
	}
}
