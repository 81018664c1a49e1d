package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure /nudge now sends one nudge at once, marked manual, without
// moving the schedule or counting for the streak, and that asking twice
// in the same second sends one.
func TestNudgeNow(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.subscribe(t, owner)
	before := tc.sub(t, owner)
	res, err := tc.NudgeNow(ctx, app.Person(owner), tc.now)
	if err != nil || res != app.NowSent {
		t.Fatalf("nudge now = %v, %v; want sent", res, err)
	}
	tc.Flush()
	posts := tc.slack.postsTo("D" + owner)
	if len(posts) != 1 {
		t.Fatalf("posts = %d, want 1", len(posts))
	}
	d := tc.delivery(t, posts[0].deliveryID)
	if !d.Manual || d.State != nudges.StateSent {
		t.Errorf("delivery = manual %v, state %s; want a sent manual one", d.Manual, d.State)
	}
	after := tc.sub(t, owner)
	if !after.NextDue.Equal(before.NextDue) {
		t.Errorf("next due moved from %v to %v", before.NextDue, after.NextDue)
	}
	if len(after.Seen) != len(before.Seen)+1 {
		t.Errorf("the nudge was not recorded as seen: %v", after.Seen)
	}
	res, err = tc.NudgeNow(ctx, app.Person(owner), tc.now.Add(300*time.Millisecond))
	if err != nil || res != app.NowOnItsWay {
		t.Errorf("a second ask in the same second = %v, %v; want on its way", res, err)
	}
	if n := len(tc.slack.postsTo("D" + owner)); n != 1 {
		t.Errorf("posts after asking twice = %d, want 1", n)
	}
	if _, err := tc.AnswerNudge(ctx, app.Person(owner), d.ID, nudges.AnswerDone, app.MessageRef{}, tc.now); err != nil {
		t.Fatal(err)
	}
	if st, _ := tc.Status(ctx, app.Person(owner), tc.now); st.Streak != 0 {
		t.Errorf("streak after a manual nudge done = %d, want 0", st.Streak)
	}
}

// Ensure someone who never subscribed can try a nudge: it comes in their
// own zone, and trying does not subscribe them.
func TestNudgeNowBeforeSubscribing(t *testing.T) {
	tc := newTestCore(t)
	tc.slack.profiles[owner] = app.Profile{TZ: "Asia/Tokyo"}
	res, err := tc.NudgeNow(context.Background(), app.Person(owner), tc.now)
	if err != nil || res != app.NowSent {
		t.Fatalf("nudge now = %v, %v", res, err)
	}
	s := tc.sub(t, owner)
	if s.Subscribed || !s.NextDue.IsZero() || s.ProfileTZ != "Asia/Tokyo" {
		t.Errorf("after trying: subscribed %v, next due %v, zone %q", s.Subscribed, s.NextDue, s.ProfileTZ)
	}
	if n := len(tc.slack.postsTo("D" + owner)); n != 1 {
		t.Errorf("posts = %d, want 1", n)
	}
}

// onlyForManagersOfManagers is a catalog whose one nudge needs people
// who manage managers, and cannot be done without them.
const onlyForManagersOfManagers = `version: 1
nudges:
  - id: developing-09-grow-your-managers
    role: lead
    theme: developing
    prompt: "Ask one of the managers who report to you which decision they want to own that you still hold. Agree the limits and hand it over."
    needs: [manages-managers]
    context_only: true
    why: "Owning real decisions is how new managers grow into leaders, and you get back time for the work only you can do."
    question: "What would have to be true for you to hand over the next one?"
`

// Ensure someone no nudge fits (they said they lack what every nudge
// needs) gets that answer, and nothing is sent or recorded.
func TestNudgeNowNoneFits(t *testing.T) {
	tc := newTestCore(t)
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(path, []byte(onlyForManagersOfManagers), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := nudges.LoadCatalogFile(nil, path)
	if err != nil {
		t.Fatal(err)
	}
	tc.rebuild(t, coreOptions{edit: func(c *app.Config) { c.Catalog = cat }})
	ctx := context.Background()
	tc.subscribe(t, owner)
	if _, err := tc.ChangeSettings(ctx, app.Person(owner), tc.now, app.SetContexts(nudges.Situation{Known: true})); err != nil {
		t.Fatal(err)
	}
	res, err := tc.NudgeNow(ctx, app.Person(owner), tc.now)
	if err != nil || res != app.NowNoneFits {
		t.Fatalf("nudge now = %v, %v; want none fits", res, err)
	}
	if n := len(tc.slack.postsTo("D" + owner)); n != 0 {
		t.Errorf("posts = %d, want 0", n)
	}
	if ds, _ := tc.db.Deliveries(owner, time.Time{}); len(ds) != 0 {
		t.Errorf("deliveries = %+v, want none", ds)
	}
	// Once they say they manage managers, the nudge fits.
	has := nudges.Situation{Known: true, Has: nudges.ContextsOf(nudges.ContextManagesManagers)}
	if _, err := tc.ChangeSettings(ctx, app.Person(owner), tc.now, app.SetContexts(has)); err != nil {
		t.Fatal(err)
	}
	if res, err := tc.NudgeNow(ctx, app.Person(owner), tc.now.Add(time.Second)); err != nil || res != app.NowSent {
		t.Errorf("nudge now with the context = %v, %v; want sent", res, err)
	}
}

// Ensure a focus leans the nudges: someone focused on leading gets lead
// nudges.
func TestFocusChoosesTheNudge(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.subscribe(t, owner)
	if _, err := tc.ChangeSettings(ctx, app.Person(owner), tc.now, app.SetFocus(string(nudges.RoleManage))); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := tc.NudgeNow(ctx, app.Person(owner), tc.now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	posts := tc.slack.postsTo("D" + owner)
	if len(posts) != 5 {
		t.Fatalf("posts = %d, want 5", len(posts))
	}
	for _, p := range posts {
		if d := tc.delivery(t, p.deliveryID); d.Role != nudges.RoleManage && d.Role != nudges.RoleBoth {
			t.Errorf("nudge %s is for %q with the focus on managing", d.NudgeID, d.Role)
		}
	}
}

// Ensure a commitment is quoted back in a scheduled nudge only, never in
// one asked for with /nudge now (which the person did not plan for).
func TestManualNudgeQuotesNoCommitment(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.deliver(t, owner) // Monday
	if _, err := tc.Reflect(ctx, app.Person(owner), app.Reflection{Text: "t", Commitment: "ask Sam"}, tc.now); err != nil {
		t.Fatal(err)
	}
	tc.now = time.Date(2026, 3, 5, 7, 0, 0, 0, time.UTC) // Thursday, 08:00 in Berlin
	if _, err := tc.NudgeNow(ctx, app.Person(owner), tc.now); err != nil {
		t.Fatal(err)
	}
	tc.Flush() // its sent mark reads the clock the test moves next
	posts := tc.slack.postsTo("D" + owner)
	if f := posts[len(posts)-1].followUp; f != nil {
		t.Fatalf("a manual nudge quoted commitment %q", f.Commitment)
	}
	tc.now = time.Date(2026, 3, 5, 8, 0, 0, 0, time.UTC) // Thursday, 09:00 in Berlin
	tc.Tick(ctx, tc.now)
	posts = tc.slack.postsTo("D" + owner)
	if f := posts[len(posts)-1].followUp; f == nil || f.Commitment != "ask Sam" {
		t.Errorf("the scheduled nudge quoted %+v, want the commitment", f)
	}
}

// Ensure each way a post can fail leaves the delivery and the person as
// the rule for it says: gone people stop, a refusal is not retried, and a
// failure that sent nothing is retried. (A stale DM channel is opened
// again at once: TestDMChannelKeptAndReopened.)
func TestSendFailures(t *testing.T) {
	cases := []struct {
		name       string
		postErr    error
		openErr    error
		state      nudges.DeliveryState
		attempts   int
		inactive   string // the reason, when the person stops
		keepDM     bool
		outcome    string
		retryPosts int // posts after one more tick, with Slack well again
	}{
		{"the person is gone", refusal("user_not_found"), nil, nudges.StateFailed, 1, "user_not_found", true, "failed_gone", 0},
		{"the person disabled DMs", refusal("cannot_dm_bot"), nil, nudges.StateFailed, 1, "cannot_dm_bot", true, "failed_gone", 0},
		{"Slack refuses the message", refusal("invalid_blocks"), nil, nudges.StateFailed, 1, "", true, "failed_refused", 0},
		{"never sent", fmt.Errorf("rate limited: %w", app.ErrNotSent), nil, nudges.StatePending, 0, "", true, "retry", 1},
		{"the DM cannot be opened", nil, errSlackDown, nudges.StatePending, 0, "", false, "retry", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc, fs := newFaultyCore(t)
			obs := &outcomes{}
			tc.rebuild(t, coreOptions{messenger: fs, edit: func(cfg *app.Config) { cfg.Observer = obs }})
			ctx := context.Background()
			fs.set(func(f *faultySlack) { f.openErr = c.openErr })
			tc.subscribe(t, owner) // opens the DM, unless that fails
			tc.now = tc.sub(t, owner).NextDue
			tc.slack.postErr = c.postErr
			tc.Tick(ctx, tc.now)
			ds, err := tc.db.Deliveries(owner, time.Time{})
			if err != nil || len(ds) != 1 {
				t.Fatalf("deliveries = %+v, %v", ds, err)
			}
			d := ds[0]
			if d.State != c.state || d.Attempts != c.attempts {
				t.Errorf("delivery = %s with %d attempts, want %s with %d", d.State, d.Attempts, c.state, c.attempts)
			}
			s := tc.sub(t, owner)
			if s.InactiveReason != c.inactive || s.Inactive != (c.inactive != "") {
				t.Errorf("person inactive %v (%q), want %q", s.Inactive, s.InactiveReason, c.inactive)
			}
			if c.inactive != "" && !s.NextDue.IsZero() {
				t.Errorf("a gone person is still due at %v", s.NextDue)
			}
			if hasDM := s.DMChannel != ""; hasDM != c.keepDM {
				t.Errorf("DM channel %q kept = %v, want %v", s.DMChannel, hasDM, c.keepDM)
			}
			if c.outcome != "" && obs.count(c.outcome) != 1 {
				t.Errorf("outcomes = %v, want one %s", obs.n, c.outcome)
			}
			fs.set(func(f *faultySlack) { f.openErr = nil })
			tc.Tick(ctx, tc.now.Add(time.Minute))
			if n := len(tc.slack.postsTo("D" + owner)); n != c.retryPosts {
				t.Errorf("posts after the next tick = %d, want %d", n, c.retryPosts)
			}
		})
	}
}

// Ensure a delivery left pending for someone who has since gone is
// dropped, not posted.
func TestPendingDeliveryForSomeoneGone(t *testing.T) {
	tc := newTestCore(t)
	obs := &outcomes{}
	tc.rebuild(t, coreOptions{edit: func(c *app.Config) { c.Observer = obs }})
	ctx := context.Background()
	tc.subscribe(t, owner)
	tc.now = tc.sub(t, owner).NextDue
	tc.slack.postErr = fmt.Errorf("throttled: %w", app.ErrNotSent)
	tc.Tick(ctx, tc.now)
	if err := tc.ProfileChanged(owner, app.Profile{Deleted: true}, tc.now); err != nil {
		t.Fatal(err)
	}
	tc.Tick(ctx, tc.now.Add(time.Minute))
	if n := len(tc.slack.postsTo("D" + owner)); n != 0 {
		t.Errorf("posts = %d, want 0", n)
	}
	ds, _ := tc.db.Deliveries(owner, time.Time{})
	if len(ds) != 1 || ds[0].State != nudges.StateFailed || obs.count("failed_inactive") != 1 {
		t.Errorf("deliveries = %+v, outcomes %v; want one failed as inactive", ds, obs.n)
	}
}

// Ensure slots that passed while the bot was away are recorded as missed,
// and only the latest is sent, and only within the catch-up window.
func TestMissedSlots(t *testing.T) {
	ber := zone(t, "Europe/Berlin")
	for _, c := range []struct {
		name      string
		wake      time.Time // Thursday 5 March, Berlin
		sent      int
		missed    int
		sentSlot  time.Time
		nextAfter time.Time
	}{
		{"back within the catch-up", time.Date(2026, 3, 5, 10, 0, 0, 0, ber), 1, 3, time.Date(2026, 3, 5, 9, 0, 0, 0, ber), time.Date(2026, 3, 6, 9, 0, 0, 0, ber)},
		{"back beyond it", time.Date(2026, 3, 5, 12, 0, 0, 0, ber), 0, 4, time.Time{}, time.Date(2026, 3, 6, 9, 0, 0, 0, ber)},
	} {
		t.Run(c.name, func(t *testing.T) {
			tc := newTestCore(t)
			obs := &outcomes{}
			tc.rebuild(t, coreOptions{edit: func(cfg *app.Config) { cfg.Observer = obs }})
			tc.subscribe(t, owner)
			tc.now = c.wake
			tc.Tick(context.Background(), tc.now)
			ds, err := tc.db.Deliveries(owner, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			byState := map[nudges.DeliveryState]int{}
			for _, d := range ds {
				byState[d.State]++
				if d.State == nudges.StateSent && !d.Slot.Equal(c.sentSlot) {
					t.Errorf("sent the slot %v, want %v", d.Slot.In(ber), c.sentSlot)
				}
			}
			if byState[nudges.StateSent] != c.sent || byState[nudges.StateMissed] != c.missed {
				t.Errorf("deliveries by state = %v, want %d sent, %d missed", byState, c.sent, c.missed)
			}
			if obs.count("missed") != 1 {
				t.Errorf("missed reported %d times, want once per person", obs.count("missed"))
			}
			if s := tc.sub(t, owner); !s.NextDue.Equal(c.nextAfter) {
				t.Errorf("next due %v, want %v", s.NextDue.In(ber), c.nextAfter)
			}
			tc.Tick(context.Background(), tc.now.Add(time.Minute))
			if n := len(tc.slack.postsTo("D" + owner)); n != c.sent {
				t.Errorf("a second tick posted: %d posts, want %d", n, c.sent)
			}
		})
	}
}

// Ensure a company-wide pause skips everyone's slots (they are not sent
// later), and lifting it brings the next slot back.
func TestPauseAllSkipsSlots(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.subscribe(t, owner)
	ber := berlin(t)
	wednesday := time.Date(2026, 3, 4, 0, 0, 0, 0, ber)
	if err := tc.PauseAll(ctx, app.Person(admin), wednesday); err != nil {
		t.Fatal(err)
	}
	for day := range 3 { // Monday to Wednesday, 09:00
		tc.now = time.Date(2026, 3, 2+day, 9, 0, 0, 0, ber)
		tc.Tick(ctx, tc.now)
	}
	posts := tc.slack.postsTo("D" + owner)
	if len(posts) != 1 {
		t.Fatalf("posts = %d, want Wednesday's only", len(posts))
	}
	if d := tc.delivery(t, posts[0].deliveryID); !d.Slot.Equal(tc.now) {
		t.Errorf("sent slot %v, want Wednesday 09:00", d.Slot.In(ber))
	}
	if ds, _ := tc.db.Deliveries(owner, time.Time{}); len(ds) != 1 {
		t.Errorf("deliveries = %d, want the skipped slots left unrecorded", len(ds))
	}

	if err := tc.PauseAll(ctx, app.Person(admin), app.Forever); err != nil {
		t.Fatal(err)
	}
	tc.now = tc.now.AddDate(0, 0, 1)
	tc.Tick(ctx, tc.now)
	if n := len(tc.slack.postsTo("D" + owner)); n != 1 {
		t.Fatalf("posts during an open-ended pause = %d, want still 1", n)
	}
	if err := tc.PauseAll(ctx, app.Person(admin), time.Time{}); err != nil {
		t.Fatal(err)
	}
	tc.now = tc.now.AddDate(0, 0, 1)
	tc.Tick(ctx, tc.now)
	if n := len(tc.slack.postsTo("D" + owner)); n != 2 {
		t.Errorf("posts after lifting the pause = %d, want 2", n)
	}
}

// Ensure Flush returns once what was sent is recorded.
func TestFlushRecordsWhatWasSent(t *testing.T) {
	tc := newTestCore(t)
	if _, err := tc.NudgeNow(context.Background(), app.Person(owner), tc.now); err != nil {
		t.Fatal(err)
	}
	tc.Flush()
	posts := tc.slack.postsTo("D" + owner)
	if len(posts) != 1 {
		t.Fatalf("posts = %d", len(posts))
	}
	if d := tc.delivery(t, posts[0].deliveryID); d.State != nudges.StateSent || d.TS != posts[0].ts {
		t.Errorf("after Flush the delivery is %s with ts %q, want sent as %s", d.State, d.TS, posts[0].ts)
	}
}
