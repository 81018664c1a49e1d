package bot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

const (
	cbHearMore    = "pulse_hear_more"
	blockHearMore = "hear_more"
)

// brokenTargetWhy says what an admin must do about a digest Slack
// refused.
var brokenTargetWhy = map[string]string{
	"not_in_channel":    "nudgebot is not a member: invite it with /invite @nudgebot",
	"channel_not_found": "the channel id is wrong, or the channel is private and nudgebot is not in it",
	"is_archived":       "the channel is archived: unarchive it or change digests in the config",
}

// TellAboutDigest tells one person, in their DM, what a digest run means
// for them: an admin what to do about a digest Slack refused (the core
// tells them once per failure), an author that their anonymous
// reflection was held back.
func (s *Slack) TellAboutDigest(ctx context.Context, userID string, note app.DigestNote) error {
	switch {
	case note.Broken != "":
		s.tell(ctx, userID, fmt.Sprintf("The team digest for <#%s> could not be posted: %s. I'll try again at its next scheduled time.", note.Channel, brokenTargetWhy[note.Broken]))
	case note.HeldBack > 0:
		s.tell(ctx, userID, fmt.Sprintf("I held back your anonymous reflection #%d from the digest of <#%s>: too few people take part in it for the others not to tell it was you. It stays private; share it with your name if you want the team to see it.", note.HeldBack, note.Channel))
	}
	return nil
}

// onPulseAction records a vote, or opens the "hear more" form.
func (b *Bot) onPulseAction(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) {
	if a.ActionID == actPulseHearMore {
		if err := b.core.OpenHearMore(ctx, app.Person(cb.User.ID), a.Value); err != nil {
			b.slack.respond(ctx, cb.ResponseURL, reply(b.pulseRefusal(cb, "opening the hear-more form", err)))
			return
		}
		view := slack.ModalViewRequest{
			Type: slack.VTModal, CallbackID: cbHearMore, PrivateMetadata: a.Value,
			Title: plain("Hear more about"), Submit: plain("Send"), Close: plain("Cancel"),
			Blocks: slack.Blocks{BlockSet: []slack.Block{
				slack.NewContextBlock("hear_more_note", mrkdwn(hearMoreNote(b.core.Threshold()))),
				slack.NewInputBlock(blockHearMore, plain("What would you like to hear more about?"), nil, func() *slack.PlainTextInputBlockElement {
					e := slack.NewPlainTextInputBlockElement(plain("e.g. how the roadmap was chosen"), actionText)
					e.Multiline = true
					e.MaxLength = nudges.MaxHearMoreLen
					return e
				}()),
			}},
		}
		if err := b.slack.openView(ctx, cb.TriggerID, view); err != nil {
			b.log.Warn("opening the hear-more form", "error", err)
		}
		return
	}
	score, ok := pulseVoteScore(a.ActionID)
	if !ok {
		return
	}
	first, err := b.core.VotePulse(ctx, app.Person(cb.User.ID), a.Value, score)
	var msg string
	switch {
	case err != nil:
		msg = b.pulseRefusal(cb, "recording a pulse vote", err)
	case !first:
		msg = "You've already answered this pulse; one answer each keeps it fair."
	default:
		msg = "Thanks. Your answer goes into the team's totals; who answered is forgotten when the pulse closes."
	}
	b.slack.respond(ctx, cb.ResponseURL, reply(msg))
}

// pulseRefusal says why a pulse click did nothing.
func (b *Bot) pulseRefusal(cb slack.InteractionCallback, what string, err error) string {
	switch {
	case errors.Is(err, nudges.ErrPulseClosed), errors.Is(err, nudges.ErrNotFound):
		return "This pulse has closed; the next digest brings a new one."
	case app.IsForbidden(err):
		return "Only the members of <#" + cb.Channel.ID + "> when this pulse was posted can answer it, so your click was not counted."
	case b.refusedWrite(app.Person(cb.User.ID), what, err):
		return notSavedClickText
	}
	b.log.Error(what, "user_id", cb.User.ID, "error", err)
	return "Sorry, I couldn't record that just now, so nothing was saved. Please try again in a minute."
}

// hearMoreNote says when the answers are shown. Everyone is told the
// same, whoever else wrote: how many wrote so far is itself a figure
// about fewer people than the threshold.
func hearMoreNote(threshold int) string {
	return fmt.Sprintf("The team sees the answers, never who wrote them, in the digest after this pulse, and only if at least %d people wrote in; with fewer, no answer is shown.", threshold)
}

// onHearMoreSubmission validates and stores a "hear more" answer.
func (b *Bot) onHearMoreSubmission(cb slack.InteractionCallback, ack func(any), keys []string) {
	text := strings.TrimSpace(Sanitize(stateValue(&cb.View, blockHearMore, actionText).Value))
	switch n := utf8.RuneCountInString(text); {
	case n == 0:
		ack(slack.NewErrorsViewSubmissionResponse(map[string]string{blockHearMore: "Write a few words, or press Cancel."}))
		return
	case n > nudges.MaxHearMoreLen:
		ack(slack.NewErrorsViewSubmissionResponse(map[string]string{blockHearMore: fmt.Sprintf("Keep it to %d characters.", nudges.MaxHearMoreLen)}))
		return
	}
	ack(nil)
	user, id := cb.User.ID, cb.View.PrivateMetadata
	b.afterAck(user, keys, func(ctx context.Context) {
		err := b.core.HearMore(ctx, app.Person(user), id, text)
		switch {
		case errors.Is(err, nudges.ErrTooManyAnswers):
			b.slack.tell(ctx, user, "You've sent the most answers one person can for this pulse. Thank you!")
		case errors.Is(err, nudges.ErrPulseClosed), errors.Is(err, nudges.ErrNotFound):
			b.slack.tell(ctx, user, "That pulse has closed, so your answer was not kept. The next digest brings a new one.")
		case app.IsForbidden(err):
			b.slack.tell(ctx, user, "Only the members of the channel when this pulse was posted can answer it, so your answer was not kept.")
		case b.refusedWrite(app.Person(user), "saving a hear-more answer", err):
			b.slack.tell(ctx, user, notSavedText)
		case err != nil:
			b.log.Error("saving a hear-more answer", "error", err)
			b.slack.tell(ctx, user, "Sorry, I couldn't save that just now. Nothing was saved; please try again in a minute.")
		default:
			b.slack.tell(ctx, user, "Thanks: your answer is kept without your name. "+hearMoreNote(b.core.Threshold()))
		}
	})
}

var channelRef = regexp.MustCompile(`^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$|^([CG][A-Z0-9]{6,})$`)

// digestPreview shows the caller what the next digest of a channel would
// say, without closing its pulse or posting anything.
func (b *Bot) digestPreview(ctx context.Context, who app.Actor, here, arg string) *ephemeral {
	channel, name := here, ""
	if arg != "" {
		if m := channelRef.FindStringSubmatch(arg); m != nil {
			channel = firstNonEmpty(m[1], m[2])
		} else if n, ok := strings.CutPrefix(arg, "#"); ok && n != "" {
			name = n
		} else {
			return reply(usageText("digest", "Name the channel like #team or by its id."))
		}
	}
	var p app.Preview
	var err error
	if name != "" {
		p, err = b.core.PreviewDigestNamed(ctx, who, name, b.now())
	} else {
		p, err = b.core.PreviewDigest(ctx, who, channel, b.now())
	}
	if msg := previewRefusal(err); msg != nil {
		return msg
	}
	if err != nil {
		b.log.Warn("digest preview", "channel", channel, "error", err)
		return reply("I couldn't read that channel. Is nudgebot a member of it?")
	}
	loc := b.core.Location(who.UserID)
	next := "The next digest's time is not known."
	if !p.Next.IsZero() {
		next = "The next one comes " + when(p.Next, p.Next.Location()) + "."
	}
	if p.Digest == nil {
		return reply("No digest has been posted in that channel yet. " + next)
	}
	note := "_Only you can see this: the last digest, posted " + p.Posted.In(loc).Format("Mon 2 Jan, 15:04") + ". " + next + " Nobody sees the period under way: its figures change with every join and every action, so two looks could single someone out._"
	msgs := digestMessages(*p.Digest, p.ChannelName)
	preview := reply("Preview of the team digest")
	preview.Blocks = append([]slack.Block{slack.NewContextBlock("preview_note", mrkdwn(note))}, msgs[0]...)
	if len(preview.Blocks) > 50 {
		preview.Blocks = preview.Blocks[:50]
	}
	return preview
}

// previewRefusal answers a preview the core would not give.
func previewRefusal(err error) *ephemeral {
	var soon *app.TooSoon
	switch {
	case errors.Is(err, app.ErrNoDigest):
		return reply("That channel has no digest configured. Ask an admin to add it under `digests` in the config.")
	case app.IsForbidden(err):
		return reply("Sorry, a channel's digest is only for " + app.WhoChannelMembersAndAdmins + ". Ask someone in it, or an admin.")
	case errors.As(err, &soon):
		return reply("You looked at a digest a moment ago; each look asks Slack who is in the channel, so give it a minute.")
	}
	return nil
}
