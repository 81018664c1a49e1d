package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// retentionQuarter is the file at the end of one simulated quarter.
type retentionQuarter struct {
	Day         int // simulated days so far
	FileSize    int64
	SecretsSize int64 // the secrets file beside it
	Kept        int   // deliveries stored
	Pruned      int   // deliveries pruned so far
	Compacted   int   // compactions so far
}

// retentionResult is a simulated stretch of daily nudges under retention.
type retentionResult struct {
	People, Days   int
	Retention      time.Duration
	CompactEvery   time.Duration
	Quarters       []retentionQuarter
	Prunes         int // hourly ApplyRetention calls
	PruneTxs       int // write transactions they took
	PulsesPruned   int
	SummariesKept  int
	BytesPerRecord float64 // file size per kept delivery, after compacting
	Took           time.Duration
	Load           loadSpan
	PruneTime      time.Duration
	CompactTime    time.Duration
	WriteTime      time.Duration
	SteadyFrom     int     // the first quarter after the first retention period
	SteadyMin      float64 // MB, file size range from SteadyFrom on
	SteadyMax      float64
	GrowthAfterRet float64 // % change of the file from the first quarter past retention to the last

	// A probe writes one small record after another while housekeeping
	// (each Prune, each weekly pulse close and open) runs: the longest of
	// those writes is what a nudge or a click would wait for it.
	ProbeWrites  int
	LongestWait  time.Duration
	LongestWhen  int // the simulated day it happened
	SlowProbes   int // probe writes over one second
	ProbeWaitSum time.Duration

	// Where the file's bytes go at the end.
	Space     []storage.BucketSpace
	FreeBytes int
	FileBytes int64
}

func (b *bench) retentionScenario(ctx context.Context) (string, error) {
	r, err := b.retentionRun(ctx)
	if err != nil {
		return "", err
	}
	b.progress("retention: %d people × %d days, file %.1f→%.1f MB over the last %d quarters, load %s",
		r.People, r.Days, r.SteadyMin, r.SteadyMax, len(r.Quarters)-r.SteadyFrom, r.Load)
	return b.retentionSection(r), nil
}

// retentionRun writes a day of deliveries for every person at 09:00 of
// each simulated day through storage.ImportDeliveries, as the bot
// writes them (recorded pending, then sent, and the outcome at 17:00),
// with the fields a real delivery carries, runs a weekly clarity pulse in one
// channel, calls ApplyRetention every simulated hour, and compacts when
// the file asks for it at most once per CompactEvery, as the bot's
// debounced compaction would.
func (b *bench) retentionRun(ctx context.Context) (retentionResult, error) {
	o := b.opts
	res := retentionResult{People: o.retPeople, Days: o.retDays, Retention: o.retention, CompactEvery: o.retCompact}
	dir, err := b.dir("retention")
	if err != nil {
		return res, err
	}
	start := time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC) // a Monday
	now := start
	db, err := storage.Open(filepath.Join(dir, "nudgebot.db"), storage.Options{Retention: o.retention, Now: func() time.Time { return now }})
	if err != nil {
		return res, fmt.Errorf("open the database: %w", err)
	}
	defer db.Close()
	subs := make([]nudges.Subscriber, o.retPeople)
	for i := range subs {
		subs[i].UserID = benchUserID(i)
		subscribed(&subs[i], start, dmFor(subs[i].UserID))
	}
	if err := db.ImportSubscribers(subs); err != nil {
		return res, err
	}
	if _, err := db.UpdateSubscriber(probeUser, func(s *nudges.Subscriber) error {
		subscribed(s, start, dmFor(probeUser))
		return nil
	}); err != nil {
		return res, err
	}

	began := time.Now()
	res.Load.Before = readLoad()
	rng := rand.New(rand.NewPCG(uint64(o.seed), 12))
	imported, pruned, compactions, lastCompact := 0, 0, 0, start
	var ds []nudges.Delivery // the day's, until their outcomes are written
	for day := range o.retDays {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		for hour := range 24 {
			now = start.Add(time.Duration(day)*24*time.Hour + time.Duration(hour)*time.Hour)
			if hour == 9 {
				t := time.Now()
				// As the bot writes them: recorded pending, then sent;
				// the outcomes follow later in the day.
				ds = dayOfDeliveries(subs, now, rng)
				for _, stage := range []func(nudges.Delivery) nudges.Delivery{asPlanned, asSent} {
					if err := db.ImportDeliveries(staged(ds, stage)); err != nil {
						return res, err
					}
				}
				imported += len(ds)
				probe := startWriteProbe(db)
				err := weeklyPulse(db, now, rng)
				if perr := res.addProbe(probe(), day); err == nil {
					err = perr
				}
				if err != nil {
					return res, err
				}
				res.WriteTime += time.Since(t)
			}
			if hour == 17 && ds != nil {
				t := time.Now()
				if err := db.ImportDeliveries(ds); err != nil {
					return res, err
				}
				ds = nil
				res.WriteTime += time.Since(t)
			}
			t := time.Now()
			probe := startWriteProbe(db)
			st, err := db.Prune(now.Add(-o.retention), 0)
			res.PruneTime += time.Since(t)
			if perr := res.addProbe(probe(), day); err == nil {
				err = perr
			}
			if err != nil {
				return res, err
			}
			res.Prunes++
			res.PruneTxs += st.Transactions
			res.PulsesPruned += st.Pulses
			pruned += st.Deliveries
			if db.NeedsCompaction() && now.Sub(lastCompact) >= o.retCompact {
				t := time.Now()
				if err := db.Compact(); err != nil {
					return res, err
				}
				res.CompactTime += time.Since(t)
				lastCompact = now
				compactions++
			}
		}
		if (day+1)%91 == 0 || day == o.retDays-1 {
			size, err := db.Size()
			if err != nil {
				return res, err
			}
			q := retentionQuarter{Day: day + 1, FileSize: size, SecretsSize: fileSize(storage.SecretsPath(db.Path())), Kept: imported - pruned, Pruned: pruned, Compacted: compactions}
			res.Quarters = append(res.Quarters, q)
			b.progress("retention: day %d, file %.1f MB, %d deliveries kept, %d pruned", q.Day, float64(q.FileSize)/1e6, q.Kept, q.Pruned)
		}
	}
	res.Took = time.Since(began)
	res.Load.After = readLoad()
	if res.Space, res.FreeBytes, err = db.Space(); err != nil {
		return res, err
	}
	if res.FileBytes, err = db.Size(); err != nil {
		return res, err
	}
	if h, err := db.PulseHistory("CBENCHPULSE", 0); err == nil {
		res.SummariesKept = len(h)
	}
	return res, res.summarise()
}

// probeUser is the person whose record the write probe rewrites.
const probeUser = "UWRITEPROBE"

// probeResult is what one write probe saw.
type probeResult struct {
	writes  int
	longest time.Duration
	slow    int
	sum     time.Duration
	err     error
}

// startWriteProbe rewrites one subscriber record, one write after
// another, until the function it returns is called, which returns what
// it saw; it writes at least once.
func startWriteProbe(db *storage.DB) func() probeResult {
	done := make(chan struct{})
	out := make(chan probeResult, 1)
	go func() {
		var r probeResult
		defer func() { out <- r }()
		for {
			t := time.Now()
			_, err := db.UpdateSubscriber(probeUser, func(s *nudges.Subscriber) error {
				s.Streak++
				return nil
			})
			took := time.Since(t)
			r.writes++
			r.sum += took
			r.longest = max(r.longest, took)
			if took > time.Second {
				r.slow++
			}
			if err != nil {
				r.err = fmt.Errorf("write probe: %w", err)
				return
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	return func() probeResult {
		close(done)
		return <-out
	}
}

func (r *retentionResult) addProbe(p probeResult, day int) error {
	r.ProbeWrites += p.writes
	r.SlowProbes += p.slow
	r.ProbeWaitSum += p.sum
	if p.longest > r.LongestWait {
		r.LongestWait, r.LongestWhen = p.longest, day+1
	}
	return p.err
}

func fileSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

// peakBeforePrune is the largest file, in MB, before anything was pruned.
func (r *retentionResult) peakBeforePrune() float64 {
	peak := 0.0
	for _, q := range r.Quarters {
		if q.Pruned == 0 {
			peak = max(peak, float64(q.FileSize)/1e6)
		}
	}
	return peak
}

// summarise finds the steady state: quarters that end after the first
// retention period.
func (r *retentionResult) summarise() error {
	qs := r.Quarters
	retDays := int(r.Retention / (24 * time.Hour))
	r.SteadyFrom = len(qs)
	for i, q := range qs {
		if q.Day > retDays+91 {
			r.SteadyFrom = i
			break
		}
	}
	if r.SteadyFrom >= len(qs) {
		return fmt.Errorf("the run of %d days never got a full quarter past the %d-day retention: run more days", r.Days, retDays)
	}
	r.SteadyMin, r.SteadyMax = 1e18, 0
	for _, q := range qs[r.SteadyFrom:] {
		mbs := float64(q.FileSize) / 1e6
		r.SteadyMin, r.SteadyMax = min(r.SteadyMin, mbs), max(r.SteadyMax, mbs)
	}
	first, last := qs[r.SteadyFrom], qs[len(qs)-1]
	r.GrowthAfterRet = 100 * (float64(last.FileSize) - float64(first.FileSize)) / float64(first.FileSize)
	r.BytesPerRecord = float64(last.FileSize) / float64(max(last.Kept, 1))
	return nil
}

var benchReasons = []string{
	"You marked a strategy nudge helpful yesterday, so here is another way to practise it.",
	"You have not had an integrator nudge for a while; this one widens the view.",
	"Alternating with yesterday's managing nudge: today is about leading.",
}

var benchOutcomes = []nudges.Outcome{nudges.OutcomeDone, nudges.OutcomeDone, nudges.OutcomeReflected, nudges.OutcomeSkipped, nudges.OutcomeSnoozed, nudges.OutcomeNone}

// dayOfDeliveries is one sent, mostly answered nudge per person at slot,
// with the fields a delivered nudge carries.
func dayOfDeliveries(subs []nudges.Subscriber, slot time.Time, rng *rand.Rand) []nudges.Delivery {
	roles := []nudges.Role{nudges.RoleLead, nudges.RoleManage, nudges.RoleBoth}
	ds := make([]nudges.Delivery, len(subs))
	for i, s := range subs {
		out := benchOutcomes[rng.IntN(len(benchOutcomes))]
		d := nudges.Delivery{
			ID: storage.DeliveryID(s.UserID, slot, false), UserID: s.UserID,
			NudgeID: fmt.Sprintf("lead-strategy-%03d", rng.IntN(200)), Theme: nudges.ThemeStrategy, Role: roles[rng.IntN(3)],
			Slot: slot, Reason: benchReasons[rng.IntN(len(benchReasons))],
			State: nudges.StateSent, Attempts: 1, TryAt: slot, Channel: s.DMChannel,
			TS: fmt.Sprintf("%d.%06d", slot.Unix(), i), Created: slot, SentAt: slot.Add(time.Second),
			Outcome: out,
		}
		if out != nudges.OutcomeNone {
			d.ActedAt = slot.Add(time.Duration(rng.IntN(8*3600)) * time.Second)
		}
		if out == nudges.OutcomeDone && rng.IntN(3) == 0 {
			d.Feedback = nudges.OutcomeHelpful
		}
		ds[i] = d
	}
	return ds
}

// asPlanned is d as a tick records it: pending, before any attempt.
func asPlanned(d nudges.Delivery) nudges.Delivery {
	return nudges.Delivery{ID: d.ID, UserID: d.UserID, NudgeID: d.NudgeID, Theme: d.Theme, Role: d.Role, Slot: d.Slot,
		Reason: d.Reason, State: nudges.StatePending, Created: d.Created}
}

// asSent is d once Slack has it, before the person answers.
func asSent(d nudges.Delivery) nudges.Delivery {
	d.Outcome, d.ActedAt, d.Feedback = nudges.OutcomeNone, time.Time{}, nudges.OutcomeNone
	return d
}

func staged(ds []nudges.Delivery, stage func(nudges.Delivery) nudges.Delivery) []nudges.Delivery {
	out := make([]nudges.Delivery, len(ds))
	for i, d := range ds {
		out[i] = stage(d)
	}
	return out
}

// weeklyPulse closes last Monday's pulse and opens this one's, with a
// dozen votes, as a weekly digest with a clarity pulse would.
func weeklyPulse(db *storage.DB, now time.Time, rng *rand.Rand) error {
	if now.Weekday() != time.Monday {
		return nil
	}
	const ch = "CBENCHPULSE"
	last := fmt.Sprintf("%s-%d", ch, now.AddDate(0, 0, -7).Unix())
	if _, err := db.ClosePulse(last); err != nil && !strings.Contains(err.Error(), nudges.ErrNotFound.Error()) {
		return err
	}
	id := fmt.Sprintf("%s-%d", ch, now.Unix())
	if err := db.OpenPulse(ch, id, now); err != nil {
		return err
	}
	for v := range 12 {
		if _, err := db.VotePulse(id, benchUserID(v), 1+rng.IntN(5)); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) retentionSection(r retentionResult) string {
	var sb strings.Builder
	b.sectionHead(&sb, "retention")
	fmt.Fprintf(&sb, "Reproduce: `go run ./cmd/nudgebot-bench -scenarios retention -retention-people %d -retention-days %d -retention %s` (and `-retention-compact`).\n\n",
		r.People, r.Days, strings.TrimSuffix(r.Retention.String(), "0m0s"))
	fmt.Fprintf(&sb, "%d people get one nudge every simulated day at 09:00 UTC for %d days (%.1f years), written through `storage.ImportDeliveries` "+
		"as the bot writes them: recorded pending and then sent at 09:00, the random outcome written at 17:00 (transactions of 5,000), with the fields a sent nudge carries; a weekly clarity pulse with 12 votes runs in one channel. "+
		"Simulated time moves an hour at a step and `storage.Prune` runs at every step with the cutoff `storage.retention` = %s gives, as the scheduler's hourly "+
		"housekeeping (app/scheduler) does; whenever `NeedsCompaction` says so, `Compact` runs, at most once every %s of simulated time, as its hourly compaction check would "+
		"(since the secrets file it never says so for a file this nudgebot made: erasing needs no compaction, and bbolt reuses the pages retention frees). "+
		"The file size is read at the end of each simulated quarter (91 days). Handled-envelope records are not simulated: the bot prunes them after 48 hours.\n\n",
		r.People, r.Days, float64(r.Days)/365, days(r.Retention), days(r.CompactEvery))
	sb.WriteString("| quarter | day | file | secrets file | deliveries kept | pruned so far | compactions so far |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, q := range r.Quarters {
		mark := ""
		if i == r.SteadyFrom {
			mark = " ←"
		}
		fmt.Fprintf(&sb, "| %d%s | %d | %.1f MB | %.1f KB | %d | %d | %d |\n", i+1, mark, q.Day, float64(q.FileSize)/1e6, float64(q.SecretsSize)/1e3, q.Kept, q.Pruned, q.Compacted)
	}
	// bbolt grows its file 16 MB at a time and compaction gives it back,
	// so a flat file wanders by a step or two; growing is what must not
	// happen.
	first, last := r.Quarters[r.SteadyFrom], r.Quarters[len(r.Quarters)-1]
	flat := r.SteadyMax-r.SteadyMin <= 0.15*r.SteadyMin && last.FileSize <= first.FileSize*105/100
	fmt.Fprintf(&sb, "\nFrom quarter %d on (marked ←, the first to end more than a quarter after the first %s) the file stays between %.1f MB and %.1f MB "+
		"while %d deliveries are kept; from that quarter to the last it changed by %+.1f%% (flat, within 15%% and not growing: %s). "+
		"Before the first prune the file grew to %.1f MB: nothing had been deleted yet, so nothing had asked for compaction. "+
		"About %.0f bytes of file per delivery kept. The pulse history holds %d summaries at the end (each channel's newest %d are kept whatever their age, for the trend), "+
		"and %d closed pulses' records were pruned.\n\n",
		r.SteadyFrom+1, days(r.Retention), r.SteadyMin, r.SteadyMax, last.Kept, r.GrowthAfterRet, verdict(flat), r.peakBeforePrune(),
		r.BytesPerRecord, r.SummariesKept, nudges.TrendPeriods+1, r.PulsesPruned)
	fmt.Fprintf(&sb, "Writes waiting for housekeeping: a probe rewrote one subscriber record, one write after another, while each prune and each weekly pulse close and open ran: "+
		"%d writes, mean %s, longest %s (simulated day %d), %d over 1 s (target: none over 1 s: %s).\n\n",
		r.ProbeWrites, (r.ProbeWaitSum / time.Duration(max(r.ProbeWrites, 1))).Round(time.Microsecond), r.LongestWait.Round(time.Microsecond), r.LongestWhen,
		r.SlowProbes, verdict(r.SlowProbes == 0))
	kept := max(r.Quarters[len(r.Quarters)-1].Kept, 1)
	sb.WriteString("Before schema 5 (issue 22), a delivery was the JSON of `nudges.Delivery` (about 450 bytes) under its id (user id and slot), and a slot index listed every id again. " +
		"The same run (10000 people, 1095 days, 400d, written in one import per day) ended at 5763.2 MB for 4000000 kept deliveries, about 1441 bytes each, " +
		"and the longest write waiting for housekeeping took 966.8 ms. At 1000 people × 500 days the old file's bytes went: 1284 bytes per kept delivery to the deliveries' leaf pages, " +
		"of which only 41% held entries (keys by person: each day's write lands in every person's run, and bbolt splits a full page in half, so pages stay half empty), " +
		"111 bytes to the slot index (49% full) and 25 to branch pages. Schema 5 stores a binary record of about 125 bytes keyed by slot, so each day's deliveries are appended " +
		"(pages 75% full when written, the rest for the records' later growth), finds a person's through an index of one entry per person and 24 days, and needs no slot index.\n\n")
	fmt.Fprintf(&sb, "Where the file's %.1f MB go at the end (`storage.DB.Space`; bytes per kept delivery; *fill* is the share of the leaf pages' bytes that hold entries):\n\n", float64(r.FileBytes)/1e6)
	sb.WriteString("| bucket | keys | leaf pages | fill | branch pages | per kept delivery |\n|---|---:|---:|---:|---:|---:|\n")
	other := r.FileBytes - int64(r.FreeBytes)
	for _, s := range r.Space {
		other -= int64(s.LeafBytes + s.BranchByte)
		if s.LeafBytes+s.BranchByte < 64<<10 {
			continue // the small buckets are in "the rest"
		}
		fmt.Fprintf(&sb, "| %s | %d | %.1f MB | %.2f | %.1f MB | %.1f B |\n", s.Name, s.Keys, float64(s.LeafBytes)/1e6,
			float64(s.LeafInUse)/float64(max(s.LeafBytes, 1)), float64(s.BranchByte)/1e6, float64(s.LeafBytes+s.BranchByte)/float64(kept))
	}
	fmt.Fprintf(&sb, "| free pages (bbolt reuses them) | | %.1f MB | | | %.1f B |\n", float64(r.FreeBytes)/1e6, float64(r.FreeBytes)/float64(kept))
	fmt.Fprintf(&sb, "| the rest (small buckets, meta and free list pages, the file's unused tail) | | %.1f MB | | | %.1f B |\n\n", float64(other)/1e6, float64(other)/float64(kept))
	fmt.Fprintf(&sb, "Time: %s in all (writing %s, %d prunes %s in %d write transactions, compacting %s); load 1m before→after %s.\n",
		r.Took.Round(time.Second), r.WriteTime.Round(time.Millisecond), r.Prunes, r.PruneTime.Round(time.Millisecond), r.PruneTxs,
		r.CompactTime.Round(time.Millisecond), r.Load)
	return sb.String()
}

// days writes d in whole days when it is one ("400d").
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
