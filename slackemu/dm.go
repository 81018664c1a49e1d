package slackemu

import (
	"context"
	"fmt"
)

// PersonSays has a person type text in their DM with the bot, in the
// thread of threadTS when it is set, and delivers the message.im event
// Slack sends for it. It returns the new message's timestamp.
func (s *Server) PersonSays(ctx context.Context, userID, threadTS, text string) (string, Ack, error) {
	s.mu.Lock()
	u, err := s.activePersonLocked(userID)
	if err != nil {
		s.mu.Unlock()
		return "", Ack{}, err
	}
	c := s.imLocked(u)
	m := &Message{Channel: c.id, TS: s.newTSLocked(), ThreadTS: threadTS, User: u.ID, Text: text, Source: "person", Posted: s.now()}
	c.messages = append(c.messages, m)
	ev := map[string]any{
		"type": "message", "channel": c.id, "user": u.ID, "text": text, "ts": m.TS,
		"event_ts": m.TS, "channel_type": "im", "client_msg_id": randomHex(16),
	}
	if threadTS != "" {
		ev["thread_ts"] = threadTS
	}
	pe := s.personEvent(u, c.id, "types in the DM: "+text)
	s.bumpLocked()
	s.mu.Unlock()
	s.emit([]Event{pe})
	ack, err := s.sendEvent(ctx, ev, u.ID)
	return m.TS, ack, err
}

// PersonEdits has a person edit a message of theirs in the DM: Slack's
// message_changed event.
func (s *Server) PersonEdits(ctx context.Context, userID, ts, text string) (Ack, error) {
	s.mu.Lock()
	u, c, _, m, err := s.ownDMMessageLocked(userID, ts)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	previous := map[string]any{"type": "message", "user": u.ID, "text": m.Text, "ts": m.TS}
	m.Text, m.Edits, m.Edited = text, m.Edits+1, s.newTSLocked()
	ev := map[string]any{
		"type": "message", "subtype": "message_changed", "hidden": true, "channel": c.id, "channel_type": "im",
		"ts": m.Edited, "event_ts": m.Edited,
		"message":          map[string]any{"type": "message", "user": u.ID, "text": text, "ts": m.TS, "edited": map[string]any{"user": u.ID, "ts": m.Edited}},
		"previous_message": previous,
	}
	pe := s.personEvent(u, c.id, "edits their message: "+text)
	s.bumpLocked()
	s.mu.Unlock()
	s.emit([]Event{pe})
	return s.sendEvent(ctx, ev, u.ID)
}

// PersonDeletes has a person delete a message of theirs in the DM:
// Slack's message_deleted event.
func (s *Server) PersonDeletes(ctx context.Context, userID, ts string) (Ack, error) {
	s.mu.Lock()
	u, c, i, m, err := s.ownDMMessageLocked(userID, ts)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	c.messages = append(c.messages[:i], c.messages[i+1:]...)
	now := s.newTSLocked()
	ev := map[string]any{
		"type": "message", "subtype": "message_deleted", "hidden": true, "channel": c.id, "channel_type": "im",
		"ts": now, "event_ts": now, "deleted_ts": ts,
		"previous_message": map[string]any{"type": "message", "user": u.ID, "text": m.Text, "ts": m.TS},
	}
	pe := s.personEvent(u, c.id, "deletes their message")
	s.bumpLocked()
	s.mu.Unlock()
	s.emit([]Event{pe})
	return s.sendEvent(ctx, ev, u.ID)
}

// ownDMMessageLocked finds a message the person wrote in their DM with
// the bot, and where it stands in it.
func (s *Server) ownDMMessageLocked(userID, ts string) (*User, *channel, int, *Message, error) {
	u, err := s.activePersonLocked(userID)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	c := s.imLocked(u)
	i, m := c.findLocked(ts)
	if m == nil || m.User != u.ID {
		return nil, nil, 0, nil, fmt.Errorf("slackemu: %s has no message %s in the DM", userID, ts)
	}
	return u, c, i, m, nil
}
