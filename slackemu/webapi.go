package slackemu

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// apiMethods returns the Web API methods the emulator serves. Handlers
// run with s.mu held. It is a function, not a package variable, so that
// the package runs no code until an emulator is started: the nudgebot
// binary carries it for `nudgebot demo`, and `nudgebot run` must not pay
// for it.
func apiMethods() map[string]endpoint {
	return map[string]endpoint{
		"auth.test":                    {handler: (*Server).authTest},
		"apps.connections.open":        {auth: authApp, handler: (*Server).connectionsOpen},
		"chat.postMessage":             {handler: (*Server).postMessage},
		"chat.postEphemeral":           {handler: (*Server).postEphemeral},
		"chat.update":                  {handler: (*Server).updateMessage},
		"chat.delete":                  {handler: (*Server).deleteMessage},
		"conversations.open":           {handler: (*Server).conversationsOpen},
		"conversations.history":        {handler: (*Server).conversationsHistory},
		"conversations.members":        {handler: (*Server).conversationsMembers},
		"conversations.info":           {handler: (*Server).conversationsInfo},
		"users.info":                   {handler: (*Server).usersInfo},
		"users.list":                   {handler: (*Server).usersList},
		"views.open":                   {handler: (*Server).viewsOpen},
		"views.push":                   {handler: (*Server).viewsPush},
		"views.update":                 {handler: (*Server).viewsUpdate},
		"views.publish":                {handler: (*Server).viewsPublish},
		"files.getUploadURLExternal":   {handler: (*Server).filesGetUploadURL},
		"files.completeUploadExternal": {handler: (*Server).filesComplete},
		"chat.getPermalink":            {handler: (*Server).getPermalink},
		"conversations.replies":        {handler: (*Server).conversationsReplies},
	}
}

func (s *Server) unknownMethod(r *apiRequest) (reply, error) {
	return nil, errCode("unknown_method", fmt.Sprintf("the emulator does not implement %q", r.method))
}

func (s *Server) authTest(*apiRequest) (reply, error) {
	return reply{
		"url": s.url, "team": "Emulated Workspace", "user": BotName,
		"team_id": TeamID, "user_id": BotUserID, "bot_id": BotID, "is_enterprise_install": false,
	}, nil
}

func (s *Server) connectionsOpen(*apiRequest) (reply, error) {
	ticket := s.ids.next("")
	s.tickets[ticket] = true
	return reply{"url": "ws://" + s.listener.Addr().String() + "/link/?ticket=" + ticket}, nil
}

// canPostLocked says why the bot may not post in c, if it may not.
func canPostLocked(c *channel) error {
	switch {
	case c.archived:
		return errCode("is_archived")
	case !c.isIM() && !c.botMember:
		return errCode("not_in_channel")
	}
	return nil
}

// messageFromArgs reads and checks the content arguments chat.postMessage,
// postEphemeral and update share.
func messageFromArgs(r *apiRequest, requireContent bool) (*Message, error) {
	m := &Message{Text: r.get("text"), ThreadTS: r.get("thread_ts")}
	if r.has("link_names") {
		m.LinkNames = r.get("link_names")
	}
	if r.has("parse") {
		m.Parse = r.get("parse")
	}
	if blocks := r.rawJSON("blocks"); blocks != nil {
		if err := validateBlocks(blocks, "message"); err != nil {
			return nil, err
		}
		m.Blocks = blocks
	}
	if md := r.rawJSON("metadata"); md != nil {
		var meta Metadata
		err := json.Unmarshal(md, &meta)
		empty := err == nil && meta.EventType == "" && (len(meta.EventPayload) == 0 || string(meta.EventPayload) == "null")
		switch {
		case empty:
			// slack-go always sends an empty metadata object to a response_url.
		case err != nil || meta.EventType == "":
			return nil, errCode("invalid_metadata_format", "metadata needs an event_type and an event_payload object")
		default:
			m.Metadata = &meta
		}
	}
	hasAttachments := len(r.rawJSON("attachments")) > 2
	if requireContent && m.Text == "" && !hasBlocks(m.Blocks) && !hasAttachments {
		return nil, errCode("no_text", "send text or blocks")
	}
	if n := utf8.RuneCountInString(m.Text); n > 40000 {
		return nil, errCode("msg_too_long", fmt.Sprintf("text is %d characters; the limit is 40000", n))
	}
	return m, nil
}

func hasBlocks(raw json.RawMessage) bool {
	var b []json.RawMessage
	return json.Unmarshal(raw, &b) == nil && len(b) > 0
}

func (s *Server) postMessage(r *apiRequest) (reply, error) {
	c, code := s.resolveChannelLocked(r.get("channel"))
	if code != "" {
		return nil, errCode(code)
	}
	if err := canPostLocked(c); err != nil {
		return nil, err
	}
	m, err := messageFromArgs(r, true)
	if err != nil {
		return nil, err
	}
	m.Channel, m.TS, m.User, m.Source, m.Posted = c.id, s.newTSLocked(), BotUserID, "chat.postMessage", s.now()
	c.messages = append(c.messages, m)
	r.emit(s.messageEvent(c, m, ""))
	return reply{"channel": c.id, "ts": m.TS, "message": messageObject(m, true)}, nil
}

// messageEvent is the transcript entry for a message posted, updated or
// deleted (kind "" means posted).
func (s *Server) messageEvent(c *channel, m *Message, kind EventKind) Event {
	if kind == "" {
		kind = EventMessage
		if c.isIM() {
			kind = EventDM
		}
	}
	mc := m.clone()
	return Event{Time: s.now(), Kind: kind, User: c.user, Channel: c.id, Text: m.VisibleText(), Message: &mc}
}

func (s *Server) postEphemeral(r *apiRequest) (reply, error) {
	c, code := s.resolveChannelLocked(r.get("channel"))
	if code != "" {
		return nil, errCode(code)
	}
	if err := canPostLocked(c); err != nil {
		return nil, err
	}
	userID := r.get("user")
	u, ok := s.users[userID]
	if !ok || u.Deleted {
		return nil, errCode("user_not_found")
	}
	if !slices.Contains(c.membersWithBot(), userID) {
		return nil, errCode("user_not_in_channel")
	}
	m, err := messageFromArgs(r, true)
	if err != nil {
		return nil, err
	}
	m.Channel, m.User, m.Source = c.id, BotUserID, "chat.postEphemeral"
	s.addEphemeralLocked(r, userID, m)
	return reply{"message_ts": m.TS}, nil
}

// addEphemeralLocked shows m to userID alone.
func (s *Server) addEphemeralLocked(r *apiRequest, userID string, m *Message) {
	m.Ephemeral, m.TS, m.Posted = true, s.newTSLocked(), s.now()
	s.ephemerals[userID] = append(s.ephemerals[userID], m)
	mc := m.clone()
	e := Event{Time: s.now(), Kind: EventEphemeral, User: userID, Channel: m.Channel, Text: m.VisibleText(), Message: &mc}
	if r != nil {
		r.emit(e)
	}
}

func (s *Server) updateMessage(r *apiRequest) (reply, error) {
	c, code := s.resolveChannelLocked(r.get("channel"))
	if code != "" {
		return nil, errCode(code)
	}
	_, m := c.findLocked(r.get("ts"))
	if m == nil {
		return nil, errCode("message_not_found")
	}
	if m.User != BotUserID {
		return nil, errCode("cant_update_message")
	}
	if c.archived {
		return nil, errCode("is_archived")
	}
	upd, err := messageFromArgs(r, !r.has("blocks") && !r.has("attachments"))
	if err != nil {
		return nil, err
	}
	if r.has("text") {
		m.Text = upd.Text
	}
	if r.has("blocks") {
		m.Blocks = upd.Blocks
	}
	if upd.Metadata != nil {
		m.Metadata = upd.Metadata
	}
	m.Edits++
	m.Edited = s.newTSLocked()
	r.emit(s.messageEvent(c, m, EventUpdated))
	return reply{"channel": c.id, "ts": m.TS, "text": m.Text, "message": messageObject(m, true)}, nil
}

func (s *Server) deleteMessage(r *apiRequest) (reply, error) {
	c, code := s.resolveChannelLocked(r.get("channel"))
	if code != "" {
		return nil, errCode(code)
	}
	i, m := c.findLocked(r.get("ts"))
	if m == nil {
		return nil, errCode("message_not_found")
	}
	if m.User != BotUserID {
		return nil, errCode("cant_delete_message")
	}
	c.messages = append(c.messages[:i], c.messages[i+1:]...)
	r.emit(s.messageEvent(c, m, EventDeleted))
	return reply{"channel": c.id, "ts": m.TS}, nil
}

func (s *Server) getPermalink(r *apiRequest) (reply, error) {
	c, code := s.resolveChannelLocked(r.get("channel"))
	if code != "" {
		return nil, errCode(code)
	}
	if _, m := c.findLocked(r.get("message_ts")); m == nil {
		return nil, errCode("message_not_found")
	}
	ts := strings.ReplaceAll(r.get("message_ts"), ".", "")
	return reply{"channel": c.id, "permalink": s.url + "archives/" + c.id + "/p" + ts}, nil
}

// messageObject renders m as conversations.history and chat.* answers do.
func messageObject(m *Message, withMetadata bool) map[string]any {
	o := map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "user": m.User, "team": TeamID}
	if m.User == BotUserID {
		o["bot_id"], o["app_id"] = BotID, AppID
	}
	if len(m.Blocks) > 0 {
		o["blocks"] = m.Blocks
	}
	if m.ThreadTS != "" {
		o["thread_ts"] = m.ThreadTS
	}
	if m.Edits > 0 {
		o["edited"] = map[string]any{"user": m.User, "ts": m.Edited}
	}
	if withMetadata && m.Metadata != nil {
		payload := m.Metadata.EventPayload
		if payload == nil {
			payload = json.RawMessage("{}")
		}
		o["metadata"] = map[string]any{"event_type": m.Metadata.EventType, "event_payload": payload}
	}
	if len(m.Files) > 0 {
		var fs []map[string]any
		for _, id := range m.Files {
			fs = append(fs, map[string]any{"id": id})
		}
		o["files"] = fs
	}
	return o
}

func (s *Server) conversationsOpen(r *apiRequest) (reply, error) {
	if id := r.get("channel"); id != "" && r.get("users") == "" {
		c, code := s.resolveChannelLocked(id)
		if code != "" {
			return nil, errCode(code)
		}
		return reply{"channel": s.channelObject(c), "already_open": true, "no_op": true}, nil
	}
	users := strings.Split(r.get("users"), ",")
	switch {
	case r.get("users") == "":
		return nil, errCode("users_list_not_supplied")
	case len(users) > 1:
		return nil, errCode("method_not_supported_for_channel_type", "the emulator opens 1:1 DMs only")
	}
	u, ok := s.users[strings.TrimSpace(users[0])]
	switch {
	case !ok:
		return nil, errCode("user_not_found")
	case u.Deleted:
		return nil, errCode("user_disabled")
	case u.IsBot:
		return nil, errCode("cannot_dm_bot")
	}
	_, existed := s.channels[imID(u.ID)]
	c := s.imLocked(u)
	return reply{"channel": s.channelObject(c), "already_open": existed, "no_op": existed}, nil
}

// readableChannelLocked is the channel argument for the reading methods.
func (s *Server) readableChannelLocked(r *apiRequest) (*channel, error) {
	c, code := s.resolveChannelLocked(r.get("channel"))
	if code != "" {
		return nil, errCode(code)
	}
	if !c.isIM() && !c.botMember {
		return nil, errCode("not_in_channel")
	}
	return c, nil
}

func (s *Server) conversationsHistory(r *apiRequest) (reply, error) {
	c, err := s.readableChannelLocked(r)
	if err != nil {
		return nil, err
	}
	limit, err := r.intArg("limit", 100)
	if err != nil {
		return nil, err
	}
	limit = min(max(limit, 1), 999)
	inclusive := r.boolArg("inclusive")
	bound := func(name string, def int64) (int64, error) {
		v := r.get(name)
		if v == "" {
			return def, nil
		}
		us, err := parseTS(v)
		if err != nil {
			return 0, errCode("invalid_ts_"+name, err.Error())
		}
		return us, nil
	}
	oldest, err := bound("oldest", -1)
	if err != nil {
		return nil, err
	}
	latest, err := bound("latest", 1<<62)
	if err != nil {
		return nil, err
	}
	before := int64(1 << 62) // the cursor: only messages at or before this
	if cur := r.get("cursor"); cur != "" {
		v, err := decodeCursor(cur, "ts")
		if err != nil {
			return nil, err
		}
		if before, err = parseTS(v); err != nil {
			return nil, errCode("invalid_cursor")
		}
	}
	withMeta := r.boolArg("include_all_metadata")

	var page []map[string]any
	var next string
	for i := len(c.messages) - 1; i >= 0; i-- {
		m := c.messages[i]
		if m.ThreadTS != "" && m.ThreadTS != m.TS {
			continue // replies live in conversations.replies
		}
		ts, _ := parseTS(m.TS) // the emulator wrote it
		inRange := (ts > oldest || inclusive && ts == oldest) && (ts < latest || inclusive && ts == latest)
		if !inRange || ts > before {
			continue
		}
		if len(page) == limit {
			next = encodeCursor("ts", m.TS)
			break
		}
		page = append(page, messageObject(m, withMeta))
	}
	rep := reply{"messages": nonNil(page), "has_more": next != "", "pin_count": 0}
	if next != "" {
		rep["response_metadata"] = map[string]any{"next_cursor": next}
	}
	return rep, nil
}

func (s *Server) conversationsReplies(r *apiRequest) (reply, error) {
	c, err := s.readableChannelLocked(r)
	if err != nil {
		return nil, err
	}
	parent := r.get("ts")
	var msgs []map[string]any
	for _, m := range c.messages {
		if m.TS == parent || m.ThreadTS == parent {
			msgs = append(msgs, messageObject(m, r.boolArg("include_all_metadata")))
		}
	}
	if len(msgs) == 0 {
		return nil, errCode("thread_not_found")
	}
	return reply{"messages": msgs, "has_more": false}, nil
}

func (s *Server) conversationsMembers(r *apiRequest) (reply, error) {
	c, code := s.resolveChannelLocked(r.get("channel"))
	if code != "" {
		return nil, errCode(code)
	}
	page, next, err := paginate(r, c.membersWithBot(), 100)
	if err != nil {
		return nil, err
	}
	return reply{"members": nonNil(page), "response_metadata": map[string]any{"next_cursor": next}}, nil
}

func (s *Server) conversationsInfo(r *apiRequest) (reply, error) {
	c, code := s.resolveChannelLocked(r.get("channel"))
	if code != "" {
		return nil, errCode(code)
	}
	return reply{"channel": s.channelObject(c)}, nil
}

func (s *Server) usersInfo(r *apiRequest) (reply, error) {
	id := r.get("user")
	if id == BotUserID {
		return reply{"user": s.userObject(botUser())}, nil
	}
	u, ok := s.users[id]
	if !ok {
		return nil, errCode("user_not_found")
	}
	return reply{"user": s.userObject(u)}, nil
}

func (s *Server) usersList(r *apiRequest) (reply, error) {
	ids := append(append([]string(nil), s.userOrder...), BotUserID)
	page, next, err := paginate(r, ids, 1000)
	if err != nil {
		return nil, err
	}
	members := []map[string]any{}
	for _, id := range page {
		u := s.users[id]
		if id == BotUserID {
			u = botUser()
		}
		members = append(members, s.userObject(u))
	}
	return reply{"members": members, "cache_ts": s.now().Unix(), "response_metadata": map[string]any{"next_cursor": next}}, nil
}

// paginate cuts items by the limit and cursor arguments. Slack caps limit
// at 1000; 0 means the method's default.
func paginate(r *apiRequest, items []string, def int) ([]string, string, error) {
	limit, err := r.intArg("limit", def)
	if err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		limit = def
	}
	limit = min(limit, 1000)
	start := 0
	if cur := r.get("cursor"); cur != "" {
		v, err := decodeCursor(cur, "offset")
		if err != nil {
			return nil, "", err
		}
		if start, err = strconv.Atoi(v); err != nil || start < 0 || start > len(items) {
			return nil, "", errCode("invalid_cursor")
		}
	}
	end := min(start+limit, len(items))
	next := ""
	if end < len(items) {
		next = encodeCursor("offset", strconv.Itoa(end))
	}
	return items[start:end], next, nil
}

// Cursors are opaque to clients, as Slack's are; they only have to round-trip.
func encodeCursor(kind, v string) string {
	return base64.StdEncoding.EncodeToString([]byte(kind + ":" + v))
}

func decodeCursor(cur, kind string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(cur)
	if err != nil {
		return "", errCode("invalid_cursor")
	}
	v, ok := strings.CutPrefix(string(b), kind+":")
	if !ok {
		return "", errCode("invalid_cursor")
	}
	return v, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
