package slackemu

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// Ensure the emulator sends WebSocket PINGs at the configured interval and
// slack-go answers them, which is what keeps its 30s watchdog quiet.
func TestPingsAnswered(t *testing.T) {
	s := New(WithPingInterval(10 * time.Millisecond))
	defer closeOK(t, s)
	api := slack.New("xoxb-x", slack.OptionAPIURL(s.URL()), slack.OptionAppLevelToken("xapp-x"))
	sm := socketmode.New(api)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() {
		if err := sm.RunContext(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("socket mode client stopped: %v", err)
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-sm.Events:
			case <-ctx.Done():
				return
			}
		}
	})
	pongs := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.pongs
	}
	if err := s.WaitFor(ctx, func() bool { return pongs() >= 3 }); err != nil {
		t.Fatalf("pongs=%d: %v", pongs(), err)
	}
	if n := s.Connections(); n != 1 {
		t.Fatalf("Connections=%d, want 1", n)
	}
}

// Ensure timestamps are unique and increasing even when the clock stands still.
func TestNewTSMonotonic(t *testing.T) {
	fixed := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	s := New(WithClock(func() time.Time { return fixed }))
	defer closeOK(t, s)
	s.mu.Lock()
	a, b := s.newTSLocked(), s.newTSLocked()
	s.mu.Unlock()
	if a != "1772442000.000000" || b != "1772442000.000001" {
		t.Fatalf("timestamps %s, %s; want 1772442000.000000 then .000001", a, b)
	}
}

// Ensure Slack timestamps parse in all the shapes clients send.
func TestParseTS(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    int64
		wantErr bool
	}{
		"OKFull":    {in: "1700000000.000100", want: 1700000000000100},
		"OKSeconds": {in: "1700000000", want: 1700000000000000},
		"OKZero":    {in: "0", want: 0},
		"OKShort":   {in: "1.5", want: 1500000},
		"ErrText":   {in: "abc", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseTS(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseTS(%q)=%d, %v; want %d, err %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func closeOK(t *testing.T, s *Server) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("close emulator: %v", err)
	}
}
