package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// DMMessage is something a person typed in their DM with the bot.
type DMMessage struct {
	TS       string // the message's own timestamp, its id in the DM
	ThreadTS string // the message it replies to in a thread; empty if none
	Text     string
}

// DMReply is what became of a message typed in the DM.
type DMReply struct {
	// Saved is set when it became a reflection on a nudge.
	Saved *Saved
	// NudgeTS is the nudge's message, for a confirmation in its thread.
	NudgeTS string
}

// replyWindow is how long after a nudge a message typed in the DM, not
// in its thread, still answers it.
const replyWindow = 24 * time.Hour

// ReplyInDM turns a person's reply to a nudge (in the nudge's thread, or
// in the DM within a day of it) into a private reflection linked to that
// nudge, which counts as acting on it. A message near no nudge is not
// kept; the caller tells the person what typing here does.
func (s *Service) ReplyInDM(ctx context.Context, a Actor, m DMMessage, now time.Time) (DMReply, error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return DMReply{}, err
	}
	if prev, err := s.refls.ReflectionByMessage(a.UserID, m.TS); err == nil {
		return DMReply{Saved: &Saved{Reflection: prev}}, nil // Slack sent it again
	}
	d, ok := s.repliedTo(a.UserID, m.ThreadTS, now)
	if !ok {
		return DMReply{}, nil
	}
	saved, err := s.saveReflection(a.UserID, nudges.Reflection{UserID: a.UserID, Created: now, Text: m.Text, MessageTS: m.TS}, d, now)
	if err != nil {
		return DMReply{}, err
	}
	return DMReply{Saved: &saved, NudgeTS: d.TS}, nil
}

// repliedTo is the nudge a message answers: the one whose thread it is
// in, else the person's latest sent within replyWindow.
func (s *Service) repliedTo(userID, threadTS string, now time.Time) (nudges.Delivery, bool) {
	if threadTS == "" {
		d, ok := s.latestNudge(userID, now)
		return d, ok && now.Sub(d.SentAt) <= replyWindow
	}
	ds, err := s.dels.Deliveries(userID, now.AddDate(0, 0, -14))
	if err != nil {
		s.log.Warn("reading nudges to link a reply", "user_id", userID, "error", err)
		return nudges.Delivery{}, false
	}
	for i := len(ds) - 1; i >= 0; i-- {
		if ds[i].TS == threadTS {
			return ds[i], true
		}
	}
	return nudges.Delivery{}, false
}

// EditInDM changes the reflection a message became when its author edits
// the message; a message that became none is left alone.
func (s *Service) EditInDM(ctx context.Context, a Actor, ts, text string) error {
	r, found, err := s.messageReflection(ctx, a, ts)
	if err != nil || !found {
		return err
	}
	_, err = s.refls.UpdateReflection(a.UserID, r.Seq, func(r *nudges.Reflection) error {
		r.Text = text
		return nil
	})
	if err != nil {
		return fmt.Errorf("updating a reflection from an edit: %w", err)
	}
	return nil
}

// messageReflection is the actor's reflection typed as message ts;
// found is false when the message became none.
func (s *Service) messageReflection(ctx context.Context, a Actor, ts string) (r nudges.Reflection, found bool, err error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return nudges.Reflection{}, false, err
	}
	r, err = s.refls.ReflectionByMessage(a.UserID, ts)
	if errors.Is(err, nudges.ErrNotFound) {
		return nudges.Reflection{}, false, nil
	}
	if err != nil {
		return nudges.Reflection{}, false, fmt.Errorf("finding the reflection of a message: %w", err)
	}
	return r, true, nil
}

// DeleteInDM deletes the reflection a message became when its author
// deletes the message.
func (s *Service) DeleteInDM(ctx context.Context, a Actor, ts string) error {
	r, found, err := s.messageReflection(ctx, a, ts)
	if err != nil || !found {
		return err
	}
	if err := s.refls.DeleteReflection(a.UserID, r.Seq); err != nil {
		return fmt.Errorf("deleting a reflection with its message: %w", err)
	}
	return nil
}
