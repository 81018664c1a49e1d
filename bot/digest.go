package bot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/nudges"
)

// DigestTarget is one channel's digest: where, and when (a robfig/cron
// spec read in Location).
type DigestTarget struct {
	Channel  string
	Schedule string
	Location *time.Location
}

// cronSpec is the target's schedule pinned to its zone for robfig/cron.
func (t DigestTarget) cronSpec() string {
	loc := "UTC"
	if t.Location != nil {
		loc = t.Location.String()
	}
	return "CRON_TZ=" + loc + " " + t.Schedule
}

const (
	cbHearMore     = "pulse_hear_more"
	blockHearMore  = "hear_more"
	digestLookback = 7 * 24 * time.Hour // the first digest covers a week
	streakLookback = 60 * 24 * time.Hour
)

// pulseID names the pulse opened with the digest posted at t, so the next
// digest can close it without remembering anything else.
func pulseID(channel string, t time.Time) string {
	return fmt.Sprintf("%s-%d", channel, t.Unix())
}

// addDigestJobs schedules every configured digest on robfig/cron.
func (b *Bot) addDigestJobs(add func(spec string, job func())) {
	for _, t := range b.opts.Digests {
		target := t
		add(target.cronSpec(), func() { b.RunDigest(b.ctx(), target.Channel) })
	}
}

// digestInput gathers a channel's period: its subscribed members, their
// deliveries, what they chose to share, and the pulse history.
func (b *Bot) digestInput(ctx context.Context, channel string, from, to time.Time, pulse nudges.PulseSummary) (nudges.DigestInput, string, error) {
	name, members, err := b.channelMembers(ctx, channel)
	if err != nil {
		return nudges.DigestInput{}, "", err
	}
	var subscribed []string
	for _, m := range members {
		if _, err := b.store.Subscriber(m); err == nil {
			subscribed = append(subscribed, m)
		}
	}
	history, err := b.store.DeliveriesFor(subscribed, to.Add(-streakLookback), to)
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
	shared, err := b.store.SharedReflections(subscribed, from, to)
	if err != nil {
		return nudges.DigestInput{}, "", fmt.Errorf("reading shared reflections: %w", err)
	}
	names := map[string]string{}
	for _, r := range shared {
		if r.Share == nudges.ShareNamed && names[r.UserID] == "" {
			names[r.UserID] = b.displayName(ctx, r.UserID)
		}
	}
	trend, err := b.store.PulseHistory(channel, nudges.TrendPeriods+1)
	if err != nil {
		return nudges.DigestInput{}, "", fmt.Errorf("reading pulse history: %w", err)
	}
	if n := len(trend); n > 0 && pulse.Responses > 0 && trend[n-1].PeriodEnd.Equal(pulse.PeriodEnd) {
		trend = trend[:n-1] // this period's pulse is passed on its own
	}
	if len(trend) > nudges.TrendPeriods {
		trend = trend[len(trend)-nudges.TrendPeriods:]
	}
	prompts := map[string]nudges.Nudge{}
	for _, r := range shared {
		if n, ok := b.catalog.Get(r.NudgeID); ok {
			prompts[r.NudgeID] = n
		}
	}
	return nudges.DigestInput{
		Channel: channel, From: from, To: to,
		Members: subscribed, Names: names,
		Deliveries: period, Shared: shared,
		Pulse: pulse, Trend: trend,
		Streaks: streaks, Nudges: prompts, Now: to,
	}, name, nil
}

func (b *Bot) displayName(ctx context.Context, userID string) string {
	var name string
	_ = b.web.do(ctx, "users.info", callSafe, func(ctx context.Context) error {
		u, err := b.api.GetUserInfoContext(ctx, userID)
		if err == nil {
			name = firstNonEmpty(u.Profile.DisplayName, u.RealName, u.Name)
		}
		return err
	})
	return name
}

// channelMembers returns the channel's name and every member, paging
// through conversations.members.
func (b *Bot) channelMembers(ctx context.Context, channel string) (string, []string, error) {
	var info *slack.Channel
	err := b.web.do(ctx, "conversations.info", callSafe, func(ctx context.Context) error {
		var err error
		info, err = b.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: channel})
		return err
	})
	if err != nil {
		return "", nil, err
	}
	if info.IsArchived {
		return "", nil, &permanentError{method: "conversations.info", code: "is_archived"}
	}
	var members []string
	cursor := ""
	for range 200 { // 200 pages of 200: 40,000 members is beyond any team channel
		var page []string
		var next string
		err := b.web.do(ctx, "conversations.members", callSafe, func(ctx context.Context) error {
			var err error
			page, next, err = b.api.GetUsersInConversationContext(ctx, &slack.GetUsersInConversationParameters{ChannelID: channel, Cursor: cursor, Limit: 200})
			return err
		})
		if err != nil {
			return "", nil, err
		}
		members = append(members, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	return info.Name, members, nil
}

// brokenTargetCodes are the answers that mean an admin has to act: the
// bot is not in the channel, the channel is archived or gone.
var brokenTargetCodes = map[string]string{
	"not_in_channel":    "nudgebot is not a member: invite it with /invite @nudgebot",
	"channel_not_found": "the channel id is wrong, or the channel is private and nudgebot is not in it",
	"is_archived":       "the channel is archived: unarchive it or change digests in the config",
}

// RunDigest posts a channel's digest for the period since the last one,
// with a fresh clarity pulse, and closes the previous pulse. A failure an
// admin must fix is logged once, told to the admins once, and retried at
// the next scheduled time; it never stops the other digests.
func (b *Bot) RunDigest(ctx context.Context, channel string) {
	now := b.now()
	log := b.log.With("channel", channel)
	last, err := b.store.LastDigest(channel)
	if err != nil {
		log.Error("reading digest state", "error", err)
		return
	}
	from := last
	var pulse nudges.PulseSummary
	if last.IsZero() {
		from = now.Add(-digestLookback)
	} else {
		pulse, err = b.store.ClosePulse(pulseID(channel, last))
		if err != nil && !errors.Is(err, nudges.ErrNotFound) {
			log.Warn("closing the last pulse", "error", err)
		}
	}
	in, name, err := b.digestInput(ctx, channel, from, now, pulse)
	if err == nil {
		err = b.postDigest(ctx, channel, name, nudges.BuildDigest(in), now)
	}
	if err != nil {
		b.digestFailed(ctx, channel, err)
		return
	}
	if err := b.store.SetLastDigest(channel, now); err != nil {
		log.Error("recording the digest; the next one will cover this period again", "error", err)
	}
	if err := b.store.ClearDigestBroken(channel); err != nil {
		log.Warn("clearing digest failure", "error", err)
	}
	log.Info("digest posted", "members", len(in.Members))
}

func (b *Bot) postDigest(ctx context.Context, channel, name string, d nudges.Digest, now time.Time) error {
	for _, blocks := range digestMessages(d, name) {
		if err := b.postToChannel(ctx, channel, digestFallback(name), blocks); err != nil {
			return err
		}
	}
	id := pulseID(channel, now)
	if err := b.store.OpenPulse(channel, id, now); err != nil {
		return fmt.Errorf("opening the pulse: %w", err)
	}
	return b.postToChannel(ctx, channel, pulseQuestion, pulseBlocks(id))
}

func (b *Bot) postToChannel(ctx context.Context, channel, fallback string, blocks []slack.Block) error {
	return b.web.do(ctx, "chat.postMessage", callPost, func(ctx context.Context) error {
		_, _, err := b.api.PostMessageContext(ctx, channel, slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
}

func (b *Bot) digestFailed(ctx context.Context, channel string, err error) {
	code := slackCode(err)
	why, adminFix := brokenTargetCodes[code]
	if !adminFix {
		b.log.Error("digest not posted; will try at the next scheduled time", "channel", channel, "error", err)
		return
	}
	first, serr := b.store.MarkDigestBroken(channel, code)
	if serr != nil {
		b.log.Error("recording digest failure", "channel", channel, "error", serr)
	}
	if !first {
		return // already logged and told
	}
	b.log.Error("digest cannot be posted until an admin acts", "channel", channel, "reason", code)
	msg := fmt.Sprintf("The team digest for <#%s> could not be posted: %s. I'll try again at its next scheduled time.", channel, why)
	for _, admin := range b.opts.Admins {
		b.tell(ctx, admin, msg)
	}
}

// onPulseAction records a vote, or opens the "hear more" form.
func (b *Bot) onPulseAction(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) {
	if a.ActionID == actPulseHearMore {
		view := slack.ModalViewRequest{
			Type: slack.VTModal, CallbackID: cbHearMore, PrivateMetadata: a.Value,
			Title: plain("Hear more about"), Submit: plain("Send"), Close: plain("Cancel"),
			Blocks: slack.Blocks{BlockSet: []slack.Block{
				slack.NewContextBlock("hear_more_note", mrkdwn("Anonymous: the team sees the answers in the next digest, never who wrote them.")),
				slack.NewInputBlock(blockHearMore, plain("What would you like to hear more about?"), nil, func() *slack.PlainTextInputBlockElement {
					e := slack.NewPlainTextInputBlockElement(plain("e.g. how the roadmap was chosen"), actionText)
					e.Multiline = true
					e.MaxLength = nudges.MaxHearMoreLen
					return e
				}()),
			}},
		}
		err := b.web.do(ctx, "views.open", callPost, func(ctx context.Context) error {
			_, err := b.api.OpenViewContext(ctx, cb.TriggerID, view)
			return err
		})
		if err != nil {
			b.log.Warn("opening the hear-more form", "error", err)
		}
		return
	}
	score, ok := pulseVoteScore(a.ActionID)
	if !ok {
		return
	}
	first, err := b.store.VotePulse(a.Value, cb.User.ID, score)
	var msg string
	switch {
	case errors.Is(err, nudges.ErrPulseClosed), errors.Is(err, nudges.ErrNotFound):
		msg = "This pulse has closed; the next digest brings a new one."
	case err != nil:
		b.log.Error("recording a pulse vote", "error", err)
		msg = "Sorry, I couldn't record that just now. Please try again in a minute."
	case !first:
		msg = "You've already answered this pulse; one answer each keeps it fair."
	default:
		msg = "Thanks. Your answer goes into the team's totals; who answered is forgotten when the pulse closes."
	}
	b.respond(ctx, cb.ResponseURL, reply(msg))
}

// onHearMoreSubmission validates and stores a "hear more" answer.
func (b *Bot) onHearMoreSubmission(cb slack.InteractionCallback, ack func(any), keys []string) {
	text := strings.TrimSpace(Sanitize(stateValue(&cb.View, blockHearMore, actionText).Value))
	switch n := utf8.RuneCountInString(text); {
	case n == 0:
		ack(slack.NewErrorsViewSubmissionResponse(map[string]string{blockHearMore: "Write a few words, or press Cancel."}))
		return
	case n > nudges.MaxHearMoreLen:
		ack(slack.NewErrorsViewSubmissionResponse(map[string]string{blockHearMore: fmt.Sprintf("Keep it to %d characters.", nudges.MaxHearMoreLen)}))
		return
	}
	ack(nil)
	user, id := cb.User.ID, cb.View.PrivateMetadata
	b.afterAck(keys, func(ctx context.Context) {
		err := b.store.AddHearMore(id, user, text)
		switch {
		case errors.Is(err, nudges.ErrTooManyAnswers):
			b.tell(ctx, user, "You've sent the most answers one person can for this pulse. Thank you!")
		case errors.Is(err, nudges.ErrPulseClosed), errors.Is(err, nudges.ErrNotFound):
			b.tell(ctx, user, "That pulse has closed, so your answer was not kept. The next digest brings a new one.")
		case err != nil:
			b.log.Error("saving a hear-more answer", "error", err)
			b.tell(ctx, user, "Sorry, I couldn't save that just now. Please try again in a minute.")
		default:
			b.tell(ctx, user, "Thanks: it will appear, without your name, in the next digest.")
		}
	})
}

var channelRef = regexp.MustCompile(`^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$|^([CG][A-Z0-9]{6,})$`)

// digestPreview shows the caller what the next digest of a channel would
// say, without closing its pulse or posting anything.
func (b *Bot) digestPreview(ctx context.Context, userID, here, arg string) *ephemeral {
	channel := here
	if arg != "" {
		if m := channelRef.FindStringSubmatch(arg); m != nil {
			channel = firstNonEmpty(m[1], m[2])
		} else if name, ok := strings.CutPrefix(arg, "#"); ok {
			channel = b.digestChannelByName(ctx, name)
		} else {
			return reply(usageText("digest", "Name the channel like #team or by its id."))
		}
	}
	var target bool
	for _, t := range b.opts.Digests {
		if t.Channel == channel {
			target = true
		}
	}
	if !target {
		return reply("That channel has no digest configured. Ask an admin to add it under `digests` in the config.")
	}
	now := b.now()
	last, err := b.store.LastDigest(channel)
	if err != nil {
		return b.sorry(userID, "reading digest state", err)
	}
	if last.IsZero() {
		last = now.Add(-digestLookback)
	}
	in, name, err := b.digestInput(ctx, channel, last, now, nudges.PulseSummary{})
	if err != nil {
		b.log.Warn("digest preview", "channel", channel, "error", err)
		return reply("I couldn't read that channel. Is nudgebot a member of it?")
	}
	msgs := digestMessages(nudges.BuildDigest(in), name)
	preview := reply("Preview of the next digest")
	preview.Blocks = append([]slack.Block{slack.NewContextBlock("preview_note", mrkdwn("_Preview, only you can see it: the pulse is still open, so its results are not in yet._"))}, msgs[0]...)
	if len(preview.Blocks) > 50 {
		preview.Blocks = preview.Blocks[:50]
	}
	return preview
}

func (b *Bot) digestChannelByName(ctx context.Context, name string) string {
	for _, t := range b.opts.Digests {
		var info *slack.Channel
		err := b.web.do(ctx, "conversations.info", callSafe, func(ctx context.Context) error {
			var err error
			info, err = b.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: t.Channel})
			return err
		})
		if err == nil && strings.EqualFold(info.Name, name) {
			return t.Channel
		}
	}
	return ""
}

var _ = strconv.Itoa
