package nudges

import (
	"errors"
	"testing"
	"time"
)

// Ensure every answer does what the buttons promise: who may answer, what
// an answer changes, snooze rounds, and what feedback does to the choice
// of the next nudges.
func TestDeliveryApply(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 14, 30, 0, 0, time.UTC) // 15:30 in Berlin
	fresh := Delivery{ID: "d1", UserID: "U1", Theme: ThemeStrategy, State: StateSent, Attempts: 1, TS: "1.0"}
	answered := func(o Outcome) Delivery { d := fresh; d.Outcome = o; d.ActedAt = now.Add(-time.Hour); return d }

	cases := []struct {
		name     string
		d        Delivery
		by       string
		ans      Answer
		wantErr  error
		check    func(t *testing.T, d Delivery)
		wantUp   float64 // the theme's successes after
		wantDown float64 // and failures
	}{
		{name: "done", d: fresh, by: "U1", ans: AnswerDone, wantUp: 1, check: func(t *testing.T, d Delivery) {
			if d.Outcome != OutcomeDone || !d.ActedAt.Equal(now) || d.State != StateSent {
				t.Errorf("got %+v", d)
			}
		}},
		{name: "skip", d: fresh, by: "U1", ans: AnswerSkip, wantDown: 1, check: func(t *testing.T, d Delivery) {
			if d.Outcome != OutcomeSkipped {
				t.Errorf("outcome %q", d.Outcome)
			}
		}},
		{name: "someone else", d: fresh, by: "U2", ans: AnswerDone, wantErr: ErrNotYours},
		{name: "twice", d: answered(OutcomeDone), by: "U1", ans: AnswerSkip, wantErr: ErrAnswered},
		{name: "snooze an hour", d: fresh, by: "U1", ans: AnswerSnoozeHour, check: func(t *testing.T, d Delivery) {
			if d.Outcome != OutcomeSnoozed || !d.SnoozeTo.Equal(now.Add(time.Hour)) || d.State != StatePending || d.Round != 1 || d.Attempts != 0 {
				t.Errorf("got %+v", d)
			}
		}},
		{name: "until tomorrow is 09:00 in the person's zone", d: fresh, by: "U1", ans: AnswerSnoozeTomorrow, check: func(t *testing.T, d Delivery) {
			if want := time.Date(2026, 3, 3, 9, 0, 0, 0, berlin); !d.SnoozeTo.Equal(want) {
				t.Errorf("snooze to %v, want %v", d.SnoozeTo, want)
			}
		}},
		{name: "a snoozed nudge is answered again", d: func() Delivery { d := answered(OutcomeSnoozed); d.Round = 1; return d }(), by: "U1", ans: AnswerDone, wantUp: 1, check: func(t *testing.T, d Delivery) {
			if d.Outcome != OutcomeDone || d.Round != 1 {
				t.Errorf("got %+v", d)
			}
		}},
		{name: "helpful after done", d: answered(OutcomeDone), by: "U1", ans: AnswerHelpful, wantUp: 1, check: func(t *testing.T, d Delivery) {
			if d.Feedback != OutcomeHelpful || d.Outcome != OutcomeDone {
				t.Errorf("got %+v", d)
			}
		}},
		{name: "not for me weighs twice a skip", d: answered(OutcomeDone), by: "U1", ans: AnswerNotForMe, wantDown: 2},
		{name: "feedback counts once", d: func() Delivery { d := answered(OutcomeDone); d.Feedback = OutcomeHelpful; return d }(), by: "U1", ans: AnswerNotForMe, check: func(t *testing.T, d Delivery) {
			if d.Feedback != OutcomeHelpful {
				t.Errorf("feedback %q, want the first one kept", d.Feedback)
			}
		}},
		{name: "feedback from someone else", d: answered(OutcomeDone), by: "U2", ans: AnswerHelpful, wantErr: ErrNotYours},
		{name: "unknown answer", d: fresh, by: "U1", ans: Answer("explode"), wantErr: ErrUnknownAnswer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, sub := tc.d, Subscriber{UserID: "U1"}
			err := d.Apply(tc.by, tc.ans, now, berlin, &sub)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil && d != tc.d {
				t.Errorf("a refused answer changed the delivery: %+v", d)
			}
			st := sub.Stats[ThemeStrategy]
			if st.Up != tc.wantUp || st.Down != tc.wantDown {
				t.Errorf("theme stats = %+v, want up %v down %v", st, tc.wantUp, tc.wantDown)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

// Ensure a reflection counts as acting on an unanswered nudge only, and
// that the outbox transitions keep their promises.
func TestDeliveryTransitions(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	sub := Subscriber{UserID: "U1"}

	d := Delivery{UserID: "U1", Theme: ThemeLeading, State: StatePending, Slot: now}
	if !d.Sendable(now) {
		t.Error("a pending delivery at its slot is not sendable")
	}
	if ok, _ := d.NeedsReconcile(time.Minute); ok {
		t.Error("a delivery never attempted needs reconciling")
	}
	d.Attempt(now, "D1")
	if ok, at := d.NeedsReconcile(time.Minute); !ok || !at.Equal(now.Add(time.Minute)) {
		t.Errorf("after an attempt: reconcile %v at %v", ok, at)
	}
	d.NotAttempted()
	if d.Attempts != 0 {
		t.Errorf("attempts after undo = %d", d.Attempts)
	}
	d.Attempt(now, "D1")
	d.Sent(now, "D1", "1.1")
	if d.State != StateSent || d.TS != "1.1" || d.Sendable(now) {
		t.Errorf("after sent: %+v", d)
	}
	d.NotAttempted() // a sent delivery keeps its attempts
	if d.Attempts != 1 {
		t.Errorf("attempts changed on a sent delivery: %d", d.Attempts)
	}

	d.Reflected(now, &sub)
	if d.Outcome != OutcomeReflected || sub.Stats[ThemeLeading].Up != 1 {
		t.Errorf("after reflecting: %+v %+v", d, sub.Stats)
	}
	d.Outcome = OutcomeSkipped
	d.Reflected(now, &sub)
	if d.Outcome != OutcomeSkipped {
		t.Error("a reflection overwrote an answer")
	}

	snoozed := Delivery{State: StatePending, Slot: now, SnoozeTo: now.Add(time.Hour)}
	if snoozed.Sendable(now) || !snoozed.Sendable(now.Add(time.Hour)) || !snoozed.DueAt().Equal(now.Add(time.Hour)) {
		t.Errorf("snoozed delivery: sendable/due wrong: %+v", snoozed)
	}
}
