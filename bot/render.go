package bot

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// Action ids of the buttons on a nudge. The value of each is the
// delivery id.
const (
	actDone           = "nudge_done"
	actSnoozeHour     = "nudge_snooze_1h"
	actSnoozeTomorrow = "nudge_snooze_tomorrow"
	actSkip           = "nudge_skip"
	actReflect        = "nudge_reflect"
	actHelpful        = "nudge_helpful"
	actNotForMe       = "nudge_not_for_me"
)

// mrkdwn builds a verbatim mrkdwn text object: verbatim stops Slack from
// turning a plain "@here" or "#channel" into a mention or link. Callers
// escape any text that is not ours.
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, true)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

func themeTitle(t nudges.Theme) string {
	if ti, ok := nudges.LookupTheme(t); ok {
		return ti.Title
	}
	return string(t)
}

func nudgeFallback(w nudges.Wording) string {
	return "Today's nudge: " + w.Prompt
}

// wordingOf is the message's wording, or the catalog's own words when the
// core sent none.
func wordingOf(m app.NudgeMessage) nudges.Wording {
	if m.Wording.Prompt == "" {
		return m.Nudge.Worded(nudges.WordingOptions{})
	}
	return m.Wording
}

// nudgeHeader is the prompt and its small print, shared by the fresh
// message and the answered one.
func nudgeHeader(m app.NudgeMessage, fresh bool) []slack.Block {
	w, d := wordingOf(m), m.Delivery
	label := "Today's nudge"
	// A snoozed delivery's round already counts the message coming back;
	// the message clicked on was the one before it.
	round := d.Round
	if !fresh && d.Outcome == nudges.OutcomeSnoozed {
		round--
	}
	if round > 0 {
		label = "Snoozed nudge, back as promised"
	}
	text := fmt.Sprintf("*%s* · %s\n%s", label, Escape(themeTitle(m.Nudge.Theme)), Escape(w.Prompt))
	if w.Fallback != "" {
		text += "\n_" + Escape(w.Fallback) + "_"
	}
	if w.Say != "" {
		text += "\n" + Escape(w.Say)
	}
	ctx := []slack.MixedElement{mrkdwn("_" + Escape(w.Why) + "_")}
	if d.Reason != "" {
		ctx = append(ctx, mrkdwn("Why this one: "+Escape(d.Reason)))
	}
	return []slack.Block{
		slack.NewSectionBlock(mrkdwn(text), nil, nil),
		slack.NewContextBlock("nudge_why", ctx...),
	}
}

func button(actionID, text, value string, style slack.Style) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(actionID, value, plain(text))
	if style != "" {
		b.Style = style
	}
	return b
}

// nudgeBlocks is the DM as first delivered: the prompt, why, and buttons.
func nudgeBlocks(m app.NudgeMessage) []slack.Block {
	d := m.Delivery
	blocks := nudgeHeader(m, true)
	blocks = append(blocks, slack.NewActionBlock("nudge_actions",
		button(actDone, "Done", d.ID, slack.StylePrimary),
		button(actSnoozeHour, "Snooze 1 hour", d.ID, ""),
		button(actSnoozeTomorrow, "Until tomorrow", d.ID, ""),
		button(actSkip, "Skip", d.ID, ""),
		button(actReflect, "Reflect", d.ID, ""),
	))
	return blocks
}

// answeredBlocks replaces the buttons with what the person did and when,
// in their own time, and asks once whether it was worth it.
func answeredBlocks(m app.NudgeMessage) []slack.Block {
	d, loc := m.Delivery, m.Location
	blocks := nudgeHeader(m, false)
	at := d.ActedAt.In(loc).Format("Mon 15:04")
	var line string
	switch d.Outcome {
	case nudges.OutcomeDone:
		line = "✅ Done · " + at
	case nudges.OutcomeSkipped:
		line = "⏭️ Skipped · " + at
	case nudges.OutcomeSnoozed:
		line = "⏰ Snoozed until " + d.SnoozeTo.In(loc).Format("Mon 15:04")
	case nudges.OutcomeReflected:
		line = "📝 Reflected · " + at
	default:
		line = nudges.OutcomeText(d.Outcome) + " · " + at
	}
	switch d.Feedback {
	case nudges.OutcomeHelpful:
		line += " · marked helpful, you'll see more like it"
	case nudges.OutcomeNotForMe:
		line += " · marked not for me, you'll see fewer like it"
	}
	blocks = append(blocks, slack.NewContextBlock("nudge_outcome", mrkdwn(line)))
	if d.Feedback == "" && (d.Outcome == nudges.OutcomeDone || d.Outcome == nudges.OutcomeSkipped || d.Outcome == nudges.OutcomeReflected) {
		blocks = append(blocks, slack.NewActionBlock("nudge_feedback",
			button(actHelpful, "Helpful", d.ID, ""),
			button(actNotForMe, "Not for me", d.ID, ""),
		))
	}
	return blocks
}

// ephemeral is an ack or response_url payload shown only to the caller.
type ephemeral struct {
	ResponseType    string        `json:"response_type"`
	Text            string        `json:"text"`
	Blocks          []slack.Block `json:"blocks,omitempty"`
	ReplaceOriginal bool          `json:"replace_original,omitempty"`
}

func reply(text string) *ephemeral {
	return &ephemeral{ResponseType: slack.ResponseTypeEphemeral, Text: text}
}

// lines joins non-empty lines.
func lines(ls ...string) string {
	out := ls[:0]
	for _, l := range ls {
		if l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
