package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/slackemu"
	"github.com/nudgebot/nudgebot/storage"
)

// burstResult is the 9 o'clock rush: everyone due in the same minute.
type burstResult struct {
	N, Rate    int
	BotRate    int // the bot's slack_limits for chat.postMessage
	Seed       seedResult
	Connected  time.Duration   // bot start → Socket Mode hello
	FirstPost  time.Duration   // bot start → first accepted chat.postMessage
	Spread     time.Duration   // first → last accepted chat.postMessage
	Posts      int             // accepted chat.postMessage calls
	Limited    int             // answered 429
	LimitedAt  []time.Duration // when, after the first accepted post
	OtherCalls map[string]int
	boltOnce
	Mem     procStatus
	Load    loadSpan
	Stop    stopResult
	Timeout bool
	Disk    diskUse // what the burst asked of the database
}

// botBurst is how many posts the bot's limiter lets out at once.
func (r burstResult) botBurst() int { return max(1, r.BotRate/60) }

// throughput is the sustained rate, per minute: the posts after the
// bot's opening burst over the time from the first post to the last.
// Counting the burst too would flatter a short run.
func (r burstResult) throughput() float64 {
	after := r.Posts - min(r.Posts, r.botBurst())
	if after < 1 || r.Spread <= 0 {
		return 0
	}
	return float64(after) / r.Spread.Minutes()
}

// ideal is the first-to-last time at the tighter of the two limits.
func (r burstResult) ideal() time.Duration {
	after := max(0, r.N-r.botBurst())
	return time.Duration(float64(after) / float64(min(r.Rate, r.BotRate)) * float64(time.Minute))
}

func (r burstResult) exactlyOnce() bool { return r.ok(r.N) }

func (b *bench) burstScenario(ctx context.Context) (string, error) {
	var rs []burstResult
	for _, pct := range b.opts.burstBotPct {
		botRate := max(1, b.opts.burstRate*pct/100)
		b.progress("burst: %d subscribers, emulator limit %d/min, bot limit %d/min (%d%%)", b.opts.burstSubs, b.opts.burstRate, botRate, pct)
		r, err := b.burstRun(ctx, b.opts.burstSubs, b.opts.burstRate, botRate)
		if err != nil {
			return "", fmt.Errorf("bot at %d%% of the limit: %w", pct, err)
		}
		b.progress("burst: %d posts in %s (%.0f/min of %d), 429s %d, exactly once %v, VmHWM %.1f MB, %s",
			r.Posts, r.Spread.Round(time.Millisecond), r.throughput(), r.Rate, r.Limited, r.exactlyOnce(), mb(r.Mem.VmHWM), r.Stop)
		rs = append(rs, r)
	}
	b.burstNotes(rs)
	return b.burstSection(rs), nil
}

// burstNotes turns what the runs show into findings, so the report's
// advice follows the figures rather than going stale beside them.
func (b *bench) burstNotes(rs []burstResult) {
	var atLimit, below *burstResult
	for i := range rs {
		switch r := &rs[i]; {
		case r.BotRate >= r.Rate && atLimit == nil:
			atLimit = r
		case r.BotRate < r.Rate && below == nil:
			below = r
		}
	}
	if atLimit != nil && atLimit.Limited > 1 {
		msg := fmt.Sprintf("with the bot's limiter set to exactly the limit Slack enforces (%d/min), %d posts were answered 429, each pausing every sender about a second",
			atLimit.Rate, atLimit.Limited)
		if below != nil && below.Limited <= 1 {
			msg += fmt.Sprintf("; at %d/min (%.0f%%) there were %d. Two identical token buckets meet at the edge, where any jitter or rounding trips the server's: the bot should run its limiter a few percent under the configured limit",
				below.BotRate, 100*float64(below.BotRate)/float64(below.Rate), below.Limited)
		}
		b.note("%s.", msg)
	}
	for _, r := range rs {
		if r.FirstPost > 10*time.Second {
			b.note("in the %d-person burst the first DM went out %s after the bot started: the tick should hand each chunk of planned deliveries to the senders as soon as it is recorded",
				r.N, r.FirstPost.Round(100*time.Millisecond))
			break
		}
	}
}

func (b *bench) burstRun(ctx context.Context, n, rate, botRate int) (burstResult, error) {
	res := burstResult{N: n, Rate: rate, BotRate: botRate}
	dir, err := b.dir("burst")
	if err != nil {
		return res, err
	}
	var dms atomic.Int64
	emu, err := newEmulator(slackemu.OnEvent(func(e slackemu.Event) {
		if e.Kind == slackemu.EventDM {
			dms.Add(1)
		}
	}))
	if err != nil {
		return res, err
	}
	defer emu.Close()
	// Slack's bucket: R a minute, bursts of a second's worth, as the bot
	// assumes.
	emu.RateLimit("chat.postMessage", rate, max(1, rate/60))

	dbPath := filepath.Join(dir, "nudgebot.db")
	now := time.Now().UTC()
	due := now.Add(-30 * time.Second)
	b.progress("burst: seeding %d subscribers due at %s", n, due.Format(time.TimeOnly))
	res.Seed, err = seed(ctx, dbPath, n, func(i int, s *nudges.Subscriber) {
		id := benchUserID(i)
		subscribed(s, now.Add(-24*time.Hour), emu.IMChannel(id))
		s.NextDue = due
	})
	if err != nil {
		return res, err
	}
	b.seedStats = append(b.seedStats, res.Seed)
	for i := range n {
		id := benchUserID(i)
		emu.AddUser(slackemu.User{ID: id, Name: strings.ToLower(id), TZ: "UTC"})
	}

	p, err := startBotMetrics(b.bin, dir, emu, dbPath, map[string]int{"chat.postMessage": botRate})
	if err != nil {
		return res, err
	}
	defer p.kill()
	res.Load.Before = readLoad()
	if res.Connected, err = p.waitConnected(ctx, emu, 30*time.Second); err != nil {
		return res, err
	}
	countsBefore, countErr := p.storageCounts(ctx)

	// The ideal is (n - burst) / rate; allow twice that plus planning.
	ideal := time.Duration(float64(n) / float64(rate) * float64(time.Minute))
	limit := 2*ideal + 2*time.Minute
	wctx, cancel := context.WithTimeout(ctx, limit)
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-wctx.Done():
		}
	}()
	werr := emu.WaitFor(wctx, func() bool { return dms.Load() >= int64(n) })
	cancel()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if p.hasExited() {
		return res, fmt.Errorf("%w (%v) during the burst; see %s", errBotExited, p.waitErr, p.logPath)
	}
	res.Timeout = werr != nil
	if res.Timeout {
		b.progress("burst: only %d of %d DMs after %s; measuring what arrived", dms.Load(), n, limit)
	} else if err := sleepCtx(ctx, 2*time.Second, p.exited); err != nil && ctx.Err() != nil {
		// A short grace catches a duplicate racing the last post.
		return res, err
	}

	if res.Mem, err = p.status(); err != nil {
		return res, err
	}
	countsAfter, err := p.storageCounts(ctx)
	countErr = errors.Join(countErr, err)
	res.Load.After = readLoad()
	res.Stop = p.stop()

	var first, last time.Time
	var limitedAt []time.Time
	res.OtherCalls = map[string]int{}
	for _, c := range emu.Calls("") {
		if c.Method != "chat.postMessage" {
			res.OtherCalls[c.Method]++
			continue
		}
		if c.Status == 429 {
			limitedAt = append(limitedAt, c.Time)
		}
		if c.Status != 200 || c.Error != "" {
			continue
		}
		res.Posts++
		if first.IsZero() || c.Time.Before(first) {
			first = c.Time
		}
		if c.Time.After(last) {
			last = c.Time
		}
	}
	res.Limited = emu.RateLimited("chat.postMessage")
	if !first.IsZero() {
		res.FirstPost = first.Sub(p.started)
		res.Spread = last.Sub(first)
		for _, t := range limitedAt {
			res.LimitedAt = append(res.LimitedAt, t.Sub(first))
		}
	}
	res.Disk = between(countsBefore, countsAfter, res.Posts, res.Spread)
	if countErr != nil {
		res.Disk.Err = countErr.Error()
	}
	res.boltOnce, err = readBoltOnce(emu, n, dbPath, due)
	return res, err
}

// checkDMs counts, over everyone's DM, people with no message, messages
// beyond the first, delivery ids seen twice and messages without the
// bot's metadata.
func checkDMs(emu *slackemu.Server, n int) (missing, extra, dupIDs, badMeta int) {
	t := tallyOnce(n, emu.DM)
	return t.Lost, t.Doubled, t.DupIDs, t.BadMeta
}

// deliveryID reads the delivery id the bot puts in every nudge's metadata.
func deliveryID(m slackemu.Message) (string, bool) {
	if m.Metadata == nil || m.Metadata.EventType != "nudgebot_nudge" {
		return "", false
	}
	var p struct {
		DeliveryID string `json:"delivery_id"`
	}
	if err := json.Unmarshal(m.Metadata.EventPayload, &p); err != nil || p.DeliveryID == "" {
		return "", false
	}
	return p.DeliveryID, true
}

// countDeliveries reads the stopped bot's database: deliveries for the
// slot that are sent, and what is left in the outbox.
func countDeliveries(path string, slot time.Time) (sent, pending int, err error) {
	db, err := storage.Open(path, storage.Options{ReadOnly: true})
	if err != nil {
		return 0, 0, fmt.Errorf("open the bot's database after the burst: %w", err)
	}
	defer db.Close()
	err = db.DeliveriesBetween(slot.Add(-time.Minute), slot.Add(time.Hour), func(d nudges.Delivery) error {
		if d.State == nudges.StateSent {
			sent++
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read deliveries after the burst: %w", err)
	}
	p, err := db.Pending()
	if err != nil {
		return 0, 0, fmt.Errorf("read the outbox after the burst: %w", err)
	}
	return sent, len(p), nil
}

func (b *bench) burstSection(rs []burstResult) string {
	var sb strings.Builder
	r0 := rs[0]
	b.sectionHead(&sb, "burst")
	fmt.Fprintf(&sb, "%d subscribers, all due 30 s before the bot starts (one slot, UTC). They were seeded with their DM channel already known "+
		"(`DMChannel` = the emulator's IM id), so **no `conversations.open` is needed** and every Web API call is a `chat.postMessage`. "+
		"The emulator limits `chat.postMessage` to R = %d a minute with bursts of %d, as Slack's token bucket would. The bot runs with "+
		"`slack_limits: {chat.postMessage: …}` as shown per column, its scheduler, which wakes when people fall due, and its default 12 senders; the first column is the bot configured "+
		"with exactly R. Each column is a fresh database and a fresh bot. The database is on the machine's disk, and every state change is "+
		"written durably, as in production, and each post waits for its attempt to be on disk; concurrent changes share a commit. The bot's `metrics.addr` is on loopback so "+
		"that the bench can read its storage counters before and after.\n\n", r0.N, r0.Rate, max(1, r0.Rate/60))
	row := func(name string, cell func(r burstResult) string) {
		sb.WriteString("| " + name)
		for _, r := range rs {
			sb.WriteString(" | " + cell(r))
		}
		sb.WriteString(" |\n")
	}
	row("bot's `slack_limits` for chat.postMessage", func(r burstResult) string {
		return fmt.Sprintf("**%d/min** (%d%% of R)", r.BotRate, int(math.Round(100*float64(r.BotRate)/float64(r.Rate))))
	})
	sb.WriteString("|---")
	for range rs {
		sb.WriteString("|---")
	}
	sb.WriteString("|\n")
	row("bot start → connected", func(r burstResult) string { return ms(r.Connected) })
	row("bot start → first post (planning the slot)", func(r burstResult) string { return ms(r.FirstPost) })
	row("first → last post", func(r burstResult) string {
		return fmt.Sprintf("%s (ideal: %s)", ms(r.Spread), ms(r.ideal()))
	})
	row("accepted posts", func(r burstResult) string { return fmt.Sprintf("%d of %d", r.Posts, r.N) })
	row("sustained throughput, after the opening burst (target ≥ 90% of R)", func(r burstResult) string {
		tp := r.throughput()
		return fmt.Sprintf("%.0f/min = %.0f%% of R: %s", tp, 100*tp/float64(r.Rate), verdict(tp >= 0.9*float64(r.Rate)))
	})
	row("HTTP 429 answers (target: none after the first)", func(r burstResult) string {
		return fmt.Sprintf("%d%s: %s", r.Limited, offsets(r.LimitedAt), verdict(r.Limited <= 1))
	})
	row("exactly once", func(r burstResult) string {
		return fmt.Sprintf("%s: %d without a DM, %d extra DMs, %d duplicate delivery ids, %d without metadata; database: %d sent, %d left pending",
			verdict(r.exactlyOnce()), r.Missing, r.Extra, r.DupIDs, r.BadMeta, r.Sent, r.Pending)
	})
	row("other Web API calls", func(r burstResult) string { return callList(r.OtherCalls) })
	row("VmRSS / VmHWM after the burst", func(r burstResult) string {
		return fmt.Sprintf("%.1f MB / %.1f MB", mb(r.Mem.VmRSS), mb(r.Mem.VmHWM))
	})
	row("RssAnon / RssFile", func(r burstResult) string {
		return fmt.Sprintf("%.1f MB / %.1f MB", mb(r.Mem.RssAnon), mb(r.Mem.RssFile))
	})
	row("database, connected → end (the bot's counters; fsyncs/s over first → last post)", func(r burstResult) string { return r.Disk.String() })
	row("bot CPU, whole run", func(r burstResult) string { return r.Stop.CPU.Round(10 * time.Millisecond).String() })
	row(fmt.Sprintf("stop (SIGTERM; exit 0 within %s)", shutdownTimeout), func(r burstResult) string { return stopCell(r.Stop) + ": " + verdict(r.Stop.ok()) })
	row("seeding (storage API, one transaction per person)", func(r burstResult) string {
		return fmt.Sprintf("%s (%.0f/s)", r.Seed.Took.Round(time.Millisecond), r.Seed.perSecond())
	})
	row("load 1m before→after", func(r burstResult) string { return r.Load.String() })
	for _, r := range rs {
		if r.Timeout {
			fmt.Fprintf(&sb, "\nThe run with the bot at %d/min hit its time limit before every DM arrived; its figures cover what did.\n", r.BotRate)
		}
	}
	return sb.String()
}

func callList(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// offsets lists when the 429s came, after the first post, up to ten.
func offsets(ds []time.Duration) string {
	if len(ds) == 0 {
		return ""
	}
	var parts []string
	for i, d := range ds {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("… %d more", len(ds)-10))
			break
		}
		parts = append(parts, fmt.Sprintf("+%.2fs", d.Seconds()))
	}
	return " (at " + strings.Join(parts, ", ") + ")"
}
