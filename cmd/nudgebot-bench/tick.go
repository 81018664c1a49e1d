package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/bot"
	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/slackemu"
	"github.com/nudgebot/nudgebot/storage"
)

// tickTarget is the target for one pass over the due index that finds
// and loads everyone due.
const tickTarget = 10 * time.Millisecond

// timing is a repeated measurement: the first run after opening the
// database (mmap pages faulted in) apart from the rest.
type timing struct {
	First time.Duration
	Rest  summary
}

func (t timing) String() string {
	if t.Rest.N == 0 {
		return ms(t.First)
	}
	return fmt.Sprintf("%s first; then median %s, max %s (n=%d)", ms(t.First), ms(t.Rest.P50), ms(t.Rest.Max), t.Rest.N)
}

// typical is the figure compared with the target: the steady state.
func (t timing) typical() time.Duration {
	if t.Rest.N == 0 {
		return t.First
	}
	return t.Rest.P50
}

type tickResult struct {
	N, Due    int
	Open      time.Duration // storage.Open of the file, checks included
	OpenPages int64         // kB of the file resident in this process right after Open
	FileSize  int64
	Idle      timing // storage.Due with nobody due: every tick of a quiet day
	Scan      timing // storage.Due finding Due people
	ScanLoad  timing // storage.Due plus storage.Subscriber for each
	MakeDue   time.Duration
	Tick      time.Duration // app.Service.Tick in process: plan and send everyone due
	TickDMs   int
	TickDisk  diskUse // what that tick asked of the database
	TickError string
	After     timing // storage.Due once they were all planned
	Load      loadSpan
}

func (b *bench) tickScenario(ctx context.Context) (string, error) {
	r, err := b.tickRun(ctx, b.opts.subs, b.opts.tickDue, b.opts.tickRepeat)
	if err != nil {
		return "", err
	}
	b.progress("tick: due scan+load of %d in %d: %s; full app.Service.Tick %s", r.Due, r.N, r.ScanLoad, ms(r.Tick))
	return b.tickSection(r), nil
}

// measure runs fn repeat+1 times and times each.
func measure(repeat int, fn func() error) (timing, error) {
	var t timing
	var rest []time.Duration
	for i := range repeat + 1 {
		start := time.Now()
		if err := fn(); err != nil {
			return t, err
		}
		d := time.Since(start)
		if i == 0 {
			t.First = d
			continue
		}
		rest = append(rest, d)
	}
	t.Rest = summarize(rest)
	return t, nil
}

func (b *bench) tickRun(ctx context.Context, n, due, repeat int) (tickResult, error) {
	res := tickResult{N: n, Due: due}
	dir, err := b.dir("tick")
	if err != nil {
		return res, err
	}
	dbPath := filepath.Join(dir, "nudgebot.db")
	if err := b.idleDB(ctx, n, dbPath); err != nil {
		return res, err
	}
	openStart := time.Now()
	db, err := storage.Open(dbPath, storage.Options{})
	if err != nil {
		return res, fmt.Errorf("open the tick database: %w", err)
	}
	res.Open = time.Since(openStart)
	// Nothing has been read yet but what Open itself read: the mapping's
	// resident size shows how much of the file that was.
	if res.OpenPages, err = mappedRSS("self", dbPath); err != nil {
		return res, err
	}
	if res.FileSize, err = db.Size(); err != nil {
		return res, fmt.Errorf("size of the tick database: %w", err)
	}
	defer db.Close()
	res.Load.Before = readLoad()

	expectDue := func(want int, now func() time.Time) func() error {
		return func() error {
			ids, err := db.Due(now(), 0)
			if err != nil {
				return err
			}
			if len(ids) != want {
				return fmt.Errorf("storage.Due found %d due, want %d", len(ids), want)
			}
			return nil
		}
	}
	if res.Idle, err = measure(repeat, expectDue(0, time.Now)); err != nil {
		return res, err
	}

	// Spread the due people over the key space, so loading them walks
	// the whole tree as a real morning would.
	dueIDs := make([]string, due)
	start := time.Now()
	slot := start.Add(-30 * time.Second).UTC()
	for k := range due {
		dueIDs[k] = benchUserID(k * n / due)
		_, err := db.UpdateSubscriber(dueIDs[k], func(s *nudges.Subscriber) error {
			s.NextDue = slot
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("make %d subscribers due: %w", due, err)
		}
	}
	res.MakeDue = time.Since(start)

	if res.Scan, err = measure(repeat, expectDue(due, time.Now)); err != nil {
		return res, err
	}
	res.ScanLoad, err = measure(repeat, func() error {
		ids, err := db.Due(time.Now(), 0)
		if err != nil {
			return err
		}
		for _, id := range ids {
			s, err := db.Subscriber(id)
			if err != nil {
				return err
			}
			if !s.Subscribed {
				return fmt.Errorf("subscriber %s loaded unsubscribed", id)
			}
		}
		if len(ids) != due {
			return fmt.Errorf("storage.Due found %d due, want %d", len(ids), due)
		}
		return nil
	})
	if err != nil {
		return res, err
	}

	before := db.Stats()
	res.Tick, res.TickDMs, err = fullTick(ctx, db, dueIDs)
	after := db.Stats()
	res.TickDisk = between(storageCounts{float64(before.Writes), float64(before.Commits), float64(before.PagesWritten)},
		storageCounts{float64(after.Writes), float64(after.Commits), float64(after.PagesWritten)}, res.TickDMs, res.Tick)
	if err != nil {
		// The read-only figures stand on their own; say why this one is missing.
		res.TickError = err.Error()
		b.progress("tick: the in-process app.Service.Tick could not run: %v", err)
	}
	if res.After, err = measure(repeat, expectDue(0, time.Now)); err != nil && res.TickError == "" {
		return res, fmt.Errorf("after app.Service.Tick: %w", err)
	}
	res.Load.After = readLoad()
	return res, nil
}

// fullTick runs one real app.Service.Tick in this process against an emulator
// without rate limits: planning and sending everyone due, storage writes
// and fsyncs included.
func fullTick(ctx context.Context, db *storage.DB, dueIDs []string) (time.Duration, int, error) {
	emu, err := newEmulator()
	if err != nil {
		return 0, 0, err
	}
	defer emu.Close()
	for _, id := range dueIDs {
		if emu.IMChannel(id) != dmFor(id) {
			return 0, 0, fmt.Errorf("the emulator's DM id for %s is %s, the seeded one %s: update dmFor", id, emu.IMChannel(id), dmFor(id))
		}
		emu.AddUser(slackemu.User{ID: id, Name: strings.ToLower(id), TZ: "UTC"})
	}
	env := map[string]string{config.EnvBotToken: benchBotToken, config.EnvAppToken: benchAppToken, config.EnvAPIURL: emu.URL(), config.EnvStoragePath: db.Path()}
	cfg, err := config.Parse("(bench tick)", []byte(botConfig(nil)), func(k string) string { return env[k] })
	if err != nil {
		return 0, 0, fmt.Errorf("tick config: %w", err)
	}
	cat, err := nudges.DefaultCatalog()
	if err != nil {
		return 0, 0, fmt.Errorf("catalog: %w", err)
	}
	cal, err := cfg.Calendar()
	if err != nil {
		return 0, 0, fmt.Errorf("calendar: %w", err)
	}
	sl := bot.NewSlack(bot.SlackOptions{
		BotToken: benchBotToken, AppToken: benchAppToken, APIURL: emu.URL(),
		Limits: map[string]int{"chat.postMessage": 1_000_000},
	})
	core, err := app.New(
		app.Ports{Subscribers: db, Settings: db, Deliveries: db, Reflections: db, Digests: db, Eraser: db, Exporter: db, Messenger: sl},
		app.Config{Catalog: cat, Calendar: cal, Logger: slog.New(slog.DiscardHandler)},
	)
	if err != nil {
		return 0, 0, fmt.Errorf("build the core: %w", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	core.Tick(tctx, time.Now())
	took := time.Since(start)
	dms := 0
	for _, id := range dueIDs {
		dms += len(emu.DM(id))
	}
	if dms != len(dueIDs) {
		return took, dms, fmt.Errorf("app.Service.Tick sent %d DMs to %d people due", dms, len(dueIDs))
	}
	return took, dms, nil
}

func (b *bench) tickSection(r tickResult) string {
	var sb strings.Builder
	b.sectionHead(&sb, "tick")
	fmt.Fprintf(&sb, "In process, on a copy of the %d-subscriber database, with %d of them made due (spread across the key space). "+
		"The core's `Tick` (`app.Service.Tick`, which app/scheduler runs at each pass) cannot be split from Slack, so the pass is measured as what it reads: `storage.Due(now, 0)` and then `storage.Subscriber` "+
		"for each id it returns. A full `app.Service.Tick` (planning plus sending everyone due, against an in-process emulator with no rate limit) is timed once "+
		"for comparison; it writes every state change durably (concurrent ones share a commit), so it depends on the disk, not on "+
		"the index. `go test -run '^$' -bench Tick ./storage/` measures the storage side of the same tick without Slack. Each read-only figure is the first run after opening the "+
		"database, then the median and maximum of %d more.\n\n", r.N, r.Due, r.ScanLoad.Rest.N)
	sb.WriteString("| pass | time | target |\n|---|---|---|\n")
	fmt.Fprintf(&sb, "| `storage.Open` of the file (what the bot does at start, checks included) | %s; it left %.1f MB of the %.1f MB file resident | |\n",
		ms(r.Open), mb(r.OpenPages), float64(r.FileSize)/1e6)
	fmt.Fprintf(&sb, "| `Due`, nobody due (a quiet tick) | %s | |\n", r.Idle)
	fmt.Fprintf(&sb, "| `Due`, %d due | %s | |\n", r.Due, r.Scan)
	fmt.Fprintf(&sb, "| `Due` + load the %d due subscribers | %s | < %s: %s |\n", r.Due, r.ScanLoad, ms(tickTarget), verdict(r.ScanLoad.typical() < tickTarget))
	if r.TickError != "" {
		fmt.Fprintf(&sb, "| full `app.Service.Tick`: plan + send %d | did not complete: %s | |\n", r.Due, r.TickError)
	} else {
		fmt.Fprintf(&sb, "| full `app.Service.Tick`: plan + send %d | %s (%.0f people/s, %d DMs); database: %s | |\n", r.Due, ms(r.Tick), float64(r.Due)/r.Tick.Seconds(), r.TickDMs, r.TickDisk)
	}
	fmt.Fprintf(&sb, "| `Due` after that tick (nobody due) | %s | |\n", r.After)
	fmt.Fprintf(&sb, "\nMaking %d people due (one `UpdateSubscriber` each) took %s. Load 1m before→after: %s.\n", r.Due, ms(r.MakeDue), r.Load)
	return sb.String()
}
