package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

const (
	digestLookback = 7 * 24 * time.Hour // the first digest covers a week
	streakLookback = 60 * 24 * time.Hour
)

// PulseID names the pulse opened with the digest posted at t, so the next
// digest can close it without remembering anything else.
func PulseID(channel string, t time.Time) string {
	return fmt.Sprintf("%s-%d", channel, t.Unix())
}

// pulseChannel is the channel a pulse id names.
func pulseChannel(id string) string {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return ""
	}
	if _, err := strconv.ParseInt(id[i+1:], 10, 64); err != nil {
		return ""
	}
	return id[:i]
}

// DigestRun is what posting a digest came to.
type DigestRun struct {
	Members int
	// Broken is Slack's code when an admin must act (the bot is not in
	// the channel, it is archived or gone); TellAdmins is true the first
	// time it is seen, so admins hear of it once.
	Broken     string
	TellAdmins bool
	Admins     []string
}

// RunDigest posts a channel's digest for the period since the last one,
// with a fresh clarity pulse, and closes the previous pulse. The
// scheduler calls it; an error an admin must fix is reported once in
// DigestRun, others as the error.
func (s *Service) RunDigest(ctx context.Context, channel string, now time.Time) (DigestRun, error) {
	last, err := s.digests.LastDigest(channel)
	if err != nil {
		return DigestRun{}, fmt.Errorf("reading digest state: %w", err)
	}
	from := last
	var pulse nudges.PulseSummary
	if last.IsZero() {
		from = now.Add(-digestLookback)
	} else {
		pulse, err = s.digests.ClosePulse(PulseID(channel, last))
		if err != nil && !errors.Is(err, nudges.ErrNotFound) {
			s.log.Warn("closing the last pulse", "channel", channel, "error", err)
		}
	}
	in, name, err := s.digestInput(ctx, channel, from, now, pulse)
	if err == nil {
		err = s.postDigest(ctx, channel, name, nudges.BuildDigest(in), now)
	}
	if err != nil {
		return s.digestFailed(channel, err)
	}
	if err := s.digests.SetLastDigest(channel, now); err != nil {
		s.log.Error("recording the digest; the next one will cover this period again", "channel", channel, "error", err)
	}
	if err := s.digests.ClearDigestBroken(channel); err != nil {
		s.log.Warn("clearing digest failure", "channel", channel, "error", err)
	}
	return DigestRun{Members: len(in.Members)}, nil
}

func (s *Service) postDigest(ctx context.Context, channel, name string, d nudges.Digest, now time.Time) error {
	id := PulseID(channel, now)
	if err := s.slack.PostDigest(ctx, channel, name, d, id); err != nil {
		return err
	}
	if err := s.digests.OpenPulse(channel, id, now); err != nil {
		return fmt.Errorf("opening the pulse: %w", err)
	}
	return s.slack.PostPulse(ctx, channel, id)
}

func (s *Service) digestFailed(channel string, err error) (DigestRun, error) {
	code := SlackCode(err)
	if !brokenTargetCodes[code] {
		return DigestRun{}, err
	}
	first, serr := s.digests.MarkDigestBroken(channel, code)
	if serr != nil {
		s.log.Error("recording digest failure", "channel", channel, "error", serr)
	}
	return DigestRun{Broken: code, TellAdmins: first, Admins: slices.Clone(s.policy.admins)}, nil
}

// digestInput gathers a channel's period: its subscribed members, their
// deliveries, what they chose to share, and the pulse history.
func (s *Service) digestInput(ctx context.Context, channel string, from, to time.Time, pulse nudges.PulseSummary) (nudges.DigestInput, string, error) {
	ch, err := s.slack.Channel(ctx, channel)
	if err != nil {
		return nudges.DigestInput{}, "", err
	}
	var subscribed []string
	for _, m := range ch.Members {
		if _, err := s.subs.Subscriber(m); err == nil {
			subscribed = append(subscribed, m)
		}
	}
	trend, err := s.pulseTrend(channel, pulse)
	if err != nil {
		return nudges.DigestInput{}, "", err
	}
	since := to.Add(-streakLookback)
	if len(trend) > 0 {
		// The clarity trend sets each period beside its strategy
		// updates, so read as far back as its first period.
		if first := trend[0].PeriodEnd.Add(-to.Sub(from)); first.Before(since) {
			since = first
		}
	}
	history, err := s.dels.DeliveriesFor(subscribed, since, to)
	if err != nil {
		return nudges.DigestInput{}, "", fmt.Errorf("reading deliveries: %w", err)
	}
	var period []nudges.Delivery
	byUser := map[string][]nudges.Delivery{}
	for _, d := range history {
		byUser[d.UserID] = append(byUser[d.UserID], d)
		if !d.Slot.Before(from) && d.Slot.Before(to) {
			period = append(period, d)
		}
	}
	streaks := make(map[string]int, len(byUser))
	for u, ds := range byUser {
		streaks[u] = nudges.Streak(ds, to)
	}
	shared, err := s.refls.SharedReflections(subscribed, from, to)
	if err != nil {
		return nudges.DigestInput{}, "", fmt.Errorf("reading shared reflections: %w", err)
	}
	return nudges.DigestInput{
		Channel: channel, From: from, To: to,
		Members: subscribed, Names: s.authorNames(ctx, shared),
		Deliveries: period, Shared: shared,
		Pulse: pulse, Trend: trend,
		Streaks: streaks, Nudges: s.promptsOf(shared), Now: to,
		TrendDeliveries: history,
	}, ch.Name, nil
}

func (s *Service) authorNames(ctx context.Context, shared []nudges.Reflection) map[string]string {
	names := map[string]string{}
	for _, r := range shared {
		if r.Share == nudges.ShareNamed && names[r.UserID] == "" {
			p, err := s.slack.Profile(ctx, r.UserID)
			if err != nil {
				s.log.Warn("reading a sharer's name", "user_id", r.UserID, "error", err)
			}
			names[r.UserID] = p.DisplayName
		}
	}
	return names
}

func (s *Service) promptsOf(shared []nudges.Reflection) map[string]nudges.Nudge {
	prompts := map[string]nudges.Nudge{}
	for _, r := range shared {
		if n, ok := s.catalog.Resolve(r.NudgeID); ok {
			prompts[r.NudgeID] = n
		}
	}
	return prompts
}

func (s *Service) pulseTrend(channel string, pulse nudges.PulseSummary) ([]nudges.PulseSummary, error) {
	trend, err := s.digests.PulseHistory(channel, nudges.TrendPeriods+1)
	if err != nil {
		return nil, fmt.Errorf("reading pulse history: %w", err)
	}
	if n := len(trend); n > 0 && pulse.Responses > 0 && trend[n-1].PeriodEnd.Equal(pulse.PeriodEnd) {
		trend = trend[:n-1] // this period's pulse is passed on its own
	}
	if len(trend) > nudges.TrendPeriods {
		trend = trend[len(trend)-nudges.TrendPeriods:]
	}
	return trend, nil
}

// ErrNoDigest is returned for a channel without a digest configured.
var ErrNoDigest = errors.New("that channel has no digest configured")

// Preview is what the next digest of a channel would say.
type Preview struct {
	Digest      nudges.Digest
	ChannelName string
}

// PreviewDigest shows the actor what the next digest of a channel would
// say, without closing its pulse or posting anything. Only the channel's
// members and the admins may look.
func (s *Service) PreviewDigest(ctx context.Context, a Actor, channel string, now time.Time) (Preview, error) {
	if !slices.Contains(s.channels, channel) {
		return Preview{}, ErrNoDigest
	}
	if err := s.policy.Authorize(ctx, a, ChannelThings(channel)); err != nil {
		return Preview{}, err
	}
	last, err := s.digests.LastDigest(channel)
	if err != nil {
		return Preview{}, fmt.Errorf("reading digest state: %w", err)
	}
	if last.IsZero() {
		last = now.Add(-digestLookback)
	}
	in, name, err := s.digestInput(ctx, channel, last, now, nudges.PulseSummary{})
	if err != nil {
		return Preview{}, fmt.Errorf("reading the channel: %w", err)
	}
	return Preview{Digest: nudges.BuildDigest(in), ChannelName: name}, nil
}

// DigestChannels are the channels with a digest configured.
func (s *Service) DigestChannels() []string { return slices.Clone(s.channels) }

// VotePulse records an anonymous answer to a channel's clarity pulse,
// once per person; first is false when they had answered already.
func (s *Service) VotePulse(ctx context.Context, a Actor, pulseID string, score int) (first bool, err error) {
	if err := s.policy.Authorize(ctx, a, Clickable(pulseChannel(pulseID))); err != nil {
		return false, err
	}
	first, err = s.digests.VotePulse(pulseID, a.UserID, score)
	if err != nil {
		return false, fmt.Errorf("recording a pulse vote: %w", err)
	}
	return first, nil
}

// HearMore records, anonymously, what a person would like to hear more
// about, for the next digest.
func (s *Service) HearMore(ctx context.Context, a Actor, pulseID, text string) error {
	if err := s.policy.Authorize(ctx, a, Clickable(pulseChannel(pulseID))); err != nil {
		return err
	}
	if err := s.digests.AddHearMore(pulseID, a.UserID, text); err != nil {
		return fmt.Errorf("saving a hear-more answer: %w", err)
	}
	return nil
}
