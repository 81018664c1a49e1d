package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/slackemu"
)

// The scenarios that have a whole population due at one instant (nine,
// pace, burst-pg, failover-pg) share the steps here: an emulator holding
// everyone with their DMs already open, the seed that makes them due,
// the wait for everyone's nudge, and what the database and the replicas'
// logs say once the bots stopped.

// crowdGrace is how long the bots keep running after everyone has a
// nudge: a duplicate racing the last post arrives in it.
const crowdGrace = 2 * time.Second

// newCrowd starts an emulator that tracks DMs and holds n people in zone
// tz, with every DM opened already (see openIMs). rate > 0 limits
// chat.postMessage to rate a minute with bursts of a second's worth, as
// Slack's token bucket would; 0 leaves it unlimited. The caller closes the
// emulator.
func newCrowd(ctx context.Context, n int, tz string, rate int) (*slackemu.Server, *dmTracker, error) {
	dms := newDMTracker()
	emu, err := newEmulator(dms.option())
	if err != nil {
		return nil, nil, err
	}
	if rate > 0 {
		emu.RateLimit("chat.postMessage", rate, max(1, rate/60))
	}
	ids := make([]string, n)
	for i := range n {
		ids[i] = benchUserID(i)
		emu.AddUser(slackemu.User{ID: ids[i], Name: strings.ToLower(ids[i]), TZ: tz})
	}
	if err := openIMs(ctx, emu, ids); err != nil {
		emu.Close()
		return nil, nil, err
	}
	return emu, dms, nil
}

// dueInNineZone seeds a person subscribed a week before due, in
// nineZone, with their DM known and their nudge due at due.
func dueInNineZone(emu *slackemu.Server, due time.Time) func(i int, s *nudges.Subscriber) {
	return func(i int, s *nudges.Subscriber) {
		s.Subscribed = true
		s.SubscribedAt = due.Add(-7 * 24 * time.Hour)
		s.ProfileTZ = nineZone
		s.DMChannel = emu.IMChannel(s.UserID)
		s.NextDue = due
	}
}

// waitToStart sleeps until ninePhase before due, when the bots start;
// seeding that ran past that moment is an error naming who had to start
// and the flag that makes the population smaller.
func waitToStart(ctx context.Context, due time.Time, seed seedResult, who, flag string) error {
	wait := time.Until(due.Add(-ninePhase))
	if wait < 0 {
		return fmt.Errorf("seeding %d people took %s, past the moment %s had to start (%s before the due instant): use fewer -%s",
			seed.N, seed.Took.Round(time.Millisecond), who, ninePhase, flag)
	}
	return sleepCtx(ctx, wait, nil)
}

// waitForPeople waits until want people have a nudge, giving up at
// deadline or when exit is closed (a bot exited on its own); the caller
// tells which.
func waitForPeople(ctx context.Context, emu *slackemu.Server, dms *dmTracker, want int, deadline time.Time, exit <-chan struct{}) error {
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	go func() {
		select {
		case <-exit:
			cancel()
		case <-wctx.Done():
		}
	}()
	return emu.WaitFor(wctx, func() bool { return dms.people() >= want })
}

// awaitEveryone waits until all n people have a nudge, then crowdGrace
// more. It reports timedOut when deadline came first, so that the caller
// measures what arrived; it fails when ctx ends or exitedErr says a bot
// exited on its own while sending.
func awaitEveryone(ctx context.Context, emu *slackemu.Server, dms *dmTracker, n int, deadline time.Time, exit <-chan struct{}, exitedErr func(during string) error) (timedOut bool, err error) {
	werr := waitForPeople(ctx, emu, dms, n, deadline, exit)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err := exitedErr("while sending"); err != nil {
		return false, err
	}
	if werr != nil {
		return true, nil
	}
	if err := sleepCtx(ctx, crowdGrace, exit); err != nil && ctx.Err() != nil {
		return false, err
	}
	return false, nil
}

// exitedErr says that p exited on its own during what it was doing, or
// nil while it runs.
func (p *botProc) exitedErr(during string) error {
	if !p.hasExited() {
		return nil
	}
	return fmt.Errorf("%w (%v) %s; see %s", errBotExited, p.waitErr, during, p.logPath)
}

// anyExitedErr names a replica that exited on its own during what it was
// doing, or is nil while every slot that has a process runs.
func (rs *replicaSet) anyExitedErr(during string) error {
	i := rs.exited()
	if i < 0 {
		return nil
	}
	return rs.exitedErr(i, during)
}

// postedAll is every nudge each slot's processes logged as delivered,
// slot by slot.
func (rs *replicaSet) postedAll() ([][]posted, error) {
	var per [][]posted
	for i := range rs.procs {
		ps, err := rs.posted(i)
		if err != nil {
			return nil, err
		}
		per = append(per, ps)
	}
	return per, nil
}

// pgAfter is what the database says once the replicas stopped: the
// deliveries of the due instant, sent and still pending, and (after
// pg_stat_database has caught up) the work done since before for the
// nudges posted. A failure to read the work is kept in use.Err, not
// returned: the other figures stand without it.
func pgAfter(ctx context.Context, db *pgDB, due time.Time, before pgActivity, nudges int) (sent, pending int, use pgUse, err error) {
	if sent, pending, err = countDeliveriesPG(ctx, db, due); err != nil {
		return 0, 0, use, err
	}
	if err := sleepCtx(ctx, pgStatsSettle, nil); err != nil {
		return 0, 0, use, err
	}
	after, err := db.activity(ctx)
	use = pgUse{Before: before, After: after, Nudges: nudges}
	if err != nil {
		use.Err = err.Error()
	}
	return sent, pending, use, nil
}

// onceCell is an exactly-once row's cell from what the emulator holds.
func onceCell(t onceTally) string { return verdict(t.ok()) + ": " + t.String() }

// dbAfterStopCell is the row of the deliveries left in the database once
// the bots stopped: all n sent and none pending is the pass.
func dbAfterStopCell(n, sent, pending int) string {
	return fmt.Sprintf("%s: %d sent, %d left pending", verdict(sent == n && pending == 0), sent, pending)
}

// stopsCell is a stop row's cell for replicas: each one's stop, and
// whether they all exited cleanly.
func stopsCell(stops []stopResult) string {
	ok := true
	var parts []string
	for i, s := range stops {
		ok = ok && s.ok()
		parts = append(parts, replicaName(i)+" "+stopCell(s))
	}
	return strings.Join(parts, ", ") + ": " + verdict(ok)
}
