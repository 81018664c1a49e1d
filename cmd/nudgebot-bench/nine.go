package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

// nineZone is everyone's profile zone in the nine scenario: one zone, so
// one local instant is the same wall-clock time for all of them.
const nineZone = "Europe/Berlin"

// nineLead is how long after the bench starts seeding everyone falls
// due: room to seed 100,000 people and start the bot before then.
const nineLead = 45 * time.Second

// ninePhase is how long before the due instant the bot starts: it is
// connected, idle and asleep well before, and must wake for the instant
// itself (the scheduler sleeps until the earliest due time).
const ninePhase = 2*botTick - botTick/2

// nineResult is the whole population due at one instant, against
// Slack's rate limit.
type nineResult struct {
	N, Rate     int // people; the emulator's chat.postMessage limit a minute
	BotRate     int // the bot's slack_limits for chat.postMessage
	Seed        seedResult
	Due         time.Time     // the instant everyone is due
	Started     time.Time     // the bot process started
	Connected   time.Duration // bot start → Socket Mode hello
	First, Last time.Time     // first and last nudge posted
	// Lateness is how long after the due instant the nudges went out:
	// the median, the 99th percentile and the last.
	LateP50, LateP99, LateMax time.Duration
	DMs                       int // nudges posted, all people
	Limited                   int // 429 answers
	LimitedAt                 []time.Duration
	OtherCalls                map[string]int
	boltOnce
	Mem     procStatus
	DBPages int64       // kB of the database file resident in the bot
	Peak    memSample   // the sample with the highest VmRSS
	Samples []memSample // once a second from connected to the end
	Load    loadSpan
	Stop    stopResult
	Timeout time.Duration // non-zero when the run hit its bound first
	Logs    []logEntry
	Disk    diskUse // what the run asked of the database
}

// floor is the least time Slack's limit allows for everyone: N / R
// minutes, with the first second's burst free.
func (r nineResult) floor() time.Duration {
	return rateFloor(r.N, r.Rate, r.Rate/60)
}

// botFloor is the same at the pace the bot allows itself: slack_limits
// (deprecated) caps its learned pace, which starts at 99% of the figure,
// with bursts of half a second's worth.
func (r nineResult) botFloor() time.Duration {
	paced := float64(r.BotRate) * 0.99
	return time.Duration(float64(max(0, r.N-max(1, r.BotRate/120))) / paced * float64(time.Minute))
}

// dueToLast is what a person waits at worst: the due instant to the last
// nudge posted.
func (r nineResult) dueToLast() time.Duration {
	if r.Last.IsZero() {
		return 0
	}
	return r.Last.Sub(r.Due)
}

// throughput is posts a minute from the first to the last.
func (r nineResult) throughput() float64 {
	if r.DMs < 2 || !r.Last.After(r.First) {
		return 0
	}
	return float64(r.DMs-1) / r.Last.Sub(r.First).Minutes()
}

func (r nineResult) exactlyOnce() bool { return r.ok(r.N) }

func (b *bench) nineScenario(ctx context.Context) (string, error) {
	r, err := b.nineRun(ctx, b.opts.nineSubs, b.opts.nineRate)
	if err != nil {
		return "", err
	}
	b.progress("nine: %d nudges, due → last %s (floor %s), lateness p50 %s p99 %s, %.0f/min of %d, 429s %d, exactly once %v, VmHWM %.1f MB, %s",
		r.DMs, ms(r.dueToLast()), ms(r.floor()), ms(r.LateP50), ms(r.LateP99), r.throughput(), r.Rate, r.Limited, r.exactlyOnce(), mb(r.Mem.VmHWM), r.Stop)
	return b.nineSection(r), nil
}

func (b *bench) nineRun(ctx context.Context, n, rate int) (nineResult, error) {
	res := nineResult{N: n, Rate: rate, BotRate: rate}
	dir, err := b.dir("nine")
	if err != nil {
		return res, err
	}
	warm := time.Now()
	emu, dms, err := newCrowd(ctx, n, nineZone, rate)
	if err != nil {
		return res, err
	}
	defer emu.Close()
	b.progress("nine: opened %d DMs in the emulator in %s", n, time.Since(warm).Round(time.Millisecond))

	dbPath := filepath.Join(dir, "nudgebot.db")
	res.Due = time.Now().Add(nineLead).Truncate(time.Second).UTC()
	b.progress("nine: importing %d subscribers (%s), all due at %s", n, nineZone, res.Due.Format(time.TimeOnly+" MST"))
	if res.Seed, err = importSeed(ctx, dbPath, n, dueInNineZone(emu, res.Due)); err != nil {
		return res, err
	}
	b.seedStats = append(b.seedStats, res.Seed)
	if err := waitToStart(ctx, res.Due, res.Seed, "the bot", "nine-subscribers"); err != nil {
		return res, err
	}

	p, err := startBotMetrics(b.bin, dir, emu, dbPath, map[string]int{"chat.postMessage": res.BotRate})
	if err != nil {
		return res, err
	}
	defer p.kill()
	res.Started = p.started
	res.Load.Before = readLoad()
	if res.Connected, err = p.waitConnected(ctx, emu, 30*time.Second); err != nil {
		return res, err
	}
	countsBefore, countErr := p.storageCounts(ctx)
	if !time.Now().Before(res.Due) {
		return res, fmt.Errorf("the bot connected at %s, after the due instant %s; see %s", time.Now().UTC().Format(time.TimeOnly), res.Due.Format(time.TimeOnly), p.logPath)
	}
	b.progress("nine: bot up %s before the due instant; waiting for %d nudges (floor %s)", time.Until(res.Due).Round(100*time.Millisecond), n, ms(res.floor()))

	stopSampling := make(chan struct{})
	sampled := sampleMem(p, dbPath, time.Second, stopSampling)
	bound := b.opts.nineMax
	timedOut, err := awaitEveryone(ctx, emu, dms, n, res.Due.Add(bound), p.exited, p.exitedErr)
	if err != nil {
		return res, err
	}
	if timedOut {
		res.Timeout = bound
		b.progress("nine: only %d of %d people had a nudge %s after the due instant; measuring what arrived", dms.people(), n, bound)
	}
	countsAfter, err := p.storageCounts(ctx)
	countErr = errors.Join(countErr, err)
	close(stopSampling)
	res.Samples = <-sampled
	res.Peak = peakSample(res.Samples)
	if res.Mem, err = p.status(); err != nil {
		return res, err
	}
	if res.DBPages, err = p.mappedRSS(dbPath); err != nil {
		return res, err
	}
	res.Load.After = readLoad()
	res.Stop = p.stop()
	err = b.nineTally(&res, emu, dms, dbPath, p.logPath)
	res.Disk = between(countsBefore, countsAfter, res.DMs, res.Last.Sub(res.First))
	if countErr != nil {
		res.Disk.Err = countErr.Error()
	}
	return res, err
}

// nineTally reads what a nine run left once the bot stopped: the DMs and
// calls the emulator saw, the database and the bot's log.
func (b *bench) nineTally(res *nineResult, emu *slackemu.Server, dms *dmTracker, dbPath, logPath string) error {
	res.First, res.Last, res.DMs = dms.span()
	res.LateP50, res.LateP99, res.LateMax = dms.lateness(res.Due)
	res.OtherCalls = map[string]int{}
	for _, c := range emu.Calls("") {
		switch {
		case c.Time.Before(res.Started):
			// openIMs, before the bot ran
		case c.Method != "chat.postMessage":
			res.OtherCalls[c.Method]++
		case c.Status == 429 && !res.First.IsZero():
			res.LimitedAt = append(res.LimitedAt, c.Time.Sub(res.First))
		}
	}
	res.Limited = emu.RateLimited("chat.postMessage")
	var err error
	if res.boltOnce, err = readBoltOnce(emu, res.N, dbPath, res.Due); err != nil {
		return err
	}
	if res.Logs, err = tallyLogs([]string{logPath}); err != nil {
		return err
	}
	if !res.exactlyOnce() {
		b.note("nine: not exactly once with %d people: %d without a nudge, %d extra, %d duplicate ids, %d sent, %d pending; logs in %s",
			res.N, res.Missing, res.Extra, res.DupIDs, res.Sent, res.Pending, filepath.Dir(logPath))
	}
	return nil
}

// peakSample is the sample with the highest VmRSS.
func peakSample(ss []memSample) memSample {
	var peak memSample
	for _, m := range ss {
		if m.Mem.VmRSS > peak.Mem.VmRSS {
			peak = m
		}
	}
	return peak
}

func (b *bench) nineSection(r nineResult) string {
	var sb strings.Builder
	b.sectionHead(&sb, "nine")
	fmt.Fprintf(&sb, "Reproduce: `go run ./cmd/nudgebot-bench -scenarios nine` (`-nine-subscribers`, `-nine-rate` and `-nine-max` change it).\n\n")
	fmt.Fprintf(&sb, "%d subscribers, all in %s, all due at the same instant (the same local time for everyone), seeded with "+
		"`storage.ImportSubscribers`. The bot was started %s before the due instant, as it would be running by nine o'clock; its "+
		"scheduler sleeps until the earliest due time in its index, so it wakes at the due instant itself. Everyone was seeded with their DM channel already known "+
		"(`DMChannel` = the emulator's IM id), so **no `conversations.open` is needed** and every Web API call is a `chat.postMessage`. "+
		"The emulator limits `chat.postMessage` to R = %d a minute (%d/s) with bursts of %d, as Slack's token bucket would; the bot runs with "+
		"`slack_limits: {chat.postMessage: %d}`, which it paces at 99%%, and its default 12 senders. The database is on the machine's disk, "+
		"every state change is written durably, and each post waits for its attempt to be on disk; concurrent changes share a commit. The bot's `metrics.addr` is on "+
		"loopback so that the bench can read its storage counters before and after.\n\n",
		r.N, nineZone, ninePhase, r.Rate, r.Rate/60, max(1, r.Rate/60), r.BotRate)
	if r.Timeout > 0 {
		fmt.Fprintf(&sb, "**The run hit its bound of %s after the due instant before everyone had a nudge; the figures cover what arrived.**\n\n", r.Timeout)
	}
	sb.WriteString("| | |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(&sb, "| %s | %s |\n", k, v) }
	row("bot start → connected", ms(r.Connected))
	row("bot connected ahead of the due instant", ms(r.Due.Sub(r.Started)-r.Connected))
	if !r.First.IsZero() {
		row("due instant → first nudge (waiting for the next tick, then planning)", ms(r.First.Sub(r.Due)))
		row("first → last nudge", ms(r.Last.Sub(r.First)))
	}
	row("**due instant → last nudge**", fmt.Sprintf("**%s**", ms(r.dueToLast())))
	row("lateness, due instant → each nudge posted", fmt.Sprintf("p50 %s, p99 %s, max %s", ms(r.LateP50), ms(r.LateP99), ms(r.LateMax)))
	row(fmt.Sprintf("floor set by Slack's limit: %d / R", r.N), fmt.Sprintf("%s (%.1f min); at the bot's own 99%% pace %s", ms(r.floor()), r.floor().Minutes(), ms(r.botFloor())))
	if r.dueToLast() > 0 {
		row("due → last, against the floor", fmt.Sprintf("%.1f%% over (%s more)", 100*(r.dueToLast().Seconds()/r.floor().Seconds()-1), ms(r.dueToLast()-r.floor())))
	}
	row("nudges posted", fmt.Sprintf("%d of %d", r.DMs, r.N))
	tp := r.throughput()
	row("throughput, first → last", fmt.Sprintf("%.0f/min = %.1f/s = %.1f%% of R", tp, tp/60, 100*tp/float64(r.Rate)))
	row("HTTP 429 answers", fmt.Sprintf("%d%s", r.Limited, offsets(r.LimitedAt)))
	row("exactly once", fmt.Sprintf("%s: %d people without a nudge, %d extra DMs, %d duplicate delivery ids, %d without metadata; database: %d sent, %d left pending",
		verdict(r.exactlyOnce()), r.Missing, r.Extra, r.DupIDs, r.BadMeta, r.Sent, r.Pending))
	row("other Web API calls", callList(r.OtherCalls))
	// Not getrusage's peak: Linux counts in it the memory of the forked
	// bench before exec, which with 100,000 people in the emulator is
	// larger than the bot.
	row("bot VmHWM (peak) / VmRSS at the end", fmt.Sprintf("%.1f MB / %.1f MB (RssAnon %.1f MB, RssFile %.1f MB, of which the mapped database file %.1f MB)",
		mb(r.Mem.VmHWM), mb(r.Mem.VmRSS), mb(r.Mem.RssAnon), mb(r.Mem.RssFile), mb(r.DBPages)))
	if r.Peak.Mem.VmRSS > 0 {
		row("highest VmRSS sampled (once a second)", fmt.Sprintf("%.1f MB at %s after the due instant: RssAnon %.1f MB, RssFile %.1f MB, of which the mapped database file %.1f MB (file then %.1f MB)",
			mb(r.Peak.Mem.VmRSS), ms(r.Peak.At.Sub(r.Due)), mb(r.Peak.Mem.RssAnon), mb(r.Peak.Mem.RssFile), mb(r.Peak.DBPages), float64(r.Peak.FileSize)/1e6))
	}
	row("database, connected → end (the bot's counters; fsyncs/s over first → last nudge)", r.Disk.String())
	row("bot CPU, whole run", r.Stop.CPU.Round(10*time.Millisecond).String())
	row(fmt.Sprintf("stop (SIGTERM; exit 0 within %s)", shutdownTimeout), stopCell(r.Stop)+": "+verdict(r.Stop.ok()))
	row("seeding", fmt.Sprintf("%s in %s (%.0f/s), file %.1f MB", r.Seed.Method, r.Seed.Took.Round(time.Millisecond), r.Seed.perSecond(), float64(r.Seed.FileSize)/1e6))
	row("load 1m before→after", r.Load.String())
	if len(r.Samples) > 1 {
		sb.WriteString("\nVmRSS / RssAnon every 10 s from the bot's hello, in MB (time relative to the due instant): ")
		for i, m := range r.Samples {
			if i%10 != 0 && i != len(r.Samples)-1 {
				continue
			}
			if i > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "%+.0fs %.0f/%.0f", m.At.Sub(r.Due).Seconds(), mb(m.Mem.VmRSS), mb(m.Mem.RssAnon))
		}
		sb.WriteString(".\n")
	}
	writeWarnings(&sb, "The bot", r.Logs)
	return sb.String()
}

// memSample is the bot's memory at one moment.
type memSample struct {
	At       time.Time
	Mem      procStatus
	DBPages  int64 // kB of the database file resident
	FileSize int64 // bytes
}

// sampleMem reads the bot's memory every interval until stop is closed or
// the bot exits, then sends what it read. Samples it cannot take (the bot
// just exited) are skipped.
func sampleMem(p *botProc, dbPath string, every time.Duration, stop <-chan struct{}) <-chan []memSample {
	out := make(chan []memSample, 1)
	go func() {
		var ss []memSample
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				out <- ss
				return
			case <-p.exited:
				out <- ss
				return
			case now := <-t.C:
				st, err := p.status()
				if err != nil {
					continue
				}
				m := memSample{At: now, Mem: st}
				m.DBPages, _ = p.mappedRSS(dbPath)
				if fi, err := os.Stat(dbPath); err == nil {
					m.FileSize = fi.Size()
				}
				ss = append(ss, m)
			}
		}
	}()
	return out
}

// openIMs opens every person's DM in the emulator through
// conversations.open, as the bench rather than the bot. The emulator
// creates a DM on first use, and finding the person for a DM id it has
// not created yet scans every user: with 100,000 people that scan, not
// the bot, would set the pace. Opening them first leaves the bot's posts
// a map lookup each.
func openIMs(ctx context.Context, emu *slackemu.Server, ids []string) error {
	const workers = 4
	client := &http.Client{Timeout: 10 * time.Second}
	work := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range work {
				if err := openIM(ctx, client, emu.URL(), id); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for _, id := range ids {
		select {
		case work <- id:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		return fmt.Errorf("open the people's DMs in the emulator: %w", err)
	}
	return nil
}

func openIM(ctx context.Context, client *http.Client, base, userID string) error {
	form := url.Values{"token": {benchBotToken}, "users": {userID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"conversations.open", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("conversations.open %s: %w", userID, err)
	}
	if !body.OK {
		return fmt.Errorf("conversations.open %s: %s", userID, body.Error)
	}
	return nil
}

// writeLogEntries lists log lines as the report quotes them: how many,
// then the first one verbatim.
func writeLogEntries(sb *strings.Builder, es []logEntry) {
	for _, e := range es {
		fmt.Fprintf(sb, "- %d × `%s`\n", e.Count, strings.ReplaceAll(e.Example, "`", "'"))
	}
}
