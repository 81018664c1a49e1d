package app

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// throttle keeps a failure that repeats for every person (a full disk, a
// dead network) from writing one log line per person per tick: each
// message is logged at most once per interval, with the count of lines
// it stood for.
type throttle struct {
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	last    map[string]time.Time
	dropped map[string]int
}

func newThrottle(log *slog.Logger, interval time.Duration) *throttle {
	return &throttle{log: log, interval: interval, last: map[string]time.Time{}, dropped: map[string]int{}}
}

// logAt writes msg at level unless it was written less than an interval
// ago, in which case it only counts it.
func (t *throttle) logAt(level slog.Level, msg string, args ...any) {
	t.mu.Lock()
	now := time.Now()
	if last, ok := t.last[msg]; ok && now.Sub(last) < t.interval {
		t.dropped[msg]++
		t.mu.Unlock()
		return
	}
	n := t.dropped[msg]
	t.last[msg] = now
	t.dropped[msg] = 0
	t.mu.Unlock()
	if n > 0 {
		args = append(args, "similar_lines_suppressed", n)
	}
	t.log.Log(context.Background(), level, msg, args...)
}
