package slackemu_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/internal/simclock"
	"github.com/nudgebot/nudgebot/slackemu"
)

const (
	botToken = "xoxb-test-bot"
	appToken = "xapp-test-app"
)

// newClock returns the emulator tests' clock, at 09:00 UTC on Monday
// 2 March 2026.
func newClock() *simclock.Clock {
	return simclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
}

// newEmu starts an emulator with two people and closes it when the test ends.
func newEmu(t *testing.T, opts ...slackemu.Option) *slackemu.Server {
	t.Helper()
	emu := slackemu.New(append([]slackemu.Option{slackemu.WithBotToken(botToken), slackemu.WithAppToken(appToken)}, opts...)...)
	t.Cleanup(func() {
		if err := emu.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	emu.AddUser(slackemu.User{ID: "U1", Name: "ada", RealName: "Ada Lovelace", TZ: "Europe/London"})
	emu.AddUser(slackemu.User{ID: "U2", Name: "grace", RealName: "Grace Hopper", TZ: "America/New_York"})
	return emu
}

func newAPI(emu *slackemu.Server) *slack.Client {
	return slack.New(botToken, slack.OptionAPIURL(emu.URL()), slack.OptionAppLevelToken(appToken))
}

// startBot runs a real socketmode client against emu and hands every event
// to handle (on one goroutine); a nil handle acks every request. It stops
// when the test ends.
func startBot(t *testing.T, emu *slackemu.Server, handle func(socketmode.Event, *socketmode.Client)) *slack.Client {
	t.Helper()
	if handle == nil {
		handle = func(evt socketmode.Event, c *socketmode.Client) { ackAll(t, evt, c) }
	}
	api := newAPI(emu)
	sm := socketmode.New(api)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { runUntilCancelled(t, ctx, sm) })
	wg.Go(func() {
		for {
			select {
			case evt := <-sm.Events:
				handle(evt, sm)
			case <-ctx.Done():
				return
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return api
}

// runUntilCancelled runs the client until ctx ends; ending any other way
// (a reconnection that failed) fails the test.
func runUntilCancelled(t *testing.T, ctx context.Context, sm *socketmode.Client) {
	if err := sm.RunContext(ctx); err != nil && ctx.Err() == nil {
		t.Errorf("socket mode client stopped: %v", err)
	}
}

// ackAll acks every request without a payload.
func ackAll(t *testing.T, evt socketmode.Event, c *socketmode.Client) {
	if evt.Request != nil && evt.Request.EnvelopeID != "" {
		ack(t, c, evt.Request)
	}
}

// ack acks req with an optional payload. slack-go refuses a payload it
// cannot encode or that Slack would drop for its size, which is a bug in
// the test's bot.
func ack(t *testing.T, c *socketmode.Client, req *socketmode.Request, payload ...any) {
	if err := c.Ack(*req, payload...); err != nil {
		t.Errorf("ack %s: %v", req.EnvelopeID, err)
	}
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testCtxWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx, cancel
}
