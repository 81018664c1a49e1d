package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// Subscription is the answer to subscribing.
type Subscription struct {
	Subscriber nudges.Subscriber
	Location   *time.Location
	// Already is true when the person was subscribed before.
	Already bool
	// Deactivated is true when Slack says the account is deactivated:
	// nothing was changed.
	Deactivated bool
}

// Subscribe starts the person's daily nudges on their schedule, in the
// time zone of their Slack profile.
func (s *Service) Subscribe(ctx context.Context, a Actor, now time.Time) (Subscription, error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return Subscription{}, err
	}
	p, err := s.slack.Profile(ctx, a.UserID)
	if err != nil {
		// Still subscribe; the daily refresh will fill the zone in.
		s.log.Warn("could not read the Slack profile; using the default time zone for now", "user_id", a.UserID, "error", err)
	}
	if p.Deleted {
		return Subscription{Deactivated: true}, nil
	}
	already := false
	sub, err := s.subs.UpdateSubscriber(a.UserID, func(sub *nudges.Subscriber) error {
		already = sub.Subscribed && !sub.Inactive
		if p.TZ != "" {
			sub.ProfileTZ = p.TZ
		}
		if !already {
			sub.Subscribed = true
			sub.Inactive, sub.InactiveReason = false, ""
			sub.SubscribedAt = now
		}
		s.cal.SetNextDue(sub, now)
		return nil
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("subscribing: %w", err)
	}
	if sub.DMChannel == "" {
		// Opened now and kept, so each nudge costs one post: at nine
		// o'clock a whole team would otherwise wait on conversations.open,
		// which Slack allows 50 times a minute.
		if ch, err := s.dmChannel(ctx, sub); err != nil {
			s.log.Warn("could not open the person's DM yet; it is opened with their first nudge", "user_id", a.UserID, "error", err)
		} else {
			sub.DMChannel = ch
		}
	}
	s.wake()
	return Subscription{Subscriber: sub, Location: sub.Location(s.cal.Fallback), Already: already}, nil
}

// Unsubscribe stops the person's nudges; their history stays theirs. was
// reports whether they were subscribed.
func (s *Service) Unsubscribe(ctx context.Context, a Actor, now time.Time) (was bool, err error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return false, err
	}
	_, err = s.subs.UpdateSubscriber(a.UserID, func(sub *nudges.Subscriber) error {
		was = sub.Subscribed
		sub.Subscribed = false
		sub.NextDue = time.Time{}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("unsubscribing: %w", err)
	}
	return was, nil
}

// Change is a change to a person's settings, applied in their zone.
type Change func(sub *nudges.Subscriber, loc *time.Location, now time.Time) error

// SetTime is the time of day, "HH:MM" in the person's zone.
func SetTime(clock string) Change {
	return func(sub *nudges.Subscriber, _ *time.Location, _ time.Time) error { sub.Time = clock; return nil }
}

// SetDays is the days of the week.
func SetDays(days nudges.Weekdays) Change {
	return func(sub *nudges.Subscriber, _ *time.Location, _ time.Time) error { sub.Days = days; return nil }
}

// PauseFor pauses until the end of a pause written as /nudge pause takes
// it ("3d", "1w", "until 2027-01-04"), read in the person's zone.
func PauseFor(arg string) Change {
	return func(sub *nudges.Subscriber, loc *time.Location, now time.Time) error {
		until, err := nudges.ParsePause(arg, now, loc)
		if err != nil {
			return err
		}
		sub.PausedUntil = until
		return nil
	}
}

// Resume ends a pause now.
func Resume() Change {
	return func(sub *nudges.Subscriber, _ *time.Location, _ time.Time) error {
		sub.PausedUntil = time.Time{}
		return nil
	}
}

// SetFocus leans the nudges one way (lead, manage, both, or a theme).
func SetFocus(focus string) Change {
	return func(sub *nudges.Subscriber, _ *time.Location, _ time.Time) error { sub.Focus = focus; return nil }
}

// SetContexts records what applies to the person's work (a team channel,
// one-to-ones, a change under way…), so no nudge asks for what they lack.
func SetContexts(sit nudges.Situation) Change {
	return func(sub *nudges.Subscriber, _ *time.Location, _ time.Time) error { sub.Contexts = sit; return nil }
}

// SetZone overrides the Slack profile's time zone.
func SetZone(loc *time.Location) Change {
	return func(sub *nudges.Subscriber, _ *time.Location, _ time.Time) error {
		sub.TZOverride = loc.String()
		return nil
	}
}

// ChangeSettings applies changes to the person's own settings and
// reschedules their next nudge.
func (s *Service) ChangeSettings(ctx context.Context, a Actor, now time.Time, changes ...Change) (nudges.Subscriber, error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return nudges.Subscriber{}, err
	}
	sub, err := s.subs.UpdateSubscriber(a.UserID, func(sub *nudges.Subscriber) error {
		for _, c := range changes {
			if err := c(sub, sub.Location(s.cal.Fallback), now); err != nil {
				return err
			}
		}
		s.cal.SetNextDue(sub, now)
		return nil
	})
	if err != nil {
		return nudges.Subscriber{}, fmt.Errorf("changing settings: %w", err)
	}
	s.wake()
	return sub, nil
}

// FollowProfileZone drops the person's zone override and follows their
// Slack profile's zone again.
func (s *Service) FollowProfileZone(ctx context.Context, a Actor, now time.Time) (nudges.Subscriber, error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return nudges.Subscriber{}, err
	}
	p, err := s.slack.Profile(ctx, a.UserID)
	if err != nil {
		s.log.Warn("could not read the Slack profile", "user_id", a.UserID, "error", err)
	}
	return s.ChangeSettings(ctx, a, now, func(sub *nudges.Subscriber, _ *time.Location, _ time.Time) error {
		sub.TZOverride = ""
		if p.TZ != "" {
			sub.ProfileTZ = p.TZ
		}
		return nil
	})
}

// Status is what a person sees of their own nudges.
type Status struct {
	Known      bool // false: nudgebot has nothing about them
	Subscriber nudges.Subscriber
	Location   *time.Location
	Streak     int
	// Lead and Manage count nudges of each kind acted on in four weeks.
	Lead, Manage int
	// Week is the nudges delivered since the start of the person's week.
	Week []nudges.Delivery
	// Arc is where the person is on the arc of their focus theme, when
	// their focus has one.
	Arc    nudges.ArcStatus
	HasArc bool
}

// Status is the person's own subscription, schedule, streak and balance.
func (s *Service) Status(ctx context.Context, a Actor, now time.Time) (Status, error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return Status{}, err
	}
	return s.status(a.UserID, now)
}

func (s *Service) status(userID string, now time.Time) (Status, error) {
	sub, err := s.subs.Subscriber(userID)
	if errors.Is(err, nudges.ErrNotFound) {
		return Status{Location: s.cal.Fallback}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("loading status: %w", err)
	}
	history, err := s.dels.Deliveries(userID, now.Add(-nudges.HistoryWindow))
	if err != nil {
		return Status{}, fmt.Errorf("loading history: %w", err)
	}
	loc := sub.Location(s.cal.Fallback)
	lead, manage := nudges.Balance(history, now.AddDate(0, 0, -28))
	st := Status{
		Known: true, Subscriber: sub, Location: loc,
		Streak: nudges.Streak(history, now), Lead: lead, Manage: manage,
	}
	st.Arc, st.HasArc = s.catalog.ArcStatus(sub)
	weekStart := startOfWeek(now.In(loc))
	for _, d := range history {
		if !d.Slot.Before(weekStart) && d.State != nudges.StateFailed {
			st.Week = append(st.Week, d)
		}
	}
	return st, nil
}

// startOfWeek is Monday 00:00 of t's week, in t's zone.
func startOfWeek(t time.Time) time.Time {
	offset := (int(t.Weekday()) + 6) % 7
	return time.Date(t.Year(), t.Month(), t.Day()-offset, 0, 0, 0, 0, t.Location())
}

// ProfileChanged records what Slack says changed about a person (their
// zone, their account deactivated) and reschedules them. Slack is the
// actor: the event is about the person, and only touches their schedule.
func (s *Service) ProfileChanged(userID string, p Profile, now time.Time) error {
	if _, err := s.subs.Subscriber(userID); errors.Is(err, nudges.ErrNotFound) {
		return nil // not someone we know; nothing to keep
	}
	_, err := s.subs.UpdateSubscriber(userID, func(sub *nudges.Subscriber) error {
		if p.Deleted && !sub.Inactive {
			sub.Inactive, sub.InactiveReason = true, "deactivated"
		}
		if p.TZ != "" {
			sub.ProfileTZ = p.TZ
		}
		s.cal.SetNextDue(sub, now)
		return nil
	})
	if err != nil {
		return fmt.Errorf("updating profile: %w", err)
	}
	if p.Deleted {
		s.log.Info("person deactivated in Slack; schedule stopped, data kept", "user_id", userID)
	}
	s.wake()
	return nil
}

// RefreshProfiles re-reads every subscriber's Slack profile: zones move
// with people, and a deactivated person still "receives" DMs, so only
// the profile tells us to stop.
func (s *Service) RefreshProfiles(ctx context.Context, now time.Time) {
	var ids []string
	err := s.subs.ForEachSubscriber(func(sub nudges.Subscriber) error {
		if sub.Subscribed && !sub.Inactive {
			ids = append(ids, sub.UserID)
		}
		return nil
	})
	if err != nil {
		s.log.Error("listing subscribers for the profile refresh", "error", err)
		return
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		p, err := s.slack.Profile(ctx, id)
		if code := SlackCode(err); goneCodes[code] {
			s.deactivate(id, code)
			continue
		}
		if err != nil {
			s.log.Warn("profile refresh failed; keeping the old zone", "user_id", id, "error", err)
			continue
		}
		if err := s.ProfileChanged(id, p, now); err != nil {
			s.log.Error("applying a refreshed profile", "user_id", id, "error", err)
		}
	}
	s.log.Info("profile refresh done", "subscribers", len(ids))
}

func (s *Service) deactivate(userID, reason string) {
	_, err := s.subs.UpdateSubscriber(userID, func(sub *nudges.Subscriber) error {
		sub.Inactive = true
		sub.InactiveReason = reason
		sub.NextDue = time.Time{}
		return nil
	})
	if err != nil {
		s.log.Error("marking a person inactive", "user_id", userID, "error", err)
	}
}
