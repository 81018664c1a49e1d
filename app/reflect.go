package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// commitmentDelay is how many working days pass before a commitment is
// quoted back.
const commitmentDelay = 3

// Reflection is what a person writes, with /reflect or its form.
type Reflection struct {
	Text       string
	Commitment string // "one thing I will do next"; optional
	Share      nudges.Share
	// ShareChannel is the one digest channel a shared reflection goes
	// to; the author must be a member of it.
	ShareChannel string
	// DeliveryID is the nudge the form was opened on; empty means the
	// person's latest nudge within a day, if any.
	DeliveryID string
}

// Saved is a saved reflection and how many the person has.
type Saved struct {
	Reflection nudges.Reflection
	Count      int
}

// Reflect saves a private reflection, linked to the nudge it answers
// (which counts as acting on that nudge). A commitment is quoted back
// in the person's nudge a few working days later.
func (s *Service) Reflect(ctx context.Context, a Actor, in Reflection, now time.Time) (Saved, error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return Saved{}, err
	}
	if err := s.checkShare(ctx, a, in); err != nil {
		return Saved{}, err
	}
	r := nudges.Reflection{UserID: a.UserID, Created: now, Text: in.Text, Commitment: in.Commitment, Share: in.Share}
	if in.Share != nudges.ShareNone {
		r.ShareChannel = in.ShareChannel
	}
	if in.Commitment != "" {
		r.FollowUpDue = addWorkingDays(now.In(s.Location(a.UserID)), commitmentDelay)
	}
	d, _, err := s.nudgeFor(ctx, a, in.DeliveryID, now)
	if err != nil {
		return Saved{}, err
	}
	return s.saveReflection(a.UserID, r, d, now)
}

// saveReflection keeps r, linked to the nudge d answers if there is one
// (which counts as acting on it), within the person's cap.
func (s *Service) saveReflection(userID string, r nudges.Reflection, d nudges.Delivery, now time.Time) (Saved, error) {
	if n, err := s.refls.CountReflections(userID); err == nil && n >= nudges.MaxReflections {
		return Saved{}, nudges.ErrTooManyReflections
	}
	linked := d.ID != ""
	if linked {
		r.DeliveryID, r.NudgeID = d.ID, d.NudgeID
	}
	saved, err := s.refls.SaveReflection(r)
	if err != nil {
		return Saved{}, fmt.Errorf("saving reflection: %w", err)
	}
	if linked {
		_, _, err := s.dels.RecordOutcome(d.ID, func(d *nudges.Delivery, sub *nudges.Subscriber) error {
			d.Reflected(now, sub)
			return nil
		})
		if err != nil {
			s.log.Warn("linking a reflection to its nudge", "user_id", userID, "delivery_id", d.ID, "error", err)
		}
	}
	count, err := s.refls.CountReflections(userID)
	if err != nil {
		count = saved.Seq
	}
	// Never the text: reflections are not logged.
	s.log.Info("reflection saved", "user_id", userID, "seq", saved.Seq, "linked", linked, "shared", saved.Share != nudges.ShareNone)
	return Saved{Reflection: saved, Count: count}, nil
}

// nudgeFor is the nudge a reflection written now answers: the delivery
// the request named, once the policy says the actor may act on its
// stored owner (a forged id in a form's metadata or a button's value is
// refused), else their latest nudge sent within a day; found is false
// when there is none.
func (s *Service) nudgeFor(ctx context.Context, a Actor, deliveryID string, now time.Time) (d nudges.Delivery, found bool, err error) {
	if deliveryID == "" {
		d, found = s.latestNudge(a.UserID, now)
		return d, found, nil
	}
	d, err = s.dels.Delivery(deliveryID)
	if errors.Is(err, nudges.ErrNotFound) {
		return nudges.Delivery{}, false, nil // retention removed it: nothing to link
	}
	if err != nil {
		return nudges.Delivery{}, false, fmt.Errorf("reading the nudge reflected on: %w", err)
	}
	if err := s.policy.Authorize(ctx, a, OwnedBy(d.UserID)); err != nil {
		return nudges.Delivery{}, false, err
	}
	return d, true, nil
}

// latestNudge is the person's latest nudge sent within a day.
func (s *Service) latestNudge(userID string, now time.Time) (nudges.Delivery, bool) {
	ds, err := s.dels.Deliveries(userID, now.Add(-36*time.Hour))
	if err != nil {
		return nudges.Delivery{}, false
	}
	for i := len(ds) - 1; i >= 0; i-- {
		if d := ds[i]; d.State == nudges.StateSent && now.Sub(d.SentAt) <= 24*time.Hour {
			return d, true
		}
	}
	return nudges.Delivery{}, false
}

// addWorkingDays moves t forward n weekdays, to the start of that day.
func addWorkingDays(t time.Time, n int) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	for n > 0 {
		d = d.AddDate(0, 0, 1)
		if d.Weekday() != time.Saturday && d.Weekday() != time.Sunday {
			n--
		}
	}
	return d
}

// ReflectionForm is what the reflection form shows: the nudge it is
// about, if any.
type ReflectionForm struct {
	Nudge   nudges.Nudge
	Wording nudges.Wording
	// ShareIn are the digest channels the person may share it in.
	ShareIn    []ShareOption
	HaveNudge  bool
	DeliveryID string
}

// OpenReflection prepares the reflection form, on the given nudge of the
// person's or their latest.
func (s *Service) OpenReflection(ctx context.Context, a Actor, deliveryID string, now time.Time) (ReflectionForm, error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return ReflectionForm{}, err
	}
	d, ok, err := s.nudgeFor(ctx, a, deliveryID, now)
	if err != nil {
		return ReflectionForm{}, err
	}
	form := ReflectionForm{ShareIn: s.shareOptions(ctx, a)}
	if !ok {
		return form, nil
	}
	n, have := s.catalog.Resolve(d.NudgeID)
	sub, _ := s.subs.Subscriber(a.UserID)
	form.Nudge, form.Wording, form.HaveNudge, form.DeliveryID = n, s.wording(n, sub, d.ID), have, d.ID
	return form, nil
}

// Journal is a page of a person's reflections, newest first.
type Journal struct {
	Reflections []nudges.Reflection
	Total       int
	Location    *time.Location
}

// ListReflections is the person's latest n reflections.
func (s *Service) ListReflections(ctx context.Context, a Actor, n int) (Journal, error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return Journal{}, err
	}
	rs, err := s.refls.Reflections(a.UserID, n)
	if err != nil {
		return Journal{}, fmt.Errorf("listing reflections: %w", err)
	}
	total, err := s.refls.CountReflections(a.UserID)
	if err != nil {
		total = len(rs)
	}
	return Journal{Reflections: rs, Total: total, Location: s.Location(a.UserID)}, nil
}

// SearchReflections finds up to limit of the person's reflections that
// mention word.
func (s *Service) SearchReflections(ctx context.Context, a Actor, word string, limit int) (Journal, error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return Journal{}, err
	}
	rs, err := s.refls.SearchReflections(a.UserID, word, limit)
	if err != nil {
		return Journal{}, fmt.Errorf("searching reflections: %w", err)
	}
	return Journal{Reflections: rs, Total: len(rs), Location: s.Location(a.UserID)}, nil
}

// DeleteReflection deletes one of the person's reflections;
// nudges.ErrNotFound when they have no such reflection.
func (s *Service) DeleteReflection(ctx context.Context, a Actor, seq int) error {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return err
	}
	if err := s.refls.DeleteReflection(a.UserID, seq); err != nil {
		return fmt.Errorf("deleting a reflection: %w", err)
	}
	return nil
}

// Export is everything nudgebot keeps about one person, in memory.
// What a person downloads is written by ExportJSON, the one definition
// of the export's JSON shape.
type Export struct {
	ExportedAt  time.Time
	UserID      string
	Settings    *nudges.Subscriber
	Reflections []nudges.Reflection
	Nudges      []ExportedNudge
	// Unreadable counts records that exist but could not be opened; each
	// is logged by name, never by content.
	Unreadable int
}

// ExportedNudge is a delivery with the prompt it carried.
type ExportedNudge struct {
	nudges.Delivery
	Prompt string `json:"prompt,omitempty"`
}

// ExportSink takes a person's records one at a time, in the order the
// walk finds them (settings, then nudges, then reflections, oldest
// first), so an export of thousands of reflections never sits whole in
// memory.
type ExportSink interface {
	Settings(nudges.Subscriber) error
	Nudge(ExportedNudge) error
	Reflection(nudges.Reflection) error
}

// ExportTo hands everything about the person to sink, for them alone,
// through the same walk as the operator's `nudgebot export`, so the two
// cannot drift apart. unreadable counts records that exist but could
// not be opened; each is logged by name, never by content.
func (s *Service) ExportTo(ctx context.Context, a Actor, sink ExportSink) (unreadable int, err error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return 0, err
	}
	err = s.exporter.ExportPerson(a.UserID, func(r nudges.PersonRecord) error {
		switch {
		case r.Subscriber != nil:
			return sink.Settings(*r.Subscriber)
		case r.Delivery != nil:
			n, _ := s.catalog.Resolve(r.Delivery.NudgeID)
			return sink.Nudge(ExportedNudge{Delivery: *r.Delivery, Prompt: n.Prompt})
		case r.Reflection != nil:
			return sink.Reflection(*r.Reflection)
		case r.Unreadable != nil:
			unreadable++
			s.log.Warn("a record left out of an export cannot be read", "user_id", a.UserID, "record", r.Unreadable.Name(), "error", r.Unreadable.Detail)
		}
		return nil
	})
	if err != nil {
		return unreadable, fmt.Errorf("exporting: %w", err)
	}
	return unreadable, nil
}

// Export gathers everything about the person in memory, newest
// reflection first; ExportTo streams it instead.
func (s *Service) Export(ctx context.Context, a Actor, now time.Time) (Export, error) {
	ex := &Export{ExportedAt: now, UserID: a.UserID, Reflections: []nudges.Reflection{}, Nudges: []ExportedNudge{}}
	n, err := s.ExportTo(ctx, a, exportCollector{ex})
	if err != nil {
		return Export{}, err
	}
	ex.Unreadable = n
	slices.Reverse(ex.Reflections) // newest first, as /reflect list shows them
	return *ex, nil
}

// exportCollector is the ExportSink that keeps everything in an Export.
type exportCollector struct{ ex *Export }

func (c exportCollector) Settings(s nudges.Subscriber) error { c.ex.Settings = &s; return nil }
func (c exportCollector) Nudge(n ExportedNudge) error {
	c.ex.Nudges = append(c.ex.Nudges, n)
	return nil
}
func (c exportCollector) Reflection(r nudges.Reflection) error {
	c.ex.Reflections = append(c.ex.Reflections, r)
	return nil
}

// Forget deletes everything nudgebot keeps about the person: their data
// key first, so their reflections are unreadable from then on wherever
// the sealed bytes remain, then every record of them, then the free
// pages, by compacting the file when next allowed. Only the person may
// ask, for themselves.
func (s *Service) Forget(ctx context.Context, a Actor, whom string) error {
	if err := s.policy.Authorize(ctx, a, OwnedBy(whom)); err != nil {
		return err
	}
	if err := s.eraser.Forget(whom); err != nil {
		return fmt.Errorf("forgetting a person: %w", err)
	}
	s.log.Info("person forgotten", "user_id", whom)
	// Their bytes leave the file with the next compaction, now if the
	// last one is long enough ago, else at the hourly housekeeping.
	s.CompactSoon()
	return nil
}

// DraftUpdate is the reflection a person turns into a team update.
func (s *Service) DraftUpdate(ctx context.Context, a Actor, seq int) (nudges.Reflection, error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return nudges.Reflection{}, err
	}
	r, err := s.refls.Reflection(a.UserID, seq)
	if err != nil {
		return nudges.Reflection{}, fmt.Errorf("drafting from a reflection: %w", err)
	}
	return r, nil
}

// PostUpdate posts the person's team update in a channel, in their name.
// Only a member of the channel may speak there through nudgebot.
func (s *Service) PostUpdate(ctx context.Context, a Actor, channel, text string) error {
	if err := s.policy.Authorize(ctx, a, ChannelPost(channel)); err != nil {
		return err
	}
	if err := s.slack.PostUpdate(ctx, channel, a.UserID, text); err != nil {
		return fmt.Errorf("posting a team update: %w", err)
	}
	return nil
}

// ShareOption is a digest channel a person may share a reflection in, and
// how many people will see it there.
type ShareOption struct {
	Channel, Name string
	Members       int
	// Anonymous is false when fewer people than the anonymity threshold
	// take part in the channel's digest (its subscribed members): there
	// an "anonymous" reflection could be told apart by elimination.
	Anonymous bool
}

// ErrShareRefused is a share the author may not make: a channel they are
// not in, one without a digest, or anonymous among too few people.
type ErrShareRefused struct {
	Why string
}

func (e *ErrShareRefused) Error() string { return "cannot share there: " + e.Why }

// shareOptions are the digest channels the person is a member of. A
// channel Slack cannot tell us about is left out.
func (s *Service) shareOptions(ctx context.Context, a Actor) []ShareOption {
	var out []ShareOption
	for _, ch := range s.DigestChannels() {
		info, err := s.members.get(ctx, ch)
		if err != nil {
			s.log.Warn("reading a digest channel for the share choice", "channel", ch, "error", err)
			continue
		}
		if !slices.Contains(info.Members, a.UserID) {
			continue
		}
		n, err := s.shareAudience(ch, info)
		if err != nil {
			s.log.Warn("counting who takes part in a digest", "channel", ch, "error", err)
		}
		out = append(out, ShareOption{Channel: ch, Name: info.Name, Members: len(info.Members), Anonymous: err == nil && n >= s.threshold})
	}
	return out
}

// shareAudience counts the people whose contributions can appear in the
// channel's next digest: the members its period fixed (the channel's
// members now, before its first digest) who have a record here. An
// anonymous share among fewer than the threshold could be told apart by
// elimination, whatever number of people can read the channel.
func (s *Service) shareAudience(channel string, now Channel) (int, error) {
	last, err := s.digests.PostedDigest(channel)
	if err != nil {
		return 0, fmt.Errorf("reading the digest's members: %w", err)
	}
	members := last.Members
	if members == nil {
		members = now.Members
	}
	return len(s.contributors(members)), nil
}

// checkShare holds a share to what the author chose and may do: one
// digest channel, theirs, and anonymity only where it can hold.
func (s *Service) checkShare(ctx context.Context, a Actor, in Reflection) error {
	if in.Share == nudges.ShareNone {
		return nil
	}
	if _, ok := s.plans[in.ShareChannel]; !ok {
		return &ErrShareRefused{Why: "choose one of your team digest channels"}
	}
	if err := s.policy.Authorize(ctx, a, ChannelPost(in.ShareChannel)); err != nil {
		return err
	}
	if in.Share != nudges.ShareAnonymous {
		return nil
	}
	info, err := s.slack.Channel(ctx, in.ShareChannel)
	if err != nil {
		return fmt.Errorf("counting the channel's members: %w", err)
	}
	n, err := s.shareAudience(in.ShareChannel, info)
	if err != nil {
		return err
	}
	if n < s.threshold {
		return &ErrShareRefused{Why: fmt.Sprintf("%d %s take part in that digest; sharing anonymously needs at least %d, or the others could tell it was you", n, plural(n, "person", "people"), s.threshold)}
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
