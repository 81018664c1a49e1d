package bot

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/nudges"
)

// metadataType marks our nudge messages so a restart can find what it
// already posted (message metadata survives in conversations.history).
const metadataType = "nudgebot_nudge"

// defaultSettleTime is how long after an uncertain attempt we wait before
// looking for its message and, if absent, posting again: longer than any
// request of ours can stay in flight.
const defaultSettleTime = 20 * time.Second

// dueBatch bounds how many people one pass of the due index loads.
const dueBatch = 512

// Tick plans a delivery for everyone who is due and sends every pending
// delivery. It runs from cron; SkipIfStillRunning and tickMu keep two
// ticks from overlapping.
//
// Planning and sending overlap: senders start at once, take what was left
// pending before (older, so first), then each delivery as soon as it is
// planned. With thousands due at nine o'clock, the first nudges leave
// while the last are still being planned, and the per-method limiter, not
// the planning, sets the pace.
func (b *Bot) Tick(ctx context.Context) {
	b.tickMu.Lock()
	defer b.tickMu.Unlock()
	now := b.now()
	queue := make(chan nudges.Delivery, 256)
	var wg sync.WaitGroup
	for range b.opts.Senders {
		wg.Go(func() {
			for d := range queue {
				b.send(ctx, d)
			}
		})
	}
	var oldest time.Time
	enqueue := func(d nudges.Delivery) {
		due := d.Slot
		if !d.SnoozeTo.IsZero() {
			due = d.SnoozeTo
		}
		if oldest.IsZero() || due.Before(oldest) {
			oldest = due
		}
		select {
		case queue <- d:
		case <-ctx.Done():
		}
	}
	b.queuePending(now, enqueue)
	b.planDue(now, enqueue)
	close(queue)
	if !oldest.IsZero() {
		b.metrics.SchedulerLag(now.Sub(oldest))
	}
	wg.Wait()
	b.marks.Wait() // a tick ends with what it sent recorded
}

func (b *Bot) planDue(now time.Time, enqueue func(nudges.Delivery)) {
	paused := b.pausedAll(now) // once per tick, not once per person
	for {
		ids, err := b.store.Due(now, dueBatch)
		if err != nil {
			b.log.Error("reading the due index", "error", err)
			return
		}
		progressed := 0
		var planned []plannedStart
		for _, id := range ids {
			p, ok := b.planOne(id, now, paused)
			switch {
			case p != nil:
				planned = append(planned, *p)
			case ok:
				progressed++
			}
			if len(planned) == planChunk {
				progressed += b.startPlanned(planned, enqueue)
				planned = planned[:0]
			}
		}
		progressed += b.startPlanned(planned, enqueue)
		// A person whose plan failed stays due; stop rather than spin on
		// them, and try again next tick.
		if len(ids) < dueBatch || progressed == 0 {
			return
		}
	}
}

// planChunk is how many planned deliveries one transaction records: few
// commits for a large tick, yet the senders get their first nudges
// while the rest are still being planned.
const planChunk = 128

// plannedStart is a delivery planned for a due person, waiting to be
// recorded with others; next is when they are due after it.
type plannedStart struct {
	start nudges.DeliveryStart
	next  time.Time
}

// startPlanned records planned deliveries in one transaction and hands
// the new ones to the senders. It returns how many people moved on.
func (b *Bot) startPlanned(planned []plannedStart, enqueue func(nudges.Delivery)) int {
	if len(planned) == 0 {
		return 0
	}
	starts := make([]nudges.DeliveryStart, len(planned))
	for i, p := range planned {
		starts[i] = p.start
	}
	created, errs := b.store.StartDeliveries(starts)
	progressed := 0
	for i, p := range planned {
		d, expect := p.start.Delivery, p.start.ExpectNextDue
		if errs[i] != nil {
			b.noisy.logAt(slog.LevelError, "could not record a delivery; the person stays due and is tried next tick", "user_id", d.UserID, "delivery_id", d.ID, "error", errs[i])
			continue
		}
		if !created[i] {
			// The slot was delivered before (a clock step back, or a crash
			// after the delivery was recorded): move the due time on only.
			_, err := b.store.UpdateSubscriber(d.UserID, func(s *nudges.Subscriber) error {
				if s.NextDue.Equal(expect) {
					s.NextDue = p.next
				}
				return nil
			})
			if err == nil {
				progressed++
			}
			continue
		}
		progressed++
		enqueue(d)
	}
	return progressed
}

// planOne plans one due person: a delivery for startPlanned to record
// with their due time's advance, or, when there is none to send, missed
// slots or the advance alone, written at once. ok reports progress.
func (b *Bot) planOne(userID string, now time.Time, pausedAll bool) (p *plannedStart, ok bool) {
	sub, err := b.store.Subscriber(userID)
	if err != nil {
		b.log.Error("loading a due subscriber", "user_id", userID, "error", err)
		return nil, false
	}
	if !sub.Subscribed || sub.Inactive {
		_, err := b.store.UpdateSubscriber(userID, func(s *nudges.Subscriber) error {
			s.NextDue = time.Time{}
			return nil
		})
		return nil, err == nil
	}
	expect := sub.NextDue
	plan := b.cal.Plan(sub, now)
	if plan.Deliver && pausedAll {
		// A company holiday: the slot is skipped, not delivered later.
		_, err := b.store.UpdateSubscriber(userID, func(s *nudges.Subscriber) error {
			if s.NextDue.Equal(expect) {
				s.NextDue = plan.Next
				if plan.Slot.After(s.LastSlot) {
					s.LastSlot = plan.Slot
				}
			}
			return nil
		})
		return nil, err == nil
	}
	if len(plan.Missed) > 0 {
		last := plan.Missed[len(plan.Missed)-1]
		err := b.store.RecordMissed(userID, plan.Missed, expect, func(s *nudges.Subscriber) error {
			if last.After(s.LastSlot) {
				s.LastSlot = last
			}
			if !plan.Deliver {
				s.NextDue = plan.Next
			}
			return nil
		})
		if err != nil {
			b.log.Error("recording missed slots", "user_id", userID, "error", err)
			return nil, false
		}
		b.log.Info("slots passed while the bot was away; recorded as missed", "user_id", userID, "count", max(plan.MissedCount, len(plan.Missed)))
		b.metrics.Delivered("missed")
	}
	if !plan.Deliver {
		if len(plan.Missed) == 0 {
			_, err := b.store.UpdateSubscriber(userID, func(s *nudges.Subscriber) error {
				if !s.NextDue.Equal(expect) {
					return nil
				}
				s.NextDue = plan.Next
				return nil
			})
			return nil, err == nil
		}
		return nil, true
	}
	history, err := b.store.Deliveries(userID, now.AddDate(0, 0, -60))
	if err != nil {
		b.log.Error("loading delivery history", "user_id", userID, "error", err)
		return nil, false
	}
	// The reason line says "yesterday" and the like in the person's zone.
	choice, err := b.catalog.Choose(sub, history, now.In(b.location(sub)), seededRand(userID, plan.Slot))
	if err != nil {
		b.log.Error("choosing a nudge", "user_id", userID, "error", err)
		return nil, false
	}
	d := nudges.Delivery{
		ID:      nudges.DeliveryID(userID, plan.Slot, false),
		UserID:  userID,
		NudgeID: choice.Nudge.ID,
		Theme:   choice.Nudge.Theme,
		Role:    choice.Nudge.Role,
		Slot:    plan.Slot,
		Reason:  choice.Reason,
		State:   nudges.StatePending,
		Created: now,
	}
	advance := func(s *nudges.Subscriber) error {
		s.NextDue = plan.Next
		if plan.Slot.After(s.LastSlot) {
			s.LastSlot = plan.Slot
		}
		nudges.Record(s, choice.Nudge)
		return nil
	}
	return &plannedStart{start: nudges.DeliveryStart{Delivery: d, ExpectNextDue: expect, Advance: advance}, next: plan.Next}, true
}

func (b *Bot) pausedAll(now time.Time) bool {
	until, err := b.store.PausedAll()
	if err != nil {
		b.log.Warn("reading the company-wide pause; assuming none", "error", err)
		return false
	}
	return until.After(now)
}

// seededRand makes the choice for a person's slot reproducible: the same
// person and slot always draw the same numbers, in tests and after a
// crash, without any shared random state.
func seededRand(userID string, slot time.Time) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(userID))
	return rand.New(rand.NewPCG(h.Sum64(), uint64(slot.UnixNano())))
}

// queuePending hands the senders every pending delivery that is not
// snoozed: left by a crash, an uncertain post, a rate-limit give-up, or a
// snooze that has ended.
func (b *Bot) queuePending(now time.Time, enqueue func(nudges.Delivery)) {
	pending, err := b.store.Pending()
	if err != nil {
		b.log.Error("reading the outbox", "error", err)
		return
	}
	for _, d := range pending {
		if !d.SnoozeTo.After(now) {
			enqueue(d)
		}
	}
}

// send delivers one pending delivery at most once. Before each post the
// attempt is recorded; a delivery that was attempted before is first
// looked for in the DM's history, because the earlier post may have
// reached Slack before a crash or a broken connection.
func (b *Bot) send(ctx context.Context, pd nudges.Delivery) {
	if _, busy := b.inflight.LoadOrStore(pd.ID, struct{}{}); busy {
		return
	}
	defer b.inflight.Delete(pd.ID)
	log := b.log.With("delivery_id", pd.ID, "user_id", pd.UserID)

	d, err := b.store.Delivery(pd.ID)
	if err != nil || d.State != nudges.StatePending || d.SnoozeTo.After(b.now()) {
		return
	}
	sub, err := b.store.Subscriber(d.UserID)
	if err != nil {
		log.Error("loading subscriber for delivery", "error", err)
		return
	}
	if sub.Inactive {
		b.failDelivery(d.ID, "inactive")
		return
	}
	n, ok := b.catalog.Get(d.NudgeID)
	if !ok {
		log.Error("nudge no longer in the catalog; delivery dropped", "nudge_id", d.NudgeID)
		b.failDelivery(d.ID, "unknown_nudge")
		return
	}
	channel := sub.DMChannel
	if channel == "" {
		channel, err = b.openDM(ctx, d.UserID)
		if err != nil {
			b.handleSendError(log, d, err, false)
			return
		}
	}
	if d.Attempts > 0 {
		// A request abandoned by a crash or a timeout can still land at
		// Slack a little later; look only once it has had time to.
		if wait := d.TryAt.Add(b.opts.SettleTime).Sub(b.now()); wait > 0 {
			log.Debug("uncertain delivery settling before reconciliation", "wait", wait)
			return
		}
		ts, found, err := b.findPosted(ctx, channel, d)
		if err != nil {
			log.Warn("could not check the DM history; will try again next tick", "error", err)
			return
		}
		if found {
			log.Info("delivery found in the DM after an interrupted attempt; not sending again")
			b.markSent(d.ID, channel, ts)
			return
		}
	}
	loc := sub.Location(b.cal.Fallback)
	blocks := nudgeBlocks(n, d, loc)
	// A scheduled nudge may carry the person's own words back to them.
	followUp, hasFollowUp := nudges.Reflection{}, false
	if !d.Manual && d.Round == 0 {
		followUp, hasFollowUp = b.followUpFor(d.UserID, b.now())
		if hasFollowUp {
			blocks = append(blocks, followUpBlocks(followUp, loc)...)
		}
	}
	var ts string
	recorded := false
	err = b.web.do(ctx, "chat.postMessage", callPost, func(ctx context.Context) error {
		// The attempt is recorded after the limiter's wait, right before
		// the request: a crash while queued leaves nothing uncertain.
		if !recorded {
			updated, err := b.store.UpdateDelivery(d.ID, func(d *nudges.Delivery) error {
				d.Attempts++
				d.TryAt = b.now()
				d.Channel = channel
				return nil
			})
			if err != nil {
				return fmt.Errorf("recording the attempt: %w: %w", errNotAttempted, err)
			}
			d, recorded = updated, true
		}
		var err error
		_, ts, err = b.api.PostMessageContext(ctx, channel,
			slack.MsgOptionText(nudgeFallback(n), true),
			slack.MsgOptionBlocks(blocks...),
			slack.MsgOptionMetadata(slack.SlackMetadata{
				EventType:    metadataType,
				EventPayload: map[string]any{"delivery_id": d.ID, "round": d.Round},
			}),
		)
		return err
	})
	if err != nil {
		b.handleSendError(log, d, err, recorded)
		return
	}
	// The sender goes on to its next delivery (and its next attempt
	// write) without waiting for this one to be durable: both then share
	// a commit. Losing the mark to a crash costs a look in the DM's
	// history, never a second post.
	id := d.ID
	b.marks.Go(func() { b.markSent(id, channel, ts) })
	if hasFollowUp {
		_, err := b.store.UpdateReflection(d.UserID, followUp.Seq, func(r *nudges.Reflection) error {
			r.FollowedUp = b.now()
			return nil
		})
		if err != nil {
			log.Warn("recording a commitment follow-up", "error", err)
		}
	}
	log.Info("nudge delivered", "nudge_id", d.NudgeID)
}

func (b *Bot) markSent(id, channel, ts string) {
	_, err := b.store.UpdateDelivery(id, func(d *nudges.Delivery) error {
		d.State = nudges.StateSent
		d.Channel = channel
		d.TS = ts
		d.SentAt = b.now()
		return nil
	})
	if err != nil {
		b.log.Error("recording a sent delivery; it will be reconciled", "delivery_id", id, "error", err)
		return
	}
	b.metrics.Delivered("sent")
}

func (b *Bot) failDelivery(id, reason string) {
	_, err := b.store.UpdateDelivery(id, func(d *nudges.Delivery) error {
		d.State = nudges.StateFailed
		return nil
	})
	if err != nil {
		b.log.Error("recording a failed delivery", "delivery_id", id, "error", err)
	}
	b.metrics.Delivered("failed_" + reason)
}

// goneCodes are Slack's answers that mean the person cannot receive DMs
// from us any more; their schedule stops and their data stays.
var goneCodes = map[string]bool{
	"user_not_found":   true,
	"account_inactive": true,
	"cannot_dm_bot":    true,
	"user_disabled":    true,
	"user_is_bot":      true,
}

func (b *Bot) handleSendError(log interface {
	Warn(string, ...any)
	Error(string, ...any)
}, d nudges.Delivery, err error, thisAttempt bool) {
	switch code := slackCode(err); {
	case errors.Is(err, ErrUncertain):
		log.Warn("post outcome uncertain; will reconcile against the DM before any retry", "error", err)
		b.metrics.Delivered("uncertain")
	case goneCodes[code]:
		log.Warn("person can no longer receive nudges; schedule stopped, data kept", "reason", code)
		b.deactivate(d.UserID, code)
		b.failDelivery(d.ID, "gone")
	case code == "channel_not_found" || code == "is_archived":
		// A cached DM channel went stale: forget it, try again next tick.
		log.Warn("DM channel no longer usable; reopening next tick", "reason", code)
		_, _ = b.store.UpdateSubscriber(d.UserID, func(s *nudges.Subscriber) error {
			s.DMChannel = ""
			return nil
		})
		_, _ = b.store.UpdateDelivery(d.ID, func(d *nudges.Delivery) error {
			d.Attempts = 0
			return nil
		})
	case code != "":
		log.Error("slack refused the nudge; not retrying", "reason", code)
		b.failDelivery(d.ID, "refused")
	default:
		// Not sent, and Slack said so (rate limited throughout, or our
		// context ended before the call): nothing to reconcile next time.
		b.noisy.logAt(slog.LevelWarn, "delivery not sent; will try again next tick", "delivery_id", d.ID, "user_id", d.UserID, "error", err)
		b.metrics.Delivered("retry")
		if thisAttempt && notSent(err) {
			// Undo only the attempt this post recorded; an earlier,
			// uncertain one still needs reconciling.
			_, _ = b.store.UpdateDelivery(d.ID, func(d *nudges.Delivery) error {
				if d.State == nudges.StatePending && d.Attempts > 0 {
					d.Attempts--
				}
				return nil
			})
		}
	}
}

// notSent reports whether a failed post certainly never reached Slack:
// every attempt was answered 429, or it was never made.
func notSent(err error) bool {
	return errors.Is(err, errRateLimitedOut) || errors.Is(err, errNotAttempted)
}

func (b *Bot) deactivate(userID, reason string) {
	_, err := b.store.UpdateSubscriber(userID, func(s *nudges.Subscriber) error {
		s.Inactive = true
		s.InactiveReason = reason
		s.NextDue = time.Time{}
		return nil
	})
	if err != nil {
		b.log.Error("marking a person inactive", "user_id", userID, "error", err)
	}
}

// openDM finds the person's IM channel once and keeps it.
func (b *Bot) openDM(ctx context.Context, userID string) (string, error) {
	var ch *slack.Channel
	err := b.web.do(ctx, "conversations.open", callSafe, func(ctx context.Context) error {
		var err error
		ch, _, _, err = b.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{userID}})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("opening DM: %w", err)
	}
	_, err = b.store.UpdateSubscriber(userID, func(s *nudges.Subscriber) error {
		s.DMChannel = ch.ID
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("saving DM channel: %w", err)
	}
	return ch.ID, nil
}

// findPosted looks for this delivery's message (same id and round) in the
// DM since shortly before the previous attempt.
func (b *Bot) findPosted(ctx context.Context, channel string, d nudges.Delivery) (ts string, found bool, err error) {
	oldest := d.TryAt.Add(-2 * time.Minute)
	if d.TryAt.IsZero() {
		oldest = d.Created.Add(-2 * time.Minute)
	}
	params := &slack.GetConversationHistoryParameters{
		ChannelID:          channel,
		Oldest:             fmt.Sprintf("%d.000000", oldest.Unix()),
		Limit:              200,
		IncludeAllMetadata: true,
	}
	for range 20 { // bounded: a DM does not hold thousands of bot messages in minutes
		var resp *slack.GetConversationHistoryResponse
		err := b.web.do(ctx, "conversations.history", callSafe, func(ctx context.Context) error {
			var err error
			resp, err = b.api.GetConversationHistoryContext(ctx, params)
			return err
		})
		if err != nil {
			return "", false, err
		}
		for _, m := range resp.Messages {
			if m.Metadata.EventType != metadataType {
				continue
			}
			if id, _ := m.Metadata.EventPayload["delivery_id"].(string); id != d.ID {
				continue
			}
			if roundOf(m.Metadata.EventPayload["round"]) == d.Round {
				return m.Timestamp, true, nil
			}
		}
		if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			return "", false, nil
		}
		params.Cursor = resp.ResponseMetaData.NextCursor
	}
	return "", false, nil
}

func roundOf(v any) int {
	switch r := v.(type) {
	case float64:
		return int(r)
	case int:
		return r
	case string:
		n, _ := strconv.Atoi(r)
		return n
	}
	return 0
}

// pending counts work that outlives the call that started it: a sent
// delivery still being recorded. Unlike a sync.WaitGroup it may be
// waited on while work is added, as a tick waits for its marks while
// /nudge now adds one.
type pending struct {
	mu   sync.Mutex
	idle sync.Cond
	n    int
}

// Go runs f in a goroutine of its own, counted until it returns.
func (p *pending) Go(f func()) {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
	go func() {
		defer func() {
			p.mu.Lock()
			if p.n--; p.n == 0 && p.idle.L != nil {
				p.idle.Broadcast()
			}
			p.mu.Unlock()
		}()
		f()
	}()
}

// Wait returns once nothing started with Go is running.
func (p *pending) Wait() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle.L == nil {
		p.idle.L = &p.mu
	}
	for p.n > 0 {
		p.idle.Wait()
	}
}
