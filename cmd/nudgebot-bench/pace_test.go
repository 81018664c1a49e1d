package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

func envelopes(n int) []slackemu.Envelope {
	out := make([]slackemu.Envelope, n)
	for i := range out {
		out[i].ID = fmt.Sprintf("e%d", i)
	}
	return out
}

func TestPace(t *testing.T) {
	tests := map[string]struct {
		rate, n  int
		wantTook time.Duration // in the bubble's time, first to last send
	}{
		"200/s":   {200, 100, 495 * time.Millisecond},
		"1000/s":  {1000, 1000, 999 * time.Millisecond},
		"one":     {50, 1, 0},
		"20000/s": {20_000, 40, 1950 * time.Microsecond},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var sent []string
				var at []time.Time
				start, last, err := pace(t.Context(), tt.rate, envelopes(tt.n), func(e slackemu.Envelope) {
					sent = append(sent, e.ID)
					at = append(at, time.Now())
				}, nil)
				if err != nil {
					t.Fatalf("pace: %v", err)
				}
				if len(sent) != tt.n {
					t.Fatalf("sent %d, want %d", len(sent), tt.n)
				}
				for i, id := range sent {
					if id != fmt.Sprintf("e%d", i) {
						t.Fatalf("send %d was %s: out of order", i, id)
					}
				}
				// The first send waits one interval; the rest follow one per interval.
				interval := time.Second / time.Duration(tt.rate)
				if took := at[len(at)-1].Sub(at[0]); took != tt.wantTook {
					t.Errorf("first to last send took %s, want %s", took, tt.wantTook)
				}
				if got := last.Sub(start); got != interval*time.Duration(tt.n) {
					t.Errorf("pace took %s, want %s", got, interval*time.Duration(tt.n))
				}
			})
		})
	}
}

// Ensure pace stops at once when the bot exits or the run is cancelled,
// rather than sending into the void until its count is reached.
func TestPaceStops(t *testing.T) {
	tests := map[string]struct {
		setup   func(cancel context.CancelFunc, exited chan struct{})
		wantErr error
	}{
		"bot exited": {func(_ context.CancelFunc, exited chan struct{}) { close(exited) }, errBotExited},
		"cancelled":  {func(cancel context.CancelFunc, _ chan struct{}) { cancel() }, context.Canceled},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				exited := make(chan struct{})
				n := 0
				_, _, err := pace(ctx, 100, envelopes(1000), func(slackemu.Envelope) {
					n++
					if n == 10 {
						tt.setup(cancel, exited)
					}
				}, exited)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("pace error = %v, want %v", err, tt.wantErr)
				}
				if n != 10 {
					t.Errorf("sent %d after stopping at 10", n)
				}
			})
		})
	}
}
