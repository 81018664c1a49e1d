package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// Stats are the admins' view of the last week: counts only.
type Stats struct {
	Subscribers, Active int
	// States counts the week's deliveries by state; Outcomes counts the
	// sent ones by what people did.
	States    map[nudges.DeliveryState]int
	Outcomes  map[nudges.Outcome]int
	PausedAll time.Time // zero when nobody is paused by an admin
}

// AdminStats counts subscribers and the last seven days' deliveries.
func (s *Service) AdminStats(ctx context.Context, a Actor, now time.Time) (Stats, error) {
	if err := s.policy.Authorize(ctx, a, AdminOperations()); err != nil {
		return Stats{}, err
	}
	total, active, err := s.subs.CountSubscribers()
	if err != nil {
		return Stats{}, fmt.Errorf("counting subscribers: %w", err)
	}
	st := Stats{Subscribers: total, Active: active, States: map[nudges.DeliveryState]int{}, Outcomes: map[nudges.Outcome]int{}}
	err = s.dels.DeliveriesBetween(now.Add(-7*24*time.Hour), now.Add(time.Second), func(d nudges.Delivery) error {
		st.States[d.State]++
		if d.State == nudges.StateSent {
			st.Outcomes[d.Outcome]++
		}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("counting deliveries: %w", err)
	}
	if until, _ := s.settings.PausedAll(); until.After(now) {
		st.PausedAll = until
	}
	return st, nil
}

// Forever is the end of a company-wide pause with no end date: until an
// admin resumes.
var Forever = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// PausedForever reports whether a company-wide pause ending at until has
// no end date: it ends at Forever or later, in whatever zone it is read
// (Forever in New York falls in the year 9998).
func PausedForever(until time.Time) bool { return !until.Before(Forever) }

// PauseAll pauses everyone's nudges until then (Forever: until
// resumed); slots in between are skipped, not sent later. A zero until
// lifts the pause.
func (s *Service) PauseAll(ctx context.Context, a Actor, until time.Time) error {
	if err := s.policy.Authorize(ctx, a, AdminOperations()); err != nil {
		return err
	}
	if err := s.settings.SetPausedAll(until); err != nil {
		return fmt.Errorf("setting the company-wide pause: %w", err)
	}
	if until.IsZero() {
		s.wake()
		s.log.Info("company-wide pause lifted", "user_id", a.UserID)
	} else {
		s.log.Info("company-wide pause set", "user_id", a.UserID, "until", until)
	}
	return nil
}

// PersonStatus is what an admin may see of a person, as
// docs/security.md promises: whether they are subscribed or paused, their
// time zone and whether their last nudge arrived. Never their streak,
// what they acted on, their work contexts or their reflections, not even
// how many: those are theirs alone.
type PersonStatus struct {
	Known       bool // nudgebot keeps a record of them
	Subscribed  bool
	Inactive    bool // Slack says their account cannot receive DMs
	PausedUntil time.Time
	Location    *time.Location
	// LastNudge is their latest nudge's state (sent, failed, pending...),
	// "" when none was due yet; LastAt is its slot.
	LastNudge nudges.DeliveryState
	LastAt    time.Time
}

// AdminPerson shows an admin one person's subscription state.
func (s *Service) AdminPerson(ctx context.Context, a Actor, userID string, now time.Time) (PersonStatus, error) {
	if err := s.policy.Authorize(ctx, a, AdminOperations()); err != nil {
		return PersonStatus{}, err
	}
	sub, err := s.subs.Subscriber(userID)
	if errors.Is(err, nudges.ErrNotFound) {
		return PersonStatus{Location: s.cal.Fallback}, nil
	}
	if err != nil {
		return PersonStatus{}, fmt.Errorf("reading a person's subscription: %w", err)
	}
	st := PersonStatus{Known: true, Subscribed: sub.Subscribed, Inactive: sub.Inactive, Location: sub.Location(s.cal.Fallback)}
	if sub.PausedUntil.After(now) {
		st.PausedUntil = sub.PausedUntil
	}
	ds, err := s.dels.Deliveries(userID, now.Add(-nudges.HistoryWindow))
	if err != nil {
		return PersonStatus{}, fmt.Errorf("reading a person's last nudge: %w", err)
	}
	if n := len(ds); n > 0 {
		st.LastNudge, st.LastAt = ds[n-1].State, ds[n-1].Slot
	}
	return st, nil
}

// Home is what a person's App Home shows: their own state, this week's
// nudges and their latest reflections. Only they see it.
type Home struct {
	Status
	Reflections []nudges.Reflection
}

// homeReflections is how many reflections App Home shows.
const homeReflections = 3

// Home gathers the person's App Home.
func (s *Service) Home(ctx context.Context, a Actor, now time.Time) (Home, error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return Home{}, err
	}
	st, err := s.status(a.UserID, now)
	if err != nil {
		return Home{}, err
	}
	rs, err := s.refls.Reflections(a.UserID, homeReflections)
	if err != nil {
		s.log.Warn("reading reflections for App Home", "user_id", a.UserID, "error", err)
	}
	return Home{Status: st, Reflections: rs}, nil
}

// Strategy shows or changes the strategy lines that strategy and
// organisation nudges quote, in leadership's own words; it returns the
// lines now in force.
func (s *Service) Strategy(ctx context.Context, a Actor, args nudges.StrategyArgs) ([]string, error) {
	if err := s.policy.Authorize(ctx, a, AdminOperations()); err != nil {
		return nil, err
	}
	lines, err := args.Apply(s.strategyLines())
	if err != nil {
		return nil, err
	}
	if args.Op == nudges.StrategyShow {
		return lines, nil
	}
	if err := s.settings.SetStrategyLines(lines); err != nil {
		return nil, fmt.Errorf("saving the strategy lines: %w", err)
	}
	s.log.Info("strategy lines changed", "user_id", a.UserID, "lines", len(lines))
	return lines, nil
}
