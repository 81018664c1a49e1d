package bot

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// callsIn counts the calls g's limiter lets through in window from at,
// every call made as soon as it allows: its own figures, no clock read.
func callsIn(g *gate, at time.Time, window time.Duration) int {
	n := 0
	for {
		r := g.lim.ReserveN(at, 1)
		if !r.OK() || r.DelayFrom(at) > window {
			r.CancelAt(at)
			return n
		}
		n++
	}
}

// Ensure that with two replicas each gated method's limiter lets through
// half the calls a minute it did alone, for gates made before the count
// changed and after; that chat.postMessage's pacer is left as it was;
// and that one replica again gets the whole limit.
func TestSetReplicasHalvesEachMethod(t *testing.T) {
	var logs bytes.Buffer
	s := &Slack{web: newWebAPI(slog.Default(), nil, NopMetrics{}, nil), log: slog.New(slog.NewTextHandler(&logs, nil))}
	before := s.web.gate("users.info")
	// Far enough ahead that no call to SetLimitAt inside comes later.
	at := time.Now().Add(time.Hour)
	// Gates made while alone.
	alone := map[string]int{}
	for _, m := range []string{"users.info", "chat.update", "users.list"} {
		alone[m] = callsIn(s.web.gate(m), at, time.Minute)
	}
	pace := s.web.posts.pace()

	s.SetReplicas(2)
	s.SetReplicas(2) // no change: no second log line
	for _, tc := range []struct {
		method string
		alone  int
	}{
		{"users.info", 100},
		{"chat.update", 50},
		{"users.list", 20},
		{"views.update", 100}, // a gate made after the change
	} {
		if a, ok := alone[tc.method]; ok && a != tc.alone {
			t.Errorf("%s alone: %d calls a minute, want %d", tc.method, a, tc.alone)
		}
		g := s.web.gate(tc.method)
		if got := callsIn(g, at.Add(time.Hour), time.Minute); got != tc.alone/2 {
			t.Errorf("%s with 2 replicas: %d calls a minute, want %d (half of %d)", tc.method, got, tc.alone/2, tc.alone)
		}
		if g.lim.Burst() < 1 {
			t.Errorf("%s with 2 replicas: burst %d, want at least 1", tc.method, g.lim.Burst())
		}
	}
	if got := s.web.posts.pace(); got != pace {
		t.Errorf("chat.postMessage's pace with 2 replicas: %.1f a minute, want it left at %.1f", got, pace)
	}
	if g := s.web.gate(postMethod); g.lim != nil {
		t.Errorf("chat.postMessage got a tier limiter (%v a second): it is paced by its own pacer", g.lim.Limit())
	}
	if n := strings.Count(logs.String(), "2 replicas share Slack's limits"); n != 1 {
		t.Errorf("the share logged %d times, want once:\n%s", n, logs.String())
	}

	s.SetReplicas(1)
	if got := callsIn(before, at.Add(2*time.Hour), time.Minute); got != 100 {
		t.Errorf("users.info alone again: %d calls a minute, want 100", got)
	}
}
