package slackemu

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"
)

// trigger is a trigger_id handed to the bot with an interaction.
type trigger struct {
	user   string
	issued time.Time
	used   bool
}

func (s *Server) newTriggerLocked(user string) string {
	s.ids.n++
	id := fmt.Sprintf("%d.%d.%s", s.ids.n, s.now().Unix(), randomHex(16))
	s.triggers[id] = &trigger{user: user, issued: s.now()}
	return id
}

// useTriggerLocked spends a trigger_id: it works once, within the TTL.
func (s *Server) useTriggerLocked(id string) (*trigger, error) {
	t, ok := s.triggers[id]
	switch {
	case !ok:
		return nil, errCode("expired_trigger_id", "the trigger_id was never issued")
	case t.used:
		return nil, errCode("expired_trigger_id", "the trigger_id was already used")
	case s.now().Sub(t.issued) >= s.cfg.triggerTTL:
		return nil, errCode("expired_trigger_id", fmt.Sprintf("the trigger_id is %s old; it works for %s", s.now().Sub(t.issued), s.cfg.triggerTTL))
	}
	t.used = true
	return t, nil
}

func (s *Server) newHash() string { return fmt.Sprintf("%d.%s", s.now().Unix(), randomHex(6)) }

// setViewContent copies what the bot sent into v.
func setViewContent(v *View, raw json.RawMessage, obj map[string]any) {
	v.Raw = raw
	v.Blocks = nil
	if b, ok := obj["blocks"]; ok && b != nil {
		v.Blocks, _ = json.Marshal(b) // decoded JSON always re-encodes
	}
	v.CallbackID, _ = obj["callback_id"].(string)
	v.PrivateMetadata, _ = obj["private_metadata"].(string)
	v.ExternalID, _ = obj["external_id"].(string)
	v.Title = textOf(obj["title"])
	v.Errors = nil
}

func (s *Server) viewEvent(kind EventKind, v *View) Event {
	vc := v.clone()
	text := v.Title
	if v.Type == "home" {
		text = blocksText(v.Blocks)
	}
	return Event{Time: s.now(), Kind: kind, User: v.UserID, Text: text, View: &vc}
}

func (s *Server) viewsOpen(r *apiRequest) (reply, error) {
	t, err := s.useTriggerLocked(r.get("trigger_id"))
	if err != nil {
		return nil, err
	}
	raw := r.rawJSON("view")
	obj, err := validateView(raw, "modal")
	if err != nil {
		return nil, err
	}
	for _, id := range s.modals[t.user] {
		s.views[id].Closed = true
	}
	v := &View{ID: s.ids.next("V"), Type: "modal", UserID: t.user, Hash: s.newHash()}
	v.RootViewID = v.ID
	setViewContent(v, raw, obj)
	s.views[v.ID] = v
	s.modals[t.user] = []string{v.ID}
	r.emit(s.viewEvent(EventViewOpened, v))
	return reply{"view": viewObject(v, nil)}, nil
}

func (s *Server) viewsPush(r *apiRequest) (reply, error) {
	t, err := s.useTriggerLocked(r.get("trigger_id"))
	if err != nil {
		return nil, err
	}
	raw := r.rawJSON("view")
	obj, err := validateView(raw, "modal")
	if err != nil {
		return nil, err
	}
	v, err := s.pushViewLocked(t.user, raw, obj)
	if err != nil {
		return nil, err
	}
	r.emit(s.viewEvent(EventViewOpened, v))
	return reply{"view": viewObject(v, nil)}, nil
}

func (s *Server) pushViewLocked(user string, raw json.RawMessage, obj map[string]any) (*View, error) {
	stack := s.modals[user]
	if len(stack) == 0 {
		return nil, errCode("not_found", "views.push needs an open modal")
	}
	if len(stack) >= 3 {
		return nil, errCode("push_limit_reached", "a modal stack holds at most 3 views")
	}
	v := &View{ID: s.ids.next("V"), Type: "modal", UserID: user, Hash: s.newHash(), RootViewID: stack[0], PreviousViewID: stack[len(stack)-1]}
	setViewContent(v, raw, obj)
	s.views[v.ID] = v
	s.modals[user] = append(stack, v.ID)
	return v, nil
}

func (s *Server) viewsUpdate(r *apiRequest) (reply, error) {
	var v *View
	if id := r.get("view_id"); id != "" {
		v = s.views[id]
	} else if ext := r.get("external_id"); ext != "" {
		for _, cand := range s.views {
			if cand.ExternalID == ext && !cand.Closed {
				v = cand
			}
		}
	} else {
		return nil, errCode("invalid_arguments", "send view_id or external_id")
	}
	if v == nil || v.Closed {
		return nil, errCode("not_found")
	}
	if h := r.get("hash"); h != "" && h != v.Hash {
		return nil, errCode("hash_conflict")
	}
	raw := r.rawJSON("view")
	obj, err := validateView(raw, v.Type)
	if err != nil {
		return nil, err
	}
	setViewContent(v, raw, obj)
	v.Hash = s.newHash()
	kind := EventViewUpdated
	if v.Type == "home" {
		kind = EventHomePublished
	}
	r.emit(s.viewEvent(kind, v))
	return reply{"view": viewObject(v, nil)}, nil
}

func (s *Server) viewsPublish(r *apiRequest) (reply, error) {
	user := r.get("user_id")
	if _, ok := s.users[user]; !ok {
		return nil, errCode("user_not_found")
	}
	raw := r.rawJSON("view")
	obj, err := validateView(raw, "home")
	if err != nil {
		return nil, err
	}
	v, ok := s.views[s.homes[user]]
	if ok {
		if h := r.get("hash"); h != "" && h != v.Hash {
			return nil, errCode("hash_conflict")
		}
	} else {
		// The home view keeps its id across publishes, as in Slack.
		v = &View{ID: s.ids.next("V"), Type: "home", UserID: user}
		v.RootViewID = v.ID
		s.views[v.ID] = v
		s.homes[user] = v.ID
	}
	setViewContent(v, raw, obj)
	v.Hash = s.newHash()
	r.emit(s.viewEvent(EventHomePublished, v))
	return reply{"view": viewObject(v, nil)}, nil
}

// viewObject renders a view as the API and interaction payloads carry it.
func viewObject(v *View, state map[string]map[string]any) map[string]any {
	o := map[string]any{}
	_ = json.Unmarshal(v.Raw, &o) // validated when stored
	if state == nil {
		state = map[string]map[string]any{}
	}
	maps.Copy(o, map[string]any{
		"id": v.ID, "team_id": TeamID, "type": v.Type, "hash": v.Hash,
		"callback_id": v.CallbackID, "private_metadata": v.PrivateMetadata, "external_id": v.ExternalID,
		"root_view_id": v.RootViewID, "previous_view_id": nilIfEmpty(v.PreviousViewID),
		"app_id": AppID, "bot_id": BotID, "app_installed_team_id": TeamID,
		"state": map[string]any{"values": state},
	})
	if v.Blocks == nil {
		o["blocks"] = []any{}
	}
	return o
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// closeViewLocked closes id and every view pushed above it.
func (s *Server) closeViewLocked(user, id string) []Event {
	stack := s.modals[user]
	var evs []Event
	for i, vid := range stack {
		if vid != id {
			continue
		}
		for _, closing := range stack[i:] {
			s.views[closing].Closed = true
			evs = append(evs, s.viewEvent(EventViewClosed, s.views[closing]))
		}
		s.modals[user] = stack[:i]
		break
	}
	return evs
}

// HomeView is the home tab the bot last published for userID.
func (s *Server) HomeView(userID string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.views[s.homes[userID]]
	if !ok {
		return View{}, false
	}
	return v.clone(), true
}

// OpenViews is userID's stack of open modals, root first.
func (s *Server) OpenViews(userID string) []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []View
	for _, id := range s.modals[userID] {
		out = append(out, s.views[id].clone())
	}
	return out
}

// View finds any view by id, open or closed.
func (s *Server) View(id string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.views[id]
	if !ok {
		return View{}, false
	}
	return v.clone(), true
}
