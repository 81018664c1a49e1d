package bot

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// onInteractive acks a click at once; the state change and the message
// update happen after.
func (b *Bot) onInteractive(ctx context.Context, evt socketmode.Event) {
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok {
		b.ack(evt, nil)
		return
	}
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		b.ack(evt, nil)
		keys := dedupeKeys(evt.Request.EnvelopeID, keyed("trg:", cb.TriggerID))
		if !b.firstTime(keys) {
			b.log.Info("re-sent click ignored", "envelope_id", evt.Request.EnvelopeID)
			return
		}
		if !b.budget.allow(cb.User.ID) {
			b.tellClick(cb.ResponseURL, slowDownText)
			return
		}
		started := b.goWork(func() {
			if !b.firstTimeDurable(keys) {
				return
			}
			for _, a := range cb.ActionCallback.BlockActions {
				b.onAction(ctx, cb, a)
			}
		})
		if !started {
			b.tellBusy(cb.ResponseURL)
		}
	case slack.InteractionTypeViewSubmission:
		if !b.budget.allow(cb.User.ID) {
			// The refusal rides in the ack as an error on the form, so
			// what they wrote stays in it to save again.
			b.ack(evt, slowDownForm(cb.View))
			return
		}
		keys := dedupeKeys(evt.Request.EnvelopeID)
		b.onViewSubmission(cb, func(p any) { b.ack(evt, p) }, keys)
	default:
		b.ack(evt, nil)
		b.log.Debug("ignored interaction", "interaction_type", string(cb.Type))
	}
}

// slowDownForm is the answer to a form submitted past the person's
// allowance: an error on its first input, which keeps the form open with
// everything in it. A form with no input is simply closed.
func slowDownForm(v slack.View) any {
	for _, bl := range v.Blocks.BlockSet {
		if in, ok := bl.(*slack.InputBlock); ok && in.BlockID != "" {
			return slack.NewErrorsViewSubmissionResponse(map[string]string{in.BlockID: slowDownFormText})
		}
	}
	return nil
}

// afterAck runs work once per envelope, after its ack, also across a
// restart. A form has no response_url, so a bot too busy to start tells
// the person in their DM.
func (b *Bot) afterAck(userID string, keys []string, work func(ctx context.Context)) {
	if !b.firstTime(keys) {
		return
	}
	started := b.goWork(func() {
		if !b.firstTimeDurable(keys) {
			return
		}
		work(b.ctx())
	})
	if !started {
		b.tellBusyDM(userID)
	}
}

// tellBusyDM is tellBusy for a form, through the person's DM.
func (b *Bot) tellBusyDM(userID string) {
	b.fromBusyPool(func(ctx context.Context) { b.slack.tell(ctx, userID, busyText+" What you wrote was not saved.") })
}

// notSavedClickText is notSavedText for a button.
const notSavedClickText = "Sorry, I couldn't record that: I can't write anything down right now, so nothing was saved. Please click again in a few minutes; if it keeps happening, tell your nudgebot admin."

// nudgeAnswers maps the nudge DM's buttons to answers.
var nudgeAnswers = map[string]nudges.Answer{
	actDone:           nudges.AnswerDone,
	actSkip:           nudges.AnswerSkip,
	actSnoozeHour:     nudges.AnswerSnoozeHour,
	actSnoozeTomorrow: nudges.AnswerSnoozeTomorrow,
	actHelpful:        nudges.AnswerHelpful,
	actNotForMe:       nudges.AnswerNotForMe,
}

func (b *Bot) onAction(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) {
	who := app.Person(cb.User.ID)
	if ans, ok := nudgeAnswers[a.ActionID]; ok {
		b.answerNudge(ctx, cb, who, a.Value, ans)
		return
	}
	switch a.ActionID {
	case actReflect:
		b.slack.respond(ctx, cb.ResponseURL, b.openReflectModal(ctx, who, cb.TriggerID, a.Value))
	case actDraft:
		seq, _ := strconv.Atoi(a.Value)
		b.openDraftModal(ctx, who, cb.TriggerID, seq)
	case actCommitKept, actCommitNotYet:
		b.onCommitment(ctx, cb, a)
	case actForget:
		b.forget(ctx, cb, a.Value)
	case actForgetCancel:
		b.slack.respond(ctx, cb.ResponseURL, &ephemeral{ResponseType: slack.ResponseTypeEphemeral, Text: "Cancelled: nothing was deleted.", ReplaceOriginal: true})
	case actPulseHearMore:
		b.onPulseAction(ctx, cb, a)
	default:
		if strings.HasPrefix(a.ActionID, actPulseVotePrefix) {
			b.onPulseAction(ctx, cb, a)
			return
		}
		if b.onHomeAction(ctx, cb, a) {
			return
		}
		b.log.Debug("ignored action", "action_id", a.ActionID)
	}
}

func (b *Bot) answerNudge(ctx context.Context, cb slack.InteractionCallback, who app.Actor, deliveryID string, ans nudges.Answer) {
	clicked := app.MessageRef{Channel: cb.Container.ChannelID, TS: cb.Container.MessageTs}
	if clicked.Channel == "" {
		clicked = app.MessageRef{Channel: cb.Channel.ID, TS: cb.Message.Timestamp}
	}
	_, err := b.core.AnswerNudge(ctx, who, deliveryID, ans, clicked, b.now())
	switch {
	case err == nil:
	case app.IsForbidden(err), errors.Is(err, nudges.ErrNotYours):
		b.slack.respond(ctx, cb.ResponseURL, reply("That nudge belongs to someone else, so I left it alone."))
	case errors.Is(err, nudges.ErrNotFound):
		b.slack.respond(ctx, cb.ResponseURL, reply("I can't find that nudge any more; it may have been deleted."))
	case b.refusedWrite(who, "recording an answer", err):
		b.slack.respond(ctx, cb.ResponseURL, reply(notSavedClickText))
	default:
		b.log.Error("recording an answer", "user_id", who.UserID, "delivery_id", deliveryID, "error", err)
		b.slack.respond(ctx, cb.ResponseURL, reply("Sorry, I couldn't record that just now, so nothing was saved. Please click again in a minute."))
	}
}
