package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// digestLookback is the period the first digest covers.
const digestLookback = 7 * 24 * time.Hour

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
	// time it is seen, when Admins were told, so they hear of it once.
	Broken     string
	TellAdmins bool
	Admins     []string
	// HeldBack are the anonymous reflections the digest left out because
	// too few people take part in it; their authors were told.
	HeldBack []nudges.Reflection
}

// RunDigest posts a channel's digest for the period since the last one,
// with a fresh clarity pulse, and closes the previous pulse. A period's
// figures count the members the channel had when it began, so nobody
// joining or leaving in between changes whom a figure describes. The
// scheduler calls it; an error an admin must fix is told to the admins
// once and reported in DigestRun, others as the error. It is the
// leader's work: a replica that does not lead posts nothing and returns
// an error for which NotLeader is true.
func (s *Service) RunDigest(ctx context.Context, channel string, now time.Time) (DigestRun, error) {
	if err := s.leader.Leading(); err != nil {
		return DigestRun{}, err
	}
	last, err := s.digests.PostedDigest(channel)
	if err != nil {
		return DigestRun{}, fmt.Errorf("reading digest state: %w", err)
	}
	from := last.At
	var pulse nudges.PulseSummary
	if last.At.IsZero() {
		from = now.Add(-digestLookback)
	} else {
		pulse, err = s.digests.ClosePulse(PulseID(channel, last.At))
		switch {
		case NotLeader(err):
			return DigestRun{}, err
		case err != nil && !errors.Is(err, nudges.ErrNotFound):
			s.log.Warn("closing the last pulse", "channel", channel, "error", err)
		}
	}
	in, ch, err := s.digestInput(ctx, channel, from, now, pulse, last.Members)
	if last.Shown != nil {
		in.Shown = last.Shown.ClarityVsUpdates
	}
	d := nudges.BuildDigest(in)
	if err == nil {
		err = s.postDigest(ctx, ch, channel, d, now)
	}
	if NotLeader(err) {
		return DigestRun{}, err
	}
	if err != nil {
		return s.digestFailed(ctx, channel, err)
	}
	if err := s.digests.RecordDigest(channel, nudges.PostedDigest{At: now, Shown: &d, Members: ch.Members}); err != nil {
		s.log.Error("recording the digest; the next one will cover this period again", "channel", channel, "error", err)
	}
	if err := s.digests.ClearDigestBroken(channel); err != nil {
		s.log.Warn("clearing digest failure", "channel", channel, "error", err)
	}
	s.leanOnClarity(channel, in, now)
	held := nudges.HeldBack(in)
	for _, r := range held {
		s.log.Info("anonymous reflection held back: too few people take part in the digest", "channel", channel, "user_id", r.UserID, "seq", r.Seq)
		if err := s.slack.TellAboutDigest(ctx, r.UserID, DigestNote{Channel: channel, HeldBack: r.Seq}); err != nil {
			s.log.Warn("telling an author their reflection was held back", "channel", channel, "user_id", r.UserID, "error", err)
		}
	}
	return DigestRun{Members: len(in.Members), HeldBack: held}, nil
}

// leanOnClarity brings strategy and organisation nudges forward for the
// channel's subscribed members, until its next digest, when its clarity
// pulse fell or is low, or enough people asked to hear more. The reason
// they are told describes the team, never one person.
func (s *Service) leanOnClarity(channel string, in nudges.DigestInput, now time.Time) {
	lean := nudges.PulseLean(append(slices.Clone(in.Trend), in.Pulse), in.Pulse.HearMoreWriters, s.threshold)
	if !lean.Sooner {
		return
	}
	until := s.plans[channel].next(now)
	if until.IsZero() {
		until = now.Add(digestLookback)
	}
	for _, id := range in.Members {
		_, err := s.subs.UpdateSubscriber(id, func(sub *nudges.Subscriber) error {
			if sub.TeamLean.At(now).Sooner {
				return nil // another team's lean holds until its own next digest
			}
			sub.TeamLean = nudges.TeamLean{Lean: lean, Until: until}
			return nil
		})
		if err != nil {
			s.log.Warn("bringing strategy nudges forward", "user_id", id, "error", err)
		}
	}
	s.log.Info("clarity is low: strategy and organisation nudges come sooner", "channel", channel, "members", len(in.Members))
}

// postDigest posts d and opens its pulse for the channel's members as
// it goes out (ch), the only people whose answers it takes. Nothing
// leaves once this replica's term as leader has ended.
func (s *Service) postDigest(ctx context.Context, ch Channel, channel string, d nudges.Digest, now time.Time) error {
	id := PulseID(channel, now)
	if err := s.slack.PostDigest(ctx, channel, ch.Name, d, id, s.leading); err != nil {
		return err
	}
	if err := s.digests.OpenPulse(channel, id, now, ch.Members...); err != nil {
		return fmt.Errorf("opening the pulse: %w", err)
	}
	return s.slack.PostPulse(ctx, channel, id, s.leading)
}

// digestFailed records a failure an admin must fix and, the first time
// it is seen, tells the admins what to do.
func (s *Service) digestFailed(ctx context.Context, channel string, err error) (DigestRun, error) {
	code := SlackCode(err)
	if !brokenTargetCodes[code] {
		return DigestRun{}, err
	}
	first, serr := s.digests.MarkDigestBroken(channel, code)
	if serr != nil {
		s.log.Error("recording digest failure", "channel", channel, "error", serr)
	}
	run := DigestRun{Broken: code, TellAdmins: first, Admins: slices.Clone(s.policy.admins)}
	if first {
		s.log.Error("digest cannot be posted until an admin acts", "channel", channel, "reason", code)
		for _, admin := range run.Admins {
			if err := s.slack.TellAboutDigest(ctx, admin, DigestNote{Channel: channel, Broken: code}); err != nil {
				s.log.Warn("telling an admin a digest is broken", "channel", channel, "admin", admin, "error", err)
			}
		}
	}
	return run, nil
}

// digestInput gathers a channel's period: its subscribed members, their
// deliveries, what they chose to share, and the pulse history.
// fixed are the members the period counts, fixed when it began; nil (the
// first period) counts the channel's members now.
func (s *Service) digestInput(ctx context.Context, channel string, from, to time.Time, pulse nudges.PulseSummary, fixed []string) (nudges.DigestInput, Channel, error) {
	ch, err := s.slack.Channel(ctx, channel)
	if err != nil {
		return nudges.DigestInput{}, Channel{}, err
	}
	counted := ch.Members
	if fixed != nil {
		counted = fixed
	}
	subscribed := s.contributors(counted)
	trend, err := s.pulseTrend(channel, pulse)
	if err != nil {
		return nudges.DigestInput{}, Channel{}, err
	}
	// Everything read here, the clarity trend's strategy updates included,
	// stays within the history that retention always keeps.
	since := to.Add(-nudges.HistoryWindow)
	history, err := s.dels.DeliveriesFor(subscribed, since, to)
	if err != nil {
		return nudges.DigestInput{}, Channel{}, fmt.Errorf("reading deliveries: %w", err)
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
	shared, err := s.sharedIn(channel, subscribed, from, to)
	if err != nil {
		return nudges.DigestInput{}, Channel{}, fmt.Errorf("reading shared reflections: %w", err)
	}
	return nudges.DigestInput{
		Channel: channel, From: from, To: to, Threshold: s.threshold,
		Members:    subscribed,
		Deliveries: period, Shared: shared,
		Pulse: pulse, Trend: trend,
		Streaks: streaks, Nudges: s.promptsOf(shared), Now: to,
		TrendDeliveries: history, TrendSince: since,
	}, ch, nil
}

// contributors are those of a digest's members whose nudges and
// reflections can appear in it: the ones nudgebot keeps a record of.
func (s *Service) contributors(members []string) []string {
	var out []string
	for _, m := range members {
		if _, err := s.subs.Subscriber(m); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// sharedIn are the reflections their authors shared in this channel: a
// reflection goes only where its author chose, never to every channel
// they are in (one shared before the choice existed goes nowhere).
func (s *Service) sharedIn(channel string, members []string, from, to time.Time) ([]nudges.Reflection, error) {
	all, err := s.refls.SharedReflections(members, from, to)
	if err != nil {
		return nil, err
	}
	var out []nudges.Reflection
	for _, r := range all {
		if r.ShareChannel == channel {
			out = append(out, r)
		}
	}
	return out, nil
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

// TooSoon is the answer to a second preview within a minute; Retry is
// when one may be asked for again.
type TooSoon struct{ Retry time.Time }

func (e *TooSoon) Error() string { return "asked again too soon" }

// previewEvery is how often one person may preview digests.
const previewEvery = time.Minute

// Preview is what a person may see of a channel's digest: the last one
// posted (Digest is nil before the first) and when the next comes.
type Preview struct {
	ChannelName string
	Digest      *nudges.Digest
	Posted      time.Time // when the digest shown went out
	Next        time.Time // when the next digest goes out, in the digest's zone; zero if unknown
}

// PreviewDigest shows a channel's last digest to its members and the
// admins, and when the next comes. Only fixed periods are shown, to
// admins too: the period under way changes with every join and every
// action, so two looks either side of one would isolate that person
// (and before the first digest there is nothing fixed to show). Each
// person may look once a minute, since every look asks Slack who is in
// the channel.
func (s *Service) PreviewDigest(ctx context.Context, a Actor, channel string, now time.Time) (Preview, error) {
	if _, ok := s.plans[channel]; !ok {
		return Preview{}, ErrNoDigest
	}
	if err := s.previews.take(a.UserID, now); err != nil {
		return Preview{}, err
	}
	return s.preview(ctx, a, channel, now)
}

// PreviewDigestNamed is PreviewDigest for a digest channel given by name
// ("team" for #team). The once-a-minute gate comes first and names come
// from the channel cache, so asking again and again costs no Slack call.
func (s *Service) PreviewDigestNamed(ctx context.Context, a Actor, name string, now time.Time) (Preview, error) {
	if err := s.previews.take(a.UserID, now); err != nil {
		return Preview{}, err
	}
	channel := s.digestChannelNamed(ctx, name)
	if channel == "" {
		return Preview{}, ErrNoDigest
	}
	return s.preview(ctx, a, channel, now)
}

func (s *Service) preview(ctx context.Context, a Actor, channel string, now time.Time) (Preview, error) {
	if err := s.policy.Authorize(ctx, a, ChannelFigures(channel)); err != nil {
		return Preview{}, err
	}
	last, err := s.digests.PostedDigest(channel)
	if err != nil {
		return Preview{}, fmt.Errorf("reading digest state: %w", err)
	}
	info, err := s.members.get(ctx, channel)
	if err != nil {
		return Preview{}, fmt.Errorf("reading the channel: %w", err)
	}
	return Preview{ChannelName: info.Name, Digest: last.Shown, Posted: last.At, Next: s.plans[channel].next(now)}, nil
}

// digestChannelNamed is the digest channel called name, from the cache
// of channels; "" when none is.
func (s *Service) digestChannelNamed(ctx context.Context, name string) string {
	for _, ch := range s.DigestChannels() {
		info, err := s.members.get(ctx, ch)
		if err != nil {
			s.log.Warn("reading a digest channel's name", "channel", ch, "error", err)
			continue
		}
		if strings.EqualFold(info.Name, name) {
			return ch
		}
	}
	return ""
}

// DigestPlan is one channel's digest: where, and when it runs. When is
// the schedule the scheduler fires it on (package scheduler reads it
// with robfig/cron), so the time people are told is the time it comes;
// nil never runs.
type DigestPlan struct {
	Channel string
	When    Schedule
}

// Schedule says when something next happens strictly after a time, in
// that schedule's own zone; zero for never. robfig/cron's schedules are
// Schedules.
type Schedule interface {
	Next(after time.Time) time.Time
}

// next is when the digest next runs after `after`; zero if it never
// does.
func (p DigestPlan) next(after time.Time) time.Time {
	if p.When == nil {
		return time.Time{}
	}
	return p.When.Next(after)
}

// MissedDigests are the channels whose digest came due in the last
// within, up to now, and has not been posted since: the scheduler that
// should have posted it was not running then (a takeover, or a restart,
// straddling its time). A channel that never had a digest has missed
// none: its first comes at its time.
func (s *Service) MissedDigests(now time.Time, within time.Duration) []string {
	var missed []string
	for _, ch := range s.DigestChannels() {
		last, err := s.digests.PostedDigest(ch)
		if err != nil {
			s.log.Warn("reading when the digest was last posted; a digest missed meanwhile waits for its next time", "channel", ch, "error", err)
			continue
		}
		if last.At.IsZero() {
			continue
		}
		if due := s.plans[ch].next(last.At); !due.IsZero() && !due.After(now) && now.Sub(due) <= within {
			missed = append(missed, ch)
		}
	}
	return missed
}

// DigestPlan is the channel's digest plan; false when it has none.
func (s *Service) DigestPlan(channel string) (DigestPlan, bool) {
	p, ok := s.plans[channel]
	return p, ok
}

// gate lets each person through once per interval.
type gate struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
}

func newGate(every time.Duration) *gate { return &gate{every: every, last: map[string]time.Time{}} }

// take lets userID through at now, or says when they may come back.
func (g *gate) take(userID string, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t, ok := g.last[userID]; ok && now.Sub(t) < g.every && !now.Before(t) {
		return &TooSoon{Retry: t.Add(g.every)}
	}
	for id, t := range g.last { // forget those who may come back anyway
		if now.Sub(t) >= g.every {
			delete(g.last, id)
		}
	}
	g.last[userID] = now
	return nil
}

// DigestChannels are the channels with a digest configured.
func (s *Service) DigestChannels() []string {
	out := make([]string, 0, len(s.plans))
	for ch := range s.plans {
		out = append(out, ch)
	}
	slices.Sort(out)
	return out
}

// VotePulse records an anonymous answer to a channel's clarity pulse,
// once per person; first is false when they had answered already. Only
// the channel's members when the pulse was posted may answer.
func (s *Service) VotePulse(ctx context.Context, a Actor, pulseID string, score int) (first bool, err error) {
	if err := s.mayAnswer(ctx, a, pulseID); err != nil {
		return false, err
	}
	first, err = s.digests.VotePulse(pulseID, a.UserID, score)
	if err != nil {
		return false, fmt.Errorf("recording a pulse vote: %w", err)
	}
	return first, nil
}

// OpenHearMore says whether the person may open the "hear more" form of
// a pulse: those who may answer it.
func (s *Service) OpenHearMore(ctx context.Context, a Actor, pulseID string) error {
	return s.mayAnswer(ctx, a, pulseID)
}

// HearMore records, anonymously, what a person would like to hear more
// about, for the next digest.
func (s *Service) HearMore(ctx context.Context, a Actor, pulseID, text string) error {
	if err := s.mayAnswer(ctx, a, pulseID); err != nil {
		return err
	}
	if err := s.digests.AddHearMore(pulseID, a.UserID, text); err != nil {
		return fmt.Errorf("saving a hear-more answer: %w", err)
	}
	return nil
}

// mayAnswer asks the policy whether the actor may answer the pulse, from
// the members snapshot stored with it: no Slack call per click. A pulse
// opened before snapshots were kept falls back on the members its
// digest fixed, taken at the same moment.
func (s *Service) mayAnswer(ctx context.Context, a Actor, pulseID string) error {
	voters, snapshot, err := s.digests.PulseVoters(pulseID)
	if err != nil {
		return fmt.Errorf("reading who may answer the pulse: %w", err)
	}
	if !snapshot {
		last, err := s.digests.PostedDigest(pulseChannel(pulseID))
		if err != nil {
			return fmt.Errorf("reading who may answer the pulse: %w", err)
		}
		voters = last.Members
	}
	return s.policy.Authorize(ctx, a, PulseOf(voters))
}
