package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// bench is one run of the command: the settings, the binary under test,
// a work directory for databases and logs, and the machine it runs on.
type bench struct {
	opts      options
	out       io.Writer // tables
	errw      io.Writer // progress
	bin       string
	work      string
	machine   machine
	started   time.Time
	seeded    map[int]string // subscriber count → pristine seeded database
	seedStats []seedResult
	notes     []string  // findings worth a line in the report's summary
	pg        *pgServer // the PostgreSQL server, once a scenario asked for it
}

func newBench(ctx context.Context, o options, stdout, stderr io.Writer) (*bench, error) {
	if o.repo == "" {
		root, err := moduleRoot(ctx)
		if err != nil {
			return nil, err
		}
		o.repo = root
	}
	work, err := os.MkdirTemp("", "nudgebot-bench-")
	if err != nil {
		return nil, fmt.Errorf("create a work directory: %w", err)
	}
	b := &bench{opts: o, out: stdout, errw: stderr, work: work, started: time.Now(), seeded: map[int]string{}}
	b.machine = readMachine(b.started)
	// Before anything else runs: the disk as the databases will find it.
	b.machine.Fsync = probeFsync(work, fsyncProbe)
	b.progress("machine: %s", b.machine)
	b.progress("work directory: %s", work)
	if o.bin != "" {
		b.bin = o.bin
		return b, nil
	}
	b.bin = filepath.Join(work, "nudgebot")
	b.progress("building ./cmd/nudgebot")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", b.bin, "./cmd/nudgebot")
	cmd.Dir = o.repo
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(work)
		return nil, fmt.Errorf("go build ./cmd/nudgebot in %s failed: %w\n%s", o.repo, err, out)
	}
	return b, nil
}

// close removes the work directory, unless asked to keep it or the run
// failed: then the bot's logs are what one reads next.
func (b *bench) close(failed bool) error {
	if b.opts.keep || failed {
		b.progress("work directory kept: %s", b.work)
		return nil
	}
	if err := os.RemoveAll(b.work); err != nil {
		return fmt.Errorf("remove the work directory %s: %w", b.work, err)
	}
	return nil
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.errw, "[%6.1fs] %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

// note keeps a finding for the report's summary and says it now.
func (b *bench) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	b.notes = append(b.notes, s)
	b.progress("note: %s", s)
}

// dir makes a fresh directory under the work directory.
func (b *bench) dir(name string) (string, error) {
	d, err := os.MkdirTemp(b.work, name+"-")
	if err != nil {
		return "", fmt.Errorf("create a directory for %s: %w", name, err)
	}
	return d, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module root with `go env GOMOD`: %w (run from the nudgebot checkout, or pass -repo)", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the nudgebot checkout, or pass -repo")
	}
	return filepath.Dir(mod), nil
}

// machine describes where the figures were measured.
type machine struct {
	CPU       string
	Cores     int
	RAM       uint64 // bytes
	GoVersion string
	OS        string
	Date      time.Time
	Fsync     fsyncResult // measured at the bench's start; zero if not
}

func (m machine) String() string {
	s := fmt.Sprintf("%s, %d cores, %.1f GiB RAM, %s %s, %s", m.CPU, m.Cores, float64(m.RAM)/(1<<30),
		m.GoVersion, m.OS, m.Date.UTC().Format("2006-01-02 15:04 MST"))
	if m.Fsync.Sync.N > 0 || m.Fsync.Err != "" {
		s += "; disk: " + m.Fsync.String()
	}
	return s
}

func readMachine(now time.Time) machine {
	m := machine{CPU: "unknown CPU", Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, Date: now}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		m.CPU, _ = cpuModel(f)
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		if kb, ok := meminfoTotal(f); ok {
			m.RAM = kb * 1024
		}
		f.Close()
	}
	return m
}

// cpuModel returns the first "model name" in /proc/cpuinfo and how many
// processors it lists.
func cpuModel(r io.Reader) (string, int) {
	model, n := "unknown CPU", 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			n++
		case "model name":
			if n <= 1 {
				model = strings.TrimSpace(v)
			}
		}
	}
	return model, n
}

func meminfoTotal(r io.Reader) (uint64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			return kb, err == nil
		}
	}
	return 0, false
}

// loadAvg is /proc/loadavg's 1, 5 and 15 minute averages. The machine is
// shared, so every figure is printed next to the load it was taken under.
type loadAvg struct{ One, Five, Fifteen float64 }

func (l loadAvg) String() string { return fmt.Sprintf("%.2f/%.2f/%.2f", l.One, l.Five, l.Fifteen) }

func readLoad() loadAvg {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return loadAvg{}
	}
	l, _ := parseLoad(data)
	return l
}

func parseLoad(data []byte) (loadAvg, error) {
	f := bytes.Fields(data)
	if len(f) < 3 {
		return loadAvg{}, fmt.Errorf("loadavg %q: want three numbers", data)
	}
	var v [3]float64
	for i := range v {
		x, err := strconv.ParseFloat(string(f[i]), 64)
		if err != nil {
			return loadAvg{}, fmt.Errorf("loadavg %q: %w", data, err)
		}
		v[i] = x
	}
	return loadAvg{v[0], v[1], v[2]}, nil
}

// loadSpan is the load when a measurement started and when it ended.
type loadSpan struct{ Before, After loadAvg }

// String shows the 1-minute averages, which is what a 20 s run can move.
func (s loadSpan) String() string { return fmt.Sprintf("%.2f→%.2f", s.Before.One, s.After.One) }

// sleepCtx waits d, for the scenarios that must let the bot run for a
// while; it returns early with ctx's error or when stop is closed.
func sleepCtx(ctx context.Context, d time.Duration, stop <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return errBotExited
	}
}

var errBotExited = errors.New("the bot exited on its own")

// copyFile copies a closed database so each scenario starts from the same
// seeded state without seeding again.
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		return errors.Join(fmt.Errorf("copy %s to %s: %w", src, dst, err), out.Close())
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	return nil
}
