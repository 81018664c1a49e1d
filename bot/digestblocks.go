package bot

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/nudges"
)

// Action ids of the pulse's buttons. The value of each is the pulse id;
// a vote's score is the digit after actPulseVotePrefix.
const (
	actPulseVotePrefix = "pulse_vote_"
	actPulseHearMore   = "pulse_hear_more"
)

// pulseQuestion is what the clarity pulse asks.
const pulseQuestion = "How clear is our direction right now?"

// Slack refuses a message with more than 50 blocks, a section text over
// 3,000 characters or more than about 10,000 characters of text in all.
// We stay well inside each, because Slack counts in UTF-16 units and
// its limits are not all documented exactly.
const (
	maxDigestBlocks   = 40
	maxSectionText    = 2900
	maxMessageText    = 9500
	maxDigestMessages = 6 // a digest that floods the channel is not read

	maxHeaderText    = 150 // Slack's limit for a header block
	maxNameText      = 80
	maxPromptText    = 200
	maxHearMoreText  = 300
	maxHearMoreShown = 15
	maxNoteText      = 1900 // context elements allow 2,000
)

// trailerReserve is the room kept in every message for the "…and N
// more" line that may end the digest.
const trailerReserve = 200

// digestPart is one block of a digest with the size of its text.
type digestPart struct {
	block      slack.Block
	size       int
	reflection bool // a shared reflection, counted in "…and N more"
	withNext   bool // a heading: never the last block of a message
}

// digestMessages renders a digest as one or more Block Kit messages,
// each within Slack's limits: the figures first, then the shared
// reflections, split across messages when long. Beyond maxDigestMessages
// the rest of the reflections are left out with a note saying how many.
// Every piece of user text is cleaned (no control or bidi characters) and
// escaped, and goes out in verbatim mrkdwn, so it can ping nobody.
func digestMessages(d nudges.Digest, channelName string) [][]slack.Block {
	name := cleanText(channelName)
	parts := digestParts(d, name)

	cont := mrkdwnPart(contextOf(fitEscaped("Team digest for #"+name+", continued", maxNoteText, false)))
	var (
		msgs [][]slack.Block
		cur  []slack.Block
		size int
	)
	add := func(p digestPart) {
		cur = append(cur, p.block)
		size += p.size
	}
	fits := func(ps ...digestPart) bool {
		n, s := len(cur), size
		for _, p := range ps {
			n, s = n+1, s+p.size
		}
		// One block and trailerReserve characters stay free for the
		// trailer.
		return n+1 <= maxDigestBlocks && s+trailerReserve <= maxMessageText
	}
	for i, p := range parts {
		need := []digestPart{p}
		if p.withNext && i+1 < len(parts) {
			need = append(need, parts[i+1])
		}
		if !fits(need...) && len(cur) > 0 {
			if len(msgs)+1 == maxDigestMessages {
				add(trailerPart(parts[i:]))
				return append(msgs, cur)
			}
			msgs = append(msgs, cur)
			cur, size = nil, 0
			add(cont)
		}
		add(p)
	}
	return append(msgs, cur)
}

// digestFallback is the notification text of a digest message, for
// clients that cannot show blocks. Slack parses it as mrkdwn, so the
// name is escaped like any text that is not ours.
func digestFallback(channelName string) string {
	return "Team digest for #" + Escape(cleanText(channelName))
}

func digestParts(d nudges.Digest, name string) []digestPart {
	var parts []digestPart
	title := "Team digest"
	if name != "" {
		title += " · #" + name
	}
	header := fitPlain(title, maxHeaderText)
	parts = append(parts, digestPart{block: slack.NewHeaderBlock(plain(header)), size: textLen(header)})

	var period []string
	if !d.From.IsZero() && d.To.After(d.From) {
		last := d.To.Add(-time.Nanosecond)
		period = append(period, d.From.Format("Mon 2 Jan")+" – "+last.Format("Mon 2 Jan 2006"))
	}
	if d.Members >= threshold(d) {
		period = append(period, counted(d.Members, "subscriber", "subscribers")+" in this channel")
	} else {
		// Even how many people subscribe is not said of fewer than three.
		period = append(period, fmt.Sprintf("fewer than %d subscribers in this channel", threshold(d)))
	}
	parts = append(parts, mrkdwnPart(contextOf(strings.Join(period, " · "))))

	parts = append(parts, mrkdwnPart(slack.NewSectionBlock(mrkdwn(figuresText(d)), nil, nil)))

	if len(d.TopThemes) > 0 {
		var b strings.Builder
		b.WriteString("*Most practised themes*")
		for i, tc := range d.TopThemes {
			fmt.Fprintf(&b, "\n%d. %s · %s", i+1, Escape(themeTitle(tc.Theme)), counted(tc.Count, "nudge", "nudges")+" acted on")
		}
		parts = append(parts, mrkdwnPart(slack.NewSectionBlock(mrkdwn(b.String()), nil, nil)))
	}

	if d.Pulse.Held {
		parts = append(parts, mrkdwnPart(slack.NewSectionBlock(mrkdwn(pulseText(d.Pulse, threshold(d))), nil, nil)))
		if len(d.Pulse.HearMore) > 0 {
			parts = append(parts, mrkdwnPart(slack.NewSectionBlock(mrkdwn(hearMoreText(d.Pulse.HearMore)), nil, nil)))
		}
	}
	if t := clarityVsUpdatesText(d.ClarityVsUpdates); t != "" {
		parts = append(parts, mrkdwnPart(slack.NewSectionBlock(mrkdwn(t), nil, nil)))
	}

	if len(d.Suppressed) > 0 {
		note := fitEscaped(fmt.Sprintf("No figure describes fewer than %d people. ", threshold(d))+strings.Join(d.Suppressed, " "), maxNoteText, false)
		parts = append(parts, mrkdwnPart(contextOf(note)))
	}

	if len(d.SharedReflections) > 0 {
		parts = append(parts, digestPart{block: slack.NewDividerBlock()})
		head := "*Shared reflections* · written by members who chose to share them"
		parts = append(parts, digestPart{block: slack.NewSectionBlock(mrkdwn(head), nil, nil), size: textLen(head), withNext: true})
		for _, s := range d.SharedReflections {
			p := mrkdwnPart(slack.NewSectionBlock(mrkdwn(reflectionText(s)), nil, nil))
			p.reflection = true
			parts = append(parts, p)
		}
	}
	return parts
}

func figuresText(d nudges.Digest) string {
	var ls []string
	if d.ReceivedShown {
		ls = append(ls, "• *"+strconv.Itoa(d.Received)+"* "+plural(d.Received, "nudge", "nudges")+" received")
	}
	if d.ActedOnShown {
		ls = append(ls, "• *"+strconv.Itoa(d.ActedOn)+"* acted on")
	}
	if d.StrategyShown {
		ls = append(ls, "• *"+strconv.Itoa(d.StrategyUpdates)+"* strategy "+plural(d.StrategyUpdates, "update", "updates")+": explaining where we are going, and listening")
	}
	if s := d.Streaks; s.Shown {
		if s.Members == 0 {
			ls = append(ls, fmt.Sprintf("• Nobody is on a streak of %d or more yet", nudges.StreakThreshold))
		} else {
			ls = append(ls, fmt.Sprintf("• *%d* people on a streak of %d or more", s.Members, nudges.StreakThreshold))
		}
	}
	if len(ls) == 0 {
		return "*This period*\nToo few people took part to show figures without singling someone out."
	}
	return "*This period*\n" + strings.Join(ls, "\n")
}

// threshold is the group size the digest's figures were held to.
func threshold(d nudges.Digest) int { return max(d.Threshold, nudges.MinGroup) }

func pulseText(p nudges.PulseSection, min int) string {
	var b strings.Builder
	b.WriteString("*Clarity pulse* · " + pulseQuestion + "\n")
	switch {
	case p.AverageShown:
		fmt.Fprintf(&b, "*%.1f* out of %d, from %s", p.Average, nudges.PulseMaxScore, counted(p.Responses, "answer", "answers"))
	case p.Responses == 0:
		b.WriteString("Nobody answered this time.")
	default:
		fmt.Fprintf(&b, "%s. The average is shown once at least %d people answer.", counted(p.Responses, "answer", "answers"), min)
	}
	if p.Sparkline != "" {
		fmt.Fprintf(&b, "\nTrend, oldest first: `%s`", p.Sparkline)
		if strings.ContainsRune(p.Sparkline, nudges.SparkGap) {
			fmt.Fprintf(&b, " (%c: fewer than %d answers)", nudges.SparkGap, min)
		}
	}
	return b.String()
}

// clarityVsUpdatesText puts each period's clarity beside how many
// strategy updates were shared in it, so a team can see whether
// explaining more moved clarity. Periods with nothing to show are left
// out; fewer than two periods say nothing worth a line.
func clarityVsUpdatesText(pts []nudges.ClarityPoint) string {
	var rows []string
	for _, p := range pts {
		if !p.AverageShown && !p.UpdatesShown {
			continue
		}
		clarity, updates := "clarity not shown", "updates not shown"
		if p.AverageShown {
			clarity = fmt.Sprintf("clarity %.1f", p.Average)
		}
		if p.UpdatesShown {
			updates = counted(p.Updates, "strategy update", "strategy updates")
		}
		rows = append(rows, fmt.Sprintf("• week to %s: %s · %s", p.End.Format("2 Jan"), clarity, updates))
	}
	if len(rows) < 2 {
		return ""
	}
	if len(rows) > 6 {
		rows = rows[len(rows)-6:]
	}
	return "*Did explaining more help?* Clarity beside the strategy updates shared\n" + strings.Join(rows, "\n")
}

// hearMoreText lists the answers that fit in one section, then how many
// more there were.
func hearMoreText(items []string) string {
	const head = "*You would like to hear more about*"
	var b strings.Builder
	b.WriteString(head)
	size := textLen(head)
	for i, it := range items {
		line := "\n• " + fitEscaped(it, maxHearMoreText, false)
		rest := len(items) - i
		// Leave room for the "…and N more" line that would follow.
		if i == maxHearMoreShown || size+textLen(line)+40 > maxSectionText {
			fmt.Fprintf(&b, "\n…and %d more", rest)
			break
		}
		b.WriteString(line)
		size += textLen(line)
	}
	return b.String()
}

// slackUserID is a Slack user id, the only thing placed in a mention.
var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

func reflectionText(s nudges.SharedLine) string {
	by := "— shared anonymously"
	if slackUserID.MatchString(s.AuthorID) {
		// A mention, which Slack renders as the person's current name
		// and nobody can fake by choosing a display name.
		by = "— <@" + s.AuthorID + ">"
	}
	if s.Nudge != "" {
		by += ", on _" + fitEscaped(s.Nudge, maxPromptText, false) + "_"
	}
	// Each line of the quote starts with ">", which fitEscaped counts.
	quote := ">" + strings.ReplaceAll(fitEscaped(s.Text, maxSectionText-textLen(by)-2, true), "\n", "\n>")
	return quote + "\n" + by
}

// trailerPart says how many shared reflections did not fit.
func trailerPart(rest []digestPart) digestPart {
	n := 0
	for _, p := range rest {
		if p.reflection {
			n++
		}
	}
	text := "…and more that did not fit in this digest."
	if n > 0 {
		text = fmt.Sprintf("…and %d more shared %s, left out to keep this digest short.", n, plural(n, "reflection", "reflections"))
	}
	return mrkdwnPart(contextOf(text))
}

// pulseBlocks asks the clarity pulse: five buttons to vote and one to
// say what people would like to hear more about.
func pulseBlocks(pulseID string) []slack.Block {
	votes := make([]slack.BlockElement, 0, nudges.PulseMaxScore)
	for s := nudges.PulseMinScore; s <= nudges.PulseMaxScore; s++ {
		votes = append(votes, button(actPulseVotePrefix+strconv.Itoa(s), strconv.Itoa(s), pulseID, ""))
	}
	return []slack.Block{
		slack.NewSectionBlock(mrkdwn(fmt.Sprintf("*%s*\n%d is not clear at all, %d is crystal clear. Answers are anonymous: the team sees only the totals, and who answered is forgotten when the pulse closes.",
			pulseQuestion, nudges.PulseMinScore, nudges.PulseMaxScore)), nil, nil),
		slack.NewActionBlock("pulse_vote", votes...),
		slack.NewActionBlock("pulse_more", button(actPulseHearMore, "Tell us what you'd like to hear more about", pulseID, "")),
	}
}

// pulseVoteScore is the score of a pulse vote button's action id.
func pulseVoteScore(actionID string) (int, bool) {
	s, ok := strings.CutPrefix(actionID, actPulseVotePrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || nudges.ValidPulseScore(n) != nil {
		return 0, false
	}
	return n, true
}

func contextOf(text string) *slack.ContextBlock {
	return slack.NewContextBlock("", mrkdwn(text))
}

// mrkdwnPart measures a block built from our own text objects.
func mrkdwnPart(b slack.Block) digestPart {
	return digestPart{block: b, size: blockTextLen(b)}
}

// blockTextLen counts the text of the blocks a digest uses.
func blockTextLen(b slack.Block) int {
	n := 0
	obj := func(t *slack.TextBlockObject) {
		if t != nil {
			n += textLen(t.Text)
		}
	}
	switch b := b.(type) {
	case *slack.HeaderBlock:
		obj(b.Text)
	case *slack.SectionBlock:
		obj(b.Text)
		for _, f := range b.Fields {
			obj(f)
		}
	case *slack.ContextBlock:
		for _, e := range b.ContextElements.Elements {
			if t, ok := e.(*slack.TextBlockObject); ok {
				obj(t)
			}
		}
	}
	return n
}

// counted is "1 answer", "2 answers" and so on.
func counted(n int, one, many string) string { return strconv.Itoa(n) + " " + plural(n, one, many) }

// textLen is the length of s as Slack counts it, in UTF-16 units; it is
// never less than the number of runes.
func textLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// cleanText drops what must never reach a digest from user text:
// invalid UTF-8, control characters and bidi controls, with which a
// reflection could make the text after it read backwards.
func cleanText(s string) string {
	s = Sanitize(s)
	if !strings.ContainsFunc(s, isBidiControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isBidiControl(r) {
			return -1
		}
		return r
	}, s)
}

func isBidiControl(r rune) bool {
	switch {
	case r == '\u061C', r == '\u200E', r == '\u200F':
		return true
	case r >= '\u202A' && r <= '\u202E':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// fitEscaped cleans and escapes user text so that the result, counted
// with textLen, is at most max; longer text is cut between graphemes and
// ends in "…". Cutting before escaping means an entity such as &amp; is
// never cut in half. With quoted, each newline counts one more, for the
// ">" the caller adds after it.
func fitEscaped(s string, max int, quoted bool) string {
	s = cleanText(s)
	cost := func(r rune) int {
		switch r {
		case '&':
			return len("&amp;")
		case '<', '>':
			return len("&lt;")
		case '\n':
			if quoted {
				return 2
			}
		}
		return utf16.RuneLen(r)
	}
	return fit(s, max, cost, Escape)
}

// fitPlain cuts plain text (no escaping: plain_text is shown as typed)
// to at most max.
func fitPlain(s string, max int) string {
	return fit(cleanText(s), max, utf16.RuneLen, func(s string) string { return s })
}

func fit(s string, max int, cost func(rune) int, out func(string) string) string {
	const ellipsis = "…"
	total := 0
	for _, r := range s {
		total += cost(r)
	}
	if total <= max {
		return out(s)
	}
	budget := max - textLen(ellipsis)
	if budget < 0 {
		return ""
	}
	used, cut := 0, 0
	for i, r := range s {
		if used+cost(r) > budget {
			break
		}
		used += cost(r)
		cut = i + utf8.RuneLen(r)
	}
	return out(s[:graphemeCut(s, cut)]) + ellipsis
}

// graphemeCut moves a cut at byte i of s back until it does not split a
// grapheme: not before a combining mark, variation selector, skin-tone
// modifier, tag or zero-width joiner, not after a joiner, and not inside
// a regional-indicator pair (a flag). It is a backward scan, not full
// UAX #29 segmentation, which covers the emoji and accents people type.
// If the whole prefix is one grapheme it returns 0.
func graphemeCut(s string, i int) int {
	for i > 0 && i < len(s) {
		prev, size := utf8.DecodeLastRuneInString(s[:i])
		next, _ := utf8.DecodeRuneInString(s[i:])
		if !joins(s[:i], prev, next) {
			return i
		}
		i -= size
	}
	return i
}

func joins(before string, prev, next rune) bool {
	const zwj = '\u200D'
	switch {
	case next == zwj || prev == zwj:
		return true
	case isExtender(next):
		return true
	case isRegionalIndicator(prev) && isRegionalIndicator(next):
		// Flags pair up from the start of a run: split only after an
		// even number of indicators.
		run := 0
		for s := before; s != ""; {
			r, size := utf8.DecodeLastRuneInString(s)
			if !isRegionalIndicator(r) {
				break
			}
			run++
			s = s[:len(s)-size]
		}
		return run%2 == 1
	}
	return false
}

func isExtender(r rune) bool {
	switch {
	case r >= '\uFE00' && r <= '\uFE0F': // variation selectors
		return true
	case r >= 0xE0100 && r <= 0xE01EF: // variation selectors supplement
		return true
	case r >= 0x1F3FB && r <= 0x1F3FF: // skin-tone modifiers
		return true
	case r >= 0xE0020 && r <= 0xE007F: // tags, as in subdivision flags
		return true
	case r == '\u20E3': // combining keycap
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc)
}

func isRegionalIndicator(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }
