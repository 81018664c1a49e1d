package app

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Ensure a repeated failure is logged once per interval, and the next
// line says how many it stood for.
func TestThrottle(t *testing.T) {
	var buf bytes.Buffer
	th := newThrottle(slog.New(slog.NewTextHandler(&buf, nil)), time.Hour)
	for range 100 {
		th.logAt(slog.LevelError, "disk full", "user_id", "U1")
	}
	th.logAt(slog.LevelError, "another failure")
	if n := strings.Count(buf.String(), "disk full"); n != 1 {
		t.Fatalf("logged %d times, want 1:\n%s", n, buf.String())
	}
	th.last["disk full"] = time.Now().Add(-2 * time.Hour)
	th.logAt(slog.LevelError, "disk full")
	if !strings.Contains(buf.String(), "similar_lines_suppressed=99") {
		t.Fatalf("suppressed count missing:\n%s", buf.String())
	}
}
