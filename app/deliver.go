package app

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// dueBatch bounds how many people one pass of the due index loads.
const dueBatch = 512

// Tick plans a delivery for everyone who is due at now and sends every
// pending delivery. Ticks never overlap.
//
// Planning and sending overlap: senders start at once, take what was left
// pending before (older, so first), then each delivery as soon as it is
// planned. With thousands due at nine o'clock, the first nudges leave
// while the last are still being planned, and Slack's rate limit, not the
// planning, sets the pace.
func (s *Service) Tick(ctx context.Context, now time.Time) {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	queue := make(chan queued, 256)
	// Read once per tick, not once per nudge: lines an admin sets during
	// a tick are quoted from the next one on.
	lines := s.strategyLines()
	var wg sync.WaitGroup
	for range s.senders {
		wg.Go(func() {
			for q := range queue {
				s.send(ctx, q.d, sendOpts{lead: true, planned: q.planned, sub: q.sub, lines: lines, haveLines: true,
					followUp: q.followUp, knowFollowUp: q.knowFollowUp})
			}
		})
	}
	var oldest time.Time
	enqueue := func(q queued) {
		if due := q.d.DueAt(); oldest.IsZero() || due.Before(oldest) {
			oldest = due
		}
		select {
		case queue <- q:
		case <-ctx.Done():
		}
	}
	s.queuePending(now, enqueue)
	s.planDue(now, enqueue)
	s.lastTick = now
	close(queue)
	var lag time.Duration
	if !oldest.IsZero() {
		lag = now.Sub(oldest)
	}
	// Reported once planning is done, not when the last post is: a tick
	// sending 100,000 nudges is busy for minutes, but the scheduler ran.
	s.obs.Ticked(lag)
	wg.Wait()
	s.marks.Wait() // a tick ends with what it sent recorded
}

// queued is a delivery handed to a tick's senders; planned is true when
// this tick's planning has just recorded it, as it is, and sub is then
// the person's record as planning read it. knowFollowUp says planning
// read their due commitment too: followUp, nil when none is due.
type queued struct {
	d            nudges.Delivery
	planned      bool
	sub          *nudges.Subscriber
	knowFollowUp bool
	followUp     *nudges.Reflection
}

// NextWake is when the scheduler should next run Tick: the earliest due
// time in the index, the end of the earliest snooze, or when an uncertain
// post may be looked for. ok is false when nothing is scheduled.
func (s *Service) NextWake() (at time.Time, ok bool) {
	at, ok, err := s.subs.OldestDue()
	if err != nil {
		s.log.Warn("reading the earliest due time; the scheduler polls instead", "error", err)
		return time.Time{}, false
	}
	pending, err := s.dels.Pending()
	if err != nil {
		s.log.Warn("reading the outbox for the scheduler", "error", err)
		return at, ok
	}
	for _, d := range pending {
		due := d.DueAt()
		if uncertain, look := d.NeedsReconcile(s.settle); uncertain && look.After(due) {
			due = look
		}
		if !ok || due.Before(at) {
			at, ok = due, true
		}
	}
	return at, ok
}

// queuePending hands the senders every pending delivery that is not
// snoozed: left by a crash, an uncertain post, a rate-limit give-up, or a
// snooze that has ended.
func (s *Service) queuePending(now time.Time, enqueue func(queued)) {
	pending, err := s.dels.Pending()
	if err != nil {
		s.log.Error("reading the outbox", "error", err)
		return
	}
	for _, d := range pending {
		if d.Sendable(now) {
			enqueue(queued{d: d})
		}
	}
}

func (s *Service) planDue(now time.Time, enqueue func(queued)) {
	paused := s.pausedAll(now) // once per tick, not once per person
	for {
		if err := s.leader.Leading(); err != nil {
			s.log.Info("stopped planning: this replica no longer leads", "error", err)
			return
		}
		ids, err := s.subs.Due(now, dueBatch)
		if err != nil {
			s.log.Error("reading the due index", "error", err)
			return
		}
		progressed := 0
		var planned []plannedStart
		for start := 0; start < len(ids); start += planChunk {
			chunk := ids[start:min(start+planChunk, len(ids))]
			known := s.known(chunk, now)
			for _, id := range chunk {
				p, ok := s.planOne(id, now, paused, known)
				switch {
				case p != nil:
					planned = append(planned, *p)
				case ok:
					progressed++
				}
			}
			progressed += s.startPlanned(planned, s.followUps(planned, now), enqueue)
			planned = planned[:0]
		}
		// A person whose plan failed stays due; stop rather than spin on
		// them, and try again next tick.
		if len(ids) < dueBatch || progressed == 0 {
			return
		}
	}
}

// planChunk is how many due people are planned together: their records,
// histories and due commitments are read in a query each, and their
// deliveries recorded in one transaction; few round trips for a large
// tick, yet the senders get their first nudges while the rest are still
// being planned.
const planChunk = 128

// knownPeople is what planning read of a chunk of due people together;
// a nil map is a read that failed, and planOne then reads each person's
// own.
type knownPeople struct {
	subs      map[string]nudges.Subscriber
	histories map[string][]nudges.Delivery
}

// known reads the due people's records and the delivery history choose
// needs, each in one query.
func (s *Service) known(userIDs []string, now time.Time) knownPeople {
	var k knownPeople
	subs, err := s.subs.SubscribersByID(userIDs)
	if err != nil {
		s.log.Warn("reading due people's records together; reading them one by one", "error", err)
	} else {
		k.subs = subs
	}
	// No upper bound, as Deliveries has none: a slot ahead of now (the
	// clock stepped back) still counts.
	ds, err := s.dels.DeliveriesFor(userIDs, now.Add(-nudges.HistoryWindow), time.Unix(1<<62, 0))
	if err != nil {
		s.log.Warn("reading the delivery history of due people; reading it person by person", "error", err)
		return k
	}
	k.histories = make(map[string][]nudges.Delivery, len(userIDs))
	for _, d := range ds {
		k.histories[d.UserID] = append(k.histories[d.UserID], d)
	}
	return k
}

// followUps reads the commitments due to be quoted back to the planned
// people, in one query; nil if that read failed, and each sender reads
// its person's own.
func (s *Service) followUps(planned []plannedStart, now time.Time) map[string]nudges.Reflection {
	if len(planned) == 0 {
		return nil
	}
	ids := make([]string, len(planned))
	for i, p := range planned {
		ids[i] = p.start.Delivery.UserID
	}
	due, err := s.refls.DueFollowUpsOf(ids, now)
	if err != nil {
		s.log.Warn("reading due commitments of the people planned; each is read as it is sent", "error", err)
		return nil
	}
	return due
}

// plannedStart is a delivery planned for a due person, waiting to be
// recorded with others; next is when they are due after it.
type plannedStart struct {
	start nudges.DeliveryStart
	next  time.Time
	sub   nudges.Subscriber // as read for the plan, before its advance
}

// startPlanned records planned deliveries in one transaction and hands
// the new ones to the senders with their people's due commitments
// (followUps; nil: not read). It returns how many people moved on.
func (s *Service) startPlanned(planned []plannedStart, followUps map[string]nudges.Reflection, enqueue func(queued)) int {
	if len(planned) == 0 {
		return 0
	}
	starts := make([]nudges.DeliveryStart, len(planned))
	for i, p := range planned {
		starts[i] = p.start
	}
	created, errs := s.dels.StartDeliveries(starts)
	progressed := 0
	for i, p := range planned {
		d := p.start.Delivery
		switch {
		case NotLeader(errs[i]):
			// The store refused: another replica leads now, and plans
			// this person itself.
		case errs[i] != nil:
			s.throttledLog.logAt(slog.LevelError, "could not record a delivery; the person stays due and is tried next tick", "user_id", d.UserID, "delivery_id", d.ID, "error", errs[i])
		case !created[i]:
			// The slot was delivered before (a clock step back, or a crash
			// after the delivery was recorded): move the due time on only.
			if s.moveDue(d.UserID, p.start.ExpectNextDue, p.next, time.Time{}) {
				progressed++
			}
		default:
			progressed++
			q := queued{d: d, planned: true, sub: &p.sub, knowFollowUp: followUps != nil}
			if r, ok := followUps[d.UserID]; ok {
				q.followUp = &r
			}
			enqueue(q)
		}
	}
	return progressed
}

func (s *Service) pausedAll(now time.Time) bool {
	until, err := s.settings.PausedAll()
	if err != nil {
		s.log.Warn("reading the company-wide pause; assuming none", "error", err)
		return false
	}
	return until.After(now)
}

// moveDue advances the person's due time to next if nobody moved it since
// it was expect, recording slot as the latest handled.
func (s *Service) moveDue(userID string, expect, next, slot time.Time) bool {
	_, err := s.subs.UpdateSubscriber(userID, func(sub *nudges.Subscriber) error {
		if sub.NextDue.Equal(expect) {
			sub.NextDue = next
			if slot.After(sub.LastSlot) {
				sub.LastSlot = slot
			}
		}
		return nil
	})
	return err == nil
}

// planOne plans one due person: a delivery for startPlanned to record
// with their due time's advance, or, when there is none to send, missed
// slots or the advance alone, written at once. ok reports progress.
//
// known is what was read of the due people together (see known); what
// it lacks is read for the person alone.
func (s *Service) planOne(userID string, now time.Time, pausedAll bool, known knownPeople) (p *plannedStart, ok bool) {
	sub, found := known.subs[userID]
	if !found {
		// Not read together (that read failed, or the record is gone):
		// this read says why.
		var err error
		if sub, err = s.subs.Subscriber(userID); err != nil {
			s.log.Error("loading a due subscriber", "user_id", userID, "error", err)
			return nil, false
		}
	}
	if !sub.Subscribed || sub.Inactive {
		return nil, s.moveDue(userID, sub.NextDue, time.Time{}, time.Time{})
	}
	expect := sub.NextDue
	plan := s.cal.Plan(sub, now)
	if plan.Deliver && pausedAll {
		// A company holiday: the slot is skipped, not delivered later.
		return nil, s.moveDue(userID, expect, plan.Next, plan.Slot)
	}
	if len(plan.Missed) > 0 && !s.recordMissed(userID, expect, plan) {
		return nil, false
	}
	if !plan.Deliver {
		if len(plan.Missed) == 0 {
			return nil, s.moveDue(userID, expect, plan.Next, time.Time{})
		}
		return nil, true
	}
	var history *[]nudges.Delivery
	if known.histories != nil {
		h := known.histories[userID]
		history = &h
	}
	d, choice, ok := s.choose(sub, plan.Slot, now, false, history)
	if !ok {
		return nil, false
	}
	advance := func(sub *nudges.Subscriber) error {
		sub.NextDue = plan.Next
		if plan.Slot.After(sub.LastSlot) {
			sub.LastSlot = plan.Slot
		}
		nudges.Record(sub, choice.Nudge)
		return nil
	}
	return &plannedStart{start: nudges.DeliveryStart{Delivery: d, ExpectNextDue: expect, Advance: advance}, next: plan.Next, sub: sub}, true
}

func (s *Service) recordMissed(userID string, expect time.Time, plan nudges.Plan) bool {
	last := plan.Missed[len(plan.Missed)-1]
	err := s.dels.RecordMissed(userID, plan.Missed, expect, func(sub *nudges.Subscriber) error {
		if last.After(sub.LastSlot) {
			sub.LastSlot = last
		}
		if !plan.Deliver {
			sub.NextDue = plan.Next
		}
		return nil
	})
	if NotLeader(err) {
		return false // the replica that leads now records them
	}
	if err != nil {
		s.log.Error("recording missed slots", "user_id", userID, "error", err)
		return false
	}
	count := max(plan.MissedCount, len(plan.Missed))
	if s.lastTick.IsZero() || plan.Missed[0].Before(s.lastTick) {
		s.log.Info("slots passed while the bot was away; recorded as missed", "user_id", userID, "count", count)
	} else {
		// The bot was running: the schedule fires more often than ticks
		// could keep up with (an "@every" finer than a tick's work).
		s.log.Debug("slots passed between two ticks; the latest is sent, the rest recorded as missed", "user_id", userID, "count", count)
	}
	s.obs.Delivered("missed")
	return true
}

// choose picks the person's nudge for slot and builds its delivery.
// known is their delivery history since nudges.HistoryWindow before now,
// read already; nil reads it.
func (s *Service) choose(sub nudges.Subscriber, slot, now time.Time, manual bool, known *[]nudges.Delivery) (nudges.Delivery, nudges.Choice, bool) {
	var history []nudges.Delivery
	if known != nil {
		history = *known
	} else {
		var err error
		if history, err = s.dels.Deliveries(sub.UserID, now.Add(-nudges.HistoryWindow)); err != nil {
			s.log.Error("loading delivery history", "user_id", sub.UserID, "error", err)
			return nudges.Delivery{}, nudges.Choice{}, false
		}
	}
	// The reason line says "yesterday" and the like in the person's zone.
	opts := nudges.ChooseOptions{Lean: sub.TeamLean.At(now)}
	choice, err := s.catalog.ChooseWith(sub, history, now.In(sub.Location(s.cal.Fallback)), seededRand(sub.UserID, slot), opts)
	if err != nil {
		s.log.Error("choosing a nudge", "user_id", sub.UserID, "error", err)
		return nudges.Delivery{}, nudges.Choice{}, false
	}
	return nudges.Delivery{
		ID:      nudges.DeliveryID(sub.UserID, slot, manual),
		UserID:  sub.UserID,
		NudgeID: choice.Nudge.ID,
		Theme:   choice.Nudge.Theme,
		Role:    choice.Nudge.Role,
		Slot:    slot,
		Reason:  choice.Reason,
		Manual:  manual,
		State:   nudges.StatePending,
		Created: now,
	}, choice, true
}

// seededRand makes the choice for a person's slot reproducible: the same
// person and slot always draw the same numbers, in tests and after a
// crash, without any shared random state.
func seededRand(userID string, slot time.Time) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(userID))
	return rand.New(rand.NewPCG(h.Sum64(), uint64(slot.UnixNano())))
}

// NowResult is the answer to asking for a nudge right away.
type NowResult int

const (
	NowSent     NowResult = iota // sent, or on its way
	NowOnItsWay                  // one for this second exists already
	NowNoneFits                  // no nudge fits the person's focus
)

// NudgeNow sends the person a nudge right away. It does not count for
// streaks and does not move their schedule.
func (s *Service) NudgeNow(ctx context.Context, a Actor, now time.Time) (NowResult, error) {
	if err := s.policy.Authorize(ctx, a, Self()); err != nil {
		return 0, err
	}
	sub, err := s.subs.Subscriber(a.UserID)
	if err != nil && !errors.Is(err, nudges.ErrNotFound) {
		return 0, fmt.Errorf("loading subscriber: %w", err)
	}
	if sub.ProfileTZ == "" {
		// Someone trying a nudge before subscribing still gets it in
		// their own zone, and a record to hang it on.
		p, _ := s.slack.Profile(ctx, a.UserID)
		sub, err = s.subs.UpdateSubscriber(a.UserID, func(sub *nudges.Subscriber) error {
			if sub.ProfileTZ == "" {
				sub.ProfileTZ = p.TZ
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("saving subscriber: %w", err)
		}
	}
	d, choice, ok := s.choose(sub, now.Truncate(time.Second), now, true, nil)
	if !ok {
		return NowNoneFits, nil
	}
	created, err := s.dels.StartDelivery(d, time.Time{}, func(sub *nudges.Subscriber) error {
		nudges.Record(sub, choice.Nudge)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("recording a nudge: %w", err)
	}
	if !created {
		return NowOnItsWay, nil
	}
	// Sent by the replica the person reached, leader or not: it is their
	// request, not the leader's work.
	s.send(ctx, d, sendOpts{planned: true, sub: &sub})
	return NowSent, nil
}

// sendOpts say how send is called.
type sendOpts struct {
	// lead is true for the leader's work (the scheduler's ticks): nothing
	// is posted once this replica's term as leader has ended.
	lead bool
	// planned is true when the delivery was recorded just now, as given,
	// by the caller: it is not read back before the post. Reading it back
	// would only spare a post that the attempt's check refuses anyway: the
	// attempt is recorded only if nobody recorded one since.
	planned bool
	// sub is the person's record read by the caller, nil reads it. Read
	// just before the delivery was recorded, it is no older than a record
	// read here and then held through the rate limiter's wait; the post
	// copes with what may change meanwhile (a DM channel gone, a person
	// gone) as it does then.
	sub *nudges.Subscriber
	// lines are the strategy lines read at the tick's start, when
	// haveLines; else send reads them.
	lines     []string
	haveLines bool
	// followUp is the person's commitment due to be quoted back, read by
	// the caller when knowFollowUp (nil: none due); else send reads it.
	knowFollowUp bool
	followUp     *nudges.Reflection
}

// send delivers one pending delivery at most once. Before each post the
// attempt is recorded; a delivery that was attempted before is first
// looked for in the DM's history, because the earlier post may have
// reached Slack before a crash or a broken connection.
func (s *Service) send(ctx context.Context, pd nudges.Delivery, o sendOpts) {
	lead := o.lead
	if lead && s.leader.Leading() != nil {
		return
	}
	if _, busy := s.inflight.LoadOrStore(pd.ID, struct{}{}); busy {
		return
	}
	defer s.inflight.Delete(pd.ID)
	log := s.log.With("delivery_id", pd.ID, "user_id", pd.UserID)

	d := pd
	if !o.planned {
		var err error
		if d, err = s.dels.Delivery(pd.ID); err != nil {
			return
		}
	}
	if !d.Sendable(s.clock()) {
		return
	}
	var sub nudges.Subscriber
	if o.sub != nil {
		sub = *o.sub
	} else {
		var err error
		if sub, err = s.subs.Subscriber(d.UserID); err != nil {
			log.Error("loading subscriber for delivery", "error", err)
			return
		}
	}
	if sub.Inactive {
		s.failDelivery(d.ID, "inactive")
		return
	}
	n, ok := s.catalog.Resolve(d.NudgeID)
	if !ok {
		log.Error("nudge no longer in the catalog; delivery dropped", "nudge_id", d.NudgeID)
		s.failDelivery(d.ID, "unknown_nudge")
		return
	}
	channel, err := s.dmChannel(ctx, sub)
	if err != nil {
		s.handleSendError(log, d, err, false)
		return
	}
	if done := s.reconcile(ctx, log, d, channel, lead); done {
		return
	}
	lines := o.lines
	if !o.haveLines {
		lines = s.strategyLines()
	}
	msg := NudgeMessage{Nudge: n, Wording: s.wordingWith(n, sub, d.ID, lines), Delivery: d, Location: sub.Location(s.cal.Fallback)}
	// A scheduled nudge may carry the person's own words back to them.
	if !d.Manual && d.Round == 0 {
		msg.FollowUp = o.followUp
		if !o.knowFollowUp {
			msg.FollowUp = s.followUpFor(d.UserID, s.clock())
		}
	}
	if stale := s.post(ctx, log, d, channel, msg, lead); !stale {
		return
	}
	// The kept DM channel is gone (Slack said so: nothing was posted) and
	// has been forgotten: open the person's DM again, once, and post there.
	sub.DMChannel = ""
	if channel, err = s.dmChannel(ctx, sub); err != nil {
		s.handleSendError(log, d, err, false)
		return
	}
	if d, err = s.dels.Delivery(d.ID); err != nil || !d.Sendable(s.clock()) {
		return
	}
	msg.Delivery = d
	s.post(ctx, log, d, channel, msg, lead) // gone again: forgotten, next tick
}

// dmChannel is the person's IM channel, opened once and kept.
func (s *Service) dmChannel(ctx context.Context, sub nudges.Subscriber) (string, error) {
	if sub.DMChannel != "" {
		return sub.DMChannel, nil
	}
	ch, err := s.slack.OpenDM(ctx, sub.UserID)
	if err != nil {
		return "", fmt.Errorf("opening DM: %w", err)
	}
	_, err = s.subs.UpdateSubscriber(sub.UserID, func(sub *nudges.Subscriber) error {
		sub.DMChannel = ch
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("saving DM channel: %w", err)
	}
	return ch, nil
}

// reconcile looks for an earlier, uncertain attempt's message before
// anything is sent again. done is true when nothing more is to be done
// this tick: the message was found, or it is too early to look.
func (s *Service) reconcile(ctx context.Context, log *slog.Logger, d nudges.Delivery, channel string, lead bool) (done bool) {
	uncertain, lookAt := d.NeedsReconcile(s.settle)
	if !uncertain {
		return false
	}
	if wait := lookAt.Sub(s.clock()); wait > 0 {
		log.Debug("uncertain delivery settling before reconciliation", "wait", wait)
		return true
	}
	since := d.TryAt
	if since.IsZero() {
		since = d.Created
	}
	ts, found, err := s.slack.FindNudge(ctx, channel, d.ID, d.Round, since.Add(-2*time.Minute))
	if err != nil {
		log.Warn("could not check the DM history; will try again next tick", "error", err)
		return true
	}
	if found {
		log.Info("delivery found in the DM after an interrupted attempt; not sending again")
		s.markSent(d, channel, ts)
		return true
	}
	// The look took a round trip to Slack: the term may have ended.
	return lead && s.leader.Leading() != nil
}

// errClaimed is a post given up because another sender (another
// replica, or this one's /nudge now) recorded an attempt of the same
// delivery since it was read: that sender posts it.
var errClaimed = errors.New("another sender took the delivery since it was read")

// post sends the nudge into channel; stale reports that Slack said the
// channel is gone, which nothing was posted to and which is forgotten.
// lead: the leader's work, posted only while this replica leads.
func (s *Service) post(ctx context.Context, log *slog.Logger, d nudges.Delivery, channel string, msg NudgeMessage, lead bool) (stale bool) {
	recorded := false
	// The attempt is recorded after the limiter's wait, right before the
	// request: a crash while queued leaves nothing uncertain. It is
	// recorded only if nobody recorded one since d was read, so that of
	// two senders of one delivery (two replicas, or a tick and /nudge
	// now) one posts and the other gives up.
	ts, err := s.slack.PostNudge(ctx, channel, msg, func() error {
		if lead {
			if err := s.leading(); err != nil {
				return err
			}
		}
		if recorded {
			return nil
		}
		updated, err := s.dels.UpdateDeliveryFrom(d, func(cur *nudges.Delivery) error {
			if cur.State != d.State || cur.Attempts != d.Attempts || !cur.TryAt.Equal(d.TryAt) {
				return errClaimed
			}
			cur.Attempt(s.clock(), channel)
			return nil
		})
		if errors.Is(err, errClaimed) {
			return fmt.Errorf("%w: %w", ErrNotSent, errClaimed)
		}
		if err != nil {
			return fmt.Errorf("recording the attempt: %w: %w", ErrNotSent, err)
		}
		d, recorded = updated, true
		if lead {
			// The write took a round trip: the term may have ended
			// meanwhile, and what leaves now must still be in it.
			return s.leading()
		}
		return nil
	})
	if err != nil {
		return s.handleSendError(log, d, err, recorded)
	}
	// The sender goes on without waiting for its mark to be durable, so
	// the mark shares a commit with the next sender's attempt. A mark lost
	// to a crash costs a lookup in the DM's history, never a second post.
	attempted := d
	s.marks.Go(func() { s.markSent(attempted, channel, ts) })
	if f := msg.FollowUp; f != nil {
		_, err := s.refls.UpdateReflection(d.UserID, f.Seq, func(r *nudges.Reflection) error {
			r.FollowedUp = s.clock()
			return nil
		})
		if err != nil {
			log.Warn("recording a commitment follow-up", "error", err)
		}
	}
	log.Info("nudge delivered", "nudge_id", d.NudgeID)
	return false
}

// Flush waits for the sent marks still being recorded and for a
// compaction in progress; the bot calls it on shutdown, after the work
// in flight.
func (s *Service) Flush() { s.marks.Wait(); s.background.Wait() }

// followUpFor finds the person's commitment due to be quoted back in
// their next nudge, through the follow-up index.
func (s *Service) followUpFor(userID string, now time.Time) *nudges.Reflection {
	r, found, err := s.refls.DueFollowUp(userID, now)
	if err != nil {
		s.log.Warn("looking for a commitment to follow up", "user_id", userID, "error", err)
		return nil
	}
	if !found {
		return nil
	}
	return &r
}

// markSent records d as sent; d is the delivery as last read or written,
// which spares PostgreSQL a read when nothing changed it since.
func (s *Service) markSent(d nudges.Delivery, channel, ts string) {
	_, err := s.dels.UpdateDeliveryFrom(d, func(d *nudges.Delivery) error {
		d.Sent(s.clock(), channel, ts)
		return nil
	})
	if err != nil {
		s.log.Error("recording a sent delivery; it will be reconciled", "delivery_id", d.ID, "error", err)
		return
	}
	s.obs.Delivered("sent")
}

func (s *Service) failDelivery(id, reason string) {
	_, err := s.dels.UpdateDelivery(id, func(d *nudges.Delivery) error {
		d.State = nudges.StateFailed
		return nil
	})
	if err != nil {
		s.log.Error("recording a failed delivery", "delivery_id", id, "error", err)
	}
	s.obs.Delivered("failed_" + reason)
}

// handleSendError records what a failed send means; stale reports a DM
// channel Slack says is gone, now forgotten.
func (s *Service) handleSendError(log *slog.Logger, d nudges.Delivery, err error, thisAttempt bool) (stale bool) {
	switch code := SlackCode(err); {
	case errors.Is(err, errClaimed):
		log.Debug("another sender took the delivery; leaving it to them")
	case errors.Is(err, ErrNotLeader):
		log.Info("not sent: this replica no longer leads; the leader sends it")
		if thisAttempt {
			s.update(log, "undoing an attempt that never left", func() error {
				_, err := s.dels.UpdateDelivery(d.ID, func(d *nudges.Delivery) error { d.NotAttempted(); return nil })
				return err
			})
		}
	case errors.Is(err, ErrUncertain):
		log.Warn("post outcome uncertain; will reconcile against the DM before any retry", "error", err)
		s.obs.Delivered("uncertain")
	case goneCodes[code]:
		log.Warn("person can no longer receive nudges; schedule stopped, data kept", "reason", code)
		s.deactivate(d.UserID, code)
		s.failDelivery(d.ID, "gone")
	case code == "channel_not_found" || code == "is_archived":
		// A kept DM channel went stale: forget it; the caller opens the
		// DM again.
		log.Warn("DM channel no longer usable; opening it again", "reason", code)
		s.update(log, "forgetting a stale DM channel", func() error {
			_, err := s.subs.UpdateSubscriber(d.UserID, func(sub *nudges.Subscriber) error { sub.DMChannel = ""; return nil })
			return err
		})
		s.update(log, "resetting attempts", func() error {
			_, err := s.dels.UpdateDelivery(d.ID, func(d *nudges.Delivery) error { d.Attempts = 0; return nil })
			return err
		})
		return true
	case code != "":
		log.Error("slack refused the nudge; not retrying", "reason", code)
		s.failDelivery(d.ID, "refused")
	default:
		// Not sent, and Slack said so (rate limited throughout, or our
		// context ended before the call): nothing to reconcile next time.
		s.throttledLog.logAt(slog.LevelWarn, "delivery not sent; will try again next tick", "delivery_id", d.ID, "user_id", d.UserID, "error", err)
		s.obs.Delivered("retry")
		if thisAttempt && errors.Is(err, ErrNotSent) {
			s.update(log, "undoing an attempt that never left", func() error {
				_, err := s.dels.UpdateDelivery(d.ID, func(d *nudges.Delivery) error { d.NotAttempted(); return nil })
				return err
			})
		}
	}
	return false
}

// update runs a best-effort write whose failure only costs a retry.
func (s *Service) update(log *slog.Logger, what string, fn func() error) {
	if err := fn(); err != nil {
		log.Warn(what, "error", err)
	}
}
