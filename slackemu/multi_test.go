package slackemu_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/slackemu"
)

// rawConn is a Socket Mode client written by hand, so a test decides
// frame by frame what it reads and whether it acks.
type rawConn struct {
	t  *testing.T
	ws *websocket.Conn
}

// dialRaw opens a connection the way slack-go does: apps.connections.open
// with the app token, then a dial to the URL it returns.
func dialRaw(t *testing.T, emu *slackemu.Server) *rawConn {
	t.Helper()
	_, url, err := newAPI(emu).StartSocketModeContext(testCtx(t))
	if err != nil {
		t.Fatalf("apps.connections.open: %v", err)
	}
	ws, resp, err := websocket.DefaultDialer.DialContext(testCtx(t), url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = ws.Close() })
	return &rawConn{t: t, ws: ws}
}

// frame is what the emulator writes: hello, disconnect or an envelope.
type frame struct {
	Type           string `json:"type"`
	Reason         string `json:"reason"`
	NumConnections int    `json:"num_connections"`
	EnvelopeID     string `json:"envelope_id"`
	RetryAttempt   int    `json:"retry_attempt"`
	RetryReason    string `json:"retry_reason"`
}

// read reads the next frame, failing the test if none comes.
func (r *rawConn) read() frame {
	r.t.Helper()
	f, err := r.tryRead()
	if err != nil {
		r.t.Fatalf("read frame: %v", err)
	}
	return f
}

func (r *rawConn) tryRead() (frame, error) {
	if err := r.ws.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return frame{}, err
	}
	_, data, err := r.ws.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		return frame{}, fmt.Errorf("frame %s: %w", data, err)
	}
	return f, nil
}

func (r *rawConn) ack(id string, payload any) {
	r.t.Helper()
	if err := r.ws.WriteJSON(map[string]any{"envelope_id": id, "payload": payload}); err != nil {
		r.t.Fatalf("ack %s: %v", id, err)
	}
}

// received records what one socketmode client was handed.
type received struct {
	mu    sync.Mutex
	hello []int
	reqs  []socketmode.Request
}

func (r *received) hellos() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.hello)
}

func (r *received) envelopes() []socketmode.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// startRecordingBot runs a real socketmode client that records its hello
// and every envelope, and acks them when acks is true.
func startRecordingBot(t *testing.T, emu *slackemu.Server, acks bool) *received {
	rec := &received{}
	startBot(t, emu, func(evt socketmode.Event, c *socketmode.Client) {
		rec.mu.Lock()
		switch {
		case evt.Type == socketmode.EventTypeHello:
			rec.hello = append(rec.hello, evt.Request.NumConnections)
		case evt.Request != nil && evt.Request.EnvelopeID != "":
			rec.reqs = append(rec.reqs, *evt.Request)
		}
		rec.mu.Unlock()
		if acks {
			ackAll(t, evt, c)
		}
	})
	return rec
}

func homeOpened(emu *slackemu.Server) map[string]any {
	return map[string]any{"type": "app_home_opened", "user": "U1", "channel": emu.IMChannel("U1"), "tab": "home"}
}

// Ensure two clients connected at once each get their own hello and
// share the envelopes, every envelope reaching exactly one of them once
// when both ack, with or without redelivery turned on.
func TestTwoConnectionsShareEnvelopes(t *testing.T) {
	tests := map[string][]slackemu.Option{
		"NoRedelivery":   nil,
		"WithRedelivery": {slackemu.WithRedelivery(0, 3)},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			emu := newEmu(t, opts...)
			ctx := testCtx(t)
			a := startRecordingBot(t, emu, true)
			if err := emu.WaitConnected(ctx, 1); err != nil {
				t.Fatal(err)
			}
			b := startRecordingBot(t, emu, true)
			if err := emu.WaitConnected(ctx, 2); err != nil {
				t.Fatal(err)
			}
			const n = 20
			for range n {
				if _, err := emu.SendEvent(ctx, homeOpened(emu)); err != nil {
					t.Fatal(err)
				}
			}
			if ha, hb := a.hellos(), b.hellos(); !slices.Equal(ha, []int{1}) || !slices.Equal(hb, []int{2}) {
				t.Errorf("hello num_connections %v and %v, want [1] then [2]", ha, hb)
			}
			seen := map[string]int{}
			for _, r := range append(a.envelopes(), b.envelopes()...) {
				seen[r.EnvelopeID]++
			}
			if len(seen) != n {
				t.Fatalf("%d envelopes seen, want %d", len(seen), n)
			}
			for id, k := range seen {
				if k != 1 {
					t.Errorf("envelope %s seen %d times, want once", id, k)
				}
			}
			// Round-robin between two: an exact half each.
			if len(a.envelopes()) != n/2 || len(b.envelopes()) != n/2 {
				t.Errorf("first client got %d, second %d; want %d each", len(a.envelopes()), len(b.envelopes()), n/2)
			}
			byConn := map[int]int{}
			for _, ack := range emu.Acks() {
				if ack.Problem != "" {
					t.Errorf("ack %+v has a problem", ack)
				}
				byConn[ack.Conn]++
			}
			if byConn[1] != n/2 || byConn[2] != n/2 {
				t.Errorf("acks by connection %v, want %d on 1 and 2", byConn, n/2)
			}
			if d := emu.Deliveries(); len(d) != n {
				t.Errorf("%d frames written, want %d: no resend", len(d), n)
			}
		})
	}
}

// Ensure an envelope a connection does not ack in time is sent again,
// same id and payload, retry_attempt 1 and retry_reason "timeout", to the
// other connection, whether the timeout runs on the timer or is forced.
func TestUnackedEnvelopeGoesToTheOtherConnection(t *testing.T) {
	tests := map[string]struct {
		opt    slackemu.Option
		expire bool
	}{
		"Timer":      {opt: slackemu.WithRedelivery(50*time.Millisecond, 3)},
		"ExpireAcks": {opt: slackemu.WithRedelivery(0, 3), expire: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			emu := newEmu(t, tc.opt)
			ctx := testCtx(t)
			startRecordingBot(t, emu, false) // connection 1, never acks
			if err := emu.WaitConnected(ctx, 1); err != nil {
				t.Fatal(err)
			}
			acking := startRecordingBot(t, emu, true) // connection 2
			if err := emu.WaitConnected(ctx, 2); err != nil {
				t.Fatal(err)
			}
			const n = 6
			for i := range n {
				emu.SendNoWait(slackemu.Envelope{ID: fmt.Sprintf("env-%d", i), Type: "events_api", Payload: mustEventPayload(t, i)})
			}
			if tc.expire {
				firstSends := func() bool { return len(emu.Deliveries()) >= n }
				if err := emu.WaitFor(ctx, firstSends); err != nil {
					t.Fatal(err)
				}
				emu.ExpireAcks()
			}
			acked := func() bool { return len(goodAcks(emu)) == n }
			if err := emu.WaitFor(ctx, acked); err != nil {
				t.Fatalf("%d of %d acked: %v", len(goodAcks(emu)), n, err)
			}
			for _, a := range goodAcks(emu) {
				if a.Conn != 2 {
					t.Errorf("envelope %s acked on connection %d, want 2", a.EnvelopeID, a.Conn)
				}
			}
			checkMovedOver(t, emu, acking.envelopes())
		})
	}
}

// checkMovedOver checks that every envelope first sent on connection 1,
// the silent one, reached the acking client on connection 2 again as
// Slack's retry. Payloads are those of mustEventPayload.
func checkMovedOver(t *testing.T, emu *slackemu.Server, acking []socketmode.Request) {
	t.Helper()
	moved := 0
	for _, d := range emu.Deliveries() {
		if d.Conn != 1 || d.RetryAttempt != 0 {
			continue
		}
		moved++
		i := slices.IndexFunc(acking, func(r socketmode.Request) bool { return r.EnvelopeID == d.EnvelopeID })
		if i < 0 {
			t.Errorf("envelope %s never reached the other connection", d.EnvelopeID)
			continue
		}
		r := acking[i]
		var n int
		if _, err := fmt.Sscanf(d.EnvelopeID, "env-%d", &n); err != nil {
			t.Fatal(err)
		}
		if r.RetryAttempt != 1 || r.RetryReason != slackemu.RetryReasonTimeout || string(r.Payload) != string(mustEventPayload(t, n)) {
			t.Errorf("resend of %s: attempt %d reason %q payload %s; want 1, %q, the first payload", d.EnvelopeID, r.RetryAttempt, r.RetryReason, r.Payload, slackemu.RetryReasonTimeout)
		}
	}
	if moved == 0 {
		t.Fatal("the silent connection got no envelope: the test shows nothing")
	}
}

// goodAcks are the acks Slack would take: the first for each envelope.
func goodAcks(emu *slackemu.Server) []slackemu.Ack {
	return slices.DeleteFunc(emu.Acks(), func(a slackemu.Ack) bool { return a.Problem != "" })
}

// Ensure an envelope sent on a connection that closes before acking is
// sent again at once to another connection, with retry_reason
// "connection_failed".
func TestClosedConnectionsEnvelopesResent(t *testing.T) {
	emu := newEmu(t, slackemu.WithRedelivery(0, 3))
	ctx := testCtx(t)
	raw := dialRaw(t, emu)
	if f := raw.read(); f.Type != "hello" {
		t.Fatalf("first frame %+v, want hello", f)
	}
	type result struct {
		ack slackemu.Ack
		err error
	}
	done := make(chan result, 1)
	go func() {
		a, err := emu.SendEvent(ctx, homeOpened(emu))
		done <- result{a, err}
	}()
	first := raw.read()
	b := startRecordingBot(t, emu, true)
	if err := emu.WaitConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := raw.ws.Close(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.ack.EnvelopeID != first.EnvelopeID || r.ack.Conn != 2 {
		t.Fatalf("ack=%+v err=%v, want %s acked on connection 2", r.ack, r.err, first.EnvelopeID)
	}
	got := b.envelopes()
	if len(got) != 1 || got[0].EnvelopeID != first.EnvelopeID || got[0].RetryAttempt != 1 || got[0].RetryReason != slackemu.RetryReasonConnectionFailed {
		t.Fatalf("second client got %+v, want %s with attempt 1, reason %q", got, first.EnvelopeID, slackemu.RetryReasonConnectionFailed)
	}
}

// Ensure the emulator stops resending after the configured retries, Send
// says so, and an ack that comes after that changes nothing the person
// sees; and a second ack for one envelope is recorded as a problem.
func TestRedeliveryGivesUp(t *testing.T) {
	emu := newEmu(t, slackemu.WithRedelivery(0, 2))
	ctx := testCtx(t)
	raw := dialRaw(t, emu)
	raw.read() // hello
	errc := make(chan error, 1)
	go func() {
		_, err := emu.SlashCommand(ctx, "U1", "", "/nudge", "now")
		errc <- err
	}()
	var attempts []frame
	for i := range 3 {
		f := raw.read()
		attempts = append(attempts, f)
		if f.EnvelopeID != attempts[0].EnvelopeID || f.RetryAttempt != i {
			t.Fatalf("frame %d = %+v, want %s attempt %d", i, f, attempts[0].EnvelopeID, i)
		}
		emu.ExpireAcks()
	}
	if err := <-errc; !errors.Is(err, slackemu.ErrNotAcked) {
		t.Fatalf("err=%v, want ErrNotAcked after 3 sends", err)
	}
	raw.ack(attempts[0].EnvelopeID, map[string]any{"text": "too late"})
	if err := emu.WaitFor(ctx, func() bool { return len(emu.Acks()) == 1 }); err != nil {
		t.Fatal(err)
	}
	if a := emu.Acks()[0]; a.Problem == "" {
		t.Errorf("late ack %+v recorded with no problem", a)
	}
	if eph := emu.Ephemerals("U1"); len(eph) != 0 {
		t.Errorf("ephemerals=%+v: an ack after Slack gave up was shown", eph)
	}

	// One delivery acked twice: the first counts, the second is flagged.
	go func() {
		_, err := emu.SlashCommand(ctx, "U1", "", "/nudge", "help")
		errc <- err
	}()
	f := raw.read()
	raw.ack(f.EnvelopeID, map[string]any{"text": "one"})
	raw.ack(f.EnvelopeID, map[string]any{"text": "two"})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := emu.WaitFor(ctx, func() bool { return len(emu.Acks()) == 3 }); err != nil {
		t.Fatal(err)
	}
	if a := emu.Acks(); a[1].Problem != "" || a[2].Problem == "" {
		t.Errorf("acks=%+v, want the first clean and the second flagged", a[1:])
	}
	if eph := emu.Ephemerals("U1"); len(eph) != 1 || eph[0].Text != "one" {
		t.Errorf("ephemerals=%+v, want only the first ack's reply", eph)
	}
}

// Ensure the eleventh connection is refused as Slack refuses it, with a
// too_many_websockets disconnect frame and no hello, and that a place
// freed by a closed connection can be taken again.
func TestTooManyConnections(t *testing.T) {
	emu := newEmu(t)
	var conns []*rawConn
	for i := range 10 {
		c := dialRaw(t, emu)
		if f := c.read(); f.Type != "hello" || f.NumConnections != i+1 {
			t.Fatalf("connection %d: first frame %+v, want hello with num_connections %d", i+1, f, i+1)
		}
		conns = append(conns, c)
	}
	eleventh := dialRaw(t, emu)
	if f := eleventh.read(); f.Type != "disconnect" || f.Reason != "too_many_websockets" {
		t.Fatalf("eleventh connection: first frame %+v, want disconnect too_many_websockets", f)
	}
	if _, err := eleventh.tryRead(); err == nil {
		t.Fatal("eleventh connection still open after its disconnect frame")
	}
	if n, r := emu.OpenConnections(), emu.RefusedConnections(); n != 10 || r != 1 {
		t.Fatalf("open=%d refused=%d, want 10 and 1", n, r)
	}
	if err := conns[0].ws.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if err := emu.WaitFor(ctx, func() bool { return emu.OpenConnections() == 9 }); err != nil {
		t.Fatal(err)
	}
	if f := dialRaw(t, emu).read(); f.Type != "hello" || f.NumConnections != 10 {
		t.Fatalf("after one closed: first frame %+v, want hello with num_connections 10", f)
	}
}

// Ensure a refresh (Disconnect) on one of two connections moves the
// envelopes off it: a draining connection gets none, the other and the
// bot's new connection share them.
func TestDisconnectOneOfTwo(t *testing.T) {
	emu := newEmu(t)
	ctx := testCtx(t)
	raw := dialRaw(t, emu)
	raw.read() // hello
	b := startRecordingBot(t, emu, true)
	if err := emu.WaitConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	emu.Disconnect("refresh_requested") // the newest: the bot's
	if err := emu.WaitConnected(ctx, 3); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { // the raw client acks all it gets until it is closed
		defer close(done)
		for {
			f, err := raw.tryRead()
			if err != nil {
				return
			}
			if err := raw.ws.WriteJSON(map[string]any{"envelope_id": f.EnvelopeID}); err != nil {
				return
			}
		}
	}()
	defer func() { _ = raw.ws.Close(); <-done }()
	const n = 4
	for range n {
		if _, err := emu.SendEvent(ctx, homeOpened(emu)); err != nil {
			t.Fatal(err)
		}
	}
	byConn := map[int]int{}
	for _, d := range emu.Deliveries() {
		byConn[d.Conn]++
	}
	if byConn[2] != 0 || byConn[1] != n/2 || byConn[3] != n/2 || len(b.envelopes()) != n/2 {
		t.Errorf("envelopes by connection %v, want none on the draining 2, %d each on 1 and 3", byConn, n/2)
	}
}
