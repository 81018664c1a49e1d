package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// subsRSSTarget is the memory target with many subscribers, in MB.
const subsRSSTarget = 80.0

// subsResult is the bot's memory with a large, idle database.
type subsResult struct {
	N         int
	FileSize  int64
	Settle    time.Duration
	Connected time.Duration
	Mem       procStatus
	DBPages   int64          // kB of the database file resident in the bot
	Samples   []procStatus   // once a second while settling
	Calls     map[string]int // Web API calls made while idle
	Load      loadSpan
	Stop      stopResult
}

func (b *bench) subscribersScenario(ctx context.Context) (string, error) {
	r, err := b.subscribersRun(ctx, b.opts.subs, b.opts.settle)
	if err != nil {
		return "", err
	}
	b.progress("subscribers: %d, VmRSS %.1f MB, VmHWM %.1f MB (RssFile %.1f MB), load %s, %s", r.N, mb(r.Mem.VmRSS), mb(r.Mem.VmHWM), mb(r.Mem.RssFile), r.Load, r.Stop)
	// File pages are the mapped database: say so when they are most of it,
	// since they are reclaimable and grow with the file, not the heap.
	if r.FileSize > 0 && float64(r.DBPages)*1024 > 0.5*float64(r.FileSize) && r.DBPages > r.Mem.RssAnon {
		b.note("with %d subscribers and nobody due, %.1f MB of the idle bot's %.1f MB VmRSS is the database file mapped in (%.0f%% of its %.1f MB): "+
			"the bot reads nearly every page at start (storage.Open runs bbolt's tx.Check over the whole file), so VmRSS grows with the file, "+
			"not with the heap (RssAnon %.1f MB). The pages are clean and reclaimable, but they count against an RSS limit.",
			r.N, mb(r.DBPages), mb(r.Mem.VmRSS), 100*float64(r.DBPages)*1024/float64(r.FileSize), float64(r.FileSize)/1e6, mb(r.Mem.RssAnon))
	}
	return b.subscribersSection(r), nil
}

func (b *bench) subscribersRun(ctx context.Context, n int, settle time.Duration) (subsResult, error) {
	res := subsResult{N: n, Settle: settle}
	dir, err := b.dir("subscribers")
	if err != nil {
		return res, err
	}
	dbPath := filepath.Join(dir, "nudgebot.db")
	if err := b.idleDB(ctx, n, dbPath); err != nil {
		return res, err
	}
	if fi, err := os.Stat(dbPath); err == nil {
		res.FileSize = fi.Size()
	}
	emu, err := newEmulator()
	if err != nil {
		return res, err
	}
	defer emu.Close()
	p, err := startBot(b.bin, dir, emu, dbPath, nil)
	if err != nil {
		return res, err
	}
	defer p.kill()
	res.Load.Before = readLoad()
	if res.Connected, err = p.waitConnected(ctx, emu, 30*time.Second); err != nil {
		return res, err
	}
	// Sample once a second so the report can show whether memory is
	// still growing when it is read; the loop is bounded by settle.
	deadline := time.Now().Add(settle)
	for time.Now().Before(deadline) {
		if err := sleepCtx(ctx, min(time.Second, time.Until(deadline)), p.exited); err != nil {
			if ctx.Err() != nil {
				return res, err
			}
			return res, fmt.Errorf("%w (%v) while idle with %d subscribers; see %s", errBotExited, p.waitErr, n, p.logPath)
		}
		s, err := p.status()
		if err != nil {
			return res, err
		}
		res.Samples = append(res.Samples, s)
	}
	if res.Mem, err = p.status(); err != nil {
		return res, err
	}
	if res.DBPages, err = p.mappedRSS(dbPath); err != nil {
		return res, err
	}
	res.Load.After = readLoad()
	res.Calls = map[string]int{}
	for _, c := range emu.Calls("") {
		res.Calls[c.Method]++
	}
	res.Stop = p.stop()
	return res, nil
}

func (b *bench) subscribersSection(r subsResult) string {
	var sb strings.Builder
	b.sectionHead(&sb, "subscribers")
	fmt.Fprintf(&sb, "%d subscribers in the database (%.1f MB file), their next nudges spread evenly over the next 7 days, nobody due. "+
		"The bot ran connected for %s after its Socket Mode hello (its startup pass plus one 15 s tick when the settle time allows), "+
		"then its memory was read from `/proc/PID/status`. bbolt maps the file, so pages the bot reads count in RssFile; "+
		"*of which the database* is the resident part of that mapping, from `/proc/PID/smaps` (the rest of RssFile is mostly the binary's own code).\n\n",
		r.N, float64(r.FileSize)/1e6, r.Settle)
	ok := mb(r.Mem.VmRSS) < subsRSSTarget && mb(r.Mem.VmHWM) < subsRSSTarget
	sb.WriteString("| subscribers | start → connected | VmRSS | VmHWM | RssAnon | RssFile | of which the database | threads | target < 80 MB | Web API calls | bot CPU | stop (SIGTERM) | load 1m before→after |\n")
	sb.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|---|\n")
	fmt.Fprintf(&sb, "| %d | %s | %.1f MB | %.1f MB | %.1f MB | %.1f MB | %.1f MB | %d | %s | %s | %s | %s | %s |\n",
		r.N, ms(r.Connected), mb(r.Mem.VmRSS), mb(r.Mem.VmHWM), mb(r.Mem.RssAnon), mb(r.Mem.RssFile), mb(r.DBPages), r.Mem.Threads, verdict(ok), callList(r.Calls),
		r.Stop.CPU.Round(10*time.Millisecond), stopCell(r.Stop), r.Load)
	if len(r.Samples) > 1 {
		sb.WriteString("\nVmRSS once a second while settling (MB): ")
		for i, s := range r.Samples {
			if i > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "%.1f", mb(s.VmRSS))
		}
		sb.WriteString(".\n")
	}
	return sb.String()
}
