package bot

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseCommand(t *testing.T) {
	cases := []struct {
		name, in string
		verb     string
		args     []string
		rest     string
		long     bool
	}{
		{"Empty", "", "", nil, "", false},
		{"Spaces", "   \t ", "", nil, "", false},
		{"Verb", "help", "help", []string{}, "", false},
		{"CaseAndSpace", "  HeLP  ", "help", []string{}, "", false},
		{"Args", "time  08:30", "time", []string{"08:30"}, "08:30", false},
		{"Rest keeps inner spacing", "note  two  spaces", "note", []string{"two", "spaces"}, "two  spaces", false},
		{"Control", "\x00ti\x07me 8:30\x1b", "time", []string{"8:30"}, "8:30", false},
		{"InvalidUTF8", "\xffhelp", "help", []string{}, "", false},
		{"Newlines kept in rest", "x line one\nline two", "x", []string{"line", "one", "line", "two"}, "line one\nline two", false},
		{"TooLong", strings.Repeat("é", maxCommandText+1), strings.Repeat("é", maxCommandText+1), []string{}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ParseCommand(tc.in)
			if c.Verb != tc.verb {
				t.Errorf("Verb=%q, want %q", c.Verb, tc.verb)
			}
			if len(c.Args) != len(tc.args) {
				t.Errorf("Args=%q, want %q", c.Args, tc.args)
			}
			if c.Rest != tc.rest {
				t.Errorf("Rest=%q, want %q", c.Rest, tc.rest)
			}
			if c.Long != tc.long {
				t.Errorf("Long=%v, want %v", c.Long, tc.long)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	cases := map[string]string{
		"<!channel>":         "&lt;!channel&gt;",
		"<!here> & <@U123>":  "&lt;!here&gt; &amp; &lt;@U123&gt;",
		"<#C1|general>":      "&lt;#C1|general&gt;",
		"<https://x.io|y>":   "&lt;https://x.io|y&gt;",
		"already &amp; done": "already &amp;amp; done",
		"plain @here":        "plain @here", // not a mention without link_names
	}
	for in, want := range cases {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q)=%q, want %q", in, got, want)
		}
	}
}

func TestClosest(t *testing.T) {
	verbs := []string{"start", "stop", "status", "time"}
	for in, want := range map[string]string{"strat": "start", "stpo": "stop", "statsu": "status", "tim": "time"} {
		if got, ok := closest(in, verbs); !ok || got != want {
			t.Errorf("closest(%q)=%q,%v, want %q", in, got, ok, want)
		}
	}
	if got, ok := closest("xylophone", verbs); ok {
		t.Errorf("closest(xylophone)=%q, want no guess", got)
	}
}

// FuzzParseCommand checks the parser never panics and always yields
// valid, printable text whatever a person (or an attacker) types.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"", "help", "time 08:30", "pause until 2027-01-04", "\x00\xff", "<!channel>", strings.Repeat("a", 5000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := ParseCommand(s)
		for _, part := range append([]string{c.Verb, c.Rest}, c.Args...) {
			if !utf8.ValidString(part) {
				t.Fatalf("invalid UTF-8 in %q", part)
			}
			for _, r := range part {
				if isControl(r) {
					t.Fatalf("control character %U in %q", r, part)
				}
			}
		}
		if c.Verb != strings.ToLower(c.Verb) {
			t.Fatalf("verb %q not lower-cased", c.Verb)
		}
		if e := Escape(c.Rest); strings.ContainsAny(e, "<>") {
			t.Fatalf("escaped text still has < or >: %q", e)
		}
	})
}
