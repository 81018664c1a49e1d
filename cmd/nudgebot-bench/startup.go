package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// Start-up targets at startSubs subscribers.
const (
	startConnectTarget = 2 * time.Second
	startHWMTarget     = 40.0 // MB
)

// startupFile is one database the bot is started on.
type startupFile struct {
	Name       string
	Path       string
	Size       int64
	Subs       int
	Deliveries int
}

// startupRun is one start of one binary on one file.
type startupRun struct {
	Binary    string // "this build" or the -startup-before-bin
	File      startupFile
	Connected time.Duration
	Checked   time.Duration // start → "full database check passed"; 0 if the binary has no background check
	Mem       procStatus    // once the check has passed (or after -settle)
	PeakAnon  int64         // kB, the largest RssAnon sampled every 5ms
	PeakFile  int64         // kB, the largest RssFile sampled every 5ms
	Writes    writeStats    // `/reflect TEXT` sent from connecting until the check's verdict
	Load      loadSpan
	Stop      stopResult
}

func (b *bench) startupScenario(ctx context.Context) (string, error) {
	dir, err := b.dir("startup")
	if err != nil {
		return "", err
	}
	files, err := b.startupFiles(ctx, dir)
	if err != nil {
		return "", err
	}
	var runs []startupRun
	for _, f := range files {
		if b.opts.startBefore != "" {
			old, err := schema1Copy(f, dir)
			if err != nil {
				return "", err
			}
			r, err := b.startupRun(ctx, b.opts.startBefore, "before: "+filepath.Base(b.opts.startBefore), old)
			if err != nil {
				return "", err
			}
			runs = append(runs, r)
		}
		r, err := b.startupRun(ctx, b.bin, "this build", f)
		if err != nil {
			return "", err
		}
		runs = append(runs, r)
	}
	return b.startupSection(runs), nil
}

// startupFiles seeds the two databases: startSubs subscribers, and the
// same people with enough delivery history to make about startFileMB.
func (b *bench) startupFiles(ctx context.Context, dir string) ([]startupFile, error) {
	now := time.Now().UTC()
	fill := func(i int, s *nudges.Subscriber) {
		id := benchUserID(i)
		subscribed(s, now, dmFor(id))
		s.NextDue = spreadDue(now, i, b.opts.startSubs)
	}
	small := startupFile{Name: fmt.Sprintf("%d subscribers", b.opts.startSubs), Path: filepath.Join(dir, "subscribers.db"), Subs: b.opts.startSubs}
	b.progress("startup: seeding %d subscribers", small.Subs)
	r, err := importSeed(ctx, small.Path, small.Subs, fill)
	if err != nil {
		return nil, err
	}
	b.seedStats = append(b.seedStats, r)
	small.Size = r.FileSize

	large := startupFile{Path: filepath.Join(dir, "large.db"), Subs: b.opts.startSubs}
	if err := copyFile(large.Path, small.Path); err != nil {
		return nil, err
	}
	b.progress("startup: adding delivery history up to about %d MB", b.opts.startFileMB)
	if large.Deliveries, large.Size, err = addHistory(ctx, large.Path, b.opts.startSubs, now, int64(b.opts.startFileMB)<<20); err != nil {
		return nil, err
	}
	large.Name = fmt.Sprintf("%.0f MB: %d subscribers, %d deliveries", float64(large.Size)/1e6, large.Subs, large.Deliveries)
	b.progress("startup: %s", large.Name)
	return []startupFile{small, large}, nil
}

// addHistory writes a day of deliveries for every person at a time,
// newest day first, through storage.ImportDeliveries, until the file at
// path reaches target bytes. It returns how many it wrote and the size.
func addHistory(ctx context.Context, path string, n int, now time.Time, target int64) (int, int64, error) {
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		return 0, 0, fmt.Errorf("open the database to add history: %w", err)
	}
	defer db.Close()
	subs := make([]nudges.Subscriber, n)
	for i := range subs {
		subs[i].UserID = benchUserID(i)
		subs[i].DMChannel = dmFor(subs[i].UserID)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	total := 0
	// Bounded: a year of days is far more than any sensible target needs.
	for day := 1; day <= 366; day++ {
		if err := ctx.Err(); err != nil {
			return total, 0, err
		}
		size, err := db.Size()
		if err != nil {
			return total, 0, err
		}
		if size >= target {
			return total, size, nil
		}
		slot := now.Truncate(24*time.Hour).AddDate(0, 0, -day).Add(9 * time.Hour)
		ds := dayOfDeliveries(subs, slot, rng)
		if err := db.ImportDeliveries(ds); err != nil {
			return total, 0, err
		}
		total += len(ds)
	}
	size, err := db.Size()
	return total, size, err
}

// schema1Copy copies f and takes the copy back to schema 1 (deliveries
// as JSON under their ids, with an outbox of ids, and no slot index) so
// that a nudgebot from before retention will open it. This is the one
// place the bench writes into bbolt directly: no storage call goes back
// a schema version. The deliveries are read through storage first.
func schema1Copy(f startupFile, dir string) (startupFile, error) {
	old := f
	old.Path = filepath.Join(dir, "schema1-"+filepath.Base(f.Path))
	src, err := storage.Open(f.Path, storage.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return old, err
	}
	var ds []nudges.Delivery
	err = src.ExportAll(func(r nudges.PersonRecord) error {
		if r.Delivery != nil {
			ds = append(ds, *r.Delivery)
		}
		return nil
	})
	if cerr := src.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return old, fmt.Errorf("read the deliveries for the schema 1 copy: %w", err)
	}
	if err := copyFile(old.Path, f.Path); err != nil {
		return old, err
	}
	bdb, err := bolt.Open(old.Path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return old, fmt.Errorf("open the schema 1 copy: %w", err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"delivery_records", "deliveries_by_person", "delivery_outbox"} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return fmt.Errorf("drop %s: %w", name, err)
			}
		}
		dels, err := tx.CreateBucket([]byte("deliveries"))
		if err != nil {
			return err
		}
		outbox, err := tx.CreateBucket([]byte("outbox"))
		if err != nil {
			return err
		}
		for _, d := range ds {
			raw, err := json.Marshal(d)
			if err != nil {
				return err
			}
			if err := dels.Put([]byte(d.ID), raw); err != nil {
				return err
			}
			if d.State == nudges.StatePending {
				if err := outbox.Put([]byte(d.ID), []byte{}); err != nil {
					return err
				}
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte("1"))
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return old, fmt.Errorf("take the copy back to schema 1: %w", err)
	}
	if info, err := os.Stat(old.Path); err == nil {
		old.Size = info.Size()
	}
	return old, nil
}

// startupRun starts bin on a fresh copy of f and measures it: the time
// to the Socket Mode hello, the time to the background check's verdict,
// how long writes (`/reflect TEXT`) wait for their answer meanwhile, and
// peak memory once that is in.
func (b *bench) startupRun(ctx context.Context, bin, label string, f startupFile) (startupRun, error) {
	res := startupRun{Binary: label, File: f}
	dir, err := b.dir("startup-run")
	if err != nil {
		return res, err
	}
	dbPath := filepath.Join(dir, "nudgebot.db")
	if err := copyFile(dbPath, f.Path); err != nil {
		return res, err
	}
	// Written back before the bot starts: its first commit's fsync would
	// otherwise wait for the whole copy to reach the disk, which is the
	// bench's doing, not the bot's.
	if err := syncFile(dbPath); err != nil {
		return res, err
	}
	emu, err := newEmulator()
	if err != nil {
		return res, err
	}
	defer emu.Close()
	res.Load.Before = readLoad()
	p, err := startBot(bin, dir, emu, dbPath, nil)
	if err != nil {
		return res, err
	}
	defer p.kill()
	sampled := samplePeaks(p, &res)
	if res.Connected, err = p.waitConnected(ctx, emu, 5*time.Minute); err != nil {
		return res, err
	}
	// This build logs the background check's verdict; an older one has
	// none, so it gets -settle after connecting.
	verdictWait := b.opts.settle
	if label == "this build" {
		verdictWait = 10 * time.Minute
	}
	// People write while the check runs (an older build checked before
	// it connected, so its writes all come after the check).
	writes := startWrites(ctx, emu, f.Subs, label == "this build")
	defer writes.halt()
	line, err := waitLogLine(ctx, p, []string{"full database check passed", "THE DATABASE IS DAMAGED"}, verdictWait)
	switch {
	case err != nil:
		return res, err
	case strings.Contains(line, "DAMAGED"):
		return res, fmt.Errorf("the bot found %s damaged: %s", f.Name, line)
	case line != "":
		res.Checked = time.Since(p.started)
	}
	res.Writes = writes.finish()
	if res.Writes.Errors > 0 {
		b.note("startup: %s on %s: %d of %d writes during the check failed, the first: %s; see %s",
			label, f.Name, res.Writes.Errors, res.Writes.Sent, res.Writes.FirstErr, p.logPath)
	}
	// A moment for anything the check left to settle.
	if err := sleepCtx(ctx, 2*time.Second, p.exited); err != nil {
		return res, fmt.Errorf("%w (%v); see %s", errBotExited, p.waitErr, p.logPath)
	}
	if res.Mem, err = p.status(); err != nil {
		return res, err
	}
	sampled()
	res.Load.After = readLoad()
	res.Stop = p.stop()
	wn, wp50, wmax := res.Writes.cells()
	b.progress("startup: %s on %s: connected %s, checked %s, writes answered during the check %s p50 %s max %s, VmRSS %.1f MB, VmHWM %.1f MB (sampled peaks: RssAnon %.1f MB, RssFile %.1f MB), load %s",
		label, f.Name, ms(res.Connected), ms(res.Checked), wn, wp50, wmax, mb(res.Mem.VmRSS), mb(res.Mem.VmHWM), mb(res.PeakAnon), mb(res.PeakFile), res.Load)
	return res, nil
}

// samplePeaks reads the bot's memory every 5ms until the returned func
// is called, keeping the largest RssAnon and RssFile: VmHWM says how high
// the total went, these say which part.
func samplePeaks(p *botProc, res *startupRun) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if s, err := p.status(); err == nil {
				res.PeakAnon, res.PeakFile = max(res.PeakAnon, s.RssAnon), max(res.PeakFile, s.RssFile)
			}
			select {
			case <-done:
				return
			case <-p.exited:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s to sync it: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// waitLogLine polls the bot's log for a line holding one of wants, for
// at most wait; "" when none came.
func waitLogLine(ctx context.Context, p *botProc, wants []string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(p.logPath)
		if err != nil {
			return "", fmt.Errorf("read the bot's log: %w", err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			for _, w := range wants {
				if strings.Contains(l, w) {
					return l, nil
				}
			}
		}
		if err := sleepCtx(ctx, min(100*time.Millisecond, time.Until(deadline)), p.exited); err != nil {
			if ctx.Err() != nil {
				return "", err
			}
			return "", fmt.Errorf("%w (%v); see %s", errBotExited, p.waitErr, p.logPath)
		}
	}
	return "", nil
}

func (b *bench) startupSection(runs []startupRun) string {
	var sb strings.Builder
	b.sectionHead(&sb, "startup")
	sb.WriteString("Reproduce: `go run ./cmd/nudgebot-bench -scenarios startup` (add `-startup-before-bin PATH` to start an older nudgebot on the same files; " +
		"it gets a copy taken back to schema 1).\n\n")
	fmt.Fprintf(&sb, "`nudgebot run` is started on an idle database (nobody due for 10 minutes) and measured from the process start: *connected* is the "+
		"emulator's Socket Mode hello; *checked* is the log line saying the full consistency check, which this build runs in the background "+
		"after the walk of every page at open, has passed. Memory is read 2 s after that, once the writes below are answered (an older build, which checks everything before it "+
		"connects, is read %s after connecting): VmHWM is the peak over the whole start; *peak RssAnon* (heap) and *peak RssFile* (mapped files: the binary and the database) "+
		"are the largest values sampled every 5 ms, so they may miss a shorter peak. Targets at %d subscribers: connected within %s, VmHWM under %.0f MB.\n\n",
		b.opts.settle, b.opts.startSubs, startConnectTarget, startHWMTarget)
	fmt.Fprintf(&sb, "*Writes during the check*: from the moment the bot is connected until the check's verdict is in its log (at most %.0f s), the next seeded "+
		"person in turn, every %s, types `/reflect TEXT`, which saves a private reflection (a database write) and answers \"%s…\" through the command's "+
		"response_url; each is timed from the slash command to that answer appearing in the emulator. *answered* counts them; a command refused "+
		"(in its ack) or answered with anything else counts as failed, not as a sample. When the check is over before %d were sent, the rest are "+
		"sent after it and the cell says so (an older build checks before it connects, so all of its %d come after). The answers are all in "+
		"before memory is read, so VmHWM and the peaks include this load.\n\n",
		writeWindow.Seconds(), writeEvery, writeSaved, writeAtLeast, writeAtLeast)
	sb.WriteString("| binary | database | file | start → connected | start → checked | writes answered during the check | write p50 | write max | " +
		"VmRSS | VmHWM | peak RssAnon | peak RssFile | targets | stop (SIGTERM) | load 1m before→after |\n")
	sb.WriteString("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|\n")
	for _, r := range runs {
		target := "—"
		if r.File.Deliveries == 0 && r.File.Subs == b.opts.startSubs {
			target = verdict(r.Connected <= startConnectTarget && mb(r.Mem.VmHWM) < startHWMTarget)
		}
		checked := "— (before connecting)"
		if r.Checked > 0 {
			checked = ms(r.Checked)
		}
		wn, wp50, wmax := r.Writes.cells()
		fmt.Fprintf(&sb, "| %s | %s | %.1f MB | %s | %s | %s | %s | %s | %.1f MB | %.1f MB | %.1f MB | %.1f MB | %s | %s | %s |\n",
			r.Binary, r.File.Name, float64(r.File.Size)/1e6, ms(r.Connected), checked, wn, wp50, wmax, mb(r.Mem.VmRSS), mb(r.Mem.VmHWM),
			mb(r.PeakAnon), mb(r.PeakFile), target, stopCell(r.Stop), r.Load)
	}
	return sb.String()
}
