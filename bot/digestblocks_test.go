package bot

import (
	"encoding/json"
	"fmt"
	"html"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/nudges"
)

// digestTexts decodes blocks as Slack would receive them and returns
// every text object in them.
func digestTexts(t *testing.T, blocks []slack.Block) []map[string]any {
	t.Helper()
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatalf("marshal blocks: %v", err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("unmarshal blocks: %v", err)
	}
	var out []map[string]any
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ty, _ := v["type"].(string); ty == "mrkdwn" || ty == "plain_text" {
				out = append(out, v)
				return
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}

// checkDigestLimits fails the test for any message over Slack's limits,
// counted independently of the renderer's own bookkeeping.
func checkDigestLimits(t *testing.T, msgs [][]slack.Block) {
	t.Helper()
	if len(msgs) == 0 || len(msgs) > maxDigestMessages {
		t.Fatalf("%d messages, want 1 to %d", len(msgs), maxDigestMessages)
	}
	for i, m := range msgs {
		if len(m) > maxDigestBlocks {
			t.Errorf("message %d has %d blocks, want at most %d", i, len(m), maxDigestBlocks)
		}
		total := 0
		for _, obj := range digestTexts(t, m) {
			s, _ := obj["text"].(string)
			if !utf8.ValidString(s) {
				t.Errorf("message %d: invalid UTF-8 in %q", i, s)
			}
			total += textLen(s)
		}
		if total > 10_000 {
			t.Errorf("message %d has %d characters of text, want at most 10,000", i, total)
		}
		for j, b := range m {
			if s, ok := b.(*slack.SectionBlock); ok {
				if n := textLen(s.Text.Text); n > maxSectionText || utf8.RuneCountInString(s.Text.Text) > maxSectionText {
					t.Errorf("message %d block %d: section text of %d characters, want at most %d", i, j, n, maxSectionText)
				}
			}
			if h, ok := b.(*slack.HeaderBlock); ok && textLen(h.Text.Text) > maxHeaderText {
				t.Errorf("message %d: header of %d characters", i, textLen(h.Text.Text))
			}
		}
	}
}

// shownReflections counts the quoted reflections in msgs and finds the
// "…and N more" count, if any.
func shownReflections(msgs [][]slack.Block) (shown, more int) {
	for _, m := range msgs {
		for _, b := range m {
			switch b := b.(type) {
			case *slack.SectionBlock:
				if strings.HasPrefix(b.Text.Text, ">") {
					shown++
				}
			case *slack.ContextBlock:
				for _, e := range b.ContextElements.Elements {
					if t, ok := e.(*slack.TextBlockObject); ok {
						// Only the "…and N more shared" line scans; the
						// other context lines are not counts.
						if n, ok := scanMore(t.Text, "…and %d more shared"); ok {
							more = n
						}
					}
				}
			}
		}
	}
	return shown, more
}

func fullDigest(n int, text func(i int) string) nudges.Digest {
	d := nudges.Digest{
		Channel: "C1", From: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC),
		Members: n, Received: 5 * n, ReceivedShown: true, ActedOn: 3 * n, ActedOnShown: true,
		StrategyUpdates: n, StrategyShown: true,
		TopThemes: []nudges.ThemeCount{{Theme: nudges.ThemeChange, Count: 40}, {Theme: nudges.ThemeLeading, Count: 30}},
		Streaks:   nudges.StreakSummary{Shown: true, Members: 12},
		Pulse: nudges.PulseSection{Held: true, Responses: n, Average: 3.8, AverageShown: true, Sparkline: "▃▄·▅▆",
			HearMore: []string{"the roadmap", "hiring"}},
		Suppressed: []string{"Themes fewer than 3 people practised are not listed."},
	}
	for i := range n {
		author := ""
		if i%2 == 0 {
			author = fmt.Sprintf("U%07d", i)
		}
		d.SharedReflections = append(d.SharedReflections, nudges.SharedLine{AuthorID: author, Text: text(i), Nudge: "Tell one person why today's work matters."})
	}
	return d
}

// Ensure every message stays within Slack's limits, however much the
// team shares, and that what does not fit is counted.
func TestDigestMessages_Limits(t *testing.T) {
	long := func(unit string) func(int) string {
		return func(i int) string {
			s := fmt.Sprintf("%d: ", i)
			for utf8.RuneCountInString(s)+utf8.RuneCountInString(unit) <= nudges.MaxReflectionLen {
				s += unit
			}
			return s
		}
	}
	tests := map[string]struct {
		digest  nudges.Digest
		minMsgs int
		allShow bool
	}{
		"80 short reflections": {
			digest: fullDigest(80, func(i int) string {
				return fmt.Sprintf("Reflection %d: we named the one decision we are waiting on.", i)
			}),
			minMsgs: 3, allShow: true,
		},
		"80 long reflections": {
			digest:  fullDigest(80, long("We talked about the plan for Q3 and why it matters. ")),
			minMsgs: maxDigestMessages,
		},
		"80 reflections that grow when escaped": {
			digest:  fullDigest(80, long("<&>")),
			minMsgs: maxDigestMessages,
		},
		"80 reflections of emoji and lines": {
			digest:  fullDigest(80, long("👩🏽‍💻 ok 🇩🇪\n")),
			minMsgs: maxDigestMessages,
		},
		"nothing to show": {
			digest:  nudges.Digest{Channel: "C1"},
			minMsgs: 1, allShow: true,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			msgs := digestMessages(tt.digest, "team-leads")
			checkDigestLimits(t, msgs)
			if len(msgs) < tt.minMsgs {
				t.Errorf("%d messages, want at least %d", len(msgs), tt.minMsgs)
			}
			shown, more := shownReflections(msgs)
			if want := len(tt.digest.SharedReflections); shown+more != want {
				t.Errorf("%d reflections shown and %d counted as more, want %d in all", shown, more, want)
			}
			if tt.allShow && more != 0 {
				t.Errorf("%d reflections left out, want all shown", more)
			}
			if h, ok := msgs[0][0].(*slack.HeaderBlock); !ok || !strings.Contains(h.Text.Text, "#team-leads") {
				t.Errorf("first block=%#v, want a header naming the channel", msgs[0][0])
			}
			for i, m := range msgs[1:] {
				c, ok := m[0].(*slack.ContextBlock)
				if !ok || !strings.Contains(c.ContextElements.Elements[0].(*slack.TextBlockObject).Text, "continued") {
					t.Errorf("message %d does not start by saying it continues the digest", i+1)
				}
			}
		})
	}
}

// Ensure user text can mention nobody, reverse no text, and keeps the
// characters people typed.
func TestDigestMessages_Escaping(t *testing.T) {
	d := nudges.Digest{
		Channel: "C1", Members: 5,
		SharedReflections: []nudges.SharedLine{
			{AuthorID: "<@U2> Bob\u2066", Text: "<!channel> ask <@U1> about &amp; \u202Eevil\u202C", Nudge: "Plan <today> & tomorrow"},
			{AuthorID: "", Text: "<!here|here> \u200Fhidden\u200E & <#C1>"},
		},
		Pulse: nudges.PulseSection{Held: true, Responses: 3, AverageShown: true, Average: 4,
			HearMore: []string{"<!everyone> & more\u202E", "\u2067<https://evil.example|click>"}},
	}
	msgs := digestMessages(d, "leads\u202E")
	var all strings.Builder
	for _, m := range msgs {
		for _, obj := range digestTexts(t, m) {
			if obj["type"] == "mrkdwn" && obj["verbatim"] != true {
				t.Errorf("mrkdwn text %q is not verbatim", obj["text"])
			}
			all.WriteString(obj["text"].(string))
			all.WriteString("\n")
		}
	}
	got := all.String()
	for _, bad := range []string{"<!channel>", "<@U1>", "<@U2>", "<!here", "<!everyone>", "<#C1>", "<https://", "\u202E", "\u202C", "\u2066", "\u2067", "\u200F", "\u200E"} {
		if strings.Contains(got, bad) {
			t.Errorf("digest text contains %q:\n%s", bad, got)
		}
	}
	for _, want := range []string{"&lt;!channel&gt;", "&lt;@U1&gt;", "&amp;amp;", "&lt;!everyone&gt; &amp; more", "Plan &lt;today&gt; &amp; tomorrow", "evil", "#leads"} {
		if !strings.Contains(got, want) {
			t.Errorf("digest text lacks %q:\n%s", want, got)
		}
	}
}

func TestDigestMessages_Figures(t *testing.T) {
	tests := map[string]struct {
		digest    nudges.Digest
		want, not []string
	}{
		"all shown": {
			digest: fullDigest(4, func(int) string { return "x" }),
			want:   []string{"*20* nudges received", "*12* acted on", "*4* strategy updates", "*12* people on a streak of 3 or more", "1. Leading change · 40 nudges acted on", "*3.8* out of 5, from 4 answers", "`▃▄·▅▆`", "fewer than 3 answers", "• hiring", "No figure describes fewer than 3 people. Themes fewer"},
		},
		"withheld": {
			digest: nudges.Digest{Members: 2, Received: 0, Pulse: nudges.PulseSection{Held: true, Responses: 2, Sparkline: "·"},
				Suppressed: []string{"Nudges acted on are not shown: fewer than 3 people acted on one."}},
			want: []string{"Too few people took part", "fewer than 3 subscribers", "2 answers. The average is shown once at least 3 people answer", "Nudges acted on are not shown"},
			not:  []string{"received", "acted on*", "out of 5", "streak", "Shared reflections", "2 subscribers"},
		},
		"one of each": {
			digest: nudges.Digest{Members: 9, Received: 1, ReceivedShown: true, StrategyUpdates: 1, StrategyShown: true, Pulse: nudges.PulseSection{Held: true}},
			want:   []string{"*1* nudge received", "*1* strategy update:", "Nobody answered this time", "9 subscribers"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var all strings.Builder
			for _, m := range digestMessages(tt.digest, "leads") {
				for _, obj := range digestTexts(t, m) {
					all.WriteString(obj["text"].(string) + "\n")
				}
			}
			got := all.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("digest lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("digest contains %q:\n%s", n, got)
				}
			}
		})
	}
}

// Ensure a long list of suggestions is trimmed with a count, inside one
// section.
func TestHearMoreText(t *testing.T) {
	tests := map[string]struct {
		items    []string
		wantMore int
	}{
		"few":           {[]string{"a", "b"}, 0},
		"many":          {make([]string, 40), 40 - maxHearMoreShown},
		"long and many": {repeatString(strings.Repeat("&", nudges.MaxHearMoreLen), 15), 6},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := hearMoreText(tt.items)
			if n := textLen(got); n > maxSectionText {
				t.Errorf("text of %d characters, want at most %d", n, maxSectionText)
			}
			more := 0
			if i := strings.Index(got, "…and "); i >= 0 {
				n, ok := scanMore(got[i:], "…and %d more")
				if !ok {
					t.Fatalf("no count after \"…and\" in:\n%s", got)
				}
				more = n
			}
			if more != tt.wantMore {
				t.Errorf("…and %d more, want %d:\n%s", more, tt.wantMore, got)
			}
			if shown := strings.Count(got, "\n• "); shown+more != len(tt.items) {
				t.Errorf("%d shown + %d more, want %d", shown, more, len(tt.items))
			}
		})
	}
}

func repeatString(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// Ensure cutting never splits a grapheme, an escape entity or the budget.
func TestFitEscaped(t *testing.T) {
	graphemes := map[string][]string{
		"ascii":          {"a", "b", "c", "d", "e", "f"},
		"family":         {"x", "👩\u200D👩\u200D👧\u200D👦", "y", "👩\u200D👩\u200D👧\u200D👦"},
		"skin tones":     {"👍🏽", "👋🏿", "a", "🧑🏻\u200D🚀"},
		"flags":          {"🇩🇪", "🇫🇷", "🇯🇵", "a", "🇺🇸"},
		"variation":      {"❤️", "☺️", "1️⃣", "#️⃣"},
		"accents":        {"e\u0301", "n\u0303", "a\u0308\u0304", "o"},
		"tag flag":       {"🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", "b"},
		"escapes":        {"&", "<", ">", "a", "&", "&"},
		"mixed and long": {"S", "h", "i", "p", " ", "🚢", " ", "&", " ", "❤️", " ", "👩🏽\u200D💻", "\n", "🇩🇪"},
	}
	for name, gs := range graphemes {
		t.Run(name, func(t *testing.T) {
			s := strings.Join(gs, "")
			full := Escape(s)
			for max := 0; max <= textLen(full)+1; max++ {
				got := fitEscaped(s, max, false)
				if n := textLen(got); n > max {
					t.Fatalf("fitEscaped(%q, %d)=%q of length %d", s, max, got, n)
				}
				if max >= textLen(full) {
					if got != full {
						t.Fatalf("fitEscaped(%q, %d)=%q, want it whole", s, max, got)
					}
					continue
				}
				kept, ok := strings.CutSuffix(got, "…")
				if !ok && got != "" {
					t.Fatalf("fitEscaped(%q, %d)=%q, want a cut marked with …", s, max, got)
				}
				raw := html.UnescapeString(kept)
				if Escape(raw) != kept {
					t.Fatalf("fitEscaped(%q, %d)=%q cuts an entity", s, max, got)
				}
				prefix := ""
				for _, g := range gs {
					if prefix == raw || !strings.HasPrefix(raw, prefix+g) {
						break
					}
					prefix += g
				}
				if prefix != raw {
					t.Fatalf("fitEscaped(%q, %d) kept %q, which splits a grapheme", s, max, raw)
				}
			}
		})
	}
}

// Ensure a quoted text counts the ">" added after each newline.
func TestFitEscaped_Quoted(t *testing.T) {
	s := strings.Repeat("a\n", 2000)
	got := fitEscaped(s, 1000, true)
	quoted := ">" + strings.ReplaceAll(got, "\n", "\n>")
	if n := textLen(quoted); n > 1001 {
		t.Errorf("quoted text of %d characters, want at most 1001", n)
	}
}

func TestCleanText(t *testing.T) {
	tests := map[string]string{
		"plain":                     "plain",
		"a\u202Eb\u202Cc":           "abc",
		"\u2066x\u2069\u200F\u061C": "x",
		"keep\u200Djoiner":          "keep\u200Djoiner",
		"bell\a and\x00 nul":        "bell and nul",
		"bad \xff utf8":             "bad  utf8",
		"line\nbreak\ttab":          "line\nbreak\ttab",
	}
	for in, want := range tests {
		if got := cleanText(in); got != want {
			t.Errorf("cleanText(%q)=%q, want %q", in, got, want)
		}
	}
}

func TestPulseBlocks(t *testing.T) {
	blocks := pulseBlocks("P-C1-2026-03-09")
	var ids []string
	for _, b := range blocks {
		a, ok := b.(*slack.ActionBlock)
		if !ok {
			continue
		}
		for _, e := range a.Elements.ElementSet {
			btn := e.(*slack.ButtonBlockElement)
			if btn.Value != "P-C1-2026-03-09" {
				t.Errorf("button %s has value %q, want the pulse id", btn.ActionID, btn.Value)
			}
			ids = append(ids, btn.ActionID+"="+btn.Text.Text)
		}
	}
	want := "pulse_vote_1=1 pulse_vote_2=2 pulse_vote_3=3 pulse_vote_4=4 pulse_vote_5=5 pulse_hear_more=Tell us what you'd like to hear more about"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("buttons=%s\nwant %s", got, want)
	}
	s, ok := blocks[0].(*slack.SectionBlock)
	if !ok || !strings.Contains(s.Text.Text, "How clear is our direction right now?") {
		t.Errorf("first block=%#v, want the question", blocks[0])
	}
	checkDigestLimits(t, [][]slack.Block{blocks})
}

func TestPulseVoteScore(t *testing.T) {
	tests := map[string]int{
		"pulse_vote_1": 1, "pulse_vote_5": 5,
		"pulse_vote_0": 0, "pulse_vote_6": 0, "pulse_vote_": 0, "pulse_vote_x": 0, "pulse_hear_more": 0, "nudge_done": 0,
	}
	for id, want := range tests {
		got, ok := pulseVoteScore(id)
		if got != want || ok != (want != 0) {
			t.Errorf("pulseVoteScore(%q)=%d, %v; want %d, %v", id, got, ok, want, want != 0)
		}
	}
}

func TestDigestFallback(t *testing.T) {
	if got, want := digestFallback("leads\u202E<!here>"), "Team digest for #leads&lt;!here&gt;"; got != want {
		t.Errorf("digestFallback=%q, want %q", got, want)
	}
}

// scanMore reads the N of an "…and N more" line written in format.
func scanMore(text, format string) (int, bool) {
	var n int
	if _, err := fmt.Sscanf(text, format, &n); err != nil {
		return 0, false
	}
	return n, true
}
