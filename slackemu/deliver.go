package slackemu

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrNotAcked is returned by Send when, with WithRedelivery, no connection
// acked the envelope and Slack would have stopped resending it.
var ErrNotAcked = errors.New("slackemu: envelope not acked")

// Retry reasons the emulator sets on a resend. "timeout" is what Slack
// sends over Socket Mode after a missed ack; for a socket that closed
// before acking Slack documents nothing, so "connection_failed" is taken
// from the Events API's list of retry reasons.
const (
	RetryReasonTimeout          = "timeout"
	RetryReasonConnectionFailed = "connection_failed"
)

// Send delivers env and waits for its ack. With no connection up it waits
// for one; with several open, envelopes take turns among them
// (round-robin, in the order they connected: Slack promises no order).
// It returns the first ack, or an error when ctx ends first.
//
// Without [WithRedelivery] the emulator never resends by itself: send the
// same envelope id again with RetryAttempt and RetryReason set to model
// Slack's retry, and the stored type and payload are reused when env
// leaves them empty. With it, Send resends as Slack does and returns
// ErrNotAcked once the retries are spent.
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

// ExpireAcks makes every envelope now waiting for its ack time out at
// once, as if Slack's ack timeout had passed, so tests drive the timeout
// without waiting for it. With [WithRedelivery] each is resent; without
// it nothing happens.
func (s *Server) ExpireAcks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.expire)
	s.expire = make(chan struct{})
}

// Deliveries lists every envelope frame written, first sends and resends,
// oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// OpenConnections counts the Socket Mode connections that may get
// envelopes now: connected, not closed, not told to disconnect.
func (s *Server) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.conns {
		if c.open() {
			n++
		}
	}
	return n
}

// RefusedConnections counts the sockets refused with too_many_websockets.
func (s *Server) RefusedConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

func (s *Server) send(ctx context.Context, env Envelope, about envContext) (Ack, error) {
	ch := make(chan Ack, 1)
	env, se, err := s.startDelivery(env, about, ch)
	if err != nil {
		return Ack{EnvelopeID: env.ID}, err
	}
	defer func() {
		s.mu.Lock()
		se.waiters = slices.DeleteFunc(se.waiters, func(w chan Ack) bool { return w == ch })
		s.mu.Unlock()
	}()
	var last *wsConn
	for retries := 0; ; retries++ {
		c, expire, err := s.deliver(ctx, se, env, last)
		if err != nil {
			return Ack{EnvelopeID: env.ID}, err
		}
		a, reason, err := s.awaitAck(ctx, env, ch, c, expire)
		if reason == "" {
			return a, err
		}
		s.mu.Lock()
		acked := se.acked
		if !acked && retries >= s.cfg.maxRetries {
			se.gaveUp = true
		}
		s.mu.Unlock()
		switch {
		case acked: // the ack was read as the timeout fired; it is on its way
			a, _, err := s.awaitAck(ctx, env, ch, nil, nil)
			return a, err
		case retries >= s.cfg.maxRetries:
			return Ack{EnvelopeID: env.ID}, fmt.Errorf("slackemu: envelope %s (%s) sent %d times: %w", env.ID, env.Type, retries+1, ErrNotAcked)
		}
		env.RetryAttempt++
		env.RetryReason = reason
		last = c
	}
}

// startDelivery records env as sent (a first send, or a resend of an id
// already sent) and registers ch for its ack.
func (s *Server) startDelivery(env Envelope, about envContext, ch chan Ack) (Envelope, *sentEnvelope, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return env, nil, ErrClosed
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
	se.acked, se.gaveUp = false, false
	se.waiters = append(se.waiters, ch)
	return env, se, nil
}

// deliver writes env on an open connection, another than avoid when there
// is one, waiting for a connection when none is up. It returns the
// connection and what ExpireAcks will close for this send.
func (s *Server) deliver(ctx context.Context, se *sentEnvelope, env Envelope, avoid *wsConn) (*wsConn, <-chan struct{}, error) {
	frame, err := env.frame()
	if err != nil {
		return nil, nil, err
	}
	for {
		c, err := s.pickConn(ctx, avoid)
		if err != nil {
			return nil, nil, fmt.Errorf("slackemu: envelope %s (%s) not delivered, no Socket Mode connection: %w", env.ID, env.Type, err)
		}
		s.mu.Lock()
		se.sentAt = time.Now()
		expire := s.expire
		s.mu.Unlock()
		if err := c.write(frame); err != nil {
			c.close() // broken: the next live connection gets it
			continue
		}
		s.update(func() []Event {
			s.deliveries = append(s.deliveries, Delivery{
				EnvelopeID: env.ID, Type: env.Type, Conn: c.id,
				RetryAttempt: env.RetryAttempt, RetryReason: env.RetryReason,
			})
			return nil
		})
		return c, expire, nil
	}
}

// pickConn takes the next open connection in turn, leaving out avoid
// unless it is the only one, and waits for one when none is open.
func (s *Server) pickConn(ctx context.Context, avoid *wsConn) (*wsConn, error) {
	for {
		s.mu.Lock()
		changed, closed := s.changed, s.closed
		var open []*wsConn
		for _, c := range s.conns {
			if c.open() && c != avoid {
				open = append(open, c)
			}
		}
		if len(open) == 0 && avoid != nil && avoid.open() {
			open = append(open, avoid) // Slack resends on the only one there is
		}
		if len(open) > 0 {
			c := open[s.turn%len(open)]
			s.turn++
			s.mu.Unlock()
			return c, nil
		}
		s.mu.Unlock()
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

// awaitAck waits for the ack of env sent on c. A non-empty reason says it
// is to be resent: with redelivery on, the ack timed out (on the timer or
// through ExpireAcks) or c closed first.
func (s *Server) awaitAck(ctx context.Context, env Envelope, ch <-chan Ack, c *wsConn, expire <-chan struct{}) (Ack, string, error) {
	var (
		timeout <-chan time.Time
		gone    <-chan struct{}
	)
	if s.cfg.redeliver && c != nil {
		gone = c.done
		if s.cfg.ackTimeout > 0 {
			t := time.NewTimer(s.cfg.ackTimeout)
			defer t.Stop()
			timeout = t.C
		}
	} else {
		expire = nil
	}
	select {
	case a := <-ch:
		return a, "", nil
	case <-timeout:
		return Ack{}, RetryReasonTimeout, nil
	case <-expire:
		return Ack{}, RetryReasonTimeout, nil
	case <-gone:
		return Ack{}, RetryReasonConnectionFailed, nil
	case <-ctx.Done():
		return Ack{EnvelopeID: env.ID}, "", fmt.Errorf("slackemu: no ack for envelope %s (%s): %w", env.ID, env.Type, ctx.Err())
	case <-s.ctx.Done():
		return Ack{EnvelopeID: env.ID}, "", ErrClosed
	}
}
