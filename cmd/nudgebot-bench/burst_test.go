package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

func TestBurstThroughput(t *testing.T) {
	tests := map[string]struct {
		r         burstResult
		wantTP    float64
		wantIdeal time.Duration
	}{
		// 100 go out at once, then 9,900 at 100/s.
		"at the limit": {burstResult{N: 10_000, Rate: 6000, BotRate: 6000, Posts: 10_000, Spread: 99 * time.Second}, 6000, 99 * time.Second},
		"slower":       {burstResult{N: 10_000, Rate: 6000, BotRate: 6000, Posts: 10_000, Spread: 198 * time.Second}, 3000, 99 * time.Second},
		// The bot's own limit is the tighter one, and its burst is 98.
		"bot below": {burstResult{N: 5978, Rate: 6000, BotRate: 5880, Posts: 5978, Spread: 60 * time.Second}, 5880, 60 * time.Second},
		"nothing":   {burstResult{N: 10, Rate: 6000, BotRate: 6000}, 0, 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tt.r.throughput(); got != tt.wantTP {
				t.Errorf("throughput = %v, want %v", got, tt.wantTP)
			}
			if got := tt.r.ideal(); got != tt.wantIdeal {
				t.Errorf("ideal = %s, want %s", got, tt.wantIdeal)
			}
		})
	}
}

func TestDeliveryID(t *testing.T) {
	payload := func(v any) json.RawMessage {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := map[string]struct {
		m      slackemu.Message
		want   string
		wantOK bool
	}{
		"ours": {slackemu.Message{Metadata: &slackemu.Metadata{EventType: "nudgebot_nudge",
			EventPayload: payload(map[string]any{"delivery_id": "U1-20261127T090000Z", "round": 0})}}, "U1-20261127T090000Z", true},
		"no metadata": {slackemu.Message{}, "", false},
		"other type": {slackemu.Message{Metadata: &slackemu.Metadata{EventType: "something_else",
			EventPayload: payload(map[string]any{"delivery_id": "x"})}}, "", false},
		"no id": {slackemu.Message{Metadata: &slackemu.Metadata{EventType: "nudgebot_nudge", EventPayload: payload(map[string]any{"round": 1})}}, "", false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := deliveryID(tt.m)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("deliveryID = %q, %v, want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// Ensure the seeded DM ids are the emulator's, or the tick scenario's
// posts would go nowhere.
func TestDMForMatchesEmulator(t *testing.T) {
	emu, err := newEmulator()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := emu.Close(); err != nil {
			t.Error(err)
		}
	}()
	for _, i := range []int{0, 1, 99_999, 1_000_000} {
		id := benchUserID(i)
		if got, want := dmFor(id), emu.IMChannel(id); got != want {
			t.Errorf("dmFor(%s) = %s, the emulator says %s", id, got, want)
		}
	}
}

func TestSpreadDue(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	const n = 1000
	prev := time.Time{}
	for i := range n {
		d := spreadDue(now, i, n)
		if d.Before(now.Add(10*time.Minute)) || !d.Before(now.Add(7*24*time.Hour)) {
			t.Fatalf("spreadDue(%d) = %s, outside [now+10m, now+7d)", i, d)
		}
		if !d.After(prev) {
			t.Fatalf("spreadDue(%d) = %s, not after %s", i, d, prev)
		}
		prev = d
	}
}
