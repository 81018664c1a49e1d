package slackemu

import (
	"embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf16"
)

// Slack's published length and count limits, copied from
// shared/reference/slack-artefacts: every rule python-slack-sdk's Block
// Kit and view models enforce, and the few they do not (blocks per
// message, text objects), each with its source. The emulator refuses
// what breaks them with invalid_blocks, as Slack does, so a bot that
// passes here does not trip them in a real workspace.
//
//go:embed limits/*.json
var limitFiles embed.FS

// limitRule is one rule of the limit tables.
type limitRule struct {
	Kind     string `json:"kind"`  // block, element, option, option_group, confirm, view, message, text
	Type     string `json:"type"`  // the block or element type, "" for the other kinds
	Field    string `json:"field"` // the field measured
	Measure  string `json:"measure"`
	Min      *int   `json:"min"`
	Max      *int   `json:"max"`
	Severity string `json:"severity"` // "warning" rules are not enforced
	From     string `json:"from"`
}

type limitTable struct {
	rules map[string][]limitRule // kind "/" type → rules
}

var (
	limitsOnce sync.Once
	limits     limitTable
)

// slackLimits loads the tables once. They are part of the binary, so a
// table that does not parse is a bug in this package: it panics.
func slackLimits() limitTable {
	limitsOnce.Do(func() {
		limits = limitTable{rules: map[string][]limitRule{}}
		for _, name := range []string{"limits/limits.python-slack-sdk.json", "limits/limits.supplement.json"} {
			raw, err := limitFiles.ReadFile(name)
			if err != nil {
				panic(fmt.Sprintf("slackemu: %s: %v", name, err))
			}
			var f struct {
				Rules []limitRule `json:"rules"`
			}
			if err := json.Unmarshal(raw, &f); err != nil {
				panic(fmt.Sprintf("slackemu: %s: %v", name, err))
			}
			for _, r := range f.Rules {
				if r.Severity == "warning" {
					continue
				}
				k := r.Kind + "/" + r.Type
				limits.rules[k] = append(limits.rules[k], r)
			}
		}
	})
	return limits
}

// max returns the limit on field for kind and type, or def if the tables
// have none.
func (t limitTable) max(kind, typ, field string, def int) int {
	for _, r := range t.rules[kind+"/"+typ] {
		if r.Field == field && r.Max != nil {
			return *r.Max
		}
	}
	return def
}

// slackLen counts s as Slack must be assumed to: it does not say whether
// it counts code points or UTF-16 units, so the larger, UTF-16.
func slackLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// check applies the rules for kind and typ to obj, at JSON pointer at.
func (t limitTable) check(v *blockChecker, at, kind, typ string, obj map[string]any) {
	for _, r := range t.rules[kind+"/"+typ] {
		if r.Measure == "each-text" {
			list, _ := obj[strings.TrimSuffix(r.Field, "[].text")].([]any)
			for i, item := range list {
				t.measure(v, fmt.Sprintf("%s/%s/%d/text", at, strings.TrimSuffix(r.Field, "[].text"), i), "text", item, r)
			}
			continue
		}
		val, ok := obj[r.Field]
		if !ok || val == nil {
			continue
		}
		t.measure(v, at+"/"+r.Field, r.Measure, val, r)
	}
}

func (t limitTable) measure(v *blockChecker, at, measure string, val any, r limitRule) {
	var n int
	var unit string
	switch measure {
	case "string":
		s, _ := val.(string)
		n, unit = slackLen(s), "characters"
	case "text":
		m, _ := val.(map[string]any)
		s, _ := m["text"].(string)
		at += "/text"
		n, unit = slackLen(s), "characters"
	case "count":
		list, _ := val.([]any)
		n, unit = len(list), "items"
	case "number":
		f, _ := val.(float64)
		n, unit = int(f), ""
	default:
		return
	}
	switch {
	case r.Max != nil && n > *r.Max && unit == "items":
		v.fail(at, fmt.Sprintf("no more than %d items allowed, got %d", *r.Max, n))
	case r.Max != nil && n > *r.Max && unit == "characters":
		v.fail(at, fmt.Sprintf("must be less than %d characters, got %d", *r.Max+1, n))
	case r.Max != nil && n > *r.Max:
		v.fail(at, fmt.Sprintf("must be at most %d, got %d", *r.Max, n))
	case r.Min != nil && n < *r.Min && unit == "items":
		v.fail(at, fmt.Sprintf("at least %d items required, got %d", *r.Min, n))
	case r.Min != nil && n < *r.Min:
		v.fail(at, fmt.Sprintf("must be at least %d %s, got %d", *r.Min, unit, n))
	}
}

// checkTree applies the element, option, option group, confirm and text
// rules to everything nested in obj: accessories, elements, options,
// confirm dialogs and every text object, wherever they sit.
func (t limitTable) checkTree(v *blockChecker, at string, obj map[string]any, kind string) {
	typ, _ := obj["type"].(string)
	switch {
	case kind == "" && (typ == "plain_text" || typ == "mrkdwn"):
		t.check(v, at, "text", "", obj)
		return
	case kind != "":
		t.check(v, at, kind, typ, obj)
	}
	keys := make([]string, 0, len(obj))
	for key := range obj {
		keys = append(keys, key)
	}
	sort.Strings(keys) // problems in a stable order
	for _, key := range keys {
		val := obj[key]
		child := at + "/" + key
		switch c := val.(type) {
		case map[string]any:
			t.checkTree(v, child, c, childKind(key, c))
		case []any:
			for i, item := range c {
				if m, ok := item.(map[string]any); ok {
					t.checkTree(v, fmt.Sprintf("%s/%d", child, i), m, childKind(key, m))
				}
			}
		}
	}
}

// childKind says what rules apply to a value found under key.
func childKind(key string, obj map[string]any) string {
	typ, _ := obj["type"].(string)
	switch {
	case typ == "plain_text" || typ == "mrkdwn":
		return "" // a text object: the text rules
	case key == "confirm":
		return "confirm"
	case key == "options" || key == "initial_option" || key == "initial_options":
		return "option"
	case key == "option_groups":
		return "option_group"
	case key == "accessory" || key == "element" || key == "elements":
		if typ == "" {
			return "none"
		}
		return "element"
	}
	return "none"
}
