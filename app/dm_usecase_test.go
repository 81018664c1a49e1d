package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure a message typed in the DM becomes a reflection on a nudge only
// when it answers one: in the nudge's thread, whenever, or beside it
// within a day; and that the nudge then counts as acted on.
func TestReplyInDM(t *testing.T) {
	cases := []struct {
		name   string
		thread func(d nudges.Delivery) string
		after  time.Duration
		linked bool
	}{
		{"in the nudge's thread", func(d nudges.Delivery) string { return d.TS }, time.Minute, true},
		{"in the nudge's thread days later", func(d nudges.Delivery) string { return d.TS }, 5 * 24 * time.Hour, true},
		{"beside the nudge the same day", func(nudges.Delivery) string { return "" }, 3 * time.Hour, true},
		{"beside the nudge a day later", func(nudges.Delivery) string { return "" }, 24*time.Hour + time.Minute, false},
		{"in the thread of some other message", func(nudges.Delivery) string { return "99.000100" }, time.Minute, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc := newTestCore(t)
			ctx := context.Background()
			d := tc.deliver(t, owner)
			now := d.SentAt.Add(c.after)
			got, err := tc.ReplyInDM(ctx, app.Person(owner), app.DMMessage{TS: "500.000001", ThreadTS: c.thread(d), Text: "I asked instead of telling"}, now)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := tc.db.CountReflections(owner)
			outcome := tc.delivery(t, d.ID).Outcome
			if !c.linked {
				if got.Saved != nil || n != 0 || outcome != nudges.OutcomeNone {
					t.Errorf("a message near no nudge: reply %+v, %d reflections, outcome %q; want nothing kept", got, n, outcome)
				}
				return
			}
			if got.Saved == nil || got.NudgeTS != d.TS {
				t.Fatalf("reply = %+v, want saved and confirmed in the nudge's thread %s", got, d.TS)
			}
			r := got.Saved.Reflection
			if r.DeliveryID != d.ID || r.NudgeID != d.NudgeID || r.MessageTS != "500.000001" || got.Saved.Count != 1 {
				t.Errorf("reflection = %+v (count %d), want linked to %s", r, got.Saved.Count, d.ID)
			}
			if outcome != nudges.OutcomeReflected {
				t.Errorf("nudge outcome = %q, want reflected", outcome)
			}
		})
	}
}

// Ensure a message Slack delivers twice becomes one reflection.
func TestReplyInDMResentOnce(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	d := tc.deliver(t, owner)
	m := app.DMMessage{TS: "500.000001", ThreadTS: d.TS, Text: "said once"}
	first, err := tc.ReplyInDM(ctx, app.Person(owner), m, tc.now)
	if err != nil || first.Saved == nil {
		t.Fatalf("first = %+v, %v", first, err)
	}
	again, err := tc.ReplyInDM(ctx, app.Person(owner), m, tc.now.Add(time.Second))
	if err != nil || again.Saved == nil || again.Saved.Reflection.Seq != first.Saved.Reflection.Seq {
		t.Fatalf("again = %+v, %v; want the same reflection", again, err)
	}
	if n, _ := tc.db.CountReflections(owner); n != 1 {
		t.Errorf("reflections = %d, want 1", n)
	}
}

// Ensure a reply in the thread of someone else's nudge answers nothing
// of theirs: not their nudge, not their journal.
func TestReplyInSomeoneElsesThread(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	d := tc.deliver(t, owner)
	got, err := tc.ReplyInDM(ctx, app.Person(other), app.DMMessage{TS: "600.000001", ThreadTS: d.TS, Text: "mine"}, tc.now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Saved != nil {
		t.Errorf("a reply in another person's thread was saved: %+v", got.Saved.Reflection)
	}
	if o := tc.delivery(t, d.ID).Outcome; o != nudges.OutcomeNone {
		t.Errorf("the owner's nudge outcome became %q", o)
	}
}

// Ensure editing a message changes the reflection it became, deleting it
// deletes the reflection, a message that became none is left alone, and
// nobody can edit or delete another person's reflection by naming its
// message.
func TestEditAndDeleteInDM(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	d := tc.deliver(t, owner)
	const ts = "500.000001"
	saved, err := tc.ReplyInDM(ctx, app.Person(owner), app.DMMessage{TS: ts, ThreadTS: d.TS, Text: "first words"}, tc.now)
	if err != nil || saved.Saved == nil {
		t.Fatalf("reply = %+v, %v", saved, err)
	}
	seq := saved.Saved.Reflection.Seq
	text := func() string {
		r, err := tc.db.Reflection(owner, seq)
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return r.Text
	}

	if err := tc.EditInDM(ctx, app.Person(other), ts, "forged words"); err != nil {
		t.Fatal(err)
	}
	if err := tc.DeleteInDM(ctx, app.Person(other), ts); err != nil {
		t.Fatal(err)
	}
	if got := text(); got != "first words" {
		t.Fatalf("after another person's edit and delete: %q", got)
	}
	if err := tc.EditInDM(ctx, app.Person(owner), "777.000001", "not a reflection"); err != nil {
		t.Errorf("editing a message that became nothing: %v", err)
	}
	if err := tc.EditInDM(ctx, app.Person(owner), ts, "second thoughts"); err != nil {
		t.Fatal(err)
	}
	if got := text(); got != "second thoughts" {
		t.Errorf("after the edit: %q", got)
	}
	if err := tc.DeleteInDM(ctx, app.Person(owner), "777.000001"); err != nil {
		t.Errorf("deleting a message that became nothing: %v", err)
	}
	if err := tc.DeleteInDM(ctx, app.Person(owner), ts); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.db.Reflection(owner, seq); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("after the delete: %v, want not found", err)
	}
	for name, err := range map[string]error{
		"edit":   tc.EditInDM(ctx, app.Actor{}, ts, "x"),
		"delete": tc.DeleteInDM(ctx, app.Actor{}, ts),
		"reply":  func() error { _, err := tc.ReplyInDM(ctx, app.Actor{}, app.DMMessage{TS: "1.1"}, tc.now); return err }(),
	} {
		if !app.IsForbidden(err) {
			t.Errorf("%s with nobody acting: %v, want a refusal", name, err)
		}
	}
}

// Ensure a reply past the journal's cap is refused with the typed error
// and nothing is linked.
func TestReplyInDMAtTheCap(t *testing.T) {
	tc := newTestCore(t)
	d := tc.deliver(t, owner)
	svc, err := app.New(
		app.Ports{Subscribers: tc.db, Settings: tc.db, Deliveries: tc.db, Reflections: fullJournal{tc.db}, Digests: tc.db, Eraser: tc.db, Exporter: tc.db, Messenger: tc.slack},
		app.Config{Catalog: tc.Catalog(), Calendar: nudges.Calendar{Fallback: time.UTC}},
	)
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.ReplyInDM(context.Background(), app.Person(owner), app.DMMessage{TS: "500.000001", ThreadTS: d.TS, Text: "one more"}, tc.now)
	if !errors.Is(err, nudges.ErrTooManyReflections) {
		t.Fatalf("err = %v, want too many reflections", err)
	}
	if o := tc.delivery(t, d.ID).Outcome; o != nudges.OutcomeNone {
		t.Errorf("a refused reply still marked the nudge %q", o)
	}
}
