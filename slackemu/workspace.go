package slackemu

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// User is a person (or bot) in the workspace.
type User struct {
	ID       string // "U…"
	Name     string // the handle
	RealName string
	TZ       string // IANA zone, e.g. "Europe/Berlin"; empty leaves tz out of users.info
	Deleted  bool   // deactivated
	IsBot    bool
}

// channel is a conversation: a public channel or a person's DM with the bot.
type channel struct {
	id        string
	name      string
	user      string // for a DM: the person
	members   []string
	archived  bool
	botMember bool
	created   time.Time
	messages  []*Message // oldest first
}

func (c *channel) isIM() bool { return c.user != "" }

// idGen hands out the emulator's identifiers. It is guarded by Server.mu.
type idGen struct{ n int }

func (g *idGen) next(prefix string) string {
	g.n++
	return fmt.Sprintf("%s%08d", prefix, g.n)
}

// randomHex is for identifiers that must not be guessable by a bot that
// would otherwise depend on their shape.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b)
}

func newEnvelopeID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// AddUser adds a person. A user with the same ID is replaced.
func (s *Server) AddUser(u User) { s.SetUser(u) }

// SetUser adds or updates a person: change their time zone, deactivate them.
// Their DM is archived while they are deactivated, as in Slack.
func (s *Server) SetUser(u User) {
	s.update(func() []Event {
		if _, ok := s.users[u.ID]; !ok {
			s.userOrder = append(s.userOrder, u.ID)
		}
		uc := u
		s.users[u.ID] = &uc
		if c, ok := s.channels[imID(u.ID)]; ok {
			c.archived = u.Deleted
		}
		return nil
	})
}

// AddChannel adds a public channel the bot is a member of. members are the
// people in it, besides the bot.
func (s *Server) AddChannel(id, name string, members ...string) {
	s.update(func() []Event {
		c, ok := s.channels[id]
		if !ok {
			c = &channel{id: id, created: s.now()}
			s.channels[id] = c
		}
		c.name = strings.TrimPrefix(name, "#")
		c.members = append([]string(nil), members...)
		c.botMember = true
		return nil
	})
}

// ArchiveChannel archives a channel: posting to it fails with is_archived.
func (s *Server) ArchiveChannel(id string) {
	s.update(func() []Event {
		if c, ok := s.channels[id]; ok {
			c.archived = true
		}
		return nil
	})
}

// RemoveBotFromChannel takes the bot out of a channel: posting to it fails
// with not_in_channel.
func (s *Server) RemoveBotFromChannel(id string) {
	s.update(func() []Event {
		if c, ok := s.channels[id]; ok {
			c.botMember = false
		}
		return nil
	})
}

// IMChannel is the id of the DM between userID and the bot ("D…"). It is
// the same for the life of the Server, whether or not the bot opened it yet.
func (s *Server) IMChannel(userID string) string { return imID(userID) }

func imID(userID string) string {
	if len(userID) > 1 && (userID[0] == 'U' || userID[0] == 'W') {
		return "D" + userID[1:]
	}
	return "D" + userID
}

// imLocked returns the DM with a known user, creating it on first use.
func (s *Server) imLocked(u *User) *channel {
	id := imID(u.ID)
	c, ok := s.channels[id]
	if !ok {
		c = &channel{id: id, user: u.ID, botMember: true, created: s.now()}
		s.channels[id] = c
	}
	c.archived = u.Deleted
	return c
}

// resolveChannelLocked finds the conversation a Web API channel argument
// means: a channel id, a "#name", a DM id, or a user id, which Slack turns
// into the DM with that person.
func (s *Server) resolveChannelLocked(arg string) (*channel, string) {
	if arg == "" {
		return nil, "channel_not_found"
	}
	if c, ok := s.channels[arg]; ok {
		if c.isIM() {
			if u, ok := s.users[c.user]; ok {
				c.archived = u.Deleted
			}
		}
		return c, ""
	}
	if u, ok := s.users[arg]; ok {
		return s.imLocked(u), ""
	}
	if rest, ok := strings.CutPrefix(arg, "D"); ok && rest != "" {
		// imID maps U… and W… ids to D…: look both up rather than scan
		// every user, which at 100,000 people capped posting at 240/s.
		for _, id := range []string{"U" + rest, "W" + rest, rest} {
			if u, ok := s.users[id]; ok && imID(u.ID) == arg {
				return s.imLocked(u), ""
			}
		}
	}
	name := strings.TrimPrefix(arg, "#")
	for _, c := range s.channels {
		if c.name != "" && c.name == name {
			return c, ""
		}
	}
	return nil, "channel_not_found"
}

// newTSLocked hands out a message timestamp ("1700000000.000100") from the
// clock, strictly increasing so timestamps stay unique per workspace.
func (s *Server) newTSLocked() string {
	micros := s.now().UnixMicro()
	if micros <= s.lastTS {
		micros = s.lastTS + 1
	}
	s.lastTS = micros
	return formatTS(micros)
}

func formatTS(micros int64) string {
	return fmt.Sprintf("%d.%06d", micros/1_000_000, micros%1_000_000)
}

// parseTS reads a Slack timestamp ("1700000000.000100", "1700000000" or
// "0") into microseconds.
func parseTS(ts string) (int64, error) {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse timestamp %q: %w", ts, err)
	}
	var us int64
	if frac != "" {
		frac = (frac + "000000")[:6]
		if us, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return 0, fmt.Errorf("parse timestamp %q: %w", ts, err)
		}
	}
	return s*1_000_000 + us, nil
}

// userObject renders a person the way users.info does.
func (s *Server) userObject(u *User) map[string]any {
	obj := map[string]any{
		"id":        u.ID,
		"team_id":   TeamID,
		"name":      u.Name,
		"real_name": u.RealName,
		"deleted":   u.Deleted,
		"is_bot":    u.IsBot,
		"tz_label":  "",
		"tz_offset": 0,
		"updated":   s.now().Unix(),
		"profile": map[string]any{
			"real_name":    u.RealName,
			"display_name": u.Name,
			"team":         TeamID,
		},
	}
	if u.TZ != "" {
		obj["tz"] = u.TZ
		if loc, err := time.LoadLocation(u.TZ); err == nil {
			// Slack's label is the zone's long name; Go only knows the
			// abbreviation, which is enough for a bot that should use tz.
			name, offset := s.now().In(loc).Zone()
			obj["tz_label"] = name
			obj["tz_offset"] = offset
		}
	}
	return obj
}

func botUser() *User {
	return &User{ID: BotUserID, Name: BotName, RealName: "Nudge Bot", IsBot: true}
}

// UserObject is the user as users.info returns it, for building a
// user_change event: SendEvent(ctx, map[string]any{"type": "user_change",
// "user": s.UserObject(id)}).
func (s *Server) UserObject(userID string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		return map[string]any{"id": userID}
	}
	return s.userObject(u)
}

func (s *Server) channelObject(c *channel) map[string]any {
	if c.isIM() {
		deleted := false
		if u, ok := s.users[c.user]; ok {
			deleted = u.Deleted
		}
		return map[string]any{
			"id": c.id, "created": c.created.Unix(), "is_im": true, "is_org_shared": false,
			"user": c.user, "is_user_deleted": deleted, "is_archived": c.archived, "priority": 0,
		}
	}
	return map[string]any{
		"id": c.id, "name": c.name, "created": c.created.Unix(), "is_channel": true,
		"is_private": false, "is_im": false, "is_archived": c.archived, "is_member": c.botMember,
		"num_members": len(c.membersWithBot()), "creator": BotUserID,
	}
}

func (c *channel) membersWithBot() []string {
	if c.isIM() {
		return []string{c.user, BotUserID}
	}
	m := append([]string(nil), c.members...)
	if c.botMember {
		m = append(m, BotUserID)
	}
	return m
}

func (c *channel) findLocked(ts string) (int, *Message) {
	for i, m := range c.messages {
		if m.TS == ts {
			return i, m
		}
	}
	return -1, nil
}
