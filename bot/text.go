package bot

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxCommandText bounds what we parse from a slash command. Slack itself
// allows about 4,000 characters; anything longer is either a paste
// accident or an attack, and the answer is the same usage help.
const maxCommandText = 4000

// Command is a slash command's text split into a verb and its arguments.
type Command struct {
	Verb string   // lower-cased first word; "" when the text is empty
	Args []string // the remaining words as typed
	Rest string   // everything after the verb, trimmed (free text such as a reflection)
	Long bool     // the text was longer than maxCommandText
}

// ParseCommand splits slash-command text. It never fails: invalid UTF-8
// and control characters are dropped, runs of white space collapse, and
// over-long text is flagged so the caller can say so.
func ParseCommand(text string) Command {
	var c Command
	if utf8.RuneCountInString(text) > maxCommandText {
		c.Long = true
	}
	clean := Sanitize(text)
	fields := strings.Fields(clean)
	if len(fields) == 0 {
		return c
	}
	c.Verb = strings.ToLower(fields[0])
	c.Args = fields[1:]
	c.Rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(clean), fields[0]))
	return c
}

// Sanitize removes invalid UTF-8 and control characters other than
// newlines and tabs, so stored and echoed text is always valid and
// printable.
func Sanitize(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r == utf8.RuneError || isControl(r) }) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range strings.ToValidUTF8(s, "") {
		if isControl(r) || r == utf8.RuneError {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool {
	return unicode.IsControl(r) && r != '\n' && r != '\t'
}

// Escape makes user text safe for Slack mrkdwn: only &, < and > are
// control characters there, so <!channel> or <@U1> typed by a person
// renders as text and pings nobody.
func Escape(s string) string {
	return escaper.Replace(s)
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// closest returns the candidate nearest to word by edit distance, if it
// is near enough to be a plausible typo.
func closest(word string, candidates []string) (string, bool) {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best, best != ""
}

func editDistance(a, b string) int {
	ar, br := []rune(a), []rune(b)
	if len(ar) > 64 || len(br) > 64 {
		return 64
	}
	prev := make([]int, len(br)+1)
	cur := make([]int, len(br)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ar); i++ {
		cur[0] = i
		for j := 1; j <= len(br); j++ {
			cost := 1
			if ar[i-1] == br[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(br)]
}
