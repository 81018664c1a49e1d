package app

import (
	"errors"

	"github.com/nudgebot/nudgebot/nudges"
)

// KnownDM is the person's IM channel with the bot as kept since they
// subscribed, or "" when none is kept. It addresses the bot's own answers
// to the person (shown to nobody else), so the adapter need not ask Slack
// for the channel each time: conversations.open is allowed 50 times a
// minute for the whole workspace.
func (s *Service) KnownDM(userID string) string {
	sub, err := s.subs.Subscriber(userID)
	if err != nil {
		return ""
	}
	return sub.DMChannel
}

// errKept stops a write that would change nothing.
var errKept = errors.New("kept DM channel already changed")

// ReplaceDM keeps fresh in place of stale when Slack said stale is gone
// and the adapter opened the DM again ("" forgets it: the next nudge
// opens it). Only a kept channel is replaced: a person with no record
// gets none, and one changed meanwhile stays.
func (s *Service) ReplaceDM(userID, stale, fresh string) {
	if stale == "" || s.KnownDM(userID) != stale {
		return
	}
	_, err := s.subs.UpdateSubscriber(userID, func(sub *nudges.Subscriber) error {
		if sub.DMChannel != stale {
			return errKept
		}
		sub.DMChannel = fresh
		return nil
	})
	if err != nil && !errors.Is(err, errKept) {
		s.log.Warn("replacing a stale DM channel", "user_id", userID, "error", err)
	}
}
