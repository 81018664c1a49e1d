// Package scheduler runs what time, not a person, starts in nudgebot's
// core: each due nudge, the team digests, the daily profile refresh and
// the hourly housekeeping. It sits beside the core it drives, not in the
// Slack adapter, because when things are due is a product rule; the
// adapter only starts it and posts what the core asks it to. It is a
// package of its own, not part of app, so that robfig/cron stays out of
// what the adapter links (the adapter imports app).
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// Housekeeping is storage's hourly clean-up.
type Housekeeping interface {
	// ApplyRetention removes what is older than storage.retention
	// (deliveries, closed pulses, handled envelopes) in small
	// transactions, and logs what it removed.
	ApplyRetention(now time.Time) (removed int, err error)
	// PruneSeen forgets the Socket Mode envelopes handled before before.
	PruneSeen(before time.Time) (int, error)
}

// Scheduler is the core's clock-driven side.
//
// robfig/cron is the one schedule engine: its scheduler fires the global
// jobs (digests, housekeeping, the refresh) and its Schedule.Next says
// when each digest is next. Each person's own schedule is kept in the
// due index instead: the loop asks the core when anyone is next due and
// sleeps until then, since a cron entry per person would not scale and
// could not follow a person's zone and settings as they change.
//
// robfig/cron reads the process's clock to decide when a job fires; the
// jobs themselves read the injected clock, so a demo or test driving a
// simulated clock decides what "now" means for them.
type Scheduler struct {
	core     *app.Service
	house    Housekeeping
	clock    func() time.Time
	tick     time.Duration
	manual   bool
	log      *slog.Logger
	election *Election
	wakeups  Wakeups
	watch    LeadWatcher
	replicas ReplicaWatcher
}

// Wakeups are the wakes other replicas send when a schedule changes
// there (app.Replicas on their side).
type Wakeups interface {
	// ListenWakes delivers a value for wakes until ctx ends; the channel
	// holds one at most.
	ListenWakes(ctx context.Context) <-chan struct{}
}

// Config configures a Scheduler.
type Config struct {
	// Housekeeping is storage's clean-up; nil runs none.
	Housekeeping Housekeeping
	// Tick is the longest the loop sleeps between two looks at the due
	// index; it wakes sooner when the next person is due, or when the
	// core says a schedule changed. Default 1m.
	Tick time.Duration
	// Manual leaves ticking to the caller (the demo and the tests drive
	// a simulated clock); one tick still runs at start.
	Manual bool
	// Clock is the time jobs run at; default time.Now. Give it the
	// core's clock.
	Clock  func() time.Time
	Logger *slog.Logger
	// Election, when several replicas share the database, runs the jobs
	// only while this replica leads (give the core the same Election as
	// its app.Leader). nil: this process leads for as long as it runs.
	Election *Election
	// Wakeups, with an Election, are the other replicas' wakes, heard
	// while this one leads.
	Wakeups Wakeups
	// Watch, if set, hears when this replica starts and stops leading.
	Watch LeadWatcher
	// Replicas, if set, hears how many replicas are alive, as the
	// Election's Census counts them. Without one (the bbolt file) it
	// hears nothing: one process, the only one.
	Replicas ReplicaWatcher
}

// New builds the scheduler of core.
func New(core *app.Service, c Config) *Scheduler {
	if c.Tick <= 0 {
		c.Tick = time.Minute
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{core: core, house: c.Housekeeping, clock: c.Clock, tick: c.Tick, manual: c.Manual, log: c.Logger,
		election: c.Election, wakeups: c.Wakeups, watch: c.Watch, replicas: c.Replicas}
}

// Digest is a channel's digest plan for the core: spec read by
// robfig/cron in loc (UTC if nil), the one engine that both fires the
// digest and says when the next one comes.
func Digest(channel string, spec nudges.Schedule, loc *time.Location) (app.DigestPlan, error) {
	if loc == nil {
		loc = time.UTC
	}
	when, err := cron.ParseStandard("CRON_TZ=" + loc.String() + " " + spec.String())
	if err != nil {
		return app.DigestPlan{}, fmt.Errorf("digest %s: %w", channel, err)
	}
	return app.DigestPlan{Channel: channel, When: inZone{when, loc}}, nil
}

// inZone is a schedule whose times read in its own zone: robfig/cron
// answers in the zone it was asked in, and people are told a digest's
// time in the digest's zone.
type inZone struct {
	cron.Schedule
	loc *time.Location
}

func (z inZone) Next(after time.Time) time.Time {
	t := z.Schedule.Next(after)
	if t.IsZero() {
		return t
	}
	return t.In(z.loc)
}

// housekeepingSpec is when the hourly clean-up and compaction run: at 17
// minutes past, not on the hour. People choose round times, so the hour
// and the half hour are when nudges are due, and a compaction holds
// every write for seconds on a large file.
const housekeepingSpec = "17 * * * *"

// Start runs the jobs under ctx: at once, or with an Election while this
// replica leads. stop ends them and waits for a job or tick in progress
// (a leader keeps its lease meanwhile, then releases it).
func (s *Scheduler) Start(ctx context.Context) (stop func()) {
	if s.election == nil {
		s.changed(0, true)
		return s.startJobs(ctx)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); s.elect(ctx, quit) }()
	return func() {
		close(quit)
		<-done
	}
}

// startJobs registers the global jobs on robfig/cron and starts the loop
// over the due index (or, when Manual, one tick for whatever came due
// while no one ran it: after a restart or a takeover, the outbox the
// last leader left). Jobs run under ctx. stop ends both and waits for a
// job or tick in progress.
func (s *Scheduler) startJobs(ctx context.Context) (stop func()) {
	cl := cronLogger{s.log}
	c := cron.New(cron.WithChain(cron.Recover(cl), cron.SkipIfStillRunning(cl)))
	mustAdd := func(spec string, job func()) {
		if _, err := c.AddFunc(spec, job); err != nil {
			// The specs are constants; failing here is a programming error.
			panic(fmt.Sprintf("cron spec %q: %v", spec, err))
		}
	}
	mustAdd(housekeepingSpec, func() { s.Housekeeping(ctx) })
	mustAdd("@daily", func() { s.RefreshProfiles(ctx) })
	for _, ch := range s.core.DigestChannels() {
		if p, ok := s.core.DigestPlan(ch); ok && p.When != nil {
			c.Schedule(p.When, cron.FuncJob(func() { s.RunDigest(ctx, ch) }))
		}
	}
	c.Start()
	var catchUp sync.WaitGroup
	catchUp.Go(func() { s.catchUpDigests(ctx) })
	quit, loopDone := make(chan struct{}), make(chan struct{})
	var remote <-chan struct{}
	if s.wakeups != nil {
		remote = s.wakeups.ListenWakes(ctx)
	}
	if s.manual {
		go func() { defer close(loopDone); s.Tick(ctx) }()
	} else {
		go func() { defer close(loopDone); s.loop(ctx, quit, remote) }()
	}
	return func() {
		close(quit)
		<-c.Stop().Done()
		<-loopDone
		catchUp.Wait()
	}
}

// digestCatchUp is how late a digest is still posted when its time came
// while no scheduler ran: a takeover (about a lease's time to live) or a
// restart straddling it. A longer gap is an outage, and the digest waits
// for its next time, as cron alone would have it.
const digestCatchUp = 5 * time.Minute

// catchUpDigests posts at once each digest whose time came in the last
// digestCatchUp without it being posted: robfig/cron, started after that
// time, would not fire until the next one, a week later for a weekly
// digest.
func (s *Scheduler) catchUpDigests(ctx context.Context) {
	for _, ch := range s.core.MissedDigests(s.clock(), digestCatchUp) {
		s.log.Info("posting a digest whose time came while no scheduler ran", "channel", ch)
		s.RunDigest(ctx, ch)
	}
}

// minSleep keeps the loop from spinning on someone who stays due after a
// tick (Slack refused for now, a write failed): they are tried again a
// second later.
const minSleep = time.Second

// loop ticks at once (whatever came due while the bot was down), then
// whenever the next person is due, at the latest every Tick, and early
// when the core says someone's schedule changed.
func (s *Scheduler) loop(ctx context.Context, quit, remote <-chan struct{}) {
	for {
		began := s.clock()
		s.Tick(ctx)
		wait := s.tick
		if at, ok := s.core.NextWake(); ok {
			switch d := at.Sub(s.clock()); {
			case d > 0:
				wait = min(wait, d)
			case at.After(began):
				// It came due while the tick ran (a long burst): look now.
				wait = 0
			default:
				// Due before the tick and still due (Slack refused for
				// now, a write failed): try again shortly, not in a spin.
				wait = min(wait, minSleep)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-quit:
			t.Stop()
			return
		case <-t.C:
		case <-s.core.Wakes():
			t.Stop()
		case <-remote:
			t.Stop()
		}
	}
}

// Leads reports whether this replica runs the jobs now: always without
// an Election.
func (s *Scheduler) Leads() bool { return s.election == nil || s.election.Leading() == nil }

// Tick plans and sends every nudge due now, if this replica leads.
func (s *Scheduler) Tick(ctx context.Context) {
	if s.Leads() {
		s.core.Tick(ctx, s.clock())
	}
}

// RefreshProfiles re-reads every subscriber's Slack profile now, if
// this replica leads.
func (s *Scheduler) RefreshProfiles(ctx context.Context) {
	if s.Leads() {
		s.core.RefreshProfiles(ctx, s.clock())
	}
}

// RunDigest posts a channel's digest now, if this replica leads. A
// failure an admin must fix is told to the admins once (by the core) and
// retried at the next scheduled time; it never stops the other digests.
func (s *Scheduler) RunDigest(ctx context.Context, channel string) {
	log := s.log.With("channel", channel)
	run, err := s.core.RunDigest(ctx, channel, s.clock())
	switch {
	case app.NotLeader(err):
		log.Info("digest left to the replica that leads", "error", err)
	case err != nil:
		log.Error("digest not posted; will try at the next scheduled time", "error", err)
	case run.Broken != "":
		// The core logged it and told the admins the first time.
	default:
		log.Info("digest posted", "members", run.Members)
	}
}

// handledFor is how long a handled Socket Mode envelope is remembered:
// Slack re-sends an unacknowledged one for minutes, never for days.
const handledFor = 48 * time.Hour

// Housekeeping removes what is older than the retention period and
// handled-envelope records past handledFor, then compacts the file if
// that or a deletion left enough behind and the last compaction is not
// too recent.
func (s *Scheduler) Housekeeping(ctx context.Context) {
	if !s.Leads() {
		return
	}
	if s.house != nil {
		now := s.clock()
		if _, err := s.house.ApplyRetention(now); app.NotLeader(err) {
			return
		} else if err != nil {
			s.log.Error("removing records older than storage.retention; retried next hour", "error", err)
		}
		if n, err := s.house.PruneSeen(now.Add(-handledFor)); err != nil {
			s.log.Error("pruning handled-envelope records", "error", err)
		} else if n > 0 {
			s.log.Debug("pruned handled-envelope records", "count", n)
		}
	}
	s.core.CompactSoon()
}

// cronLogger adapts slog to robfig/cron's logr-style Logger.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug(msg, append(kv, "component", "cron")...) }
func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error(msg, append(kv, "component", "cron", "error", err)...)
}
