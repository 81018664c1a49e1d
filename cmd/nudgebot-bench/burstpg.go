package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

// burstPGTarget is the target: everyone due at one instant has
// their nudge within 1.05 times the floor Slack's limit sets.
const burstPGTarget = 1.05

// burstPGResult is one burst-pg run: n people due at one instant on
// PostgreSQL, with some replicas of the bot on the database.
type burstPGResult struct {
	N, Rate, Replicas int
	DB                string
	Seed              seedResult
	Due               time.Time
	Connected         time.Duration // first replica's start → the last replica's hello
	First, Last       time.Time     // first and last nudge posted
	LateP50, LateP99  time.Duration
	DMs               int
	Limited           int
	OtherCalls        map[string]int
	Once              onceTally
	Sent, Pending     int
	PerReplica        []int // nudges each replica logged as delivered
	Overlap           int   // seconds in which more than one replica posted
	Mem               []procStatus
	PGCPU             time.Duration // the server processes serving the replicas, over their lives
	PGBackends        int
	PGCPUErr          string
	Stops             []stopResult
	Use               pgUse
	Load              loadSpan
	Timeout           time.Duration
	Logs              []logEntry
}

func (r burstPGResult) floor() time.Duration { return rateFloor(r.N, r.Rate, r.Rate/60) }

func (r burstPGResult) dueToLast() time.Duration {
	if r.Last.IsZero() {
		return 0
	}
	return r.Last.Sub(r.Due)
}

func (r burstPGResult) ratio() float64 { return floorRatio(r.dueToLast(), r.floor()) }

func (r burstPGResult) exactlyOnce() bool {
	return r.Once.ok() && r.Sent == r.N && r.Pending == 0
}

func (r burstPGResult) met() bool {
	return r.Timeout == 0 && r.exactlyOnce() && r.ratio() > 0 && r.ratio() <= burstPGTarget
}

// cpuPerNudge is the CPU the replicas and their server processes spent
// per nudge, and the cores that takes at the rate limit: on a machine
// with fewer to spare, the floor cannot be reached whatever the load.
func (r burstPGResult) cpuPerNudge() (bot, pg time.Duration, cores float64) {
	if r.DMs == 0 {
		return 0, 0, 0
	}
	var all time.Duration
	for _, s := range r.Stops {
		all += s.CPU
	}
	bot, pg = all/time.Duration(r.DMs), r.PGCPU/time.Duration(r.DMs)
	return bot, pg, (bot + pg).Seconds() * float64(r.Rate) / 60
}

func (r burstPGResult) throughput() float64 {
	if r.DMs < 2 || !r.Last.After(r.First) {
		return 0
	}
	return float64(r.DMs-1) / r.Last.Sub(r.First).Minutes()
}

func (b *bench) burstPGScenario(ctx context.Context) (string, error) {
	srv, err := b.pgServer(ctx)
	if err != nil {
		return "", err
	}
	var rs []burstPGResult
	for _, n := range b.opts.replicas {
		r, err := b.burstPGRun(ctx, srv, b.opts.burstPGSubs, b.opts.burstPGRate, n)
		if err != nil {
			return "", fmt.Errorf("%d replicas: %w", n, err)
		}
		b.progress("burst-pg: %d replicas: due → last %s (floor %s, %.3f×), 429s %d, %s, database %d sent %d pending, per replica %v",
			n, ms(r.dueToLast()), ms(r.floor()), r.ratio(), r.Limited, r.Once, r.Sent, r.Pending, r.PerReplica)
		if !r.exactlyOnce() {
			b.note("burst-pg with %d replicas: not exactly once: %s; database %d sent of %d, %d pending", n, r.Once, r.Sent, r.N, r.Pending)
		}
		rs = append(rs, r)
	}
	return b.burstPGSection(srv, rs), nil
}

func (b *bench) burstPGRun(ctx context.Context, srv *pgServer, n, rate, replicas int) (res burstPGResult, err error) {
	res = burstPGResult{N: n, Rate: rate, Replicas: replicas}
	dir, err := b.dir(fmt.Sprintf("burst-pg-%d", replicas))
	if err != nil {
		return res, err
	}
	emu, dms, err := newCrowd(ctx, n, nineZone, rate)
	if err != nil {
		return res, err
	}
	defer emu.Close()
	db, err := srv.createDB(ctx, fmt.Sprintf("burst%d", replicas))
	if err != nil {
		return res, err
	}
	defer b.release(db)
	res.DB = db.Name

	res.Due = time.Now().Add(nineLead).Truncate(time.Second).UTC()
	b.progress("burst-pg: %d replicas; seeding %d subscribers into %s, all due at %s", replicas, n, db.Name, res.Due.Format(time.TimeOnly+" MST"))
	if res.Seed, err = pgSeed(ctx, db, n, dueInNineZone(emu, res.Due)); err != nil {
		return res, err
	}
	b.seedStats = append(b.seedStats, res.Seed)
	if err := waitToStart(ctx, res.Due, res.Seed, "the replicas", "burst-pg-subscribers"); err != nil {
		return res, err
	}
	before, err := db.activity(ctx)
	if err != nil {
		return res, err
	}

	set := b.newReplicaSet(dir, emu, db, replicas, map[string]int{"chat.postMessage": rate}, false)
	defer set.killAll()
	started := time.Now()
	res.Load.Before = readLoad()
	if err := set.startAll(ctx); err != nil {
		return res, err
	}
	res.Connected = time.Since(started)
	if !time.Now().Before(res.Due) {
		return res, fmt.Errorf("the replicas were connected at %s, after the due instant %s; see %s", time.Now().UTC().Format(time.TimeOnly), res.Due.Format(time.TimeOnly), dir)
	}
	b.progress("burst-pg: %d replicas up %s before the due instant; waiting for %d nudges (floor %s)", replicas, time.Until(res.Due).Round(100*time.Millisecond), n, ms(res.floor()))

	timedOut, err := awaitEveryone(ctx, emu, dms, n, res.Due.Add(b.opts.burstPGMax), set.anyExit(), set.anyExitedErr)
	if err != nil {
		return res, err
	}
	if timedOut {
		res.Timeout = b.opts.burstPGMax
		b.progress("burst-pg: only %d of %d people had a nudge %s after the due instant; measuring what arrived", dms.people(), n, b.opts.burstPGMax)
	}
	res.Mem = set.memOf()
	if res.PGCPU, res.PGBackends, err = db.backendCPU(ctx); err != nil {
		res.PGCPUErr = err.Error()
	}
	res.Load.After = readLoad()
	res.Stops = set.stopAll()
	return res, burstPGTally(ctx, &res, emu, dms, set, before, started)
}

// burstPGTally reads what a burst-pg run left once the replicas stopped:
// the DMs and calls the emulator saw, each replica's log and the
// database.
func burstPGTally(ctx context.Context, res *burstPGResult, emu *slackemu.Server, dms *dmTracker, set *replicaSet, before pgActivity, started time.Time) error {
	res.First, res.Last, res.DMs = dms.span()
	res.LateP50, res.LateP99, _ = dms.lateness(res.Due)
	res.OtherCalls = map[string]int{}
	for _, c := range emu.Calls("") {
		if c.Method != "chat.postMessage" && c.Time.After(started) {
			res.OtherCalls[c.Method]++
		}
	}
	res.Limited = emu.RateLimited("chat.postMessage")
	res.Once = tallyOnce(res.N, emu.DM)
	per, err := set.postedAll()
	if err != nil {
		return err
	}
	for _, ps := range per {
		res.PerReplica = append(res.PerReplica, len(ps))
	}
	res.Overlap = overlap(per)
	if res.Sent, res.Pending, res.Use, err = pgAfter(ctx, set.db, res.Due, before, res.DMs); err != nil {
		return err
	}
	res.Logs, err = tallyLogs(set.allLogs())
	return err
}

func (b *bench) burstPGSection(srv *pgServer, rs []burstPGResult) string {
	var sb strings.Builder
	r0 := rs[0]
	b.pgSectionHead(&sb, "burst-pg", srv)
	fmt.Fprintf(&sb, "Reproduce: `go run ./cmd/nudgebot-bench -scenarios burst-pg` (`-replicas`, `-burst-pg-subscribers`, `-burst-pg-rate`, `-burst-pg-max` and `-pg-url` change it).\n\n")
	fmt.Fprintf(&sb, "Section 5 on PostgreSQL, with one and with more replicas. %d subscribers in %s, all due at the same instant, seeded with %s into a database created for the run "+
		"(`CREATE DATABASE nudgebot_bench_…`, dropped afterwards), their DM channels known so every Web API call is a `chat.postMessage`. "+
		"The replicas are separate `nudgebot run` processes with `storage.driver: postgres`, the database URL and one master key in their environment, each with its own "+
		"Socket Mode connection to the one emulator; they were started one after the other, %s before the due instant. The emulator limits `chat.postMessage` to "+
		"R = %d a minute with bursts of %d for the whole workspace, and every replica is configured with `slack_limits: {chat.postMessage: %d}`. "+
		"Exactly once is counted person by person from what the emulator holds (each person's DM), and from the database after every replica stopped. "+
		"*Per replica* is the bots' own \"nudge delivered\" log lines; *seconds with two replicas posting* counts the seconds in which more than one replica logged a delivery.\n\n",
		r0.N, nineZone, seedPGImport, ninePhase, r0.Rate, max(1, r0.Rate/60), r0.Rate)
	row := func(name string, cell func(r burstPGResult) string) {
		sb.WriteString("| " + name)
		for _, r := range rs {
			sb.WriteString(" | " + cell(r))
		}
		sb.WriteString(" |\n")
	}
	row("replicas", func(r burstPGResult) string { return fmt.Sprintf("**%d**", r.Replicas) })
	sb.WriteString("|---")
	for range rs {
		sb.WriteString("|---")
	}
	sb.WriteString("|\n")
	row("first replica start → last replica connected", func(r burstPGResult) string { return ms(r.Connected) })
	row("due instant → first nudge", func(r burstPGResult) string {
		if r.First.IsZero() {
			return "none"
		}
		return ms(r.First.Sub(r.Due))
	})
	row("**due instant → last nudge**", func(r burstPGResult) string { return "**" + ms(r.dueToLast()) + "**" })
	row("floor set by the limit: (N − burst) / R", func(r burstPGResult) string { return ms(r.floor()) })
	row(fmt.Sprintf("against the floor (target ≤ %.2f×)", burstPGTarget), func(r burstPGResult) string {
		return fmt.Sprintf("%.3f×: %s", r.ratio(), verdict(r.met()))
	})
	row("lateness, due instant → each nudge", func(r burstPGResult) string { return fmt.Sprintf("p50 %s, p99 %s", ms(r.LateP50), ms(r.LateP99)) })
	row("nudges posted", func(r burstPGResult) string { return fmt.Sprintf("%d of %d", r.DMs, r.N) })
	row("throughput, first → last", func(r burstPGResult) string {
		tp := r.throughput()
		return fmt.Sprintf("%.0f/min = %.1f%% of R", tp, 100*tp/float64(r.Rate))
	})
	row("HTTP 429 answers", func(r burstPGResult) string { return fmt.Sprint(r.Limited) })
	row("exactly once (emulator, per person)", func(r burstPGResult) string { return onceCell(r.Once) })
	row("database after the stop", func(r burstPGResult) string { return dbAfterStopCell(r.N, r.Sent, r.Pending) })
	row("per replica (logged as delivered)", func(r burstPGResult) string { return perReplicaCell(r.PerReplica) })
	row("seconds with two replicas posting", func(r burstPGResult) string { return fmt.Sprint(r.Overlap) })
	row("other Web API calls", func(r burstPGResult) string { return callList(r.OtherCalls) })
	row("database work, the replicas' start → stop (pg_stat_database)", func(r burstPGResult) string { return r.Use.String() })
	row("VmHWM of each replica", func(r burstPGResult) string {
		var parts []string
		for i, m := range r.Mem {
			parts = append(parts, fmt.Sprintf("%s %.1f MB", replicaName(i), mb(m.VmHWM)))
		}
		return strings.Join(parts, ", ")
	})
	row("bot CPU, whole run, each replica", func(r burstPGResult) string {
		var parts []string
		for i, s := range r.Stops {
			parts = append(parts, fmt.Sprintf("%s %s", replicaName(i), s.CPU.Round(10*time.Millisecond)))
		}
		return strings.Join(parts, ", ")
	})
	row("PostgreSQL CPU: the server processes serving the replicas, over their lives", func(r burstPGResult) string {
		if r.PGCPUErr != "" {
			return "not measured: " + r.PGCPUErr
		}
		return fmt.Sprintf("%s in %d processes", r.PGCPU.Round(10*time.Millisecond), r.PGBackends)
	})
	row("CPU per nudge, the replicas + their server processes; cores that takes at R", func(r burstPGResult) string {
		bot, pg, cores := r.cpuPerNudge()
		if r.PGCPUErr != "" || cores == 0 {
			return "not measured"
		}
		return fmt.Sprintf("%s + %s = %s: %.2f cores of %d", ms(bot), ms(pg), ms(bot+pg), cores, b.machine.Cores)
	})
	row(fmt.Sprintf("stop (SIGTERM to all at once; exit 0 within %s)", shutdownTimeout), func(r burstPGResult) string { return stopsCell(r.Stops) })
	row("seeding", func(r burstPGResult) string {
		return fmt.Sprintf("%s (%.0f/s), database %.1f MB", r.Seed.Took.Round(time.Millisecond), r.Seed.perSecond(), float64(r.Seed.FileSize)/1e6)
	})
	row("load 1m before→after", func(r burstPGResult) string { return r.Load.String() })
	for _, r := range rs {
		if r.Timeout > 0 {
			fmt.Fprintf(&sb, "\nThe run with %d replicas hit its bound of %s after the due instant before everyone had a nudge; its figures cover what arrived.\n", r.Replicas, r.Timeout)
		}
	}
	for _, r := range rs {
		if warns := entriesAt(r.Logs, "WARN", "ERROR", ""); len(warns) > 0 {
			fmt.Fprintf(&sb, "\nWith %d replicas the bots logged:\n\n", r.Replicas)
			writeLogEntries(&sb, warns)
		}
	}
	return sb.String()
}

func perReplicaCell(counts []int) string {
	var parts []string
	for i, c := range counts {
		parts = append(parts, fmt.Sprintf("%s %d", replicaName(i), c))
	}
	return strings.Join(parts, ", ")
}
