package app_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// Ensure a commitment is quoted back in the scheduled nudge three working
// days later even when the person wrote 40 more reflections since: the
// follow-up index finds it, however deep in the journal it lies.
func TestCommitmentQuotedBackAfterManyReflections(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	who := app.Person(owner)
	tc.deliver(t, owner) // Monday 2 March, 09:00 Berlin
	saved, err := tc.Reflect(ctx, who, app.Reflection{Text: "a hard week", Commitment: "hand the review to Priya"}, tc.now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := tc.Reflect(ctx, who, app.Reflection{Text: fmt.Sprintf("note %d", i)}, tc.now.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	var quoted []string
	for day := 1; day <= 4; day++ {
		sub, err := tc.db.Subscriber(owner)
		if err != nil {
			t.Fatal(err)
		}
		tc.now = sub.NextDue
		tc.Tick(ctx, tc.now)
		posts := tc.slack.postsTo("D" + owner)
		if f := posts[len(posts)-1].followUp; f != nil {
			quoted = append(quoted, tc.now.Weekday().String()+": "+f.Commitment)
			if f.Seq != saved.Reflection.Seq {
				t.Errorf("quoted reflection #%d, want #%d", f.Seq, saved.Reflection.Seq)
			}
		}
	}
	// Written Monday; three working days later is Thursday.
	if want := []string{"Thursday: hand the review to Priya"}; fmt.Sprint(quoted) != fmt.Sprint(want) {
		t.Errorf("quoted back %v, want %v", quoted, want)
	}
}

// Ensure the scheduler sends each due slot exactly once, however often it
// runs, and that a post refused as never sent stays in the outbox and
// goes out next tick without doubling.
func TestTickSendsOnce(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.subscribe(t, owner)
	sub, _ := tc.db.Subscriber(owner)
	tc.now = sub.NextDue
	tc.slack.postErr = fmt.Errorf("throttled: %w", app.ErrNotSent)
	tc.Tick(ctx, tc.now)
	if n := len(tc.slack.postsTo("D" + owner)); n != 0 {
		t.Fatalf("posts after a refused post = %d, want 0", n)
	}
	pending, err := tc.db.Pending()
	if err != nil || len(pending) != 1 || pending[0].Attempts != 0 {
		t.Fatalf("outbox after a post that never left = %+v (%v), want one delivery with no attempt", pending, err)
	}
	for range 3 {
		tc.Tick(ctx, tc.now.Add(time.Minute))
	}
	if n := len(tc.slack.postsTo("D" + owner)); n != 1 {
		t.Errorf("posts after four ticks = %d, want 1", n)
	}
}

// Ensure an uncertain post is looked for in the DM before anything is
// sent again, and only once it has had time to land.
func TestUncertainPostIsReconciled(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.subscribe(t, owner)
	sub, _ := tc.db.Subscriber(owner)
	tc.now = sub.NextDue
	tc.slack.postErr = fmt.Errorf("connection reset: %w", app.ErrUncertain)
	tc.Tick(ctx, tc.now)
	ds, _ := tc.db.Pending()
	if len(ds) != 1 || ds[0].Attempts != 1 {
		t.Fatalf("after an uncertain post: %+v, want one pending delivery with its attempt kept", ds)
	}
	tc.Tick(ctx, tc.now.Add(time.Second)) // too early to look: nothing
	if n := len(tc.slack.postsTo("D" + owner)); n != 0 {
		t.Fatalf("posted again before the settle time: %d", n)
	}
	tc.now = tc.now.Add(app.DefaultSettleTime + time.Second)
	tc.Tick(ctx, tc.now)
	if n := len(tc.slack.postsTo("D" + owner)); n != 1 {
		t.Errorf("posts after reconciling = %d, want 1", n)
	}
}

// Ensure a snoozed nudge comes back as a new round at the snooze time,
// and a second click on an answered nudge changes nothing.
func TestSnoozeComesBack(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	d := tc.deliver(t, owner)
	res, err := tc.AnswerNudge(ctx, app.Person(owner), d.ID, nudges.AnswerSnoozeHour, app.MessageRef{}, tc.now)
	if err != nil || res.Delivery.Round != 1 {
		t.Fatalf("snooze: %+v, %v", res, err)
	}
	tc.Tick(ctx, tc.now.Add(59*time.Minute))
	if n := len(tc.slack.postsTo("D" + owner)); n != 1 {
		t.Fatalf("posts before the snooze ended = %d, want 1", n)
	}
	tc.now = tc.now.Add(time.Hour)
	tc.Tick(ctx, tc.now)
	posts := tc.slack.postsTo("D" + owner)
	if len(posts) != 2 || posts[1].round != 1 {
		t.Fatalf("after the snooze: %+v, want a second post in round 1", posts)
	}
	if _, err := tc.AnswerNudge(ctx, app.Person(owner), d.ID, nudges.AnswerDone, app.MessageRef{}, tc.now); err != nil {
		t.Fatal(err)
	}
	again, err := tc.AnswerNudge(ctx, app.Person(owner), d.ID, nudges.AnswerSkip, app.MessageRef{}, tc.now)
	if err != nil || !again.Repeat {
		t.Errorf("second answer: %+v, %v; want a repeat that changes nothing", again, err)
	}
	got, _ := tc.db.Delivery(d.ID)
	if got.Outcome != nudges.OutcomeDone {
		t.Errorf("outcome = %q, want done", got.Outcome)
	}
	if _, err := tc.AnswerNudge(ctx, app.Person(owner), "nope", nudges.AnswerDone, app.MessageRef{}, tc.now); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("unknown delivery: err = %v, want not found", err)
	}
}

// Ensure the scheduler is told to wake for the earliest of: the next due
// person, the end of a snooze, and the moment an uncertain post may be
// looked for.
func TestNextWake(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	if _, ok := tc.NextWake(); ok {
		t.Fatal("a wake time with nobody scheduled")
	}
	d := tc.deliver(t, owner) // due again tomorrow at 09:00 Berlin
	tomorrow := d.Slot.Add(24 * time.Hour)
	if at, ok := tc.NextWake(); !ok || !at.Equal(tomorrow) {
		t.Fatalf("next wake = %v %v, want tomorrow's slot %v", at, ok, tomorrow)
	}
	if _, err := tc.AnswerNudge(ctx, app.Person(owner), d.ID, nudges.AnswerSnoozeHour, app.MessageRef{}, tc.now); err != nil {
		t.Fatal(err)
	}
	if at, _ := tc.NextWake(); !at.Equal(tc.now.Add(time.Hour)) {
		t.Fatalf("next wake = %v, want the snooze's end %v", at, tc.now.Add(time.Hour))
	}
	tc.now = tc.now.Add(time.Hour)
	tc.slack.postErr = fmt.Errorf("reset: %w", app.ErrUncertain)
	tc.Tick(ctx, tc.now)
	if at, _ := tc.NextWake(); !at.Equal(tc.now.Add(app.DefaultSettleTime)) {
		t.Fatalf("next wake = %v, want the settle time %v", at, tc.now.Add(app.DefaultSettleTime))
	}
}

// fullJournal is a journal that already holds the most reflections one
// person may keep.
type fullJournal struct{ *storage.DB }

func (fullJournal) CountReflections(string) (int, error) { return nudges.MaxReflections, nil }

// Ensure one person cannot make the bot store reflections without end.
func TestReflectionsAreCapped(t *testing.T) {
	tc := newTestCore(t)
	svc, err := app.New(
		app.Ports{Subscribers: tc.db, Settings: tc.db, Deliveries: tc.db, Reflections: fullJournal{tc.db}, Digests: tc.db, Eraser: tc.db, Exporter: tc.db, Messenger: tc.slack},
		app.Config{Catalog: tc.Catalog(), Calendar: nudges.Calendar{Fallback: time.UTC}},
	)
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Reflect(context.Background(), app.Person(owner), app.Reflection{Text: "one more"}, tc.now)
	if !errors.Is(err, nudges.ErrTooManyReflections) {
		t.Fatalf("err = %v, want too many reflections", err)
	}
	if n, _ := tc.db.CountReflections(owner); n != 0 {
		t.Errorf("%d reflections stored past the cap", n)
	}
}

// Ensure a team that says its direction is unclear gets strategy and
// organisation nudges sooner, told why in words about the team, and only
// once enough people answered the pulse.
func TestLowClarityBringsStrategyForward(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	people := []string{owner, member, "UPEOPLE03", "UPEOPLE04", "UPEOPLE05"}
	tc.slack.members[team] = people
	for _, p := range people {
		tc.subscribe(t, p)
	}
	if _, err := tc.RunDigest(ctx, team, tc.now); err != nil { // opens the first pulse
		t.Fatal(err)
	}
	pulse := app.PulseID(team, tc.now)
	for i, p := range people {
		if _, err := tc.VotePulse(ctx, app.Person(p), pulse, 1+i%2); err != nil {
			t.Fatal(err)
		}
	}
	tc.now = tc.now.Add(time.Hour)
	if _, err := tc.RunDigest(ctx, team, tc.now); err != nil { // closes it: clarity 1.4
		t.Fatal(err)
	}
	sub, err := tc.db.Subscriber(owner)
	if err != nil {
		t.Fatal(err)
	}
	tc.now = sub.NextDue
	tc.Tick(ctx, tc.now)
	ds, err := tc.db.Deliveries(owner, time.Time{})
	if err != nil || len(ds) == 0 {
		t.Fatalf("no delivery: %v", err)
	}
	d := ds[len(ds)-1]
	if d.Theme != nudges.ThemeStrategy && d.Theme != nudges.ThemeOrganisation {
		t.Errorf("nudge theme %s after a low clarity pulse, want strategy or organisation", d.Theme)
	}
	if !strings.Contains(d.Reason, "Your team rated how clear the direction is at 1.4") {
		t.Errorf("reason %q does not say why, in words about the team", d.Reason)
	}
}

// goneError is Slack's refusal of a post into a DM channel that no longer
// exists.
type goneError struct{ code string }

func (e goneError) Error() string     { return "slack chat.postMessage: " + e.code }
func (e goneError) SlackCode() string { return e.code }

// Ensure a person's DM is opened once, when they subscribe, so a slot
// costs one post; and that a DM channel Slack says is gone is forgotten
// and opened again at once, the nudge posted there exactly once.
func TestDMChannelKeptAndReopened(t *testing.T) {
	for _, code := range []string{"channel_not_found", "is_archived"} {
		t.Run(code, func(t *testing.T) {
			tc := newTestCore(t)
			ctx := context.Background()
			tc.subscribe(t, owner)
			sub, _ := tc.db.Subscriber(owner)
			if sub.DMChannel != "D"+owner || tc.slack.opens != 1 {
				t.Fatalf("after subscribing: DMChannel %q, %d opens; want D%s opened once", sub.DMChannel, tc.slack.opens, owner)
			}
			tc.now = sub.NextDue
			tc.Tick(ctx, tc.now)
			if n := len(tc.slack.postsTo("D" + owner)); n != 1 || tc.slack.opens != 1 {
				t.Fatalf("first slot: %d posts, %d opens; want 1 post and no new open", n, tc.slack.opens)
			}

			tc.slack.postErr = goneError{code}
			tc.slack.dms[owner] = "DNEW" + owner
			sub, _ = tc.db.Subscriber(owner)
			tc.now = sub.NextDue
			tc.Tick(ctx, tc.now)
			newDM := tc.slack.postsTo("DNEW" + owner)
			if len(newDM) != 1 || tc.slack.opens != 2 {
				t.Fatalf("slot after the channel went: %d posts in the new DM, %d opens; want 1 post, 2 opens", len(newDM), tc.slack.opens)
			}
			sub, _ = tc.db.Subscriber(owner)
			if sub.DMChannel != "DNEW"+owner {
				t.Errorf("DMChannel = %q, want the new one kept", sub.DMChannel)
			}
			d, err := tc.db.Delivery(newDM[0].deliveryID)
			if err != nil || d.State != nudges.StateSent || d.Channel != "DNEW"+owner {
				t.Errorf("delivery = %+v (%v), want sent in the new DM", d, err)
			}
			// Nothing left to send: more ticks post nothing more.
			tc.Tick(ctx, tc.now.Add(time.Minute))
			if n := len(tc.slack.postsTo("DNEW"+owner)) + len(tc.slack.postsTo("D"+owner)); n != 2 {
				t.Errorf("posts in all = %d, want 2 (one a slot)", n)
			}
		})
	}
}

// countingDeliveries and countingSettings count the reads a tick makes.
type countingDeliveries struct {
	deliveriesPort // named apart: the port has a method Deliveries
	reads          atomic.Int32
	historyReads   atomic.Int32
	updates        atomic.Int32 // UpdateDelivery: a read and a write
	swaps          atomic.Int32 // UpdateDeliveryFrom: one write on PostgreSQL
}

func (c *countingDeliveries) UpdateDelivery(id string, fn func(*nudges.Delivery) error) (nudges.Delivery, error) {
	c.updates.Add(1)
	return c.deliveriesPort.UpdateDelivery(id, fn)
}

func (c *countingDeliveries) UpdateDeliveryFrom(known nudges.Delivery, fn func(*nudges.Delivery) error) (nudges.Delivery, error) {
	c.swaps.Add(1)
	return c.deliveriesPort.UpdateDeliveryFrom(known, fn)
}

type deliveriesPort = app.Deliveries

func (c *countingDeliveries) Delivery(id string) (nudges.Delivery, error) {
	c.reads.Add(1)
	return c.deliveriesPort.Delivery(id)
}

func (c *countingDeliveries) Deliveries(userID string, since time.Time) ([]nudges.Delivery, error) {
	c.historyReads.Add(1)
	return c.deliveriesPort.Deliveries(userID, since)
}

type countingSubscribers struct {
	app.Subscribers
	reads, batches atomic.Int32
}

func (c *countingSubscribers) Subscriber(userID string) (nudges.Subscriber, error) {
	c.reads.Add(1)
	return c.Subscribers.Subscriber(userID)
}

func (c *countingSubscribers) SubscribersByID(userIDs []string) (map[string]nudges.Subscriber, error) {
	c.batches.Add(1)
	return c.Subscribers.SubscribersByID(userIDs)
}

type countingReflections struct {
	reflectionsPort // named apart: the port has a method Reflections
	reads, batches  atomic.Int32
}

type reflectionsPort = app.Reflections

func (c *countingReflections) DueFollowUp(userID string, now time.Time) (nudges.Reflection, bool, error) {
	c.reads.Add(1)
	return c.reflectionsPort.DueFollowUp(userID, now)
}

func (c *countingReflections) DueFollowUpsOf(userIDs []string, now time.Time) (map[string]nudges.Reflection, error) {
	c.batches.Add(1)
	return c.reflectionsPort.DueFollowUpsOf(userIDs, now)
}

type countingSettings struct {
	app.Settings
	reads atomic.Int32
}

func (c *countingSettings) StrategyLines() ([]string, bool, error) {
	c.reads.Add(1)
	return c.Settings.StrategyLines()
}

// Ensure a tick does not read back the deliveries its planning has just
// recorded nor the people it has just planned for, reads the due people's
// records, histories and due commitments together, reads the strategy
// lines once, not once per nudge, and records each attempt and sent mark
// from the delivery it holds: on PostgreSQL each read is a round trip
// per nudge, and a write from a delivery read is four.
func TestTickReadsOncePerTick(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.subscribe(t, owner)
	tc.subscribe(t, member)
	cd, cs := &countingDeliveries{deliveriesPort: tc.db}, &countingSettings{Settings: tc.db}
	cu, cr := &countingSubscribers{Subscribers: tc.db}, &countingReflections{reflectionsPort: tc.db}
	tc.rebuild(t, coreOptions{ports: func(p *app.Ports) { p.Deliveries, p.Settings, p.Subscribers, p.Reflections = cd, cs, cu, cr }})
	sub, _ := tc.db.Subscriber(owner)
	tc.now = sub.NextDue
	tc.Tick(ctx, tc.now)
	if n := len(tc.slack.postsTo("D"+owner)) + len(tc.slack.postsTo("D"+member)); n != 2 {
		t.Fatalf("posts = %d, want 2", n)
	}
	if n := cd.reads.Load(); n != 0 {
		t.Errorf("deliveries read back = %d, want 0", n)
	}
	if n, b := cu.reads.Load(), cu.batches.Load(); n != 0 || b != 1 {
		t.Errorf("subscribers read one by one %d times and together %d, want 0 and 1", n, b)
	}
	if n, b := cr.reads.Load(), cr.batches.Load(); n != 0 || b != 1 {
		t.Errorf("due commitments read one by one %d times and together %d, want 0 and 1", n, b)
	}
	if u, w := cd.updates.Load(), cd.swaps.Load(); u != 0 || w != 4 {
		t.Errorf("deliveries updated by id %d times and from the one held %d, want 0 and 4 (an attempt and a mark each)", u, w)
	}
	if n := cd.historyReads.Load(); n != 0 {
		t.Errorf("histories read person by person = %d, want 0", n)
	}
	if n := cs.reads.Load(); n != 1 {
		t.Errorf("strategy lines read %d times, want once", n)
	}
}

// failingHistories refuses the due people's histories read together, so
// a tick falls back to reading each person's own.
type failingHistories struct{ deliveriesPort }

func (failingHistories) DeliveriesFor([]string, time.Time, time.Time) ([]nudges.Delivery, error) {
	return nil, errors.New("refused for the test")
}

// Ensure the histories a tick reads together choose the same nudges, with
// the same reason lines, as each person's own history read alone.
func TestTickChoosesAsWithOwnHistory(t *testing.T) {
	run := func(ports func(*app.Ports)) []string {
		tc := newTestCore(t)
		tc.rebuild(t, coreOptions{ports: ports})
		tc.subscribe(t, owner)
		for range 14 {
			sub := tc.sub(t, owner)
			tc.now = sub.NextDue
			tc.Tick(context.Background(), tc.now)
		}
		ds, err := tc.db.Deliveries(owner, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range ds {
			got = append(got, d.NudgeID+": "+d.Reason)
		}
		return got
	}
	together := run(nil)
	alone := run(func(p *app.Ports) { p.Deliveries = failingHistories{p.Deliveries} })
	if len(together) != 14 {
		t.Fatalf("deliveries = %d, want 14", len(together))
	}
	if fmt.Sprint(together) != fmt.Sprint(alone) {
		t.Errorf("with histories read together:\n%s\nwith each person's own:\n%s", strings.Join(together, "\n"), strings.Join(alone, "\n"))
	}
}
