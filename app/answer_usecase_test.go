package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure each answer to a nudge leaves it as its rule says: done and skip
// close it, a snooze puts it back in the outbox as a new round (until
// tomorrow means 09:00 in the person's zone), and feedback comes once,
// after an answer, and changes how the theme is weighed.
func TestAnswerNudge(t *testing.T) {
	tokyo := zone(t, "Asia/Tokyo")
	cases := []struct {
		name     string
		answers  []nudges.Answer
		outcome  nudges.Outcome
		feedback nudges.Outcome
		state    nudges.DeliveryState
		round    int
		snoozeTo func(now time.Time) time.Time
	}{
		{"done", []nudges.Answer{nudges.AnswerDone}, nudges.OutcomeDone, "", nudges.StateSent, 0, nil},
		{"skip", []nudges.Answer{nudges.AnswerSkip}, nudges.OutcomeSkipped, "", nudges.StateSent, 0, nil},
		{"snooze an hour", []nudges.Answer{nudges.AnswerSnoozeHour}, nudges.OutcomeSnoozed, "", nudges.StatePending, 1,
			func(now time.Time) time.Time { return now.Add(time.Hour) }},
		{"until tomorrow, in Tokyo", []nudges.Answer{nudges.AnswerSnoozeTomorrow}, nudges.OutcomeSnoozed, "", nudges.StatePending, 1,
			func(now time.Time) time.Time { return at(now, tokyo, 9, 0).AddDate(0, 0, 1) }},
		{"done, then helpful", []nudges.Answer{nudges.AnswerDone, nudges.AnswerHelpful}, nudges.OutcomeDone, nudges.OutcomeHelpful, nudges.StateSent, 0, nil},
		{"skip, then not for me, then helpful", []nudges.Answer{nudges.AnswerSkip, nudges.AnswerNotForMe, nudges.AnswerHelpful}, nudges.OutcomeSkipped, nudges.OutcomeNotForMe, nudges.StateSent, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc := newTestCore(t)
			tc.slack.profiles[owner] = app.Profile{TZ: "Asia/Tokyo"}
			ctx := context.Background()
			d := tc.deliver(t, owner)
			before := tc.sub(t, owner).Stats[d.Theme]
			var res app.Answered
			for _, a := range c.answers {
				var err error
				if res, err = tc.AnswerNudge(ctx, app.Person(owner), d.ID, a, app.MessageRef{}, tc.now); err != nil {
					t.Fatalf("%s: %v", a, err)
				}
			}
			got := tc.delivery(t, d.ID)
			if got.Outcome != c.outcome || got.Feedback != c.feedback || got.State != c.state || got.Round != c.round {
				t.Errorf("delivery = outcome %q, feedback %q, %s, round %d", got.Outcome, got.Feedback, got.State, got.Round)
			}
			if res.Delivery.ID != d.ID || res.Nudge.ID != d.NudgeID || res.Location.String() != "Asia/Tokyo" {
				t.Errorf("answer = delivery %s, nudge %s, zone %v; want %s, %s, Asia/Tokyo", res.Delivery.ID, res.Nudge.ID, res.Location, d.ID, d.NudgeID)
			}
			if c.snoozeTo != nil && !got.SnoozeTo.Equal(c.snoozeTo(tc.now)) {
				t.Errorf("snoozed to %v, want %v", got.SnoozeTo.In(tokyo), c.snoozeTo(tc.now).In(tokyo))
			}
			after := tc.sub(t, owner).Stats[d.Theme]
			if weighed := after != before; weighed != (c.outcome != nudges.OutcomeSnoozed) {
				t.Errorf("theme weights %+v → %+v after %v", before, after, c.answers)
			}
		})
	}
}

// Ensure the nudge's message is updated where it was clicked (a snoozed
// nudge has one message per round), and that an update Slack refuses
// loses no answer.
func TestAnswerNudgeUpdatesItsMessage(t *testing.T) {
	tc, fs := newFaultyCore(t)
	ctx := context.Background()
	d := tc.deliver(t, owner)
	if _, err := tc.AnswerNudge(ctx, app.Person(owner), d.ID, nudges.AnswerHelpful, app.MessageRef{}, tc.now); err != nil {
		t.Fatal(err)
	}
	if tc.slack.updates != 1 {
		t.Fatalf("message updates = %d, want 1", tc.slack.updates)
	}
	fs.set(func(f *faultySlack) { f.updateErr = refusal("message_not_found") })
	res, err := tc.AnswerNudge(ctx, app.Person(owner), d.ID, nudges.AnswerDone, app.MessageRef{Channel: "D" + owner, TS: d.TS}, tc.now)
	if err != nil || res.Delivery.Outcome != nudges.OutcomeDone {
		t.Fatalf("answer with the update refused = %+v, %v", res, err)
	}
	if got := tc.delivery(t, d.ID); got.Outcome != nudges.OutcomeDone {
		t.Errorf("stored outcome = %q, want done", got.Outcome)
	}
}

// Ensure nobody but the person a nudge went to can answer it, whatever
// delivery id they send.
func TestAnswerSomeoneElsesNudge(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	d := tc.deliver(t, owner)
	for _, who := range []app.Actor{app.Person(other), app.Person(admin), {}} {
		if _, err := tc.AnswerNudge(ctx, who, d.ID, nudges.AnswerSkip, app.MessageRef{}, tc.now); !app.IsForbidden(err) {
			t.Errorf("%q answering the owner's nudge: %v, want a refusal", who.UserID, err)
		}
	}
	if got := tc.delivery(t, d.ID); got.Outcome != nudges.OutcomeNone {
		t.Errorf("outcome = %q after others' answers", got.Outcome)
	}
	if tc.slack.updates != 0 {
		t.Errorf("the owner's message was updated %d times by others", tc.slack.updates)
	}
	if _, err := tc.AnswerNudge(ctx, app.Person(owner), d.ID, "wave", app.MessageRef{}, tc.now); !errors.Is(err, nudges.ErrUnknownAnswer) {
		t.Errorf("an unknown answer: %v", err)
	}
}

// Ensure a company holiday in the config skips the day's slot for
// everyone, and one for a single zone only there.
func TestHolidaysSkipTheSlot(t *testing.T) {
	tc := newTestCore(t)
	tc.rebuild(t, coreOptions{edit: func(c *app.Config) {
		c.Calendar.Holidays = []nudges.Holiday{{Date: "2026-03-03"}, {Date: "2026-03-04", TZ: "Asia/Tokyo"}}
	}})
	ctx := context.Background()
	tc.slack.profiles[other] = app.Profile{TZ: "Asia/Tokyo"}
	tc.subscribe(t, owner)
	tc.subscribe(t, other)
	for hours := range 4 * 24 { // Monday 08:00 to Friday 08:00 UTC, hour by hour
		tc.now = time.Date(2026, 3, 2, 8+hours, 0, 0, 0, time.UTC)
		tc.Tick(ctx, tc.now)
	}
	days := func(who string) []time.Weekday {
		var out []time.Weekday
		for _, p := range tc.slack.postsTo("D" + who) {
			out = append(out, tc.delivery(t, p.deliveryID).Slot.In(tc.Location(who)).Weekday())
		}
		return out
	}
	if got := days(owner); len(got) != 3 || got[1] != time.Wednesday {
		t.Errorf("Berlin's nudges came on %v, want Monday, Wednesday, Thursday", got)
	}
	if got := days(other); len(got) != 2 || got[0] != time.Thursday {
		t.Errorf("Tokyo's nudges came on %v, want Thursday and Friday", got)
	}
}

// Ensure only the config's admins are admins, never an empty id, and
// people without a zone get the fallback.
func TestIsAdminAndFallback(t *testing.T) {
	tc := newTestCore(t)
	for id, want := range map[string]bool{admin: true, owner: false, "": false} {
		if got := tc.IsAdmin(id); got != want {
			t.Errorf("IsAdmin(%q) = %v", id, got)
		}
	}
	if tc.Fallback() != time.UTC || tc.Location(outsider) != time.UTC {
		t.Errorf("fallback = %v, a stranger's zone %v", tc.Fallback(), tc.Location(outsider))
	}
}
