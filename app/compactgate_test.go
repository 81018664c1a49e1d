package app

import (
	"testing"
	"time"
)

// Ensure compactions are at most about one an hour and never two at once.
func TestCompactGate(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var g compactGate
	steps := []struct {
		at    time.Duration
		done  bool // finish the running compaction first
		claim bool
	}{
		{0, false, true},
		{time.Minute, false, false},                // one is running
		{2 * time.Minute, true, false},             // finished, but too soon
		{compactEvery - time.Second, false, false}, // still too soon
		{compactEvery, false, true},
		{compactEvery + time.Second, true, false},
		{2*compactEvery + time.Minute, false, true},
	}
	for i, s := range steps {
		if s.done {
			g.done()
		}
		if got := g.claim(t0.Add(s.at)); got != s.claim {
			t.Errorf("step %d at +%v: claim = %v, want %v", i, s.at, got, s.claim)
		}
	}
}
