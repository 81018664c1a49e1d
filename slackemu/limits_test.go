package slackemu

import (
	"encoding/json"
	"strings"
	"testing"
)

// Ensure blocks over Slack's published limits are refused with
// invalid_blocks, counted as Slack must be assumed to (UTF-16 units,
// after escaping), and blocks at the limit pass.
func TestValidateBlocks_PublishedLimits(t *testing.T) {
	section := func(text string) map[string]any {
		return map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": text}}
	}
	button := func(text string) map[string]any {
		return map[string]any{"type": "actions", "elements": []any{map[string]any{
			"type": "button", "action_id": "a", "value": "v", "text": map[string]any{"type": "plain_text", "text": text}}}}
	}
	many := func(n int) []any {
		bs := make([]any, n)
		for i := range bs {
			bs[i] = map[string]any{"type": "divider"}
		}
		return bs
	}
	tests := []struct {
		name   string
		blocks []any
		kind   string
		want   string // "" means accepted; else a JSON pointer in the error
	}{
		{"section at 3000", []any{section(strings.Repeat("a", 3000))}, "message", ""},
		{"section over 3000", []any{section(strings.Repeat("a", 3001))}, "message", "/blocks/0/text/text"},
		{"section over 3000 once escaped", []any{section(strings.Repeat("&amp;", 601))}, "message", "/blocks/0/text/text"},
		{"section over 3000 in UTF-16 units", []any{section(strings.Repeat("😀", 1501))}, "message", "/blocks/0/text/text"},
		{"header at 150", []any{map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": strings.Repeat("h", 150)}}}, "message", ""},
		{"header over 150", []any{map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": strings.Repeat("h", 151)}}}, "message", "/blocks/0/text/text"},
		{"button at 75", []any{button(strings.Repeat("b", 75))}, "message", ""},
		{"button over 75", []any{button(strings.Repeat("b", 76))}, "message", "/blocks/0/elements/0/text/text"},
		{"50 blocks in a message", many(50), "message", ""},
		{"51 blocks in a message", many(51), "message", "/blocks"},
		{"100 blocks in a view", many(100), "view", ""},
		{"101 blocks in a view", many(101), "view", "/blocks"},
		{"context element over 3000", []any{map[string]any{"type": "context", "elements": []any{map[string]any{"type": "mrkdwn", "text": strings.Repeat("c", 3001)}}}}, "message", "/blocks/0/elements/0/text"},
		{"11 context elements", []any{map[string]any{"type": "context", "elements": func() []any {
			var es []any
			for range 11 {
				es = append(es, map[string]any{"type": "mrkdwn", "text": "x"})
			}
			return es
		}()}}, "message", "/blocks/0/elements"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.blocks)
			if err != nil {
				t.Fatal(err)
			}
			err = validateBlocks(raw, tt.kind)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Errorf("accepted; want invalid_blocks at %s", tt.want)
			case tt.want != "":
				se, ok := err.(*slackError)
				if !ok || se.code != "invalid_blocks" || !strings.Contains(strings.Join(se.messages, "\n"), "[json-pointer:"+tt.want+"]") {
					t.Errorf("err=%v %q; want invalid_blocks at %s", err, se.messages, tt.want)
				}
			}
		})
	}
}

// Ensure the limit tables load and hold the rules the emulator relies on.
func TestSlackLimits_Loaded(t *testing.T) {
	lt := slackLimits()
	for _, c := range []struct {
		kind, typ, field string
		want             int
	}{
		{"block", "section", "text", 3000},
		{"block", "header", "text", 150},
		{"element", "button", "text", 75},
		{"message", "", "blocks", 50},
		{"view", "", "blocks", 100},
		{"view", "", "title", 24},
	} {
		if got := lt.max(c.kind, c.typ, c.field, -1); got != c.want {
			t.Errorf("%s %s %s: max %d, want %d", c.kind, c.typ, c.field, got, c.want)
		}
	}
}
