package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// Answered is the result of answering a nudge: the delivery as it now
// stands, and where its DM is, so the message can show the answer.
type Answered struct {
	Delivery nudges.Delivery
	Nudge    nudges.Nudge
	Location *time.Location
	// Repeat is true for a double click: nothing changed.
	Repeat bool
}

// MessageRef names a Slack message: the one a person clicked in.
type MessageRef struct {
	Channel, TS string
}

// AnswerNudge records the person's answer to a nudge sent to them (done,
// snooze, skip, helpful, not for me) and updates its DM in place. Only
// the person it went to may answer it.
// clicked is the message the answer came from (a snoozed nudge has one
// message per round); empty means the delivery's latest.
func (s *Service) AnswerNudge(ctx context.Context, a Actor, deliveryID string, ans nudges.Answer, clicked MessageRef, now time.Time) (Answered, error) {
	var loc *time.Location
	d, sub, err := s.dels.RecordOutcome(deliveryID, func(d *nudges.Delivery, sub *nudges.Subscriber) error {
		// The policy's check, inside the transaction, against the stored
		// owner: a forged delivery id in a click answers nothing.
		if err := s.policy.Authorize(ctx, a, OwnedBy(d.UserID)); err != nil {
			return err
		}
		loc = sub.Location(s.cal.Fallback)
		return d.Apply(a.UserID, ans, now, loc, sub)
	})
	switch {
	case errors.Is(err, nudges.ErrAnswered):
		return Answered{Repeat: true}, nil
	case err != nil:
		return Answered{}, fmt.Errorf("recording an answer: %w", err)
	}
	if d.State == nudges.StatePending {
		s.wake() // snoozed: back in the outbox
	}
	n, _ := s.catalog.Resolve(d.NudgeID)
	s.log.Info("nudge answered", "user_id", a.UserID, "delivery_id", d.ID, "outcome", string(d.Outcome), "feedback", string(d.Feedback))
	res := Answered{Delivery: d, Nudge: n, Location: loc}
	msg := NudgeMessage{Nudge: n, Wording: s.wording(n, sub, d.ID), Delivery: d, Location: loc}
	if clicked.Channel == "" || clicked.TS == "" {
		clicked = MessageRef{Channel: d.Channel, TS: d.TS}
	}
	if clicked.Channel != "" && clicked.TS != "" && n.ID != "" {
		if err := s.slack.UpdateNudge(ctx, clicked.Channel, clicked.TS, msg); err != nil {
			s.log.Warn("could not update the nudge message; the answer is recorded", "delivery_id", d.ID, "error", err)
		}
	}
	return res, nil
}

// AnswerCommitment records whether the person did what they said they
// would in a reflection of theirs.
func (s *Service) AnswerCommitment(ctx context.Context, a Actor, seq int, kept bool, now time.Time) (nudges.Reflection, error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return nudges.Reflection{}, err
	}
	r, err := s.refls.UpdateReflection(a.UserID, seq, func(r *nudges.Reflection) error {
		r.Kept = &kept
		if r.FollowedUp.IsZero() {
			r.FollowedUp = now
		}
		return nil
	})
	if err != nil {
		return nudges.Reflection{}, fmt.Errorf("recording a commitment answer: %w", err)
	}
	return r, nil
}
