package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// storageCounts are the bot's own storage counters, from its /metrics.
type storageCounts struct {
	Writes, Commits, Pages float64
}

// Metric names the bot exports (ops/metrics.go).
const (
	metricWrites  = "nudgebot_storage_writes_total"
	metricCommits = "nudgebot_storage_commits_total"
	metricPages   = "nudgebot_storage_pages_written_total"
)

// storageCounts reads the bot's storage counters from /metrics.
func (p *botProc) storageCounts(ctx context.Context) (storageCounts, error) {
	if p.metricsURL == "" {
		return storageCounts{}, fmt.Errorf("the bot was started without metrics")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metricsURL, nil)
	if err != nil {
		return storageCounts{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return storageCounts{}, fmt.Errorf("read the bot's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return storageCounts{}, fmt.Errorf("read the bot's metrics: %s", resp.Status)
	}
	return parseStorageCounts(resp.Body)
}

// parseStorageCounts picks the two storage counters out of Prometheus'
// text format.
func parseStorageCounts(r io.Reader) (storageCounts, error) {
	var c storageCounts
	found := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		dst := map[string]*float64{metricWrites: &c.Writes, metricCommits: &c.Commits, metricPages: &c.Pages}[f[0]]
		if dst == nil {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return c, fmt.Errorf("metric %s: %w", f[0], err)
		}
		*dst = v
		found++
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("read the bot's metrics: %w", err)
	}
	if found < 3 {
		return c, fmt.Errorf("the bot's metrics lack %s, %s or %s", metricWrites, metricCommits, metricPages)
	}
	return c, nil
}

// diskUse is what a stretch of deliveries asked of the database: the
// writes (state changes), the commits that made them durable, each with
// bbolt's two fsyncs, over Span, for Nudges nudges.
type diskUse struct {
	Writes, Commits float64
	Pages           float64 // 4 KiB pages the commits wrote
	Nudges          int
	Span            time.Duration
	Err             string // why the counters could not be read
}

// between is the use from a to b.
func between(a, b storageCounts, nudges int, span time.Duration) diskUse {
	return diskUse{Writes: b.Writes - a.Writes, Commits: b.Commits - a.Commits, Pages: b.Pages - a.Pages, Nudges: nudges, Span: span}
}

func (d diskUse) perNudge() float64 {
	if d.Nudges == 0 {
		return 0
	}
	return d.Commits / float64(d.Nudges)
}

func (d diskUse) fsyncsPerSecond() float64 {
	if d.Span <= 0 {
		return 0
	}
	return 2 * d.Commits / d.Span.Seconds()
}

func (d diskUse) String() string {
	if d.Err != "" {
		return "not measured: " + d.Err
	}
	n := float64(max(1, d.Nudges))
	return fmt.Sprintf("%.0f commits for %.0f writes: %.2f commits, %.2f writes and %.1f pages written per nudge; %.0f fsyncs/s (two per commit)",
		d.Commits, d.Writes, d.perNudge(), d.Writes/n, d.Pages/n, d.fsyncsPerSecond())
}
