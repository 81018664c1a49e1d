package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
	"github.com/nudgebot/nudgebot/storage"
)

// paceLead is how long after seeding starts everyone falls due, and
// paceStart how long before that instant the bot is started: room for it
// to connect and go to sleep until the slot.
const (
	paceLead  = 12 * time.Second
	paceStart = 6 * time.Second
)

// paceResult is one run of the pace scenario: n people due at one slot,
// the emulator holding the bot to Slack's published limits and to a
// workspace limit the bot is not told of.
type paceResult struct {
	N, Limit    int       // people; the workspace limit a minute
	Opened      time.Time // the bench had opened everyone's DM
	Due         time.Time
	First, Last time.Time
	LateP50     time.Duration
	LateP99     time.Duration
	LateMax     time.Duration
	DMs         int
	Limited     int // 429 answers to chat.postMessage
	LimitedAt   []time.Duration
	OtherCalls  map[string]int
	boltOnce
	Learned  int     // the last learned figure the bot logged, a minute; 0 if none
	Restored float64 // the figure a previous run saved, put in its database first; 0: a fresh bot
	Saved    float64 // the figure the bot saved, a minute; 0 if none
	Stop     stopResult
	Load     loadSpan
	Timeout  time.Duration
}

// burst is the workspace bucket's size: a second's worth, as WorkspaceLimit
// sets it.
func (r paceResult) burst() int { return max(1, r.Limit/60) }

// floor is the least time the workspace limit allows from the slot to the
// last post: its burst is free, the rest at the limit's rate. A lone
// person's DM also holds one a second, which never binds for one nudge.
func (r paceResult) floor() time.Duration {
	return time.Duration(float64(max(0, r.N-r.burst())) / float64(r.Limit) * float64(time.Minute))
}

func (r paceResult) dueToLast() time.Duration {
	if r.Last.IsZero() {
		return 0
	}
	return r.Last.Sub(r.Due)
}

func (r paceResult) exactlyOnce() bool { return r.ok(r.N) }

// limitedShare is the 429s as a share of the posts that got through.
func (r paceResult) limitedShare() float64 {
	if r.DMs == 0 {
		return 0
	}
	return float64(r.Limited) / float64(r.DMs)
}

// met applies the targets: a team of up to 20 all out within 2 s
// of the slot; a crowd within 1.1x the floor; 429s at most 1% of posts
// (or one, for a team too small for 1% to be a whole post); exactly once.
func (r paceResult) met() (bool, string) {
	var bound time.Duration
	var what string
	if r.N <= 20 {
		bound, what = max(2*time.Second, r.floor()*11/10), "≤ 2 s after the slot"
		if r.floor()*11/10 > 2*time.Second {
			what = fmt.Sprintf("≤ 1.1x the floor (%s; 2 s is under the floor at this limit)", ms(r.floor()))
		}
	} else {
		bound, what = r.floor()*11/10, fmt.Sprintf("≤ 1.1x the floor = %s", ms(r.floor()*11/10))
	}
	ok := r.DMs == r.N && r.dueToLast() <= bound && (r.Limited <= max(1, r.N/100)) && r.exactlyOnce()
	return ok, what
}

func (b *bench) paceScenario(ctx context.Context) (string, error) {
	var runs []paceResult
	for _, limit := range b.opts.paceLimits {
		saved := 0.0
		for _, n := range b.opts.pacePeople {
			r, err := b.pace(ctx, n, limit, 0)
			if err != nil {
				return "", err
			}
			runs = append(runs, r)
			saved = max(saved, r.Saved)
		}
		if saved == 0 {
			continue
		}
		// A restart: the same limit, the figure the runs above saved, the
		// smallest team, for which a fresh bot's two 429s weigh most.
		r, err := b.pace(ctx, slices.Min(b.opts.pacePeople), limit, saved)
		if err != nil {
			return "", err
		}
		runs = append(runs, r)
	}
	return b.paceSection(runs), nil
}

func (b *bench) pace(ctx context.Context, n, limit int, restored float64) (paceResult, error) {
	r, err := b.paceRun(ctx, n, limit, restored)
	if err != nil {
		return r, fmt.Errorf("%d people at a workspace limit of %d a minute: %w", n, limit, err)
	}
	ok, _ := r.met()
	b.progress("pace: %d people, limit %d/min, restored %.0f/min: due → last %s (floor %s), 429s %d, learned %d/min, saved %.0f/min, exactly once %v, targets %v",
		n, limit, restored, ms(r.dueToLast()), ms(r.floor()), r.Limited, r.Learned, r.Saved, r.exactlyOnce(), ok)
	return r, nil
}

func (b *bench) paceRun(ctx context.Context, n, limit int, restored float64) (paceResult, error) {
	res := paceResult{N: n, Limit: limit, Restored: restored}
	name := fmt.Sprintf("pace-%d-%d", limit, n)
	if restored > 0 {
		name += "-restarted"
	}
	dir, err := b.dir(name)
	if err != nil {
		return res, err
	}
	// Each DM is opened as the person subscribed (app.Subscribe keeps
	// it); the bench opens them before Slack's limits are on.
	emu, dms, err := newCrowd(ctx, n, nineZone, 0)
	if err != nil {
		return res, err
	}
	defer emu.Close()
	emu.PublishedLimits()
	emu.WorkspaceLimit(limit)
	res.Opened = time.Now()

	dbPath := filepath.Join(dir, "nudgebot.db")
	res.Due = time.Now().Add(paceLead).Truncate(time.Second).UTC()
	if _, err := importSeed(ctx, dbPath, n, dueInNineZone(emu, res.Due)); err != nil {
		return res, err
	}
	if err := restorePace(dbPath, restored); err != nil {
		return res, err
	}
	if err := sleepCtx(ctx, time.Until(res.Due.Add(-paceStart)), nil); err != nil {
		return res, err
	}
	p, err := startBot(b.bin, dir, emu, dbPath, nil) // no slack_limits: nothing configured
	if err != nil {
		return res, err
	}
	defer p.kill()
	res.Load.Before = readLoad()
	if _, err := p.waitConnected(ctx, emu, 30*time.Second); err != nil {
		return res, err
	}
	if !time.Now().Before(res.Due) {
		return res, fmt.Errorf("the bot connected after the slot; see %s", p.logPath)
	}
	bound := 3*res.floor() + time.Minute
	timedOut, err := awaitEveryone(ctx, emu, dms, n, res.Due.Add(bound), p.exited, p.exitedErr)
	if err != nil {
		return res, err
	}
	if timedOut {
		res.Timeout = bound
	}
	res.Load.After = readLoad()
	res.Stop = p.stop()
	return res, b.paceTally(&res, emu, dms, dbPath, p.logPath)
}

// paceTally reads what a run left: the DMs, the calls, the database and
// the figure the bot learned.
func (b *bench) paceTally(res *paceResult, emu *slackemu.Server, dms *dmTracker, dbPath, logPath string) error {
	res.First, res.Last, res.DMs = dms.span()
	res.LateP50, res.LateP99, res.LateMax = dms.lateness(res.Due)
	res.OtherCalls = map[string]int{}
	for _, c := range emu.Calls("") {
		switch {
		case c.Method == "conversations.open" && !c.Time.After(res.Opened):
			// the bench's openIMs
		case c.Method != "chat.postMessage":
			res.OtherCalls[c.Method]++
		case c.Status == 429:
			res.LimitedAt = append(res.LimitedAt, c.Time.Sub(res.Due))
		}
	}
	res.Limited = emu.RateLimited("chat.postMessage")
	var err error
	if res.boltOnce, err = readBoltOnce(emu, res.N, dbPath, res.Due); err != nil {
		return err
	}
	if res.Learned, err = lastLearned(logPath); err != nil {
		return err
	}
	if res.Saved, err = savedPace(dbPath); err != nil {
		return err
	}
	if !res.exactlyOnce() {
		b.note("pace: not exactly once with %d people at %d/min: %d without a nudge, %d extra, %d duplicate ids, %d sent, %d pending; logs in %s",
			res.N, res.Limit, res.Missing, res.Extra, res.DupIDs, res.Sent, res.Pending, filepath.Dir(logPath))
	}
	return nil
}

// restorePace puts a figure learned before in the database, as a bot
// that ran before leaves it; 0 leaves the database as a new one.
func restorePace(path string, perMinute float64) error {
	if perMinute == 0 {
		return nil
	}
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		return fmt.Errorf("open the database to restore the pace: %w", err)
	}
	return errors.Join(db.SetLearnedPace(perMinute), db.Close())
}

// savedPace is the figure the bot saved in its database.
func savedPace(path string) (float64, error) {
	db, err := storage.Open(path, storage.Options{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("open the bot's database for its pace: %w", err)
	}
	v, err := db.LearnedPace()
	return v, errors.Join(err, db.Close())
}

var learnedRe = regexp.MustCompile(`learned_per_minute=(\d+)`)

// lastLearned is the last workspace figure the bot logged with a 429.
func lastLearned(logPath string) (int, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return 0, fmt.Errorf("read the bot's log: %w", err)
	}
	defer f.Close()
	last := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m := learnedRe.FindStringSubmatch(sc.Text()); m != nil {
			last, _ = strconv.Atoi(m[1])
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return 0, fmt.Errorf("read the bot's log: %w", err)
	}
	return last, nil
}

// people is the row's people cell: restarted runs say so.
func (r paceResult) people() string {
	if r.Restored > 0 {
		return fmt.Sprintf("%d, *restarted* at %.0f", r.N, r.Restored)
	}
	return strconv.Itoa(r.N)
}

func (b *bench) paceSection(runs []paceResult) string {
	var sb strings.Builder
	b.sectionHead(&sb, "pace")
	fmt.Fprintf(&sb, "Reproduce: `go run ./cmd/nudgebot-bench -scenarios pace` (`-pace-limits` and `-pace-people` change it).\n\n")
	fmt.Fprintf(&sb, "People in %s all due at the same slot, their DM channels known (opened when they subscribed, as `/nudge start` now does), so a slot costs one "+
		"`chat.postMessage` each. The emulator holds the bot to Slack's published rules (`slackemu.PublishedLimits`: every method at its tier, "+
		"`chat.postMessage` one a second per channel with bursts of 3) and to a workspace limit on `chat.postMessage` (`WorkspaceLimit`: W a minute, "+
		"bursts of a second's worth), answering 429 with a whole-second Retry-After as Slack does. The bot is told nothing: **no `slack_limits`**. It "+
		"starts at 6,000 a minute, learns W from the posts Slack takes between two 429s, and honours every Retry-After. Each row is a fresh database and a "+
		"fresh bot (nothing learned before), started %s before the slot, except the rows marked *restarted*: there the database holds the figure the "+
		"fresh runs above it saved (the larger), as a bot restarted against the same workspace finds it. The floor is what W allows: (people − W/60) / W. "+
		"Targets: 20 people all out within 2 s of the slot; 1,000 within 1.1x the floor; 429s at most 1%% of posts; exactly once.\n\n", nineZone, paceStart)
	sb.WriteString("| W (a minute) | people | slot → last post | floor | against the floor | lateness p50 / p99 | posts | 429s | learned W | exactly once | other calls | targets | load 1m before→after |\n")
	sb.WriteString("|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|---|---|\n")
	for _, r := range runs {
		ok, what := r.met()
		against := "—"
		if r.floor() > 0 {
			against = fmt.Sprintf("%.3fx", r.dueToLast().Seconds()/r.floor().Seconds())
		}
		learned := "—"
		if r.Learned > 0 {
			learned = strconv.Itoa(r.Learned)
		}
		once := fmt.Sprintf("%s (%d sent, %d pending, %d missing, %d extra)", verdict(r.exactlyOnce()), r.Sent, r.Pending, r.Missing, r.Extra)
		fmt.Fprintf(&sb, "| %d | %s | %s | %s | %s | %s / %s | %d | %d (%.1f%%)%s | %s | %s | %s | %s: %s | %s |\n",
			r.Limit, r.people(), ms(r.dueToLast()), ms(r.floor()), against, ms(r.LateP50), ms(r.LateP99), r.DMs, r.Limited, 100*r.limitedShare(), offsets(r.LimitedAt),
			learned, once, callList(r.OtherCalls), what, verdict(ok), r.Load)
		if r.Timeout > 0 {
			fmt.Fprintf(&sb, "\n**The run with %d people at %d a minute hit its bound of %s; the figures cover what arrived.**\n\n", r.N, r.Limit, r.Timeout)
		}
	}
	sb.WriteString("\nA fresh bot knows nothing of W: it meets the limit twice (two 429s, each honoured) before it has measured it. It saves the figure (at most once a minute, when it changes) and a restarted bot starts from it, so its first rush need not meet the limit at all. Against a team's 20 posts a fresh bot's two 429s are 10%; from a few hundred posts on they are under 1%. Under W = 300 a minute 20 people cannot all leave within 2 s at all: the floor is 3 s.\n")
	sb.WriteString("\nBefore (issue 22): the bot paced each method at 99% of a fixed figure (`chat.postMessage` 100 a minute, `conversations.open` 50) and opened " +
		"a person's DM at their first slot; three new people due at one slot, the third nudge left 2.43 s after it; 200 people would have waited up to two minutes and " +
		"1,000 up to ten, whatever the workspace allowed.\n")
	return sb.String()
}
