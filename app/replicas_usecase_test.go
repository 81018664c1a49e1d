package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// follower is the Leader of a replica that does not lead.
type follower struct{}

func (follower) Leading() error { return fmt.Errorf("%w: another replica leads", app.ErrNotLeader) }

// Ensure a replica that does not lead does none of the leader's work
// (the due nudges, the outbox, the digests) yet still answers people: a
// nudge asked for now is posted by whichever replica the person reached.
func TestFollowerLeavesTheLeadersWorkAlone(t *testing.T) {
	tc := newTestCore(t)
	tc.subscribe(t, owner)
	sub := tc.sub(t, owner)
	tc.rebuild(t, coreOptions{ports: func(p *app.Ports) { p.Leader = follower{} }})
	tc.now = sub.NextDue
	tc.Tick(context.Background(), tc.now)
	if ds, _ := tc.db.Deliveries(owner, time.Time{}); len(ds) != 0 {
		t.Errorf("a follower's tick recorded %d deliveries", len(ds))
	}
	if n := len(tc.slack.postsTo("D" + owner)); n != 0 {
		t.Errorf("a follower's tick posted %d nudges", n)
	}
	if _, err := tc.RunDigest(context.Background(), team, tc.now); !app.NotLeader(err) {
		t.Errorf("a follower's digest: %v, want a not-leader refusal", err)
	}
	if n := len(tc.slack.channel); n != 0 {
		t.Errorf("a follower posted %d digest messages", n)
	}
	if res, err := tc.NudgeNow(context.Background(), app.Person(owner), tc.now); err != nil || res != app.NowSent {
		t.Fatalf("nudge now on a follower: %v, %v", res, err)
	}
	if n := len(tc.slack.postsTo("D" + owner)); n != 1 {
		t.Errorf("nudge now on a follower: %d posts, want 1", n)
	}
}

// doorSlack holds each post at the door, after the rate limit's wait and
// before beforeSend, until its sender's turn comes.
type doorSlack struct {
	*fakeSlack
	name    string
	arrived chan<- string
	turn    <-chan struct{}
}

func (d doorSlack) PostNudge(ctx context.Context, channel string, m app.NudgeMessage, beforeSend func() error) (string, error) {
	d.arrived <- d.name
	<-d.turn
	return d.fakeSlack.PostNudge(ctx, channel, m, beforeSend)
}

// Ensure two senders of one pending delivery (two replicas that both
// think they lead for a moment, or a tick and /nudge now) post it once:
// the attempt is recorded only if nobody recorded one since the delivery
// was read, and the sender that finds one recorded gives up.
func TestTwoSendersOfOneDeliveryPostOnce(t *testing.T) {
	tc := newTestCore(t)
	tc.subscribe(t, owner)
	tc.now = tc.sub(t, owner).NextDue
	tc.slack.postErr = fmt.Errorf("rate limited on every attempt: %w", app.ErrNotSent)
	tc.Tick(context.Background(), tc.now) // recorded, left in the outbox
	ds, err := tc.db.Deliveries(owner, time.Time{})
	if err != nil || len(ds) != 1 || ds[0].State != nudges.StatePending || ds[0].Attempts != 0 {
		t.Fatalf("after a post Slack refused for now: %+v (%v), want one pending, unattempted", ds, err)
	}

	arrived := make(chan string, 2)
	turns := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	cores := map[string]*app.Service{}
	for name, turn := range turns {
		tc.rebuild(t, coreOptions{messenger: doorSlack{fakeSlack: tc.slack, name: name, arrived: arrived, turn: turn}})
		cores[name] = tc.Service
	}
	done := map[string]chan struct{}{}
	var wg sync.WaitGroup
	for name, core := range cores {
		done[name] = make(chan struct{})
		wg.Go(func() { core.Tick(context.Background(), tc.now); close(done[name]) })
	}
	first, second := <-arrived, <-arrived // both read the delivery and hold it
	close(turns[first])
	<-done[first]
	close(turns[second])
	wg.Wait()
	if n := len(tc.slack.postsTo("D" + owner)); n != 1 {
		t.Errorf("two senders of one delivery posted it %d times, want once", n)
	}
	d := tc.delivery(t, ds[0].ID)
	if d.State != nudges.StateSent || d.Attempts != 1 {
		t.Errorf("delivery %+v, want sent after one attempt", d)
	}
}
