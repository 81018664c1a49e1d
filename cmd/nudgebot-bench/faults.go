package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/slackemu"
	"github.com/nudgebot/nudgebot/storage"
)

// The fault runs, in the order they run and appear in the report.
var faultOrder = []string{"kill", "429", "disconnect", "latency", "disk"}

var faultTitles = map[string]string{
	"kill":       "Repeated SIGKILL during deliveries",
	"429":        "A 429 storm",
	"disconnect": "Socket Mode disconnects every few seconds",
	"latency":    "2 s Web API latency on chat.postMessage",
	"disk":       "The database's disk full",
	"disk-tmpfs": "The database's disk full (tmpfs)",
	"disk-fsize": "Every database write failing (file-size limit)",
}

// The bot's fixed timings (not configurable in `nudgebot run`): runs are
// planned around them.
const (
	botTick   = 15 * time.Second // the scheduler's tick
	botSettle = 20 * time.Second // an uncertain post is left alone this long
)

// faultSettle is how long a run keeps the bot up after everyone has a
// nudge: a post left uncertain just before the last one is looked for
// after botSettle, at the next tick. A duplicate would appear in this
// window, and the outbox should be empty at its end.
const faultSettle = botSettle + botTick + 5*time.Second

// faultEmuRate is the emulator's chat.postMessage limit in the fault runs,
// a minute; the bot is configured with the same. 20 a second stretches a
// few hundred nudges over half a minute, so the faults land mid-burst.
const faultEmuRate = 1200

// faultResult is one fault run.
type faultResult struct {
	Key   string
	N     int
	Began time.Time // the first bot started

	Starts int // bot processes started
	Exits  []string

	First, Last time.Time
	DMs         int
	Missing     int // people with no nudge at the end
	Extra       int // nudges beyond one per person
	DupIDs      int
	BadMeta     int
	Sent        int // deliveries the database says were sent
	Pending     int // left in the outbox after the last stop
	Calls       map[string]int
	Posts       map[string]int // chat.postMessage outcomes
	Stop        stopResult
	Timeout     bool

	Did   string   // what was done, for the report
	Facts []string // what the fault run showed, beyond lost and doubled
	Logs  []logEntry
}

func (r faultResult) lost() int    { return r.Missing }
func (r faultResult) doubled() int { return r.Extra }
func (r faultResult) ok() bool {
	return r.Missing == 0 && r.Extra == 0 && r.DupIDs == 0 && r.BadMeta == 0 && r.Sent == r.N && r.Pending == 0
}

func (r faultResult) dueToLast() time.Duration {
	if r.Last.IsZero() {
		return 0
	}
	return r.Last.Sub(r.Began)
}

func (b *bench) faultsScenario(ctx context.Context) (string, error) {
	runs := map[string]func(context.Context) (faultResult, error){
		"kill": b.faultKill, "429": b.fault429, "disconnect": b.faultDisconnect, "latency": b.faultLatency,
		"disk-tmpfs": func(ctx context.Context) (faultResult, error) { return b.faultDisk(ctx, diskTmpfs) },
		"disk-fsize": func(ctx context.Context) (faultResult, error) { return b.faultDisk(ctx, diskFsize) },
	}
	var keys []string
	for _, key := range b.opts.faultRuns {
		if key != "disk" {
			keys = append(keys, key)
			continue
		}
		for _, m := range diskModes(b.opts.faultDisk) {
			keys = append(keys, "disk-"+m)
		}
	}
	var rs []faultResult
	var failed []string
	for _, key := range keys {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		b.progress("faults: %s, %d subscribers", faultTitles[key], b.opts.faultSubs)
		r, err := runs[key](ctx)
		if errors.Is(err, errCannotMount) && b.opts.faultDisk == diskAuto {
			// -faults-disk auto: the file-size-limit run stands in for it.
			failed = append(failed, fmt.Sprintf("%s: skipped: %v", faultTitles[key], err))
			b.note("the tmpfs disk-full run was skipped: %v", err)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			// One broken run should not hide the others' figures.
			failed = append(failed, fmt.Sprintf("%s: %v", faultTitles[key], err))
			b.progress("faults: %s could not complete: %v", key, err)
			continue
		}
		b.progress("faults: %s: %d lost, %d doubled, %d pending, first start → last nudge %s, %d bot starts",
			key, r.lost(), r.doubled(), r.Pending, ms(r.dueToLast()), r.Starts)
		if !r.ok() {
			b.note("fault run %q: %d lost, %d doubled, %d duplicate ids, database %d sent of %d, %d left pending",
				key, r.lost(), r.doubled(), r.DupIDs, r.Sent, r.N, r.Pending)
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return "", fmt.Errorf("no fault run completed: %s", strings.Join(failed, "; "))
	}
	return b.faultsSection(rs, failed), nil
}

// faultEnv is one fault run's emulator, database and bot logs.
type faultEnv struct {
	b      *bench
	res    *faultResult
	dir    string
	dbPath string
	emu    *slackemu.Server
	dms    *dmTracker
	logs   []string
	limits map[string]int
	due    time.Time
	piped  bool // the bot's log through a pipe: see startBotLog
}

// newFaultEnv seeds n people due 5 s ago, so the bot's first tick at
// start plans all of them at once. dbDir "" keeps the database in the
// run's directory.
func (b *bench) newFaultEnv(ctx context.Context, key string, n int, dbDir string) (*faultEnv, error) {
	dir, err := b.dir("faults-" + key)
	if err != nil {
		return nil, err
	}
	if dbDir == "" {
		dbDir = dir
	}
	e := &faultEnv{b: b, res: &faultResult{Key: key, N: n}, dir: dir, dbPath: filepath.Join(dbDir, "nudgebot.db"),
		dms: newDMTracker(), limits: map[string]int{"chat.postMessage": faultEmuRate}}
	if e.emu, err = newEmulator(e.dms.option()); err != nil {
		return nil, err
	}
	e.emu.RateLimit("chat.postMessage", faultEmuRate, faultEmuRate/60)
	for i := range n {
		id := benchUserID(i)
		e.emu.AddUser(slackemu.User{ID: id, Name: strings.ToLower(id), TZ: "UTC"})
	}
	e.due = time.Now().Add(-5 * time.Second).Truncate(time.Second).UTC()
	_, err = importSeed(ctx, e.dbPath, n, func(i int, s *nudges.Subscriber) {
		subscribed(s, e.due.Add(-24*time.Hour), e.emu.IMChannel(s.UserID))
		s.NextDue = e.due
	})
	if err != nil {
		e.emu.Close()
		return nil, err
	}
	return e, nil
}

func (e *faultEnv) close() { e.emu.Close() }

// start runs a bot on the run's database, with its own log file.
func (e *faultEnv) start() (*botProc, error) {
	runDir := filepath.Join(e.dir, fmt.Sprintf("run-%02d", len(e.logs)+1))
	if err := os.Mkdir(runDir, 0o700); err != nil {
		return nil, fmt.Errorf("create the bot's directory: %w", err)
	}
	p, err := startBotLog(e.b.bin, runDir, e.emu, e.dbPath, e.limits, e.piped)
	if err != nil {
		return nil, err
	}
	e.logs = append(e.logs, p.logPath)
	e.res.Starts++
	if e.res.Began.IsZero() {
		e.res.Began = p.started
	}
	return p, nil
}

// waitAll waits until everyone has a nudge, the bound passes, or the bot
// exits (an error naming its log).
func (e *faultEnv) waitAll(ctx context.Context, p *botProc, bound time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-wctx.Done():
		}
	}()
	err := e.emu.WaitFor(wctx, func() bool { return e.dms.people() >= e.res.N })
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case p.hasExited():
		return fmt.Errorf("%w (%v); see %s", errBotExited, p.waitErr, p.logPath)
	case err != nil:
		e.res.Timeout = true
		e.b.progress("faults: only %d of %d people had a nudge after %s; checking what arrived", e.dms.people(), e.res.N, bound)
	}
	return nil
}

// finish keeps the bot up for faultSettle, stops it and counts.
func (e *faultEnv) finish(ctx context.Context, p *botProc) error {
	if !e.res.Timeout {
		if err := sleepCtx(ctx, faultSettle, p.exited); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return fmt.Errorf("%w (%v) while settling; see %s", errBotExited, p.waitErr, p.logPath)
		}
	}
	e.res.Stop = p.stop()
	return e.count()
}

// count fills in what the emulator, the database and the logs say.
func (e *faultEnv) count() error {
	r := e.res
	r.First, r.Last, r.DMs = e.dms.span()
	r.Missing, r.Extra, r.DupIDs, r.BadMeta = checkDMs(e.emu, r.N)
	r.Calls, r.Posts = map[string]int{}, map[string]int{}
	for _, c := range e.emu.Calls("") {
		r.Calls[c.Method]++
		if c.Method == "chat.postMessage" {
			r.Posts[postOutcome(c)]++
		}
	}
	var err error
	if r.Sent, r.Pending, err = countDeliveries(e.dbPath, e.due); err != nil {
		return err
	}
	if r.Logs, err = tallyLogs(e.logs); err != nil {
		return err
	}
	return nil
}

// postOutcome names what became of one chat.postMessage call.
func postOutcome(c slackemu.Call) string {
	switch {
	case c.Status == 200 && c.Error == "":
		return "posted"
	case c.Status == 429:
		return "429"
	case c.Status == 0 && strings.HasPrefix(c.Error, "applied"):
		return "applied, answer never read"
	case c.Status == 0:
		return "no answer"
	case c.Error != "":
		return c.Error
	}
	return fmt.Sprintf("HTTP %d", c.Status)
}

// faultKill kills the bot at random moments while it delivers, then lets
// a clean run finish.
func (b *bench) faultKill(ctx context.Context) (faultResult, error) {
	e, err := b.newFaultEnv(ctx, "kill", b.opts.faultSubs, "")
	if err != nil {
		return faultResult{}, err
	}
	defer e.close()
	// Slack takes the message, then answers 150 ms later: a kill in that
	// window leaves a nudge that reached Slack but was never marked sent.
	e.emu.SetResponseLatency("chat.postMessage", 150*time.Millisecond)
	seed := b.opts.seed
	rng := rand.New(rand.NewPCG(seed, 7))
	kills, mid := 0, 0
	var at []string
	for kills < b.opts.faultKills && e.dms.people() < e.res.N {
		p, err := e.start()
		if err != nil {
			return *e.res, err
		}
		wait := time.Duration(300+rng.IntN(2200)) * time.Millisecond
		if err := sleepCtx(ctx, wait, p.exited); err != nil {
			p.kill()
			if ctx.Err() != nil {
				return *e.res, err
			}
			return *e.res, fmt.Errorf("%w (%v) before it was killed; see %s", errBotExited, p.waitErr, p.logPath)
		}
		before := e.dms.people()
		p.kill() // SIGKILL
		kills++
		if before > 0 && before < e.res.N {
			mid++
		}
		at = append(at, fmt.Sprintf("%.1fs (%d had theirs)", wait.Seconds(), before))
	}
	b.progress("faults: %d kills (%d mid-burst), %d of %d have a nudge; a clean run finishes", kills, mid, e.dms.people(), e.res.N)
	p, err := e.start()
	if err != nil {
		return *e.res, err
	}
	defer p.kill()
	if err := e.waitAll(ctx, p, 3*time.Minute); err != nil {
		return *e.res, err
	}
	if err := e.finish(ctx, p); err != nil {
		return *e.res, err
	}
	r := e.res
	r.Did = fmt.Sprintf("%d subscribers due at once; the emulator answers each `chat.postMessage` 150 ms after storing it; the bot was started "+
		"and SIGKILLed %d times at random moments 0.3–2.5 s after its start (seed %d), then started once more and left to finish.", r.N, kills, seed)
	r.Facts = append(r.Facts,
		fmt.Sprintf("%d kills, %d of them while the burst was under way; kill moments after start: %s", kills, mid, strings.Join(at, ", ")),
		fmt.Sprintf("%d posts stored by Slack whose answer the bot never read (the kill landed in the 150 ms window); "+
			"`conversations.history` lookups to reconcile: %d", r.Posts["applied, answer never read"], r.Calls["conversations.history"]),
		fmt.Sprintf("`chat.postMessage` outcomes: %s", callList(r.Posts)),
	)
	return *r, nil
}

// fault429 answers the first posts with 429s, as a Slack under strain or
// another app sharing the workspace's limit would.
func (b *bench) fault429(ctx context.Context) (faultResult, error) {
	e, err := b.newFaultEnv(ctx, "429", b.opts.faultSubs, "")
	if err != nil {
		return faultResult{}, err
	}
	defer e.close()
	storm := b.opts.faultStorm
	e.emu.FailNext("chat.postMessage", storm, slackemu.FaultRateLimited(time.Second))
	p, err := e.start()
	if err != nil {
		return *e.res, err
	}
	defer p.kill()
	if err := e.waitAll(ctx, p, 4*time.Minute); err != nil {
		return *e.res, err
	}
	if err := e.finish(ctx, p); err != nil {
		return *e.res, err
	}
	r := e.res
	floor := time.Duration(float64(r.N) / faultEmuRate * float64(time.Minute))
	r.Did = fmt.Sprintf("%d subscribers due at once; the emulator answers the first %d `chat.postMessage` calls with HTTP 429 and `Retry-After: 1`, "+
		"then serves normally within its limit of %d a minute.", r.N, storm, faultEmuRate)
	r.Facts = append(r.Facts,
		fmt.Sprintf("`chat.postMessage` outcomes: %s", callList(r.Posts)),
		fmt.Sprintf("first start → last nudge %s; without the storm the limit alone allows %s", ms(r.dueToLast()), ms(floor)),
		fmt.Sprintf("deliveries that gave up after 5 attempts and waited for a later tick: %d; `conversations.history` lookups before posting them again: %d",
			countMsg(r.Logs, "delivery not sent; will try again next tick"), r.Calls["conversations.history"]),
	)
	return *r, nil
}

// cmdResult is one slash command sent during the disconnect run.
type cmdResult struct {
	Waited time.Duration // send → ack, as the person waits
	Acked  bool
}

// faultDisconnect asks the bot to reconnect every few seconds while
// people use slash commands and nudges go out.
func (b *bench) faultDisconnect(ctx context.Context) (faultResult, error) {
	e, err := b.newFaultEnv(ctx, "disconnect", b.opts.faultSubs, "")
	if err != nil {
		return faultResult{}, err
	}
	defer e.close()
	const helpUser, statusUser = "UBENCHCMDHELP", "UBENCHCMDSTAT"
	for _, id := range []string{helpUser, statusUser} {
		e.emu.AddUser(slackemu.User{ID: id, Name: strings.ToLower(id), TZ: "UTC"})
	}
	p, err := e.start()
	if err != nil {
		return *e.res, err
	}
	defer p.kill()
	if _, err := p.waitConnected(ctx, e.emu, 30*time.Second); err != nil {
		return *e.res, err
	}

	dur, every, rate := b.opts.faultDisconnectFor, 3*time.Second, 10
	total := int(dur.Seconds()) * rate
	results := make([]cmdResult, total)
	var wg sync.WaitGroup
	disconnects := 0
	start := time.Now()
	nextDisconnect := start.Add(every)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	sent := 0
	for sent < total {
		select {
		case <-ctx.Done():
			tick.Stop()
			wg.Wait()
			return *e.res, ctx.Err()
		case <-p.exited:
			tick.Stop()
			wg.Wait()
			return *e.res, fmt.Errorf("%w (%v) during the disconnects; see %s", errBotExited, p.waitErr, p.logPath)
		case now := <-tick.C:
			if !now.Before(nextDisconnect) {
				e.emu.Disconnect("refresh_requested")
				disconnects++
				nextDisconnect = nextDisconnect.Add(every)
			}
		}
		i := sent
		user, text := helpUser, "help"
		if i%2 == 1 {
			user, text = statusUser, "status"
		}
		wg.Go(func() {
			// Ten seconds: an ack later than Slack's three still counts as
			// late rather than lost, to tell the two apart.
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			t0 := time.Now()
			_, err := e.emu.SlashCommand(sctx, user, "", "/nudge", text)
			results[i] = cmdResult{Waited: time.Since(t0), Acked: err == nil}
		})
		sent++
	}
	tick.Stop()
	wg.Wait()
	// Answers through response_url come after the ack; give the last a moment.
	statusSent := total / 2
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_ = e.emu.WaitFor(actx, func() bool { return len(e.emu.Ephemerals(statusUser)) >= statusSent })
	cancel()

	if err := e.waitAll(ctx, p, 3*time.Minute); err != nil {
		return *e.res, err
	}
	connections := e.emu.Connections()
	if err := e.finish(ctx, p); err != nil {
		return *e.res, err
	}
	var acked, late, lost int
	var waits []time.Duration
	for _, c := range results {
		switch {
		case !c.Acked:
			lost++
		case c.Waited > 3*time.Second:
			late++
		default:
			acked++
		}
		if c.Acked {
			waits = append(waits, c.Waited)
		}
	}
	w := summarize(waits)
	r := e.res
	r.Did = fmt.Sprintf("%d subscribers due at once; for %s the emulator sent a `disconnect` frame (`refresh_requested`) every %s while "+
		"%d `/nudge` commands a second went to the bot, alternating `help` (answered in the ack) and `status` (answered through response_url). "+
		"Slack does not re-send a slash command; a person whose command is not acked within 3 s sees an error.", r.N, dur, every, rate)
	r.Facts = append(r.Facts,
		fmt.Sprintf("disconnects sent: %d; Socket Mode connections made: %d", disconnects, connections),
		fmt.Sprintf("commands sent: %d; acked within 3 s: %d; acked later: %d; never acked (within 10 s): %d", total, acked, late, lost),
		fmt.Sprintf("send → ack as the person waits: p50 %s, p99 %s, max %s", ms(w.P50), ms(w.P99), ms(w.Max)),
		fmt.Sprintf("`status` commands answered through response_url: %d of %d", len(e.emu.Ephemerals(statusUser)), statusSent),
	)
	return *r, nil
}

// faultLatency makes every chat.postMessage answer 2 s late.
func (b *bench) faultLatency(ctx context.Context) (faultResult, error) {
	e, err := b.newFaultEnv(ctx, "latency", b.opts.faultSubs, "")
	if err != nil {
		return faultResult{}, err
	}
	defer e.close()
	const latency = 2 * time.Second
	e.emu.SetLatency("chat.postMessage", latency)
	const senders = 12 // the core's default
	floor := time.Duration(float64(e.res.N) / senders * float64(latency))
	p, err := e.start()
	if err != nil {
		return *e.res, err
	}
	defer p.kill()
	if err := e.waitAll(ctx, p, 2*floor+2*time.Minute); err != nil {
		return *e.res, err
	}
	if err := e.finish(ctx, p); err != nil {
		return *e.res, err
	}
	r := e.res
	r.Did = fmt.Sprintf("%d subscribers due at once; the emulator holds every `chat.postMessage` for %s before handling it.", r.N, latency)
	spread := r.Last.Sub(r.First)
	r.Facts = append(r.Facts,
		fmt.Sprintf("first start → last nudge %s; first → last nudge %s, %.1f nudges/s", ms(r.dueToLast()), ms(spread), float64(max(0, r.DMs-1))/spread.Seconds()),
		fmt.Sprintf("the bot's %d senders each wait out one post at a time, so %s × %d / %d = %s is the floor at this latency; the rate limit alone would allow %s",
			senders, latency, r.N, senders, ms(floor), ms(time.Duration(float64(r.N)/faultEmuRate*float64(time.Minute)))),
		fmt.Sprintf("`chat.postMessage` outcomes: %s", callList(r.Posts)),
	)
	return *r, nil
}

// faultDisk fills the database's disk while nudges go out and a person
// runs /nudge start, then frees it.
func (b *bench) faultDisk(ctx context.Context, mode string) (res faultResult, err error) {
	parent, err := b.dir("faults-disk-" + mode)
	if err != nil {
		return res, err
	}
	disk, err := setupDisk(ctx, parent, mode)
	if err != nil {
		return res, err
	}
	e, err := b.newFaultEnv(ctx, "disk-"+mode, b.opts.faultSubs, disk.dir)
	if err != nil {
		return res, errors.Join(err, disk.close())
	}
	e.piped = mode == diskFsize
	defer e.close()
	var p *botProc
	defer func() {
		if p != nil {
			p.kill() // before the unmount, which a running bot would block
		}
		err = errors.Join(err, disk.close())
	}()
	const person = "UBENCHDISKFULL"
	e.emu.AddUser(slackemu.User{ID: person, Name: "diskfull", TZ: "Europe/Berlin"})

	if p, err = e.start(); err != nil {
		return *e.res, err
	}
	// Fill the disk once a fifth have their nudge, mid-burst.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	werr := e.emu.WaitFor(wctx, func() bool { return e.dms.people() >= e.res.N/5 || p.hasExited() })
	cancel()
	if werr != nil || p.hasExited() {
		return *e.res, fmt.Errorf("the burst did not start within a minute (%d nudges, bot exited: %v); see %s", e.dms.people(), p.hasExited(), p.logPath)
	}
	if err := disk.fill(ctx, p.cmd.Process.Pid); err != nil {
		return *e.res, err
	}
	filledAt, atFill := time.Now(), e.dms.people()
	b.progress("faults: disk full with %d of %d nudges out", atFill, e.res.N)

	ask := func() (string, error) {
		before := len(e.emu.Ephemerals(person))
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if _, err := e.emu.SlashCommand(sctx, person, "", "/nudge", "start"); err != nil {
			return "", fmt.Errorf("/nudge start was not acked: %w; see %s", err, p.logPath)
		}
		if err := e.emu.WaitFor(sctx, func() bool { return len(e.emu.Ephemerals(person)) > before }); err != nil {
			return "(no answer within 20 s)", nil
		}
		eph := e.emu.Ephemerals(person)
		return eph[len(eph)-1].VisibleText(), nil
	}
	if err := sleepCtx(ctx, 2*time.Second, p.exited); err != nil && ctx.Err() != nil {
		return *e.res, err
	}
	var whileFull, afterFree string
	var exitedFull string
	if !p.hasExited() {
		if whileFull, err = ask(); err != nil {
			return *e.res, err
		}
	}
	// Stay full long enough for a tick and the senders to hit it.
	if err := sleepCtx(ctx, time.Until(filledAt.Add(b.opts.faultDiskFull)), p.exited); err != nil && ctx.Err() != nil {
		return *e.res, err
	}
	atFree := e.dms.people()
	if p.hasExited() {
		exitedFull = fmt.Sprintf("the bot exited while the disk was full (%v)", p.waitErr)
		e.res.Exits = append(e.res.Exits, exitedFull)
		// A file-size limit died with the process; a filled tmpfs did not.
		if disk.mode == diskTmpfs {
			if err := disk.free(ctx, 0); err != nil {
				return *e.res, err
			}
		}
		if p, err = e.start(); err != nil {
			return *e.res, err
		}
		if _, err := p.waitConnected(ctx, e.emu, 30*time.Second); err != nil {
			return *e.res, err
		}
	} else if err := disk.free(ctx, p.cmd.Process.Pid); err != nil {
		return *e.res, err
	}
	freedAt := time.Now()
	b.progress("faults: disk freed after %s with %d of %d nudges out", freedAt.Sub(filledAt).Round(100*time.Millisecond), atFree, e.res.N)
	if afterFree, err = ask(); err != nil {
		return *e.res, err
	}
	if err := e.waitAll(ctx, p, 3*time.Minute); err != nil {
		return *e.res, err
	}
	if err := e.finish(ctx, p); err != nil {
		return *e.res, err
	}
	p = nil

	check, subscribedOK := "OK", "no"
	db, err := storage.Open(e.dbPath, storage.Options{ReadOnly: true})
	if err != nil {
		check = "could not open: " + err.Error()
	} else {
		if cerr := db.Check(); cerr != nil {
			check = cerr.Error()
		}
		if s, serr := db.Subscriber(person); serr == nil && s.Subscribed {
			subscribedOK = "yes, due " + s.NextDue.Format(time.RFC3339)
		}
		db.Close()
	}
	r := e.res
	r.Did = fmt.Sprintf("%d subscribers due at once, with %s. The disk was filled once %d had their nudge and freed %s later; "+
		"a person ran `/nudge start` while it was full and again after.", r.N, disk, atFill, freedAt.Sub(filledAt).Round(100*time.Millisecond))
	r.Facts = append(r.Facts,
		fmt.Sprintf("nudges out when the disk filled: %d; when it was freed: %d", atFill, atFree),
		fmt.Sprintf("log lines naming a failed database write (`no space left on device` / `file too large`): %d",
			countLines(e.logs, "no space left on device", "file too large")),
		fmt.Sprintf("`/nudge start` while full, the person saw: %q", oneLineText(whileFull)),
		fmt.Sprintf("`/nudge start` after freeing, the person saw: %q", oneLineText(afterFree)),
		fmt.Sprintf("that person is subscribed in the database afterwards: %s", subscribedOK),
		fmt.Sprintf("`storage.Check` (bbolt's check plus the index checks) on the file afterwards: %s", check),
		fmt.Sprintf("`chat.postMessage` outcomes: %s; `conversations.history` lookups: %d", callList(r.Posts), r.Calls["conversations.history"]),
	)
	if exitedFull != "" {
		r.Facts = append(r.Facts, "**"+exitedFull+"**; it was started again after the disk was freed")
	}
	return *r, nil
}

func oneLineText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func (b *bench) faultsSection(rs []faultResult, failed []string) string {
	var sb strings.Builder
	b.sectionHead(&sb, "faults")
	sb.WriteString("Reproduce: `go run ./cmd/nudgebot-bench -scenarios faults` (as root for the tmpfs; `-faults-runs kill,disk` runs some, " +
		"`-faults-subscribers`, `-faults-kills`, `-faults-storm`, `-faults-disk` change them).\n\n")
	fmt.Fprintf(&sb, "Each run is a fresh database of %d subscribers, all due 5 s before the bot starts, seeded with their DM channel known, "+
		"and a fresh emulator that limits `chat.postMessage` to %d a minute (the bot is configured with the same). The bot is the real binary "+
		"with its fixed %s tick and %s settle time for uncertain posts. Once everyone has a nudge the bot is kept up %s more, "+
		"so a post left uncertain is reconciled and any duplicate shows, then stopped with SIGTERM and the database read. "+
		"**Lost** = people without a nudge at the end; **doubled** = nudges beyond one per person (delivery ids are checked for "+
		"repeats too). Log lines are the bot's stderr (slog text, level info), grouped by message: the count, then the first such line verbatim.\n\n",
		rs[0].N, faultEmuRate, botTick, botSettle, faultSettle)
	sb.WriteString("| fault | lost | doubled | duplicate ids | database: sent / left pending | bot starts | first start → last nudge | verdict |\n")
	sb.WriteString("|---|---:|---:|---:|---|---:|---:|---|\n")
	for _, r := range rs {
		fmt.Fprintf(&sb, "| %s | %d | %d | %d | %d of %d / %d | %d | %s | %s |\n", faultTitles[r.Key], r.lost(), r.doubled(), r.DupIDs,
			r.Sent, r.N, r.Pending, r.Starts, ms(r.dueToLast()), verdict(r.ok()))
	}
	for _, f := range failed {
		if strings.Contains(f, ": skipped: ") {
			fmt.Fprintf(&sb, "\n*Not run:* %s\n", f)
			continue
		}
		fmt.Fprintf(&sb, "\n**Did not complete:** %s\n", f)
	}
	for _, r := range rs {
		fmt.Fprintf(&sb, "\n### %s\n\n%s\n\n", faultTitles[r.Key], r.Did)
		for _, f := range r.Facts {
			sb.WriteString("- " + f + "\n")
		}
		fmt.Fprintf(&sb, "- final stop: %s\n", stopCell(r.Stop))
		if r.Timeout {
			sb.WriteString("- **the run hit its time bound before everyone had a nudge**\n")
		}
		logged := slices.DeleteFunc(slices.Clone(r.Logs), func(e logEntry) bool { return e.Level == "DEBUG" })
		if len(logged) == 0 {
			sb.WriteString("\nThe bot logged nothing beyond its routine lines.\n")
			continue
		}
		sb.WriteString("\nHow the bot reported it (routine lines such as `nudge delivered` left out):\n\n")
		writeLogEntries(&sb, logged)
	}
	return sb.String()
}
