package slackemu

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsConn is one Socket Mode connection.
type wsConn struct {
	ws        *websocket.Conn
	writeMu   sync.Mutex // gorilla allows one writer at a time (control frames excepted)
	done      chan struct{}
	closeOnce sync.Once
	draining  bool // guarded by Server.mu: told to disconnect, gets no more envelopes
}

func (c *wsConn) write(b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

func (c *wsConn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.ws.Close()
	})
}

// drop resets the TCP connection without a close frame.
func (c *wsConn) drop() {
	if tc, ok := c.ws.NetConn().(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.close()
}

func (c *wsConn) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// sentEnvelope is an envelope the emulator sent, kept so its ack can be
// matched, timed and applied, and so it can be sent again as a retry.
type sentEnvelope struct {
	env     Envelope
	about   envContext
	sentAt  time.Time // real clock: latency is measured, not emulated
	waiters []chan Ack
}

// envContext is what an ack payload acts on.
type envContext struct {
	kind     string // "slash_commands", "block_actions", "view_submission", "events_api"
	user     string
	channel  string
	viewID   string
	response string // the response_url id of a slash command
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	known := s.tickets[ticket]
	delete(s.tickets, ticket) // a ticket opens one connection
	s.mu.Unlock()
	if !known {
		http.Error(w, "unknown or used ticket: call apps.connections.open for a fresh WebSocket URL", http.StatusUnauthorized)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.cfg.logger.Debug("slackemu: websocket upgrade failed", "err", err)
		return // the upgrader already answered
	}
	c := &wsConn{ws: ws, done: make(chan struct{})}
	ws.SetPongHandler(func(string) error {
		s.update(func() []Event { s.pongs++; return nil })
		return nil
	})
	hello, _ := json.Marshal(map[string]any{ // constant shape, always encodes
		"type":            "hello",
		"num_connections": 1,
		"connection_info": map[string]any{"app_id": AppID},
		"debug_info":      map[string]any{"host": "emu", "approximate_connection_time": 3600},
	})
	if err := c.write(hello); err != nil {
		c.close()
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.close()
		return
	}
	s.connections++
	s.conns = append(s.conns, c)
	s.bumpLocked()
	s.mu.Unlock()

	// This handler is still counted in s.wg, so adding to it here is safe.
	s.wg.Go(func() { s.ping(c) })
	s.readAcks(c)

	c.close()
	s.update(func() []Event {
		s.conns = slices.DeleteFunc(s.conns, func(x *wsConn) bool { return x == c })
		return nil
	})
}

// ping sends WebSocket PINGs so slack-go's watchdog keeps the connection.
func (s *Server) ping(c *wsConn) {
	t := time.NewTicker(s.cfg.pingEvery)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if err := c.ws.WriteControl(websocket.PingMessage, []byte("emu"), time.Now().Add(5*time.Second)); err != nil {
				c.close()
				return
			}
		}
	}
}

func (s *Server) readAcks(c *wsConn) {
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		s.handleAck(data, time.Now())
	}
}

func (s *Server) handleAck(data []byte, readAt time.Time) {
	var frame struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &frame); err != nil || frame.EnvelopeID == "" {
		s.cfg.logger.Warn("slackemu: ignoring a frame that is not an ack", "frame", string(data))
		return
	}
	if string(frame.Payload) == "null" {
		frame.Payload = nil
	}
	ack := Ack{EnvelopeID: frame.EnvelopeID, Payload: frame.Payload}
	var (
		evs     []Event
		waiters []chan Ack
	)
	s.mu.Lock()
	if se, ok := s.envelopes[frame.EnvelopeID]; ok {
		ack.Type = se.env.Type
		if !se.sentAt.IsZero() {
			ack.Latency = readAt.Sub(se.sentAt)
		}
		evs, ack.Problem = s.applyAckLocked(se.about, frame.Payload)
		waiters, se.waiters = se.waiters, nil
	} else {
		ack.Problem = "no envelope with this id was sent"
	}
	s.acks = append(s.acks, ack)
	s.bumpLocked()
	s.mu.Unlock()
	// Events first, then the waiters: whoever sent the envelope (a
	// SlashCommand call) must find what the ack showed already reported.
	s.emit(evs)
	for _, w := range waiters {
		w <- ack // buffered, one ack per waiter
	}
}

// applyAckLocked makes an ack payload visible the way Slack would: a slash
// command's reply shown to the person, a view_submission's response_action
// applied to the modal. problem says what Slack would have refused.
func (s *Server) applyAckLocked(about envContext, payload json.RawMessage) ([]Event, string) {
	r := &apiRequest{method: "ack"}
	switch about.kind {
	case "slash_commands":
		if len(payload) == 0 {
			return nil, ""
		}
		if err := json.Unmarshal(payload, &r.json); err != nil {
			return nil, "a slash command ack payload must be a message object: " + err.Error()
		}
		if r.get("text") == "" && !hasBlocks(r.rawJSON("blocks")) {
			return nil, ""
		}
		m, err := messageFromArgs(r, true)
		if err != nil {
			return nil, "Slack would refuse this reply: " + describe(err)
		}
		m.Channel, m.User, m.Source = about.channel, BotUserID, "ack"
		if r.get("response_type") == "in_channel" {
			if c, ok := s.channels[about.channel]; ok {
				m.TS, m.Posted = s.newTSLocked(), s.now()
				c.messages = append(c.messages, m)
				r.emit(s.messageEvent(c, m, ""))
			}
			return r.events, ""
		}
		s.addEphemeralLocked(r, about.user, m)
		if ru, ok := s.responses[about.response]; ok && ru.origin == nil {
			ru.origin = &msgRef{channel: m.Channel, ts: m.TS, ephemeral: true}
		}
		return r.events, ""
	case "view_submission":
		return s.applyResponseActionLocked(about, payload)
	}
	return nil, ""
}

func (s *Server) applyResponseActionLocked(about envContext, payload json.RawMessage) ([]Event, string) {
	var resp struct {
		ResponseAction string            `json:"response_action"`
		View           json.RawMessage   `json:"view"`
		Errors         map[string]string `json:"errors"`
	}
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, &resp); err != nil {
			return nil, "a view_submission ack payload must be a response_action object: " + err.Error()
		}
	}
	v, ok := s.views[about.viewID]
	if !ok || v.Closed {
		return nil, ""
	}
	switch resp.ResponseAction {
	case "":
		return s.closeViewLocked(about.user, v.ID), ""
	case "clear":
		if stack := s.modals[about.user]; len(stack) > 0 {
			return s.closeViewLocked(about.user, stack[0]), ""
		}
		return nil, ""
	case "errors":
		v.Errors = resp.Errors
		var text string
		for block, msg := range resp.Errors {
			text += block + ": " + msg + " "
		}
		vc := v.clone()
		return []Event{{Time: s.now(), Kind: EventViewErrorShown, User: v.UserID, Text: text, View: &vc}}, ""
	case "update", "push":
		obj, err := validateView(resp.View, "modal")
		if err != nil {
			return nil, "Slack would refuse this response_action " + resp.ResponseAction + ": " + describe(err)
		}
		if resp.ResponseAction == "push" {
			nv, err := s.pushViewLocked(about.user, resp.View, obj)
			if err != nil {
				return nil, describe(err)
			}
			return []Event{s.viewEvent(EventViewOpened, nv)}, ""
		}
		setViewContent(v, resp.View, obj)
		v.Hash = s.newHash()
		return []Event{s.viewEvent(EventViewUpdated, v)}, ""
	default:
		return nil, fmt.Sprintf("unknown response_action %q", resp.ResponseAction)
	}
}

func describe(err error) string {
	if se, ok := err.(*slackError); ok && len(se.messages) > 0 {
		return fmt.Sprintf("%s %v", se.code, se.messages)
	}
	return err.Error()
}

// Send delivers env and waits for its ack. With no connection up it waits
// for one. It returns the bot's ack, or an error when ctx ends first: the
// emulator never redelivers by itself; send the same envelope id again with
// RetryAttempt and RetryReason set to model Slack's retry, and the stored
// type and payload are reused when env leaves them empty.
func (s *Server) Send(ctx context.Context, env Envelope) (Ack, error) {
	return s.send(ctx, env, envContext{})
}

// SendNoWait delivers env in the background, for load: the ack is recorded
// in Acks when it comes. Close stops what is still waiting.
func (s *Server) SendNoWait(env Envelope) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if _, err := s.send(s.ctx, env, envContext{}); err != nil {
			s.cfg.logger.Debug("slackemu: background envelope not acked", "envelope_id", env.ID, "err", err)
		}
	}()
}

func (s *Server) send(ctx context.Context, env Envelope, about envContext) (Ack, error) {
	ch := make(chan Ack, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Ack{EnvelopeID: env.ID}, ErrClosed
	}
	if env.ID == "" {
		env.ID = newEnvelopeID()
	}
	se, seen := s.envelopes[env.ID]
	if !seen {
		se = &sentEnvelope{}
		s.envelopes[env.ID] = se
	}
	if seen && env.Payload == nil && env.Raw == nil {
		// A retry: Slack resends the same payload.
		env.Payload, env.AcceptsResponsePayload = se.env.Payload, se.env.AcceptsResponsePayload
		if env.Type == "" {
			env.Type = se.env.Type
		}
	}
	if about.kind != "" || !seen {
		se.about = about
	}
	se.env = env
	se.waiters = append(se.waiters, ch)
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		se.waiters = slices.DeleteFunc(se.waiters, func(w chan Ack) bool { return w == ch })
		s.mu.Unlock()
	}()

	frame, err := env.frame()
	if err != nil {
		return Ack{EnvelopeID: env.ID}, err
	}
	for {
		c, err := s.waitConn(ctx)
		if err != nil {
			return Ack{EnvelopeID: env.ID}, fmt.Errorf("slackemu: envelope %s (%s) not delivered, no Socket Mode connection: %w", env.ID, env.Type, err)
		}
		s.mu.Lock()
		se.sentAt = time.Now()
		s.mu.Unlock()
		if err := c.write(frame); err != nil {
			c.close() // broken: the next live connection gets it
			continue
		}
		break
	}
	select {
	case a := <-ch:
		return a, nil
	case <-ctx.Done():
		return Ack{EnvelopeID: env.ID}, fmt.Errorf("slackemu: no ack for envelope %s (%s): %w", env.ID, env.Type, ctx.Err())
	case <-s.ctx.Done():
		return Ack{EnvelopeID: env.ID}, ErrClosed
	}
}

// waitConn returns the newest connection that may get envelopes.
func (s *Server) waitConn(ctx context.Context) (*wsConn, error) {
	for {
		s.mu.Lock()
		changed, closed := s.changed, s.closed
		var cur *wsConn
		for i := len(s.conns) - 1; i >= 0; i-- {
			if c := s.conns[i]; !c.draining && !c.isDone() {
				cur = c
				break
			}
		}
		s.mu.Unlock()
		if cur != nil {
			return cur, nil
		}
		if closed {
			return nil, ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Disconnect asks the bot to reconnect, as Slack does before a refresh
// ("refresh_requested", "warning", "link_disabled"): it sends a disconnect
// frame on the newest connection, stops sending envelopes there, and closes
// it once the bot has connected again or the grace period is over.
func (s *Server) Disconnect(reason string) {
	s.mu.Lock()
	var c *wsConn
	for i := len(s.conns) - 1; i >= 0; i-- {
		if !s.conns[i].draining {
			c = s.conns[i]
			break
		}
	}
	if c == nil || s.closed {
		s.mu.Unlock()
		return
	}
	c.draining = true
	before := s.connections
	s.wg.Add(1)
	s.bumpLocked()
	s.mu.Unlock()

	frame, _ := json.Marshal(map[string]any{"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "emu"}})
	if err := c.write(frame); err != nil {
		c.close()
	}
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.disconnectGrace)
		defer cancel()
		_ = s.WaitFor(ctx, func() bool { return s.Connections() > before || c.isDone() }) // either way it closes now
		c.close()
	}()
}

// Drop breaks the newest connection without a frame, as a network fault
// would; the bot only notices when its read fails.
func (s *Server) Drop() {
	s.mu.Lock()
	var c *wsConn
	if n := len(s.conns); n > 0 {
		c = s.conns[n-1]
	}
	s.mu.Unlock()
	if c != nil {
		c.drop()
	}
}

// Connections counts the successful Socket Mode connects so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connections
}

// WaitConnected waits until the n-th connection got its hello.
func (s *Server) WaitConnected(ctx context.Context, n int) error {
	if err := s.WaitFor(ctx, func() bool { return s.Connections() >= n }); err != nil {
		return fmt.Errorf("slackemu: waiting for Socket Mode connection %d: %w", n, err)
	}
	return nil
}

// Acks lists every ack received, oldest first.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acks)
}
