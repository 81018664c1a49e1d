package nudges

import (
	"errors"
	"time"
)

// Answer is what a person can do with a nudge delivered to them: the
// buttons on the DM, and the feedback offered after acting on it.
type Answer string

const (
	AnswerDone           Answer = "done"
	AnswerSkip           Answer = "skip"
	AnswerSnoozeHour     Answer = "snooze_hour"
	AnswerSnoozeTomorrow Answer = "snooze_tomorrow"
	AnswerHelpful        Answer = "helpful"
	AnswerNotForMe       Answer = "not_for_me"
)

// Errors of the delivery state machine.
var (
	ErrNotYours      = errors.New("that nudge was sent to someone else")
	ErrAnswered      = errors.New("that nudge is already answered")
	ErrUnknownAnswer = errors.New("unknown answer")
)

// TomorrowMorning is 09:00 tomorrow in loc: where "until tomorrow" snoozes
// to, whatever the person's own nudge time.
func TomorrowMorning(now time.Time, loc *time.Location) time.Time {
	l := now.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day()+1, 9, 0, 0, 0, loc)
}

// Apply records a person's answer to the delivery, and its effect on the
// choice of their next nudges, on s. Only the person the nudge went to may
// answer it. A nudge is answered once, except that a snoozed nudge is
// answered again when it comes back; feedback (helpful, not for me) is
// taken once, after the answer. A snooze puts the delivery back into the
// outbox as a new round: a new message at the snooze time, told apart
// from the first by its round.
func (d *Delivery) Apply(by string, a Answer, now time.Time, loc *time.Location, s *Subscriber) error {
	if d.UserID != by {
		return ErrNotYours
	}
	switch a {
	case AnswerHelpful, AnswerNotForMe:
		if d.Feedback == OutcomeNone {
			d.Feedback = Outcome(a)
			ApplyFeedback(s, d.Theme, d.Feedback)
		}
		return nil
	case AnswerDone, AnswerSkip, AnswerSnoozeHour, AnswerSnoozeTomorrow:
	default:
		return ErrUnknownAnswer
	}
	if d.Outcome != OutcomeNone && d.Outcome != OutcomeSnoozed {
		return ErrAnswered
	}
	d.ActedAt = now
	switch a {
	case AnswerDone:
		d.Outcome = OutcomeDone
	case AnswerSkip:
		d.Outcome = OutcomeSkipped
	case AnswerSnoozeHour, AnswerSnoozeTomorrow:
		d.Outcome = OutcomeSnoozed
		d.SnoozeTo = now.Add(time.Hour)
		if a == AnswerSnoozeTomorrow {
			d.SnoozeTo = TomorrowMorning(now, loc)
		}
		d.State = StatePending
		d.Round++
		d.Attempts = 0
		return nil
	}
	ApplyFeedback(s, d.Theme, d.Outcome)
	return nil
}

// Reflected records that the person wrote a reflection on this nudge,
// which counts as acting on it unless they had answered already.
func (d *Delivery) Reflected(now time.Time, s *Subscriber) {
	if d.Outcome != OutcomeNone {
		return
	}
	d.Outcome, d.ActedAt = OutcomeReflected, now
	ApplyFeedback(s, d.Theme, OutcomeReflected)
}

// Sendable reports whether the delivery is waiting to be posted now: in
// the outbox and not snoozed past now.
func (d Delivery) Sendable(now time.Time) bool {
	return d.State == StatePending && !d.SnoozeTo.After(now)
}

// Attempt records a post attempt that is about to start. From here until
// Sent, Slack may have the message, so a later try first looks for it.
func (d *Delivery) Attempt(now time.Time, channel string) {
	d.Attempts++
	d.TryAt = now
	d.Channel = channel
}

// NotAttempted undoes the attempt a post recorded when the post certainly
// never reached Slack; an earlier, uncertain attempt still needs
// reconciling, so only one is taken back.
func (d *Delivery) NotAttempted() {
	if d.State == StatePending && d.Attempts > 0 {
		d.Attempts--
	}
}

// Sent records that Slack has the message.
func (d *Delivery) Sent(now time.Time, channel, ts string) {
	d.State = StateSent
	d.Channel = channel
	d.TS = ts
	d.SentAt = now
}

// NeedsReconcile reports whether an earlier attempt may have reached
// Slack, and when it may be looked for: a request abandoned by a crash or
// a timeout can still land a little later.
func (d Delivery) NeedsReconcile(settle time.Duration) (bool, time.Time) {
	if d.Attempts == 0 {
		return false, time.Time{}
	}
	return true, d.TryAt.Add(settle)
}

// DueAt is when a pending delivery should go out: its slot, or the end of
// its snooze.
func (d Delivery) DueAt() time.Time {
	if !d.SnoozeTo.IsZero() {
		return d.SnoozeTo
	}
	return d.Slot
}
