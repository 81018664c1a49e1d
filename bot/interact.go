package bot

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

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
		keys := dedupeKeys(evt.Request.EnvelopeID, idKey("trg", cb.TriggerID))
		if !b.firstTime(keys) {
			b.log.Info("re-sent click ignored", "envelope_id", evt.Request.EnvelopeID)
			return
		}
		b.goWork(func() {
			if !b.firstTimeDurable(keys) {
				return
			}
			for _, a := range cb.ActionCallback.BlockActions {
				b.onAction(ctx, cb, a)
			}
		})
	case slack.InteractionTypeViewSubmission:
		keys := dedupeKeys(evt.Request.EnvelopeID)
		b.onViewSubmission(cb, func(p any) { b.ack(evt, p) }, keys)
	default:
		b.ack(evt, nil)
		b.log.Debug("ignored interaction", "interaction_type", string(cb.Type))
	}
}

// afterAck runs work once per envelope, after its ack, also across a
// restart.
func (b *Bot) afterAck(keys []string, work func(ctx context.Context)) {
	if !b.firstTime(keys) {
		return
	}
	b.goWork(func() {
		if !b.firstTimeDurable(keys) {
			return
		}
		work(b.ctx())
	})
}

// ctx is the context work runs under; outside Run (tests), a plain one.
func (b *Bot) ctx() context.Context {
	if b.workCtx != nil {
		return b.workCtx
	}
	return context.Background()
}

func (b *Bot) onAction(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) {
	var outcome, feedback nudges.Outcome
	var snoozeFor func(now time.Time, loc *time.Location) time.Time
	switch a.ActionID {
	case actDone:
		outcome = nudges.OutcomeDone
	case actSkip:
		outcome = nudges.OutcomeSkipped
	case actSnoozeHour:
		outcome = nudges.OutcomeSnoozed
		snoozeFor = func(now time.Time, _ *time.Location) time.Time { return now.Add(time.Hour) }
	case actSnoozeTomorrow:
		outcome = nudges.OutcomeSnoozed
		snoozeFor = tomorrowMorning
	case actReflect:
		if msg := b.openReflectModal(ctx, cb.User.ID, cb.TriggerID, a.Value); msg != nil {
			b.respond(ctx, cb.ResponseURL, msg)
		}
		return
	case actDraft:
		seq, _ := strconv.Atoi(a.Value)
		b.openDraftModal(ctx, cb.User.ID, cb.TriggerID, seq)
		return
	case actCommitKept, actCommitNotYet:
		b.onCommitment(ctx, cb, a)
		return
	case actForget:
		if a.Value == cb.User.ID {
			b.forget(ctx, cb)
		}
		return
	case actPulseHearMore:
		b.onPulseAction(ctx, cb, a)
		return
	case actForgetCancel:
		b.respond(ctx, cb.ResponseURL, &ephemeral{ResponseType: slack.ResponseTypeEphemeral, Text: "Cancelled: nothing was deleted.", ReplaceOriginal: true})
		return
	case actHelpful:
		feedback = nudges.OutcomeHelpful
	case actNotForMe:
		feedback = nudges.OutcomeNotForMe
	default:
		if strings.HasPrefix(a.ActionID, actPulseVotePrefix) {
			b.onPulseAction(ctx, cb, a)
			return
		}
		if b.onHomeAction(ctx, cb, a) {
			return
		}
		b.log.Debug("ignored action", "action_id", a.ActionID)
		return
	}
	now := b.now()
	var loc *time.Location
	d, sub, err := b.store.RecordOutcome(a.Value, func(d *nudges.Delivery, s *nudges.Subscriber) error {
		// Only the person a nudge was sent to may answer it.
		if d.UserID != cb.User.ID {
			return errNotYours
		}
		loc = b.location(*s)
		if feedback != "" {
			if d.Feedback == "" {
				d.Feedback = feedback
				nudges.ApplyFeedback(s, d.Theme, feedback)
			}
			return nil
		}
		if d.Outcome != nudges.OutcomeNone && d.Outcome != nudges.OutcomeSnoozed {
			return errAnswered
		}
		d.Outcome = outcome
		d.ActedAt = now
		if snoozeFor != nil {
			// Back into the outbox as a new round: a new message at the
			// snooze time, told apart from the first by its round.
			d.SnoozeTo = snoozeFor(now, loc)
			d.State = nudges.StatePending
			d.Round++
			d.Attempts = 0
			return nil
		}
		nudges.ApplyFeedback(s, d.Theme, outcome)
		return nil
	})
	switch {
	case errors.Is(err, errNotYours):
		b.respond(ctx, cb.ResponseURL, reply("That nudge belongs to someone else, so I left it alone."))
		return
	case errors.Is(err, errAnswered):
		// A double click: the message already shows the answer.
		return
	case errors.Is(err, nudges.ErrNotFound):
		b.respond(ctx, cb.ResponseURL, reply("I can't find that nudge any more; it may have been deleted."))
		return
	case err != nil:
		b.log.Error("recording an answer", "user_id", cb.User.ID, "delivery_id", a.Value, "error", err)
		b.respond(ctx, cb.ResponseURL, reply("Sorry, I couldn't record that just now. Please click again in a minute."))
		return
	}
	_ = sub
	b.log.Info("nudge answered", "user_id", cb.User.ID, "delivery_id", d.ID, "outcome", string(d.Outcome), "feedback", string(d.Feedback))
	b.updateNudgeMessage(ctx, cb, d, loc)
}

var (
	errNotYours = errors.New("delivery belongs to another person")
	errAnswered = errors.New("delivery already answered")
)

// tomorrowMorning is 09:00 tomorrow in the person's zone.
func tomorrowMorning(now time.Time, loc *time.Location) time.Time {
	l := now.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day()+1, 9, 0, 0, 0, loc)
}

// updateNudgeMessage shows the answer in place of the buttons.
func (b *Bot) updateNudgeMessage(ctx context.Context, cb slack.InteractionCallback, d nudges.Delivery, loc *time.Location) {
	n, ok := b.catalog.Get(d.NudgeID)
	if !ok {
		return
	}
	channel, ts := cb.Container.ChannelID, cb.Container.MessageTs
	if channel == "" {
		channel, ts = cb.Channel.ID, cb.Message.Timestamp
	}
	if channel == "" || ts == "" {
		return
	}
	blocks := answeredBlocks(n, d, loc)
	err := b.web.do(ctx, "chat.update", callSafe, func(ctx context.Context) error {
		_, _, _, err := b.api.UpdateMessageContext(ctx, channel, ts,
			slack.MsgOptionText(nudgeFallback(n), true),
			slack.MsgOptionBlocks(blocks...),
		)
		return err
	})
	if err != nil {
		b.log.Warn("could not update the nudge message; the answer is recorded", "delivery_id", d.ID, "error", err)
	}
}

// onUserChange keeps a subscriber's zone and status current between the
// daily refreshes.
func (b *Bot) onUserChange(_ context.Context, ev *slackevents.UserChangeEvent) {
	b.applyProfile(ev.User.ID, ev.User.TZ, ev.User.Deleted)
}

// applyProfile records a person's Slack zone and deactivation, and
// reschedules when the zone changed.
func (b *Bot) applyProfile(userID, tz string, deleted bool) {
	now := b.now()
	_, err := b.store.Subscriber(userID)
	if errors.Is(err, nudges.ErrNotFound) {
		return // not someone we know; nothing to keep
	}
	_, err = b.store.UpdateSubscriber(userID, func(s *nudges.Subscriber) error {
		if deleted && !s.Inactive {
			s.Inactive, s.InactiveReason = true, "deactivated"
			b.log.Info("person deactivated in Slack; schedule stopped, data kept", "user_id", userID)
		}
		if tz != "" && tz != s.ProfileTZ {
			s.ProfileTZ = tz
			b.log.Info("time zone changed; rescheduled", "user_id", userID)
		}
		b.reschedule(s, now)
		return nil
	})
	if err != nil {
		b.log.Error("updating profile", "user_id", userID, "error", err)
	}
}

// RefreshProfiles re-reads every subscriber's Slack profile: zones move
// with people, and a deactivated person still "receives" DMs, so only
// users.info tells us to stop.
func (b *Bot) RefreshProfiles(ctx context.Context) {
	var ids []string
	err := b.store.ForEachSubscriber(func(s nudges.Subscriber) error {
		if s.Subscribed && !s.Inactive {
			ids = append(ids, s.UserID)
		}
		return nil
	})
	if err != nil {
		b.log.Error("listing subscribers for the profile refresh", "error", err)
		return
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		tz, deleted, err := b.profile(ctx, id)
		if code := slackCode(err); goneCodes[code] {
			b.deactivate(id, code)
			continue
		}
		if err != nil {
			b.log.Warn("profile refresh failed; keeping the old zone", "user_id", id, "error", err)
			continue
		}
		b.applyProfile(id, tz, deleted)
	}
	b.log.Info("profile refresh done", "subscribers", len(ids))
}
