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
	id        int        // its number among the connects, from 1: Ack.Conn and Delivery.Conn
	writeMu   sync.Mutex // gorilla allows one writer at a time (control frames excepted)
	done      chan struct{}
	closeOnce sync.Once
	draining  bool // guarded by Server.mu: told to disconnect, gets no more envelopes
}

func (c *wsConn) write(b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.writeLocked(b)
}

// writeLocked writes one text frame; c.writeMu must be held.
func (c *wsConn) writeLocked(b []byte) error {
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

// open says whether c may get envelopes: not closed, not told to go.
// Server.mu must be held.
func (c *wsConn) open() bool { return !c.draining && !c.isDone() }

// sentEnvelope is an envelope the emulator sent, kept so its ack can be
// matched, timed and applied, and so it can be sent again as a retry.
type sentEnvelope struct {
	env     Envelope
	about   envContext
	sentAt  time.Time // real clock: latency is measured, not emulated
	waiters []chan Ack
	// acked and gaveUp describe the current delivery (one Send and the
	// emulator's own resends of it); Send starts a new one. Slack takes
	// the first ack and ignores any after it, or after it stopped retrying.
	acked, gaveUp bool
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
	if !s.register(c) {
		c.close()
		return
	}

	// This handler is still counted in s.wg, so adding to it here is safe.
	s.wg.Go(func() { s.ping(c) })
	s.readAcks(c)

	c.close()
	s.update(func() []Event {
		s.conns = slices.DeleteFunc(s.conns, func(x *wsConn) bool { return x == c })
		return nil
	})
}

// register says hello on c and adds it to the connections envelopes go
// to, or refuses it as Slack refuses an app's connection beyond its limit:
// apps.connections.open succeeds, then the new socket gets a disconnect
// frame with reason too_many_websockets (and no hello). A connection told
// to disconnect no longer counts: it is on its way out.
func (s *Server) register(c *wsConn) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	open := 0
	for _, x := range s.conns {
		if x.open() {
			open++
		}
	}
	if open >= s.cfg.maxConns {
		s.refused++
		s.bumpLocked()
		s.mu.Unlock()
		frame, _ := json.Marshal(map[string]any{"type": "disconnect", "reason": "too_many_websockets", "debug_info": map[string]any{"host": "emu"}})
		_ = c.write(frame) // closed next either way
		return false
	}
	// Holding c's writer from here keeps the hello its first frame: an
	// envelope picked for c as soon as it is listed waits behind it.
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	s.connections++
	c.id = s.connections
	s.conns = append(s.conns, c)
	s.bumpLocked()
	s.mu.Unlock()

	hello, _ := json.Marshal(map[string]any{ // constant shape, always encodes
		"type":            "hello",
		"num_connections": open + 1,
		"connection_info": map[string]any{"app_id": AppID},
		"debug_info":      map[string]any{"host": "emu", "approximate_connection_time": 3600},
	})
	if err := c.writeLocked(hello); err != nil {
		s.cfg.logger.Debug("slackemu: hello not written", "conn", c.id, "err", err)
		c.close() // still listed until serveSocket's read fails and unlists it
	}
	return true
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
		s.handleAck(c.id, data, time.Now())
	}
}

func (s *Server) handleAck(conn int, data []byte, readAt time.Time) {
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
	ack := Ack{EnvelopeID: frame.EnvelopeID, Payload: frame.Payload, Conn: conn}
	var (
		evs     []Event
		waiters []chan Ack
	)
	s.mu.Lock()
	se, ok := s.envelopes[frame.EnvelopeID]
	switch {
	case !ok:
		ack.Problem = "no envelope with this id was sent"
	case se.gaveUp:
		ack.Type = se.env.Type
		ack.Problem = "acked after Slack stopped resending it: ignored"
	case se.acked:
		ack.Type = se.env.Type
		ack.Problem = "a second ack for this envelope: Slack ignores all but the first"
	default:
		ack.Type = se.env.Type
		if !se.sentAt.IsZero() {
			ack.Latency = readAt.Sub(se.sentAt)
		}
		se.acked = true
		evs, ack.Problem = s.applyAckLocked(se.about, frame.Payload)
		waiters, se.waiters = se.waiters, nil
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
