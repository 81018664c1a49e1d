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
	Writes, Commits float64
}

// Metric names the bot exports (cmd/nudgebot/metrics.go).
const (
	metricWrites  = "nudgebot_storage_writes_total"
	metricCommits = "nudgebot_storage_commits_total"
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
		if len(f) < 2 || (f[0] != metricWrites && f[0] != metricCommits) {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return c, fmt.Errorf("metric %s: %w", f[0], err)
		}
		if f[0] == metricWrites {
			c.Writes = v
		} else {
			c.Commits = v
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("read the bot's metrics: %w", err)
	}
	if found < 2 {
		return c, fmt.Errorf("the bot's metrics lack %s or %s", metricWrites, metricCommits)
	}
	return c, nil
}

// diskUse is what a stretch of deliveries asked of the database: the
// writes (state changes), the commits that made them durable, each with
// bbolt's two fsyncs, over Span, for Nudges nudges.
type diskUse struct {
	Writes, Commits float64
	Nudges          int
	Span            time.Duration
	Err             string // why the counters could not be read
}

// between is the use from a to b.
func between(a, b storageCounts, nudges int, span time.Duration) diskUse {
	return diskUse{Writes: b.Writes - a.Writes, Commits: b.Commits - a.Commits, Nudges: nudges, Span: span}
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
	return fmt.Sprintf("%.0f commits for %.0f writes: %.2f commits and %.2f writes per nudge; %.0f fsyncs/s (two per commit)",
		d.Commits, d.Writes, d.perNudge(), d.Writes/float64(max(1, d.Nudges)), d.fsyncsPerSecond())
}
