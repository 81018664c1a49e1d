package slackemu

import (
	"net/http"
	"time"
)

// responseURL is a response_url handed to the bot with a slash command or
// a message button click.
type responseURL struct {
	user    string
	channel string
	origin  *msgRef // what replace_original and delete_original act on
	uses    int
	created time.Time
}

type msgRef struct {
	channel   string
	ts        string
	ephemeral bool
}

// Slack's limits on a response_url.
const (
	responseURLUses = 5
	responseURLLife = 30 * time.Minute
)

// newResponseURLLocked hands out a response_url and returns its id and URL.
func (s *Server) newResponseURLLocked(user, channel string, origin *msgRef) (string, string) {
	id := s.ids.next("R")
	s.responses[id] = &responseURL{user: user, channel: channel, origin: origin, created: s.now()}
	return id, s.url + "response/" + id
}

// respond is a POST to a response_url: {text, blocks, response_type,
// replace_original, delete_original}.
func (s *Server) respond(r *apiRequest) (reply, error) {
	ru, ok := s.responses[r.id]
	switch {
	case !ok:
		return nil, &slackError{code: "invalid_url", status: http.StatusNotFound}
	case ru.uses >= responseURLUses:
		return nil, &slackError{code: "used_url", status: http.StatusNotFound, messages: []string{"a response_url works 5 times"}}
	case s.now().Sub(ru.created) > responseURLLife:
		return nil, &slackError{code: "expired_url", status: http.StatusNotFound, messages: []string{"a response_url works for 30 minutes"}}
	}
	ru.uses++

	if r.boolArg("delete_original") {
		if ru.origin != nil {
			if m := s.originLocked(ru); m != nil {
				s.removeLocked(r, ru, m)
			}
			ru.origin = nil
		}
		return reply{}, nil
	}
	m, err := messageFromArgs(r, true)
	if err != nil {
		return nil, err
	}
	if r.boolArg("replace_original") && ru.origin != nil {
		if orig := s.originLocked(ru); orig != nil {
			orig.Text, orig.Blocks, orig.Edits, orig.Edited = m.Text, m.Blocks, orig.Edits+1, s.newTSLocked()
			if m.Metadata != nil {
				orig.Metadata = m.Metadata
			}
			c := s.channels[orig.Channel]
			if orig.Ephemeral || c == nil {
				mc := orig.clone()
				r.emit(Event{Time: s.now(), Kind: EventUpdated, User: ru.user, Channel: orig.Channel, Text: orig.VisibleText(), Message: &mc})
			} else {
				r.emit(s.messageEvent(c, orig, EventUpdated))
			}
			return reply{}, nil
		}
	}
	m.Channel, m.User, m.Source = ru.channel, BotUserID, methodResponseURL
	if r.get("response_type") == "in_channel" {
		c, code := s.resolveChannelLocked(ru.channel)
		if code != "" {
			return nil, errCode(code)
		}
		m.TS, m.Posted = s.newTSLocked(), s.now()
		c.messages = append(c.messages, m)
		r.emit(s.messageEvent(c, m, ""))
		if ru.origin == nil {
			ru.origin = &msgRef{channel: c.id, ts: m.TS}
		}
		return reply{}, nil
	}
	s.addEphemeralLocked(r, ru.user, m)
	if ru.origin == nil {
		// A slash command's later replace_original replaces its first
		// ephemeral answer, the way people see "Working…" turn into a result.
		ru.origin = &msgRef{channel: m.Channel, ts: m.TS, ephemeral: true}
	}
	return reply{}, nil
}

func (s *Server) originLocked(ru *responseURL) *Message {
	o := ru.origin
	if o.ephemeral {
		for _, m := range s.ephemerals[ru.user] {
			if m.TS == o.ts {
				return m
			}
		}
		return nil
	}
	if c, ok := s.channels[o.channel]; ok {
		_, m := c.findLocked(o.ts)
		return m
	}
	return nil
}

func (s *Server) removeLocked(r *apiRequest, ru *responseURL, m *Message) {
	mc := m.clone()
	if m.Ephemeral {
		list := s.ephemerals[ru.user]
		for i, e := range list {
			if e == m {
				s.ephemerals[ru.user] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		r.emit(Event{Time: s.now(), Kind: EventDeleted, User: ru.user, Channel: m.Channel, Text: m.VisibleText(), Message: &mc})
		return
	}
	c := s.channels[m.Channel]
	if i, _ := c.findLocked(m.TS); i >= 0 {
		c.messages = append(c.messages[:i:i], c.messages[i+1:]...)
	}
	r.emit(s.messageEvent(c, m, EventDeleted))
}

// Messages is the current state of a channel or DM, oldest first: updates
// applied, deleted messages gone. Ephemeral messages are not in it.
func (s *Server) Messages(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[channelID]
	if !ok {
		return nil
	}
	out := make([]Message, 0, len(c.messages))
	for _, m := range c.messages {
		out = append(out, m.clone())
	}
	return out
}

// DM is the current state of userID's DM with the bot, oldest first.
func (s *Server) DM(userID string) []Message { return s.Messages(imID(userID)) }

// Ephemerals is everything userID was shown alone, oldest first: from
// chat.postEphemeral, response_url posts, and slash command ack payloads.
func (s *Server) Ephemerals(userID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.ephemerals[userID]))
	for _, m := range s.ephemerals[userID] {
		out = append(out, m.clone())
	}
	return out
}
