package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// weightBuild is one build of nudgebot the weight scenario compares.
type weightBuild struct {
	Name, Tags, Path string
	Size             int64
	Connected        []time.Duration
	RSS, Anon        []int64         // kB, after -weight-settle
	Version          []time.Duration // `nudgebot version`: exec, initialisation, exit
}

// weightVersionRuns is how often each build runs `nudgebot version`,
// taking turns: the start-up a build costs before any of nudgebot's own
// work, which a median of a few hundred shows through the noise.
const weightVersionRuns = 300

// weightScenario builds nudgebot as the release does (static, stripped)
// with and without PostgreSQL support (-tags nopostgres), and starts each
// on the same bbolt file, taking turns: what linking pgx costs someone
// who runs the default, the bbolt file.
func (b *bench) weightScenario(ctx context.Context) (string, error) {
	dir, err := b.dir("weight")
	if err != nil {
		return "", err
	}
	builds := []*weightBuild{
		{Name: "default (bbolt and PostgreSQL)", Path: filepath.Join(dir, "nudgebot")},
		{Name: "-tags nopostgres (bbolt only)", Tags: "nopostgres", Path: filepath.Join(dir, "nudgebot-nopostgres")},
	}
	for _, w := range builds {
		args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", w.Path}
		if w.Tags != "" {
			args = append(args, "-tags", w.Tags)
		}
		cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/nudgebot")...)
		cmd.Dir, cmd.Env = b.opts.repo, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build %s: %w\n%s", w.Name, err, out)
		}
		info, err := os.Stat(w.Path)
		if err != nil {
			return "", err
		}
		w.Size = info.Size()
		b.progress("weight: %s: %.1f MB", w.Name, float64(w.Size)/1e6)
	}
	src := filepath.Join(dir, "seed.db")
	now := time.Now().UTC()
	if _, err := importSeed(ctx, src, b.opts.weightSubs, func(i int, s *nudges.Subscriber) {
		id := benchUserID(i)
		subscribed(s, now, dmFor(id))
		s.NextDue = spreadDue(now, i, b.opts.weightSubs)
	}); err != nil {
		return "", err
	}
	load := loadSpan{Before: readLoad()}
	for range weightVersionRuns {
		for _, w := range builds {
			start := time.Now()
			if out, err := exec.CommandContext(ctx, w.Path, "version").CombinedOutput(); err != nil {
				return "", fmt.Errorf("%s version: %w\n%s", w.Name, err, out)
			}
			w.Version = append(w.Version, time.Since(start))
		}
	}
	for _, w := range builds {
		b.progress("weight: %s: `nudgebot version` median %s", w.Name, ms(medianDuration(w.Version)))
	}
	for i := range b.opts.weightRuns {
		for _, w := range builds {
			if err := b.weightRun(ctx, w, src, i); err != nil {
				return "", err
			}
		}
	}
	load.After = readLoad()
	return b.weightSection(builds, load), nil
}

// weightRun starts w on a fresh copy of src, until it is connected and
// has run -weight-settle, and reads its memory.
func (b *bench) weightRun(ctx context.Context, w *weightBuild, src string, i int) error {
	dir, err := b.dir("weight-run")
	if err != nil {
		return err
	}
	dbPath := filepath.Join(dir, "nudgebot.db")
	if err := copyFile(dbPath, src); err != nil {
		return err
	}
	if err := syncFile(dbPath); err != nil {
		return err
	}
	emu, err := newEmulator()
	if err != nil {
		return err
	}
	defer emu.Close()
	p, err := startBot(w.Path, dir, emu, dbPath, nil)
	if err != nil {
		return err
	}
	defer p.kill()
	connected, err := p.waitConnected(ctx, emu, 2*time.Minute)
	if err != nil {
		return err
	}
	if err := sleepCtx(ctx, b.opts.weightSettle, p.exited); err != nil {
		return fmt.Errorf("%w (%v); see %s", errBotExited, p.waitErr, p.logPath)
	}
	st, err := p.status()
	if err != nil {
		return err
	}
	if res := p.stop(); !res.ok() {
		return fmt.Errorf("%s did not stop cleanly: %s; see %s", w.Name, res, p.logPath)
	}
	w.Connected = append(w.Connected, connected)
	w.RSS, w.Anon = append(w.RSS, st.VmRSS), append(w.Anon, st.RssAnon)
	b.progress("weight: run %d, %s: connected %s, VmRSS %.1f MB, RssAnon %.1f MB", i+1, w.Name, ms(connected), mb(st.VmRSS), mb(st.RssAnon))
	return nil
}

func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianKB(ks []int64) int64 {
	s := slices.Clone(ks)
	slices.Sort(s)
	return s[len(s)/2]
}

func (b *bench) weightSection(builds []*weightBuild, load loadSpan) string {
	var sb strings.Builder
	b.sectionHead(&sb, "weight")
	sb.WriteString("Reproduce: `go run ./cmd/nudgebot-bench -scenarios weight`.\n\n")
	fmt.Fprintf(&sb, "Both builds are made as the release and the Dockerfile make them (`CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\"`), "+
		"one of them with `-tags nopostgres`, which leaves out storage/pgstore and with it pgx. Each is started %d times, taking turns, "+
		"with `nudgebot run` on a copy of the same bbolt file of %d subscribers (nobody due), against the emulator: *connected* is from the "+
		"process start to the Socket Mode hello; memory is read from /proc %s after that. *version* is `nudgebot version`, start to exit, "+
		"%d times each, taking turns: the process start and the packages' initialisation, before any of nudgebot's own work. "+
		"Medians, with the range. Load %s over the runs.\n\n",
		b.opts.weightRuns, b.opts.weightSubs, b.opts.weightSettle, weightVersionRuns, load)
	sb.WriteString("| build | binary | version | connected | VmRSS | RssAnon (heap) |\n|---|---:|---:|---:|---:|---:|\n")
	for _, w := range builds {
		fmt.Fprintf(&sb, "| %s | %.1f MB | %s (%s–%s) | %s (%s–%s) | %.1f MB (%.1f–%.1f) | %.1f MB (%.1f–%.1f) |\n", w.Name, float64(w.Size)/1e6,
			ms(medianDuration(w.Version)), ms(slices.Min(w.Version)), ms(slices.Max(w.Version)),
			ms(medianDuration(w.Connected)), ms(slices.Min(w.Connected)), ms(slices.Max(w.Connected)),
			mb(medianKB(w.RSS)), mb(slices.Min(w.RSS)), mb(slices.Max(w.RSS)),
			mb(medianKB(w.Anon)), mb(slices.Min(w.Anon)), mb(slices.Max(w.Anon)))
	}
	return sb.String()
}
