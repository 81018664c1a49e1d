package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/slackemu"
)

// failoverLatency is how long the emulator takes to answer a post it has
// already stored: a kill in that window leaves a nudge Slack has and the
// bot never marked, which the next leader must find, not post again.
const failoverLatency = 50 * time.Millisecond

// failoverPoll is how often the bench reads the replicas' logs while it
// waits for a takeover; it bounds how late the bench sees one, not the
// measured time, which comes from the log lines' own stamps.
const failoverPoll = 100 * time.Millisecond

// failoverKill is one SIGKILL and what followed it.
type failoverKill struct {
	At       time.Time
	Slot     int // the replica killed
	Had      int // people with a nudge when it was killed
	Restart  []int
	Next     posted    // the first nudge another process logged as delivered after the kill
	NextSlot int       // the slot of that process
	NextPost time.Time // when Slack (the emulator) stored that nudge
	Leader   string    // the line in which a process says it now leads, if any
	LeaderAt time.Duration
	LastPost time.Time // the emulator's last post stored before the kill
}

// takeover is the kill → the first nudge another process posted, as
// Slack stored it; the process's log stamp when Slack's is missing. A
// post the killed process had already sent can reach Slack just after
// the kill, so the emulator's first post after it is not the measure.
func (k failoverKill) takeover() time.Duration {
	switch {
	case !k.NextPost.IsZero():
		return k.NextPost.Sub(k.At)
	case !k.Next.At.IsZero():
		return k.Next.At.Sub(k.At)
	}
	return 0
}

// gap is what people saw: the last nudge Slack stored before the kill to
// the first another process posted.
func (k failoverKill) gap() time.Duration {
	if k.LastPost.IsZero() || k.NextPost.IsZero() {
		return 0
	}
	return k.NextPost.Sub(k.LastPost)
}

// failoverResult is the failover-pg run.
type failoverResult struct {
	N, Rate, Replicas int
	DB                string
	Due, Began        time.Time
	Kills             []failoverKill
	Skipped           string // why a planned kill did not happen
	First, Last       time.Time
	DMs               int
	Once              onceTally
	Sent, Pending     int
	PerReplica        [][]int // per slot, nudges logged in each phase (before the first kill, between, after the last)
	Overlap           int
	Calls, Posts      map[string]int
	Stops             []stopResult
	Starts            int
	Logs              []logEntry
	Load              loadSpan
	Timeout           bool
	Use               pgUse
}

func (r failoverResult) exactlyOnce() bool { return r.Once.ok() && r.Sent == r.N && r.Pending == 0 }

func (r failoverResult) floor() time.Duration { return rateFloor(r.N, r.Rate, r.Rate/60) }

func (b *bench) failoverScenario(ctx context.Context) (string, error) {
	srv, err := b.pgServer(ctx)
	if err != nil {
		return "", err
	}
	r, err := b.failoverRun(ctx, srv)
	if err != nil {
		return "", err
	}
	for i, k := range r.Kills {
		b.progress("failover-pg: kill %d (replica %s, %d had theirs): takeover %s by %s, quiet on Slack %s",
			i+1, replicaName(k.Slot), k.Had, ms(k.takeover()), replicaName(k.NextSlot), ms(k.gap()))
	}
	b.progress("failover-pg: %s; database %d sent of %d, %d pending; first start → last nudge %s", r.Once, r.Sent, r.N, r.Pending, ms(r.Last.Sub(r.Began)))
	if !r.exactlyOnce() {
		b.note("failover-pg: not exactly once: %s; database %d sent of %d, %d pending", r.Once, r.Sent, r.N, r.Pending)
	}
	return b.failoverSection(srv, r), nil
}

func (b *bench) failoverRun(ctx context.Context, srv *pgServer) (res failoverResult, err error) {
	n, rate, replicas := b.opts.failSubs, b.opts.failRate, b.opts.failReplicas
	res = failoverResult{N: n, Rate: rate, Replicas: replicas}
	dir, err := b.dir("failover-pg")
	if err != nil {
		return res, err
	}
	emu, dms, err := newCrowd(ctx, n, "UTC", rate)
	if err != nil {
		return res, err
	}
	defer emu.Close()
	emu.SetResponseLatency("chat.postMessage", failoverLatency)
	db, err := srv.createDB(ctx, "failover")
	if err != nil {
		return res, err
	}
	defer b.release(db)
	res.DB = db.Name
	// Due a moment ago: the first tick of whichever replica leads plans
	// everyone at once, as after nine o'clock's instant.
	res.Due = time.Now().Add(-5 * time.Second).Truncate(time.Second).UTC()
	b.progress("failover-pg: seeding %d subscribers into %s, all due at %s", n, db.Name, res.Due.Format(time.TimeOnly))
	seeded, err := pgSeed(ctx, db, n, func(i int, s *nudges.Subscriber) {
		subscribed(s, res.Due.Add(-24*time.Hour), emu.IMChannel(s.UserID))
		s.NextDue = res.Due
	})
	if err != nil {
		return res, err
	}
	b.seedStats = append(b.seedStats, seeded)
	before, err := db.activity(ctx)
	if err != nil {
		return res, err
	}

	set := b.newReplicaSet(dir, emu, db, replicas, map[string]int{"chat.postMessage": rate}, false)
	defer set.killAll()
	bound := 2*res.floor() + 3*time.Minute
	deadline := time.Now().Add(bound)
	res.Load.Before = readLoad()
	res.Began = time.Now()
	if err := set.startAll(ctx); err != nil {
		return res, err
	}
	b.progress("failover-pg: %d replicas up; %d due, the limit allows them in %s", replicas, n, ms(res.floor()))

	if err := b.failoverKills(ctx, &res, emu, set, dms, deadline); err != nil {
		return res, err
	}
	if err := waitPeople(ctx, emu, set, dms, n, deadline); err != nil {
		if ctx.Err() != nil || set.exited() >= 0 {
			return res, err
		}
		res.Timeout = true
		b.progress("failover-pg: only %d of %d people had a nudge after %s; checking what arrived", dms.people(), n, bound)
	} else if err := sleepCtx(ctx, faultSettle, set.anyExit()); err != nil {
		// A post left uncertain by a kill is looked for after the bot's
		// settle time, at the next tick: a double would show in this wait.
		if ctx.Err() != nil {
			return res, err
		}
		return res, set.exitedErr(set.exited(), "while settling")
	}
	res.Load.After = readLoad()
	res.Stops = set.stopAll()
	res.Starts = set.starts
	return res, failoverTally(ctx, &res, emu, dms, set, before)
}

// failoverTally reads what the failover run left once the replicas
// stopped: the DMs and calls the emulator saw, each replica's log split
// at the kills, and the database.
func failoverTally(ctx context.Context, res *failoverResult, emu *slackemu.Server, dms *dmTracker, set *replicaSet, before pgActivity) error {
	res.First, res.Last, res.DMs = dms.span()
	res.Once = tallyOnce(res.N, emu.DM)
	res.Calls, res.Posts = map[string]int{}, map[string]int{}
	for _, c := range emu.Calls("") {
		if c.Time.Before(res.Began) {
			continue // openIMs, before any bot ran
		}
		res.Calls[c.Method]++
		if c.Method == "chat.postMessage" {
			res.Posts[postOutcome(c)]++
		}
	}
	per, err := set.postedAll()
	if err != nil {
		return err
	}
	for _, ps := range per {
		res.PerReplica = append(res.PerReplica, phaseCounts(ps, res.Kills))
	}
	res.Overlap = overlap(per)
	if res.Sent, res.Pending, res.Use, err = pgAfter(ctx, set.db, res.Due, before, res.DMs); err != nil {
		return err
	}
	res.Logs, err = tallyLogs(set.allLogs())
	return err
}

// failoverKills SIGKILLs the replica posting when a third of the people
// have their nudge and again when two thirds have, unless the burst has
// ended by then.
func (b *bench) failoverKills(ctx context.Context, res *failoverResult, emu *slackemu.Server, set *replicaSet, dms *dmTracker, deadline time.Time) error {
	for i, frac := range []int{1, 2} {
		want := res.N * frac / 3
		if err := waitPeople(ctx, emu, set, dms, want, deadline); err != nil {
			return err
		}
		if dms.people() >= res.N {
			res.Skipped = fmt.Sprintf("kill %d was planned when %d of %d had their nudge, but the burst had ended by then", i+1, want, res.N)
			return nil
		}
		k, err := b.failoverKillOnce(ctx, set, dms, res.N, i == 0, deadline)
		if err != nil {
			return err
		}
		res.Kills = append(res.Kills, k)
	}
	return nil
}

// failoverKillOnce SIGKILLs the replica that is posting and waits for
// another process to post. The first kill leaves the others to take over
// (with one replica, it is started again at once, as an orchestrator
// would); a later kill also restarts every slot that is down, the killed
// one first, so that all of them meet again at the end.
func (b *bench) failoverKillOnce(ctx context.Context, set *replicaSet, dms *dmTracker, n int, first bool, deadline time.Time) (failoverKill, error) {
	per, err := set.postedAll()
	if err != nil {
		return failoverKill{}, err
	}
	var k failoverKill
	k.Slot = latestPoster(per, set.running())
	if k.Slot < 0 {
		return k, fmt.Errorf("no running replica has logged a delivered nudge, though %d people have one; see %s", dms.people(), set.dir)
	}
	k.Had = dms.people()
	k.At = time.Now()
	set.kill(k.Slot)
	b.progress("failover-pg: SIGKILLed replica %s (the one posting) with %d of the people served", replicaName(k.Slot), k.Had)
	var restart []int
	switch {
	case len(set.procs) == 1:
		restart = []int{k.Slot}
	case !first:
		restart = append(restart, k.Slot)
		for i, p := range set.procs {
			if i != k.Slot && (p == nil || p.hasExited()) {
				restart = append(restart, i)
			}
		}
	}
	for _, i := range restart {
		if _, err := set.start(ctx, i); err != nil {
			return k, err
		}
	}
	k.Restart = restart
	// Everything a process logs from here on is another process's: the
	// killed one is gone, and a restarted slot is a new process.
	t := time.NewTicker(failoverPoll)
	defer t.Stop()
	for {
		for i, p := range set.procs {
			if p == nil || p.hasExited() {
				continue
			}
			ps, err := readPosted(p.logPath)
			if err != nil {
				return k, err
			}
			if p, ok := firstAfter(ps, k.At); ok && (k.Next.At.IsZero() || p.At.Before(k.Next.At)) {
				k.Next, k.NextSlot = p, i
			}
		}
		if !k.Next.At.IsZero() {
			break
		}
		if dms.people() >= n {
			break // nobody left to post for
		}
		if i := set.exited(); i >= 0 {
			return k, set.exitedErr(i, "after the kill")
		}
		if time.Now().After(deadline) {
			return k, fmt.Errorf("no replica posted within %s of the kill; see %s", time.Until(deadline)+time.Since(k.At), set.dir)
		}
		select {
		case <-ctx.Done():
			return k, ctx.Err()
		case <-t.C:
		}
	}
	var logs []string
	for _, p := range set.procs {
		if p != nil && !p.hasExited() {
			logs = append(logs, p.logPath)
		}
	}
	if at, msg, ok := leaderLine(logs, k.At); ok {
		k.Leader, k.LeaderAt = msg, at.Sub(k.At)
	}
	if !k.Next.At.IsZero() {
		k.NextPost, _ = dms.postedFor(k.Next.UserID, k.At)
	}
	k.LastPost = lastBefore(dms.postTimes(), k.At)
	b.progress("failover-pg: replica %s posted %s after the kill", replicaName(k.NextSlot), ms(k.takeover()))
	return k, nil
}

// waitPeople waits until want people have a nudge, giving up at deadline
// or when a replica exits on its own.
func waitPeople(ctx context.Context, emu *slackemu.Server, set *replicaSet, dms *dmTracker, want int, deadline time.Time) error {
	err := waitForPeople(ctx, emu, dms, want, deadline, set.anyExit())
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case set.exited() >= 0:
		return set.exitedErr(set.exited(), fmt.Sprintf("while waiting for %d people to have a nudge", want))
	case err != nil:
		return fmt.Errorf("only %d of the %d people awaited had a nudge by the bound: %w", dms.people(), want, err)
	}
	return nil
}

// latestPoster is the running slot that logged the latest delivery: the
// one leading now. -1 when no running slot has logged one.
func latestPoster(per [][]posted, running []bool) int {
	best, at := -1, time.Time{}
	for i, ps := range per {
		if i >= len(running) || !running[i] {
			continue
		}
		for _, p := range ps {
			if p.At.After(at) {
				best, at = i, p.At
			}
		}
	}
	return best
}

// phaseCounts splits ps at the kills: before the first, between each,
// after the last.
func phaseCounts(ps []posted, kills []failoverKill) []int {
	bounds := []time.Time{{}}
	for _, k := range kills {
		bounds = append(bounds, k.At)
	}
	out := make([]int, len(bounds))
	for i, from := range bounds {
		var to time.Time
		if i+1 < len(bounds) {
			to = bounds[i+1]
		}
		out[i] = countBetween(ps, from, to)
	}
	return out
}

func (b *bench) failoverSection(srv *pgServer, r failoverResult) string {
	var sb strings.Builder
	b.pgSectionHead(&sb, "failover-pg", srv)
	fmt.Fprintf(&sb, "Reproduce: `go run ./cmd/nudgebot-bench -scenarios failover-pg` (`-failover-replicas`, `-failover-subscribers`, `-failover-rate` and `-pg-url` change it).\n\n")
	who := fmt.Sprintf("%d replicas of `nudgebot run` (A, B) share one fresh PostgreSQL database, each with its own Socket Mode connection", r.Replicas)
	plan := "When a third of the people had their nudge, the replica posting them (the leader: the one whose log says it delivered the latest nudge) was SIGKILLed " +
		"and the other left to take over. When two thirds had theirs, the replica posting then was SIGKILLed too and both were started again, the killed one first."
	if r.Replicas == 1 {
		who = "One `nudgebot run` on a fresh PostgreSQL database"
		plan = "When a third of the people had their nudge the bot was SIGKILLed and started again at once, as an orchestrator restarts a pod; " +
			"again when two thirds had theirs. (With one replica a takeover is a restart: the figure bounds what a second replica must beat.)"
	}
	fmt.Fprintf(&sb, "%s. %d subscribers were seeded due 5 s before the first replica started (%s). The emulator limits `chat.postMessage` to %d a minute "+
		"(bursts of %d) for the workspace, every replica is configured with that limit, and the emulator answers each post %s after storing it, so that a kill "+
		"can fall between Slack taking a nudge and the bot hearing so. %s Once everyone had a nudge the replicas ran %s more (the bot's settle time for an uncertain "+
		"post plus a tick: a double would show then), then all got SIGTERM.\n\n",
		who, r.N, seedPGImport, r.Rate, max(1, r.Rate/60), ms(failoverLatency), plan, faultSettle)
	sb.WriteString("*Takeover* is the kill to the first nudge another process posted; *quiet on Slack* is what people saw: the last nudge Slack " +
		"stored before the kill to that one. Both take the moment the emulator stored the post, and which process posted it from the processes' " +
		"logs (\"nudge delivered\", with the person's id): a post the killed process sent just before it died can reach Slack just after.\n\n")
	sb.WriteString("| | |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(&sb, "| %s | %s |\n", k, v) }
	for i, k := range r.Kills {
		what := fmt.Sprintf("SIGKILL %d: replica %s, with %d of %d served", i+1, replicaName(k.Slot), k.Had, r.N)
		if len(k.Restart) > 0 {
			var names []string
			for _, s := range k.Restart {
				names = append(names, replicaName(s))
			}
			what += "; then started again: " + strings.Join(names, ", ")
		}
		row(fmt.Sprintf("kill %d", i+1), what)
		row(fmt.Sprintf("kill %d → first nudge by another process (**takeover**)", i+1), fmt.Sprintf("**%s** (replica %s)", ms(k.takeover()), replicaName(k.NextSlot)))
		if k.Leader != "" {
			row(fmt.Sprintf("kill %d → its leadership line", i+1), fmt.Sprintf("%s: `%s`", ms(k.LeaderAt), k.Leader))
		}
		row(fmt.Sprintf("kill %d: quiet on Slack", i+1), ms(k.gap()))
	}
	if r.Skipped != "" {
		row("not done", r.Skipped)
	}
	if len(r.Kills) > 0 && !r.Last.IsZero() {
		row("first kill → last nudge", ms(r.Last.Sub(r.Kills[0].At)))
	}
	if !r.Last.IsZero() {
		row("first replica start → last nudge", fmt.Sprintf("%s (the limit alone allows %s)", ms(r.Last.Sub(r.Began)), ms(r.floor())))
	}
	row("exactly once (emulator, per person)", onceCell(r.Once))
	row("database after the stop", dbAfterStopCell(r.N, r.Sent, r.Pending))
	var parts []string
	for i, ph := range r.PerReplica {
		var ns []string
		for _, c := range ph {
			ns = append(ns, fmt.Sprint(c))
		}
		parts = append(parts, fmt.Sprintf("%s %s", replicaName(i), strings.Join(ns, " / ")))
	}
	row("nudges logged per replica: before kill 1 / after it / after kill 2", strings.Join(parts, "; "))
	row("seconds with two replicas posting", fmt.Sprint(r.Overlap))
	row("`chat.postMessage` outcomes", callList(r.Posts))
	row("Web API calls", callList(r.Calls))
	row("database work (pg_stat_database)", r.Use.String())
	row(fmt.Sprintf("stop (SIGTERM; exit 0 within %s)", shutdownTimeout), stopsCell(r.Stops))
	row("processes started", fmt.Sprint(r.Starts))
	row("load 1m before→after", r.Load.String())
	if r.Timeout {
		sb.WriteString("\n**The run hit its bound before everyone had a nudge; the figures cover what arrived.**\n")
	}
	writeWarnings(&sb, "The bots", r.Logs)
	return sb.String()
}
