package slackemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"time"
)

// Message is a message as a person sees it: in a channel or DM, or shown
// to them alone (Ephemeral).
type Message struct {
	Channel   string
	TS        string
	ThreadTS  string
	User      string // who posted it: BotUserID for everything the bot sent
	Text      string
	Blocks    json.RawMessage // nil when the message has none
	Metadata  *Metadata
	Files     []string // ids of files shared with the message
	Ephemeral bool
	// Source is how it got there: "chat.postMessage", "chat.postEphemeral",
	// "response_url", "ack" (a slash command's ack payload) or
	// "files.completeUploadExternal".
	Source string
	// LinkNames and Parse are the link_names and parse arguments exactly as
	// sent; empty when the bot did not send them. Either one turns a
	// person's "@here" into a real mention.
	LinkNames string
	Parse     string
	Edits     int       // how many times it was updated
	Edited    string    // the timestamp of the last update
	Posted    time.Time // on the emulator's clock
}

// Metadata is message metadata as chat.postMessage takes it.
type Metadata struct {
	EventType    string          `json:"event_type"`
	EventPayload json.RawMessage `json:"event_payload"`
}

// Buttons lists the buttons in the message, in block order.
func (m Message) Buttons() []Button { return buttonsIn(m.Blocks) }

// Button finds the first button with actionID.
func (m Message) Button(actionID string) (Button, bool) { return findButton(m.Blocks, actionID, "") }

// VisibleText is what a person reads: the text, or the blocks' text when
// there are blocks, with buttons shown as "[label]".
func (m Message) VisibleText() string {
	if t := blocksText(m.Blocks); t != "" {
		return t
	}
	return m.Text
}

func (m Message) clone() Message {
	c := m
	c.Blocks = bytes.Clone(m.Blocks)
	c.Files = append([]string(nil), m.Files...)
	if m.Metadata != nil {
		md := *m.Metadata
		md.EventPayload = bytes.Clone(md.EventPayload)
		c.Metadata = &md
	}
	return c
}

// View is a modal or a home tab as the bot last set it.
type View struct {
	ID              string
	Type            string // "modal" or "home"
	UserID          string
	CallbackID      string
	PrivateMetadata string
	ExternalID      string
	Hash            string
	RootViewID      string
	PreviousViewID  string
	Title           string // plain text of the title
	Blocks          json.RawMessage
	// Errors are the per-block errors from a response_action "errors" ack,
	// as the person sees them under the inputs.
	Errors map[string]string
	Closed bool
	Raw    json.RawMessage // the view object as the bot last sent it
}

// Buttons lists the buttons in the view, in block order.
func (v View) Buttons() []Button { return buttonsIn(v.Blocks) }

// Button finds the first button with actionID.
func (v View) Button(actionID string) (Button, bool) { return findButton(v.Blocks, actionID, "") }

// VisibleText is the text of the view's blocks, with the title first.
func (v View) VisibleText() string {
	t := blocksText(v.Blocks)
	if v.Title != "" {
		return v.Title + "\n" + t
	}
	return t
}

func (v View) clone() View {
	c := v
	c.Blocks = bytes.Clone(v.Blocks)
	c.Raw = bytes.Clone(v.Raw)
	c.Errors = maps.Clone(v.Errors)
	return c
}

// Button is a button element in a message or view.
type Button struct {
	ActionID string
	BlockID  string
	Value    string
	Text     string
	Style    string
	URL      string
}

// File is a file the bot uploaded.
type File struct {
	ID       string
	Name     string
	Title    string
	Length   int    // as announced to files.getUploadURLExternal
	Content  []byte // as uploaded
	Channels []string
	Uploaded bool
	Shared   bool
}

func (f File) clone() File {
	c := f
	c.Content = bytes.Clone(f.Content)
	c.Channels = append([]string(nil), f.Channels...)
	return c
}

// Call is one Web API call (or response_url / upload POST) as the emulator
// saw it.
type Call struct {
	Method string
	Form   url.Values     // form-encoded arguments; nil for JSON bodies
	JSON   map[string]any // a JSON body, decoded; nil for forms
	Token  string
	Time   time.Time // on the emulator's clock
	Status int       // HTTP status answered; 0 when the connection was dropped
	Error  string    // the Slack error answered, or what the fault did
}

// Param is an argument by name from either kind of body; JSON values that
// are not strings come back as JSON text.
func (c Call) Param(name string) string {
	if c.Form != nil {
		return c.Form.Get(name)
	}
	v, ok := c.JSON[name]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v) // decoded JSON always re-encodes
	return string(b)
}

// Ack is the bot's answer to one envelope.
type Ack struct {
	EnvelopeID string
	Type       string          // the envelope's type
	Payload    json.RawMessage // nil when the ack carried none
	Latency    time.Duration   // from the envelope's frame written to the ack read
	Conn       int             // the connection it came on, numbered from 1 in the order they connected
	// Problem says what Slack would have refused or ignored in the payload
	// (a reply it would reject, an invalid response_action); empty when fine.
	Problem string
}

// Delivery is one envelope frame the emulator wrote: a first send or a
// resend.
type Delivery struct {
	EnvelopeID   string
	Type         string
	Conn         int // the connection it went out on, numbered as Ack.Conn
	RetryAttempt int
	RetryReason  string
}

// Envelope is a Socket Mode envelope as it goes over the wire.
type Envelope struct {
	ID                     string // envelope_id; generated when empty
	Type                   string // "slash_commands", "interactive" or "events_api"
	Payload                json.RawMessage
	AcceptsResponsePayload bool
	RetryAttempt           int
	RetryReason            string
	// Raw, when set, is written as the frame verbatim instead of the fields
	// above (ID still names it for matching the ack), to test malformed input.
	Raw []byte
}

func (e Envelope) frame() ([]byte, error) {
	if e.Raw != nil {
		return e.Raw, nil
	}
	payload := e.Payload
	if payload == nil {
		payload = json.RawMessage("{}")
	}
	b, err := json.Marshal(map[string]any{
		"envelope_id":              e.ID,
		"type":                     e.Type,
		"payload":                  payload,
		"accepts_response_payload": e.AcceptsResponsePayload,
		"retry_attempt":            e.RetryAttempt,
		"retry_reason":             e.RetryReason,
	})
	if err != nil {
		return nil, fmt.Errorf("slackemu: encode envelope %s: %w", e.ID, err)
	}
	return b, nil
}

// EventKind says what an Event is about.
type EventKind string

// The kinds of Event.
const (
	EventDM             EventKind = "dm"             // the bot posted in a person's DM
	EventMessage        EventKind = "message"        // the bot posted in a channel
	EventUpdated        EventKind = "updated"        // a message changed
	EventDeleted        EventKind = "deleted"        // a message went away
	EventEphemeral      EventKind = "ephemeral"      // shown to one person only
	EventViewOpened     EventKind = "view_opened"    // a modal opened or was pushed
	EventViewUpdated    EventKind = "view_updated"   // a modal changed
	EventViewClosed     EventKind = "view_closed"    // a modal closed
	EventHomePublished  EventKind = "home_published" // a home tab was (re)published
	EventFileShared     EventKind = "file_shared"    // a file was shared
	EventPersonAction   EventKind = "person"         // a person did something (driver)
	EventViewErrorShown EventKind = "view_error"     // a modal shows input errors
)

// Event is one line of the transcript OnEvent receives.
type Event struct {
	Time    time.Time
	Kind    EventKind
	User    string // the person it concerns, if any
	Channel string
	Text    string   // what the person saw or did, as plain text
	Message *Message // the message, for message kinds
	View    *View    // the view, for view kinds
}

// String is a one-line, readable transcript entry.
func (e Event) String() string {
	who := e.User
	if who == "" {
		who = e.Channel
	}
	text := strings.ReplaceAll(strings.TrimSpace(e.Text), "\n", " ⏎ ")
	switch e.Kind {
	case EventPersonAction:
		return fmt.Sprintf("%s: %s", who, text)
	case EventDM, EventEphemeral, EventMessage:
		return fmt.Sprintf("bot → %s (%s): %s", who, e.Kind, text)
	default:
		return fmt.Sprintf("[%s] %s: %s", e.Kind, who, text)
	}
}

// blocksText flattens Block Kit into readable lines.
func blocksText(raw json.RawMessage) string {
	var blocks []map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &blocks) != nil {
		return ""
	}
	var lines []string
	for _, b := range blocks {
		switch b["type"] {
		case "section", "header":
			if t := textOf(b["text"]); t != "" {
				lines = append(lines, t)
			}
			if fields, ok := b["fields"].([]any); ok {
				for _, f := range fields {
					lines = append(lines, textOf(f))
				}
			}
			if acc, ok := b["accessory"].(map[string]any); ok && acc["type"] == "button" {
				lines = append(lines, "["+textOf(acc["text"])+"]")
			}
		case "context":
			var parts []string
			if els, ok := b["elements"].([]any); ok {
				for _, el := range els {
					if t := textOf(el); t != "" {
						parts = append(parts, t)
					}
				}
			}
			if len(parts) > 0 {
				lines = append(lines, strings.Join(parts, " "))
			}
		case "actions":
			var parts []string
			if els, ok := b["elements"].([]any); ok {
				for _, el := range els {
					if m, ok := el.(map[string]any); ok {
						parts = append(parts, "["+textOf(m["text"])+"]")
					}
				}
			}
			lines = append(lines, strings.Join(parts, " "))
		case "input":
			lines = append(lines, textOf(b["label"])+": ____")
		case "divider":
			lines = append(lines, "———")
		}
	}
	return strings.Join(lines, "\n")
}

func textOf(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	s, _ := m["text"].(string)
	return s
}

// blockElements calls fn for each interactive element with its block id.
func blockElements(raw json.RawMessage, fn func(blockID string, blockType string, block, el map[string]any)) {
	var blocks []map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &blocks) != nil {
		return
	}
	for _, b := range blocks {
		id, _ := b["block_id"].(string)
		typ, _ := b["type"].(string)
		if acc, ok := b["accessory"].(map[string]any); ok {
			fn(id, typ, b, acc)
		}
		if el, ok := b["element"].(map[string]any); ok {
			fn(id, typ, b, el)
		}
		if els, ok := b["elements"].([]any); ok && typ == "actions" {
			for _, e := range els {
				if m, ok := e.(map[string]any); ok {
					fn(id, typ, b, m)
				}
			}
		}
	}
}

func buttonsIn(raw json.RawMessage) []Button {
	var out []Button
	blockElements(raw, func(blockID, _ string, _, el map[string]any) {
		if el["type"] != "button" {
			return
		}
		b := Button{BlockID: blockID, Text: textOf(el["text"])}
		b.ActionID, _ = el["action_id"].(string)
		b.Value, _ = el["value"].(string)
		b.Style, _ = el["style"].(string)
		b.URL, _ = el["url"].(string)
		out = append(out, b)
	})
	return out
}

// findButton finds a button by action id and, when value is not empty, by
// value too (several buttons may share an action id across blocks).
func findButton(raw json.RawMessage, actionID, value string) (Button, bool) {
	for _, b := range buttonsIn(raw) {
		if b.ActionID == actionID && (value == "" || b.Value == value) {
			return b, true
		}
	}
	return Button{}, false
}
