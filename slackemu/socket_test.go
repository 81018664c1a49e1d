package slackemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/slackemu"
)

// Ensure a real socketmode client connects, gets the hello, receives a
// slash command with Slack's fields, and that its ack payload comes back
// from SlashCommand and is shown to the person.
func TestSlashCommandAck(t *testing.T) {
	emu := newEmu(t)
	hello := make(chan *socketmode.Request, 1)
	cmds := make(chan slack.SlashCommand, 1)
	startBot(t, emu, func(evt socketmode.Event, c *socketmode.Client) {
		switch evt.Type {
		case socketmode.EventTypeHello:
			hello <- evt.Request
		case socketmode.EventTypeSlashCommand:
			cmd := evt.Data.(slack.SlashCommand)
			cmds <- cmd
			ack(t, c, evt.Request, map[string]any{"text": "Got it: " + cmd.Text})
		}
	})
	ctx := testCtx(t)
	if err := emu.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	h := <-hello
	if h.ConnectionInfo.AppID != slackemu.AppID || h.NumConnections != 1 {
		t.Fatalf("hello=%+v, want app %s, 1 connection", h, slackemu.AppID)
	}

	ack, err := emu.SlashCommand(ctx, "U1", "", "/nudge", "now")
	if err != nil {
		t.Fatal(err)
	}
	var reply struct{ Text string }
	if err := json.Unmarshal(ack.Payload, &reply); err != nil || reply.Text != "Got it: now" || ack.EnvelopeID == "" || ack.Type != "slash_commands" {
		t.Fatalf("ack=%+v, want the bot's reply", ack)
	}
	cmd := <-cmds
	if cmd.UserID != "U1" || cmd.UserName != "ada" || cmd.ChannelID != emu.IMChannel("U1") || cmd.Command != "/nudge" ||
		cmd.TeamID != slackemu.TeamID || cmd.TriggerID == "" || !strings.HasPrefix(cmd.ResponseURL, emu.URL()+"response/") {
		t.Fatalf("command=%+v, want /nudge now from U1 in their DM", cmd)
	}
	eph := emu.Ephemerals("U1")
	if len(eph) != 1 || eph[0].Text != "Got it: now" || eph[0].Source != "ack" || !eph[0].Ephemeral {
		t.Fatalf("ephemerals=%+v, want the ack reply", eph)
	}
	if acks := emu.Acks(); len(acks) != 1 || acks[0].Latency <= 0 {
		t.Fatalf("acks=%+v, want one with a latency", acks)
	}
}

// Ensure the bot reconnects after a disconnect request and after a broken
// connection, and that envelopes reach it on the new connection, with the
// emulator resending by itself or not.
func TestReconnect(t *testing.T) {
	tests := map[string]func(*slackemu.Server){
		"Disconnect": func(s *slackemu.Server) { s.Disconnect("refresh_requested") },
		"Drop":       func(s *slackemu.Server) { s.Drop() },
	}
	modes := map[string][]slackemu.Option{"": nil, "WithRedelivery": {slackemu.WithRedelivery(0, 3)}}
	for name, breakIt := range tests {
		for mode, opts := range modes {
			t.Run(name+mode, func(t *testing.T) {
				testReconnect(t, breakIt, opts)
			})
		}
	}
}

func testReconnect(t *testing.T, breakIt func(*slackemu.Server), opts []slackemu.Option) {
	emu := newEmu(t, opts...)
	startBot(t, emu, nil)
	ctx := testCtx(t)
	if err := emu.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	breakIt(emu)
	if err := emu.WaitConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if n := emu.Connections(); n != 2 {
		t.Fatalf("Connections=%d, want 2", n)
	}
	if _, err := emu.SlashCommand(ctx, "U1", "", "/nudge", "help"); err != nil {
		t.Fatalf("slash command after reconnect: %v", err)
	}
	if n := len(emu.Calls("apps.connections.open")); n != 2 {
		t.Fatalf("apps.connections.open called %d times, want 2", n)
	}
}

// Ensure an envelope sent while the bot is down waits for it to connect.
func TestSendWaitsForConnection(t *testing.T) {
	emu := newEmu(t)
	ctx := testCtx(t)
	type result struct {
		ack slackemu.Ack
		err error
	}
	done := make(chan result, 1)
	go func() {
		ack, err := emu.SendEvent(ctx, map[string]any{"type": "app_home_opened", "user": "U1", "channel": emu.IMChannel("U1"), "tab": "home"})
		done <- result{ack, err}
	}()
	startBot(t, emu, nil)
	if r := <-done; r.err != nil || r.ack.Type != "events_api" {
		t.Fatalf("ack=%+v err=%v, want the events_api ack", r.ack, r.err)
	}
}

// Ensure a resend with the same envelope id carries the same payload and
// the retry fields, the way Slack retries after a missed ack.
func TestResend(t *testing.T) {
	emu := newEmu(t)
	got := make(chan *socketmode.Request, 2)
	startBot(t, emu, func(evt socketmode.Event, c *socketmode.Client) {
		if evt.Type == socketmode.EventTypeEventsAPI {
			got <- evt.Request
			ack(t, c, evt.Request)
		}
	})
	ctx := testCtx(t)
	first, err := emu.SendEvent(ctx, map[string]any{"type": "app_home_opened", "user": "U1", "channel": emu.IMChannel("U1"), "tab": "home"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := emu.Send(ctx, slackemu.Envelope{ID: first.EnvelopeID, RetryAttempt: 1, RetryReason: "timeout"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := <-got, <-got
	if a.EnvelopeID != b.EnvelopeID || again.EnvelopeID != first.EnvelopeID || string(a.Payload) != string(b.Payload) {
		t.Fatalf("retry differs: %s %s vs %s %s", a.EnvelopeID, a.Payload, b.EnvelopeID, b.Payload)
	}
	if a.RetryAttempt != 0 || b.RetryAttempt != 1 || b.RetryReason != "timeout" || b.Type != "events_api" {
		t.Fatalf("retry fields: first %d %q, second %d %q %s; want 0, then 1 timeout events_api", a.RetryAttempt, a.RetryReason, b.RetryAttempt, b.RetryReason, b.Type)
	}
}

// Ensure a malformed envelope reaches the client as a bad message and goes
// unacked, so Send ends with ctx.
func TestMalformedEnvelope(t *testing.T) {
	emu := newEmu(t)
	bad := make(chan *socketmode.ErrorBadMessage, 1)
	startBot(t, emu, func(evt socketmode.Event, c *socketmode.Client) {
		if evt.Type == socketmode.EventTypeErrorBadMessage {
			bad <- evt.Data.(*socketmode.ErrorBadMessage)
		}
		ackAll(t, evt, c)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := emu.Send(ctx, slackemu.Envelope{ID: "env-bad", Raw: []byte(`{"envelope_id":"env-bad","type":"not_a_type","payload":{}}`)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err=%v, want no ack before the deadline", err)
	}
	if m := <-bad; !strings.Contains(string(m.Message), "env-bad") {
		t.Fatalf("bad message=%s, want env-bad", m.Message)
	}
}

// Ensure many envelopes in flight are all acked and timed. It reports the
// ack latency the real client achieves against the emulator.
func TestSendNoWaitLoad(t *testing.T) {
	emu := newEmu(t)
	startBot(t, emu, nil)
	ctx := testCtx(t)
	if err := emu.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	const n = 500
	start := time.Now()
	for i := range n {
		emu.SendNoWait(slackemu.Envelope{ID: fmt.Sprintf("load-%d", i), Type: "events_api", Payload: mustEventPayload(t, i)})
	}
	if err := emu.WaitFor(ctx, func() bool { return len(emu.Acks()) == n }); err != nil {
		t.Fatalf("%d of %d acked: %v", len(emu.Acks()), n, err)
	}
	elapsed := time.Since(start)
	var lat []time.Duration
	for _, a := range emu.Acks() {
		if a.Problem != "" || a.Latency <= 0 {
			t.Fatalf("ack=%+v, want matched and timed", a)
		}
		lat = append(lat, a.Latency)
	}
	slices.Sort(lat)
	t.Logf("%d envelopes acked in %s; ack latency p50=%s p99=%s max=%s", n, elapsed, lat[n/2], lat[n*99/100], lat[n-1])
}

func mustEventPayload(t *testing.T, i int) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"type": "event_callback", "team_id": slackemu.TeamID, "api_app_id": slackemu.AppID, "event_id": fmt.Sprintf("Ev%d", i),
		"event": map[string]any{"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Ensure Close ends waits instead of leaving them hanging.
func TestCloseEndsWaits(t *testing.T) {
	emu := slackemu.New()
	emu.AddUser(slackemu.User{ID: "U1", Name: "ada"})
	errc := make(chan error, 2)
	go func() {
		_, err := emu.SlashCommand(context.Background(), "U1", "", "/nudge", "now")
		errc <- err
	}()
	go func() { errc <- emu.WaitConnected(context.Background(), 1) }()
	if err := emu.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errc; !errors.Is(err, slackemu.ErrClosed) {
			t.Fatalf("err=%v, want ErrClosed", err)
		}
	}
	if err := emu.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
