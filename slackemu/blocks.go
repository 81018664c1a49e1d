package slackemu

import (
	"encoding/json"
	"fmt"
	"strings"
)

// validateBlocks checks blocks the way Slack does: their structure, and
// every published length and count limit (see slackLimits), counted in
// UTF-16 units after the bot's escaping. Problems come back as Slack
// words them, with a JSON pointer. kind is "message" or "view", whose
// block counts differ.
func validateBlocks(raw json.RawMessage, kind string) error {
	lt := slackLimits()
	maxBlocks := lt.max(kind, "", "blocks", 50)
	var blocks []map[string]any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return errCode("invalid_blocks", "[ERROR] blocks must be a JSON array of objects: "+err.Error())
	}
	var v blockChecker
	if len(blocks) > maxBlocks {
		v.fail("/blocks", fmt.Sprintf("no more than %d items allowed, got %d", maxBlocks, len(blocks)))
	}
	seenBlocks := map[string]bool{}
	for i, b := range blocks {
		at := fmt.Sprintf("/blocks/%d", i)
		typ, _ := b["type"].(string)
		if typ == "" {
			v.fail(at, "missing required field: type")
			continue
		}
		if id, ok := b["block_id"].(string); ok {
			if seenBlocks[id] {
				v.fail(at+"/block_id", fmt.Sprintf("duplicate block_id %q", id))
			}
			seenBlocks[id] = true
		}
		lt.check(&v, at, "block", typ, b)
		lt.checkTree(&v, at, b, "none")
		switch typ {
		case "section":
			_, hasText := b["text"]
			fields, _ := b["fields"].([]any)
			if !hasText && len(fields) == 0 {
				v.fail(at, "a section needs text or fields")
			}
			if hasText {
				v.text(at+"/text", b["text"], false)
			}
			for j, f := range fields {
				v.text(fmt.Sprintf("%s/fields/%d", at, j), f, false)
			}
		case "header":
			v.text(at+"/text", b["text"], true)
		case "actions":
			els, _ := b["elements"].([]any)
			if len(els) == 0 {
				v.fail(at+"/elements", "must have at least 1 element")
			}
			seenActions := map[string]bool{}
			for j, e := range els {
				el, _ := e.(map[string]any)
				v.element(fmt.Sprintf("%s/elements/%d", at, j), el, seenActions)
			}
		case "context":
			if els, _ := b["elements"].([]any); len(els) == 0 {
				v.fail(at+"/elements", "must have at least 1 element")
			}
		case "input":
			v.text(at+"/label", b["label"], true)
			el, ok := b["element"].(map[string]any)
			if !ok {
				v.fail(at+"/element", "missing required field: element")
			} else {
				v.element(at+"/element", el, map[string]bool{})
			}
		}
		if acc, ok := b["accessory"].(map[string]any); ok {
			v.element(at+"/accessory", acc, map[string]bool{})
		}
	}
	if len(v.problems) > 0 {
		return errCode("invalid_blocks", v.problems...)
	}
	return nil
}

type blockChecker struct{ problems []string }

func (v *blockChecker) fail(at, msg string) {
	v.problems = append(v.problems, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", msg, at))
}

// text checks a text object's shape; its length is the limit tables'.
func (v *blockChecker) text(at string, obj any, plainOnly bool) {
	m, ok := obj.(map[string]any)
	if !ok {
		v.fail(at, "must be a text object")
		return
	}
	typ, _ := m["type"].(string)
	switch {
	case typ == "plain_text":
	case typ == "mrkdwn" && !plainOnly:
	case plainOnly:
		v.fail(at+"/type", fmt.Sprintf("must be plain_text, got %q", typ))
	default:
		v.fail(at+"/type", fmt.Sprintf("must be plain_text or mrkdwn, got %q", typ))
	}
	if text, _ := m["text"].(string); text == "" {
		v.fail(at+"/text", "must be at least 1 character")
	}
}

func (v *blockChecker) element(at string, el map[string]any, seen map[string]bool) {
	if el == nil {
		v.fail(at, "must be an object")
		return
	}
	typ, _ := el["type"].(string)
	if typ == "" {
		v.fail(at, "missing required field: type")
		return
	}
	if id, ok := el["action_id"].(string); ok {
		if seen[id] {
			v.fail(at+"/action_id", fmt.Sprintf("duplicate action_id %q", id))
		}
		seen[id] = true
	}
	if typ == "button" {
		v.text(at+"/text", el["text"], true)
	}
}

// validateView checks a view object for views.open/push/update/publish and
// returns it decoded.
func validateView(raw json.RawMessage, wantType string) (map[string]any, error) {
	var view map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &view) != nil {
		return nil, errCode("invalid_arguments", "[ERROR] view must be a JSON object [json-pointer:/view]")
	}
	typ, _ := view["type"].(string)
	if wantType != "" && typ != wantType {
		return nil, errCode("invalid_arguments", fmt.Sprintf("[ERROR] view type must be %q, got %q [json-pointer:/view/type]", wantType, typ))
	}
	var v blockChecker
	if typ == "modal" {
		v.text("/view/title", view["title"], true)
		for _, k := range []string{"close", "submit"} {
			if t, ok := view[k]; ok && t != nil {
				v.text("/view/"+k, t, true)
			}
		}
	}
	// The block count is validateBlocks' to check, with the rest.
	fields := make(map[string]any, len(view))
	for k, val := range view {
		if k != "blocks" {
			fields[k] = val
		}
	}
	slackLimits().check(&v, "/view", "view", "", fields)
	blocks, _ := json.Marshal(view["blocks"])
	if view["blocks"] == nil {
		blocks = []byte("[]")
	}
	if err := validateBlocks(blocks, "view"); err != nil {
		if se, ok := err.(*slackError); ok {
			for _, p := range se.messages {
				v.problems = append(v.problems, strings.Replace(p, "json-pointer:/blocks", "json-pointer:/view/blocks", 1))
			}
		}
	}
	if typ == "modal" && view["submit"] == nil && strings.Contains(string(blocks), `"type":"input"`) {
		v.fail("/view/submit", "a modal with input blocks needs a submit button")
	}
	if len(v.problems) > 0 {
		return nil, errCode("invalid_arguments", v.problems...)
	}
	return view, nil
}

// stateValues builds view.state.values the way Slack does from what a
// person entered: values is block_id → action_id → what they typed or
// chose (option values, comma-separated for multi-selects). Every input in
// the view is present, empty ones as null, and a required input left empty
// is refused as the Slack client would.
func stateValues(blocks json.RawMessage, values map[string]map[string]string) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	used := map[string]bool{}
	var problems []string
	blockElements(blocks, func(blockID, blockType string, block, el map[string]any) {
		actionID, _ := el["action_id"].(string)
		typ, _ := el["type"].(string)
		v, given := values[blockID][actionID]
		if given {
			used[blockID+"/"+actionID] = true
		}
		if blockType != "input" && !given {
			return // only inputs are always reported
		}
		if blockType == "input" && block["optional"] != true && (!given || v == "") {
			problems = append(problems, fmt.Sprintf("required input %s/%s is empty", blockID, actionID))
		}
		state, err := elementState(typ, el, v, given && v != "")
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s/%s: %v", blockID, actionID, err))
			return
		}
		if out[blockID] == nil {
			out[blockID] = map[string]any{}
		}
		out[blockID][actionID] = state
	})
	for blockID, acts := range values {
		for actionID := range acts {
			if !used[blockID+"/"+actionID] {
				problems = append(problems, fmt.Sprintf("the view has no element %s/%s", blockID, actionID))
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("slackemu: cannot submit: %s", strings.Join(problems, "; "))
	}
	return out, nil
}

func elementState(typ string, el map[string]any, v string, set bool) (map[string]any, error) {
	st := map[string]any{"type": typ}
	option := func(val string) (any, error) {
		if o, ok := findOption(el, val); ok {
			return o, nil
		}
		return nil, fmt.Errorf("no option with value %q", val)
	}
	switch typ {
	case "static_select", "radio_buttons", "external_select":
		st["selected_option"] = nil
		if set {
			o, err := option(v)
			if err != nil {
				return nil, err
			}
			st["selected_option"] = o
		}
	case "checkboxes", "multi_static_select", "multi_external_select":
		opts := []any{}
		if set {
			for _, val := range strings.Split(v, ",") {
				o, err := option(strings.TrimSpace(val))
				if err != nil {
					return nil, err
				}
				opts = append(opts, o)
			}
		}
		st["selected_options"] = opts
	case "datepicker":
		st["selected_date"] = nullable(v, set)
	case "timepicker":
		st["selected_time"] = nullable(v, set)
	case "users_select":
		st["selected_user"] = nullable(v, set)
	case "conversations_select":
		st["selected_conversation"] = nullable(v, set)
	case "channels_select":
		st["selected_channel"] = nullable(v, set)
	case "multi_users_select", "multi_conversations_select", "multi_channels_select":
		list := []string{}
		if set {
			list = strings.Split(v, ",")
		}
		key := map[string]string{"multi_users_select": "selected_users", "multi_conversations_select": "selected_conversations", "multi_channels_select": "selected_channels"}[typ]
		st[key] = list
	default: // plain_text_input, number_input, email_text_input, url_text_input, …
		st["value"] = nullable(v, set)
	}
	return st, nil
}

func nullable(v string, set bool) any {
	if !set {
		return nil
	}
	return v
}

func findOption(el map[string]any, value string) (map[string]any, bool) {
	var lists [][]any
	if opts, ok := el["options"].([]any); ok {
		lists = append(lists, opts)
	}
	if groups, ok := el["option_groups"].([]any); ok {
		for _, g := range groups {
			if gm, ok := g.(map[string]any); ok {
				if opts, ok := gm["options"].([]any); ok {
					lists = append(lists, opts)
				}
			}
		}
	}
	for _, opts := range lists {
		for _, o := range opts {
			if om, ok := o.(map[string]any); ok && om["value"] == value {
				return om, true
			}
		}
	}
	if _, ok := el["options"]; !ok && el["option_groups"] == nil {
		// External selects have no options in the view; echo the value.
		return map[string]any{"value": value, "text": map[string]any{"type": "plain_text", "text": value}}, true
	}
	return nil, false
}
