package bot

import (
	"unicode/utf16"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// escapedCost is what one rune of user text costs once escaped, counted
// as Slack must be assumed to count (UTF-16 units; &amp; is five).
func escapedCost(r rune) int {
	switch r {
	case '&':
		return len("&amp;")
	case '<', '>':
		return len("&lt;")
	}
	return utf16.RuneLen(r)
}

// escapedSections renders user text as mrkdwn sections whose text, once
// escaped, each fits in max, so none of a long text is lost to Slack's
// section limit. Text is split at a line break or a space near the end
// of each part where there is one, else between graphemes, and always
// before escaping, so an entity is never cut in half.
func escapedSections(s string, max int) []slack.Block {
	s = cleanText(s)
	var blocks []slack.Block
	for s != "" {
		cut := escapedPrefix(s, max)
		if cut == 0 {
			break // max is below one grapheme: nothing more can fit
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(Escape(s[:cut])), nil, nil))
		s = s[cut:]
	}
	return blocks
}

// escapedPrefix returns the byte length of the longest prefix of s that
// fits in max once escaped, moved back to a word or line boundary in
// its last quarter if there is one.
func escapedPrefix(s string, max int) int {
	used, cut := 0, 0
	for i, r := range s {
		if used+escapedCost(r) > max {
			break
		}
		used += escapedCost(r)
		cut = i + utf8.RuneLen(r)
	}
	if cut == len(s) {
		return cut
	}
	for i := cut - 1; i > cut*3/4; i-- {
		if s[i] == '\n' || s[i] == ' ' {
			return i + 1
		}
	}
	return graphemeCut(s, cut)
}
