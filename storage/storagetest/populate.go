package storagetest

import (
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// PopulateTime is the instant Populate's records are written around.
var PopulateTime = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Populated names what Populate wrote, for a test to look at after a
// copy.
type Populated struct {
	// OpenPulse is open, Ana and Ben answered it, Chloe may still.
	OpenPulse, ClosedPulse string
	Ana, Ben, Chloe, Dev   string
}

// Populate writes every kind of record a database keeps through the
// storage ports, as the bot would: the company-wide settings and the
// learned Slack pace; people scheduled and not; deliveries pending,
// sent, missed and sent by hand; reflections private and shared, with a
// commitment followed up and one due, one deleted so the seq counter is
// ahead of the records; a digest posted and a channel marked broken; a
// pulse open with voters who answered and one closed into the history;
// and a handled envelope. db needs keys to seal the reflections.
func Populate(t testing.TB, db Store) Populated {
	t.Helper()
	now := PopulateTime
	p := Populated{OpenPulse: "pulse-open", ClosedPulse: "pulse-closed", Ana: "UANA", Ben: "UBEN", Chloe: "UCHLOE", Dev: "UDEV"}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("populate: %s: %v", what, err)
		}
	}
	must("pause", db.SetPausedAll(now.Add(72*time.Hour)))
	must("strategy", db.SetStrategyLines([]string{"Win the mid-market", "Ship weekly"}))
	must("pace", db.SetLearnedPace(41.5))

	people := []string{p.Ana, p.Ben, p.Chloe, p.Dev}
	for i, id := range people {
		_, err := db.UpdateSubscriber(id, func(s *nudges.Subscriber) error {
			s.Subscribed = id != p.Dev
			s.SubscribedAt = now.Add(-30 * 24 * time.Hour)
			s.ProfileTZ = "Europe/Berlin"
			s.DMChannel = "D" + id[1:]
			s.Streak = i
			if s.Subscribed {
				s.NextDue = now.Add(time.Duration(i) * time.Hour)
			}
			return nil
		})
		must("subscriber "+id, err)
	}
	advance := func(s *nudges.Subscriber) error { s.NextDue = s.NextDue.Add(24 * time.Hour); return nil }
	for i, id := range []string{p.Ana, p.Ben, p.Chloe} {
		slot := now.Add(time.Duration(i) * time.Hour)
		d := nudges.Delivery{ID: storage.DeliveryID(id, slot, false), UserID: id, NudgeID: "lead-001",
			Theme: nudges.ThemeLeading, Role: nudges.RoleLead, Slot: slot, State: nudges.StatePending, Created: now}
		_, err := db.StartDelivery(d, slot, advance)
		must("start delivery of "+id, err)
	}
	_, err := db.UpdateDelivery(storage.DeliveryID(p.Ana, now, false), func(d *nudges.Delivery) error {
		d.State, d.Attempts, d.SentAt, d.Channel, d.TS = nudges.StateSent, 1, now.Add(time.Minute), "DANA", "1772442060.000100"
		// In a zone of its own, as a bot whose clock is local writes it:
		// an engine may keep the zone or only the instant.
		d.Outcome, d.ActedAt = nudges.OutcomeDone, now.Add(90*time.Minute+7).In(time.FixedZone("CET", 3600))
		return nil
	})
	must("send Ana's nudge", err)
	sub, err := db.Subscriber(p.Ben)
	must("Ben", err)
	must("missed slots", db.RecordMissed(p.Ben, []time.Time{now.Add(-48 * time.Hour), now.Add(-24 * time.Hour)}, sub.NextDue, nil))
	manual := now.Add(30 * time.Minute)
	_, err = db.StartDelivery(nudges.Delivery{ID: storage.DeliveryID(p.Chloe, manual, true), UserID: p.Chloe, NudgeID: "manage-002",
		Theme: nudges.ThemeLeading, Role: nudges.RoleManage, Slot: manual, Manual: true, State: nudges.StateSent, Created: now}, time.Time{}, nil)
	must("manual delivery", err)

	reflections := []nudges.Reflection{
		{UserID: p.Ana, Created: now.Add(time.Hour), Text: "Explained the why at standup", Commitment: "Ask for questions first",
			FollowUpDue: now.Add(72 * time.Hour), DeliveryID: storage.DeliveryID(p.Ana, now, false), NudgeID: "lead-001"},
		{UserID: p.Ana, Created: now.Add(2 * time.Hour), Text: "A note to delete"},
		{UserID: p.Ana, Created: now.Add(3 * time.Hour), Text: "Shared with the team: we listened more", Share: nudges.ShareNamed, ShareChannel: "C1", MessageTS: "1772452800.000200"},
		{UserID: p.Ben, Created: now.Add(4 * time.Hour), Text: "Anonymous: the roadmap is unclear", Share: nudges.ShareAnonymous, Commitment: "Ask my lead"},
	}
	for _, r := range reflections {
		_, err := db.SaveReflection(r)
		must("reflection of "+r.UserID, err)
	}
	must("delete a reflection", db.DeleteReflection(p.Ana, 2))
	kept := true
	_, err = db.UpdateReflection(p.Ben, 1, func(r *nudges.Reflection) error {
		r.FollowUpDue, r.FollowedUp, r.Kept = now.Add(24*time.Hour), now.Add(48*time.Hour), &kept
		return nil
	})
	must("follow up Ben's reflection", err)

	must("digest", db.RecordDigest("C1", nudges.PostedDigest{At: now.Add(-7 * 24 * time.Hour), Members: []string{p.Ana, p.Ben, p.Chloe},
		Shown: &nudges.Digest{Channel: "C1", From: now.Add(-14 * 24 * time.Hour), To: now.Add(-7 * 24 * time.Hour), Members: 3, Received: 12, ReceivedShown: true}}))
	_, err = db.MarkDigestBroken("C2", "not_in_channel")
	must("broken digest", err)

	must("open the closed pulse", db.OpenPulse("C1", p.ClosedPulse, now.Add(-8*24*time.Hour), p.Ana, p.Ben, p.Chloe))
	_, err = db.VotePulse(p.ClosedPulse, p.Ana, 3)
	must("vote", err)
	_, err = db.ClosePulse(p.ClosedPulse)
	must("close pulse", err)
	must("open pulse", db.OpenPulse("C1", p.OpenPulse, now.Add(-time.Hour), p.Ana, p.Ben, p.Chloe))
	_, err = db.VotePulse(p.OpenPulse, p.Ana, 4)
	must("vote", err)
	_, err = db.VotePulse(p.OpenPulse, p.Ben, 2)
	must("vote", err)
	must("hear more", db.AddHearMore(p.OpenPulse, p.Ben, "the roadmap"))

	_, err = db.MarkSeen("envelope-1", now)
	must("mark an envelope seen", err)
	return p
}

// CheckPopulated checks through the ports that db holds what Populate
// wrote and behaves as the original would: the due order and the
// outbox, the reflections opening with their text, the seq counter past
// the deleted one, the open pulse knowing who answered (its voter key
// and markers came along) and closing into the history. It writes, so
// it goes last.
func CheckPopulated(t testing.TB, db Store, p Populated) {
	t.Helper()
	now := PopulateTime
	check := func(what string, ok bool, got any) {
		t.Helper()
		if !ok {
			t.Errorf("after the copy, %s: got %+v", what, got)
		}
	}
	fatal := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("after the copy, %s: %v", what, err)
		}
	}
	paused, err := db.PausedAll()
	fatal("PausedAll", err)
	check("the company-wide pause", paused.Equal(now.Add(72*time.Hour)), paused)
	lines, set, err := db.StrategyLines()
	fatal("StrategyLines", err)
	check("the strategy lines", set && len(lines) == 2 && lines[1] == "Ship weekly", lines)
	pace, err := db.LearnedPace()
	fatal("LearnedPace", err)
	check("the learned pace", pace == 41.5, pace)

	total, active, err := db.CountSubscribers()
	fatal("CountSubscribers", err)
	check("the subscribers", total == 4 && active == 3, []int{total, active})
	due, err := db.Due(now.Add(30*time.Hour), 0)
	fatal("Due", err)
	check("who is due, in order", len(due) == 3 && due[0] == p.Ana && due[1] == p.Ben && due[2] == p.Chloe, due)
	oldest, ok, err := db.OldestDue()
	fatal("OldestDue", err)
	check("the oldest due time", ok && oldest.Equal(now.Add(24*time.Hour)), oldest)
	pending, err := db.Pending()
	fatal("Pending", err)
	check("the outbox", len(pending) == 2 && pending[0].UserID == p.Ben && pending[1].UserID == p.Chloe, pending)
	bens, err := db.Deliveries(p.Ben, time.Time{})
	fatal("Deliveries", err)
	check("Ben's deliveries", len(bens) == 3 && bens[0].State == nudges.StateMissed && bens[2].State == nudges.StatePending, bens)
	chloes, err := db.Deliveries(p.Chloe, time.Time{})
	fatal("Deliveries", err)
	check("Chloe's deliveries", len(chloes) == 2 && chloes[0].Manual && chloes[1].State == nudges.StatePending, chloes)

	anas, err := db.Reflections(p.Ana, 0)
	fatal("Reflections", err)
	check("Ana's reflections, opened", len(anas) == 2 && anas[0].Seq == 3 && anas[1].Text == "Explained the why at standup" &&
		anas[1].Commitment == "Ask for questions first", anas)
	_, err = db.Reflection(p.Ana, 2)
	check("the deleted reflection", err != nil, err)
	shared, err := db.SharedReflections([]string{p.Ana, p.Ben}, now, now.Add(5*time.Hour))
	fatal("SharedReflections", err)
	check("the shared reflections", len(shared) == 2 && shared[0].ShareChannel == "C1" && shared[1].Share == nudges.ShareAnonymous, shared)
	fu, found, err := db.DueFollowUp(p.Ana, now.Add(73*time.Hour))
	fatal("DueFollowUp", err)
	check("Ana's follow-up", found && fu.Seq == 1, fu)
	_, found, err = db.DueFollowUp(p.Ben, now.Add(73*time.Hour))
	fatal("DueFollowUp", err)
	check("Ben's follow-up, answered", !found, found)
	byMsg, err := db.ReflectionByMessage(p.Ana, "1772452800.000200")
	fatal("ReflectionByMessage", err)
	check("the reflection typed as a message", byMsg.Seq == 3, byMsg)

	posted, err := db.PostedDigest("C1")
	fatal("PostedDigest", err)
	check("the posted digest", len(posted.Members) == 3 && posted.Shown != nil && posted.Shown.Received == 12, posted)
	first, err := db.MarkDigestBroken("C2", "channel_not_found")
	fatal("MarkDigestBroken", err)
	check("the broken channel's mark", !first, first)

	voters, snapshot, err := db.PulseVoters(p.OpenPulse)
	fatal("PulseVoters", err)
	check("the open pulse's voters", snapshot && len(voters) == 3, voters)
	first, err = db.VotePulse(p.OpenPulse, p.Ana, 5)
	fatal("VotePulse", err)
	check("Ana's second vote", !first, first)
	first, err = db.VotePulse(p.OpenPulse, p.Chloe, 5)
	fatal("VotePulse", err)
	check("Chloe's first vote", first, first)
	sum, err := db.ClosePulse(p.OpenPulse)
	fatal("ClosePulse", err)
	check("the closed pulse's summary", sum.Responses == 3 && sum.Sum == 11 && len(sum.HearMore) == 1 && sum.HearMoreWriters == 1, sum)
	history, err := db.PulseHistory("C1", 0)
	fatal("PulseHistory", err)
	check("the pulse history", len(history) == 2 && history[0].Responses+history[1].Responses == 4, history)

	r, err := db.SaveReflection(nudges.Reflection{UserID: p.Ana, Text: "After the copy"})
	fatal("SaveReflection", err)
	check("the next seq", r.Seq == 4, r.Seq)
}
