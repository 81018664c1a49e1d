package slackemu

import (
	"context"
	"encoding/json"
	"fmt"
)

// The drivers below act as a person would in the Slack client. Each sends
// one envelope and waits for the bot's ack (or ctx), returning the ack.
// They refuse what the client would not let a person do: act while
// deactivated, click a button that is not there, submit a modal that is
// not on top or leaves a required input empty.

// activePersonLocked is the user acting, who must exist and be active.
func (s *Server) activePersonLocked(userID string) (*User, error) {
	u, ok := s.users[userID]
	switch {
	case !ok:
		return nil, fmt.Errorf("slackemu: no user %s; add them with AddUser first", userID)
	case u.Deleted:
		return nil, fmt.Errorf("slackemu: user %s is deactivated and cannot act", userID)
	}
	return u, nil
}

func payloadUser(u *User) map[string]any {
	return map[string]any{"id": u.ID, "username": u.Name, "name": u.Name, "team_id": TeamID}
}

func payloadTeam() map[string]any { return map[string]any{"id": TeamID, "domain": TeamDomain} }

func channelName(c *channel) string {
	if c.isIM() {
		return "directmessage"
	}
	return c.name
}

func encodePayload(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only raw JSON a caller built by hand (a Message's Blocks) can fail.
		return nil, fmt.Errorf("slackemu: encode payload: %w", err)
	}
	return b, nil
}

func (s *Server) personEvent(u *User, channelID, text string) Event {
	return Event{Time: s.now(), Kind: EventPersonAction, User: u.ID, Channel: channelID, Text: text}
}

// SlashCommand types "/command text" in channelID ("" for the person's DM
// with the bot). A reply in the ack payload is shown to the person as an
// ephemeral message (or posted, with response_type in_channel).
func (s *Server) SlashCommand(ctx context.Context, userID, channelID, command, text string) (Ack, error) {
	s.mu.Lock()
	u, err := s.activePersonLocked(userID)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	var c *channel
	if channelID == "" {
		c = s.imLocked(u)
	} else if c, _ = s.resolveChannelLocked(channelID); c == nil {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackemu: no channel %s; add it with AddChannel first", channelID)
	}
	respID, respURL := s.newResponseURLLocked(u.ID, c.id, nil)
	payload, err := encodePayload(map[string]any{
		"token": "emu-verification-token", "team_id": TeamID, "team_domain": TeamDomain,
		"channel_id": c.id, "channel_name": channelName(c), "user_id": u.ID, "user_name": u.Name,
		"command": command, "text": text, "api_app_id": AppID, "is_enterprise_install": false,
		"response_url": respURL, "trigger_id": s.newTriggerLocked(u.ID),
	})
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	ev := s.personEvent(u, c.id, command+" "+text)
	s.bumpLocked()
	s.mu.Unlock()
	s.emit([]Event{ev})
	return s.send(ctx, Envelope{Type: "slash_commands", Payload: payload, AcceptsResponsePayload: true},
		envContext{kind: "slash_commands", user: u.ID, channel: c.id, response: respID})
}

// ClickButton clicks the button with actionID in msg, as the person saw
// msg (pass a message from DM, Messages or Ephemerals). value picks among
// buttons sharing an action_id; "" takes the first. The payload carries a
// fresh response_url whose replace_original and delete_original act on msg.
func (s *Server) ClickButton(ctx context.Context, userID string, msg Message, actionID, value string) (Ack, error) {
	b, ok := findButton(msg.Blocks, actionID, value)
	if !ok {
		return Ack{}, fmt.Errorf("slackemu: message %s has no button %q (value %q); it has %v", msg.TS, actionID, value, msg.Buttons())
	}
	s.mu.Lock()
	u, err := s.activePersonLocked(userID)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	c, ok := s.channels[msg.Channel]
	if !ok {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackemu: no channel %s for message %s", msg.Channel, msg.TS)
	}
	if !msg.Ephemeral {
		if _, m := c.findLocked(msg.TS); m == nil {
			s.mu.Unlock()
			return Ack{}, fmt.Errorf("slackemu: message %s in %s was deleted; nobody can click it", msg.TS, msg.Channel)
		}
	}
	_, respURL := s.newResponseURLLocked(u.ID, c.id, &msgRef{channel: msg.Channel, ts: msg.TS, ephemeral: msg.Ephemeral})
	p := map[string]any{
		"type": "block_actions", "user": payloadUser(u), "api_app_id": AppID, "token": "emu-verification-token",
		"trigger_id": s.newTriggerLocked(u.ID), "team": payloadTeam(), "enterprise": nil, "is_enterprise_install": false,
		"container":    map[string]any{"type": "message", "message_ts": msg.TS, "channel_id": msg.Channel, "is_ephemeral": msg.Ephemeral},
		"channel":      map[string]any{"id": c.id, "name": channelName(c)},
		"state":        map[string]any{"values": map[string]any{}},
		"response_url": respURL,
		"actions":      []any{buttonAction(b, s.newTSLocked())},
	}
	if !msg.Ephemeral {
		p["message"] = messageObject(&msg, false)
	}
	payload, err := encodePayload(p)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	ev := s.personEvent(u, c.id, "clicks ["+b.Text+"]")
	s.bumpLocked()
	s.mu.Unlock()
	s.emit([]Event{ev})
	return s.send(ctx, Envelope{Type: "interactive", Payload: payload},
		envContext{kind: "block_actions", user: u.ID, channel: c.id})
}

func buttonAction(b Button, ts string) map[string]any {
	return map[string]any{
		"type": "button", "action_id": b.ActionID, "block_id": b.BlockID, "value": b.Value, "action_ts": ts,
		"text": map[string]any{"type": "plain_text", "text": b.Text, "emoji": true},
	}
}

// ClickViewButton clicks the button with actionID in an open modal or in
// the person's home tab.
func (s *Server) ClickViewButton(ctx context.Context, userID, viewID, actionID, value string) (Ack, error) {
	s.mu.Lock()
	u, err := s.activePersonLocked(userID)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	v, ok := s.views[viewID]
	if !ok || v.Closed || v.UserID != u.ID {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackemu: %s has no open view %s", u.ID, viewID)
	}
	if stack := s.modals[u.ID]; v.Type == "modal" && stack[len(stack)-1] != v.ID {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackemu: view %s is under another modal; only the top one can be clicked", viewID)
	}
	b, ok := findButton(v.Blocks, actionID, value)
	if !ok {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackemu: view %s has no button %q (value %q); it has %v", viewID, actionID, value, v.Buttons())
	}
	p := map[string]any{
		"type": "block_actions", "user": payloadUser(u), "api_app_id": AppID, "token": "emu-verification-token",
		"trigger_id": s.newTriggerLocked(u.ID), "team": payloadTeam(), "enterprise": nil, "is_enterprise_install": false,
		"container": map[string]any{"type": "view", "view_id": v.ID},
		"view":      viewObject(v, nil),
		"actions":   []any{buttonAction(b, s.newTSLocked())},
	}
	payload, err := encodePayload(p)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	ev := s.personEvent(u, "", "clicks ["+b.Text+"] in "+v.Type+" view")
	s.bumpLocked()
	s.mu.Unlock()
	s.emit([]Event{ev})
	return s.send(ctx, Envelope{Type: "interactive", Payload: payload},
		envContext{kind: "block_actions", user: u.ID, viewID: v.ID})
}

// SubmitView submits the person's top modal with values: block_id →
// action_id → what they typed or chose (an option's value; several,
// comma-separated, for multi-selects and checkboxes). The ack's
// response_action is applied: none closes the modal, "errors" shows them,
// "update" and "push" change the stack, "clear" closes it all.
func (s *Server) SubmitView(ctx context.Context, userID, viewID string, values map[string]map[string]string) (Ack, error) {
	s.mu.Lock()
	u, err := s.activePersonLocked(userID)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	stack := s.modals[u.ID]
	if len(stack) == 0 || stack[len(stack)-1] != viewID {
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("slackemu: view %s is not %s's top modal (open: %v)", viewID, u.ID, stack)
	}
	v := s.views[viewID]
	state, err := stateValues(v.Blocks, values)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	p := map[string]any{
		"type": "view_submission", "team": payloadTeam(), "user": payloadUser(u), "api_app_id": AppID,
		"token": "emu-verification-token", "trigger_id": s.newTriggerLocked(u.ID), "view": viewObject(v, state),
		"response_urls": []any{}, "enterprise": nil, "is_enterprise_install": false,
	}
	payload, err := encodePayload(p)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	ev := s.personEvent(u, "", "submits \""+v.Title+"\"")
	s.bumpLocked()
	s.mu.Unlock()
	s.emit([]Event{ev})
	return s.send(ctx, Envelope{Type: "interactive", Payload: payload, AcceptsResponsePayload: true},
		envContext{kind: "view_submission", user: u.ID, viewID: viewID})
}

// OpenAppHome opens the bot's home tab: an app_home_opened event carrying
// the home view published so far, if any.
func (s *Server) OpenAppHome(ctx context.Context, userID string) (Ack, error) {
	s.mu.Lock()
	u, err := s.activePersonLocked(userID)
	if err != nil {
		s.mu.Unlock()
		return Ack{}, err
	}
	ev := map[string]any{"type": "app_home_opened", "user": u.ID, "channel": s.imLocked(u).id, "tab": "home", "event_ts": s.newTSLocked()}
	if v, ok := s.views[s.homes[u.ID]]; ok {
		ev["view"] = viewObject(v, nil)
	}
	pe := s.personEvent(u, "", "opens the app's home tab")
	s.bumpLocked()
	s.mu.Unlock()
	s.emit([]Event{pe})
	return s.sendEvent(ctx, ev, u.ID)
}

// SendEvent delivers any Events API event (the inner "event" object, which
// needs a "type"), e.g. user_change built with UserObject.
func (s *Server) SendEvent(ctx context.Context, event map[string]any) (Ack, error) {
	typ, _ := event["type"].(string)
	if typ == "" {
		return Ack{}, fmt.Errorf("slackemu: an event needs a \"type\"")
	}
	user, _ := event["user"].(string)
	return s.sendEvent(ctx, event, user)
}

func (s *Server) sendEvent(ctx context.Context, event map[string]any, user string) (Ack, error) {
	s.mu.Lock()
	eventID := s.ids.next("Ev")
	now := s.now().Unix()
	s.mu.Unlock()
	payload, err := encodePayload(map[string]any{
		"token": "emu-verification-token", "team_id": TeamID, "api_app_id": AppID, "event": event,
		"type": "event_callback", "event_id": eventID, "event_time": now,
		"authorizations": []any{map[string]any{
			"enterprise_id": nil, "team_id": TeamID, "user_id": BotUserID, "is_bot": true, "is_enterprise_install": false,
		}},
		"is_ext_shared_channel": false, "event_context": "4-" + randomHex(12),
	})
	if err != nil {
		return Ack{}, err
	}
	return s.send(ctx, Envelope{Type: "events_api", Payload: payload}, envContext{kind: "events_api", user: user})
}
