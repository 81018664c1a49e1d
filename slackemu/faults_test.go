package slackemu_test

import (
	"errors"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/slackemu"
)

// Ensure RateLimit answers 429 with a whole-second Retry-After that slack-go
// turns into *slack.RateLimitedError, counts it, and lets calls through
// again once the emulator's clock has moved on.
func TestRateLimit(t *testing.T) {
	clock := newClock()
	emu := newEmu(t, slackemu.WithClock(clock.Now))
	emu.RateLimit("chat.postMessage", 30, 1) // one every 2s
	api := newAPI(emu)
	post := func() error {
		_, _, err := api.PostMessage("U1", slack.MsgOptionText("hi", false))
		return err
	}
	if err := post(); err != nil {
		t.Fatalf("first post: %v", err)
	}
	err := post()
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Fatalf("err=%v, want RateLimitedError retry after 2s", err)
	}
	if n := emu.RateLimited("chat.postMessage"); n != 1 {
		t.Fatalf("RateLimited=%d, want 1", n)
	}
	if calls := emu.Calls("chat.postMessage"); calls[1].Status != 429 {
		t.Fatalf("recorded status=%d, want 429", calls[1].Status)
	}
	if n := len(emu.DM("U1")); n != 1 {
		t.Fatalf("DM has %d messages, want only the first", n)
	}
	clock.Add(2 * time.Second)
	if err := post(); err != nil {
		t.Fatalf("post after waiting: %v", err)
	}
	// Other methods are not limited.
	if _, err := api.AuthTest(); err != nil {
		t.Fatal(err)
	}
}

// Ensure the per-channel chat.postMessage limit is per channel and off by default.
func TestRateLimitPerChannel(t *testing.T) {
	clock := newClock()
	emu := newEmu(t, slackemu.WithClock(clock.Now))
	api := newAPI(emu)
	post := func(ch string) error {
		_, _, err := api.PostMessage(ch, slack.MsgOptionText("hi", false))
		return err
	}
	for range 3 {
		if err := post("U1"); err != nil {
			t.Fatalf("post with no limit: %v", err)
		}
	}
	emu.RateLimitPerChannel(60, 1)
	if err := post("U1"); err != nil {
		t.Fatal(err)
	}
	if err := post("U2"); err != nil {
		t.Fatalf("another channel: %v", err)
	}
	var rl *slack.RateLimitedError
	if err := post("U1"); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("err=%v, want RateLimitedError retry after 1s", err)
	}
}

// Ensure each FailNext fault reaches slack-go as the matching error, that
// "accepted then dropped" stores the message, and that faults are used up.
func TestFailNext(t *testing.T) {
	tests := map[string]struct {
		fault     slackemu.Fault
		check     func(t *testing.T, err error)
		wantSaved bool
	}{
		"Status500": {fault: slackemu.FaultStatus(500), check: func(t *testing.T, err error) {
			var sc slack.StatusCodeError
			if !errors.As(err, &sc) || sc.Code != 500 {
				t.Fatalf("err=%v, want StatusCodeError 500", err)
			}
		}},
		"Status503": {fault: slackemu.FaultStatus(503), check: func(t *testing.T, err error) {
			var sc slack.StatusCodeError
			if !errors.As(err, &sc) || sc.Code != 503 {
				t.Fatalf("err=%v, want StatusCodeError 503", err)
			}
		}},
		"SlackError": {fault: slackemu.FaultSlackError("channel_not_found"), check: func(t *testing.T, err error) {
			var se slack.SlackErrorResponse
			if !errors.As(err, &se) || se.Err != "channel_not_found" {
				t.Fatalf("err=%v, want channel_not_found", err)
			}
		}},
		"RateLimited": {fault: slackemu.FaultRateLimited(7 * time.Second), check: func(t *testing.T, err error) {
			var rl *slack.RateLimitedError
			if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
				t.Fatalf("err=%v, want RateLimitedError 7s", err)
			}
		}},
		"DropAfterApply": {fault: slackemu.FaultDropAfterApply(), wantSaved: true, check: func(t *testing.T, err error) {
			if err == nil {
				t.Fatal("err=nil, want a connection error")
			}
		}},
		"Latency": {fault: slackemu.FaultLatency(20 * time.Millisecond), wantSaved: true, check: func(t *testing.T, err error) {
			if err != nil {
				t.Fatalf("err=%v, want nil", err)
			}
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			emu := newEmu(t)
			api := newAPI(emu)
			emu.FailNext("chat.postMessage", 1, tc.fault)
			_, _, err := api.PostMessage("U1", slack.MsgOptionText("nudge", false))
			tc.check(t, err)
			if saved := len(emu.DM("U1")) == 1; saved != tc.wantSaved {
				t.Fatalf("stored=%v, want %v", saved, tc.wantSaved)
			}
			if _, _, err := api.PostMessage("U1", slack.MsgOptionText("again", false)); err != nil {
				t.Fatalf("second call: %v, want the fault used up", err)
			}
		})
	}
}

// Ensure a hung call is applied, never answered, and ends when the client
// gives up.
func TestFailNextHang(t *testing.T) {
	emu := newEmu(t)
	api := newAPI(emu)
	emu.FailNext("chat.postMessage", 1, slackemu.FaultHangAfterApply())
	ctx, cancel := testCtxWithCancel(t)
	errc := make(chan error, 1)
	go func() {
		_, _, err := api.PostMessageContext(ctx, "U1", slack.MsgOptionText("nudge", false))
		errc <- err
	}()
	if err := emu.WaitFor(testCtx(t), func() bool { return len(emu.DM("U1")) == 1 }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		t.Fatalf("call returned %v while hung", err)
	default:
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("err=nil, want the client's cancellation")
	}
}

// Ensure SetLatency delays every answer for the method.
func TestSetLatency(t *testing.T) {
	emu := newEmu(t)
	api := newAPI(emu)
	emu.SetLatency("auth.test", 50*time.Millisecond)
	start := time.Now()
	if _, err := api.AuthTest(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("answered in %s, want ≥ 50ms", d)
	}
	emu.SetLatency("auth.test", 0)
}
