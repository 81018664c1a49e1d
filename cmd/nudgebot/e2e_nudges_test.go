package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/slackemu"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// openDB reads the bot's database after the bot has stopped.
func (h *harness) openDB() *storage.DB {
	h.t.Helper()
	return storagetest.OpenAt(h.t, h.cfg.Storage.Path, storage.Options{})
}

// at sets the fake clock to a wall time in a zone on Monday 30 Nov 2026.
func (h *harness) at(zone, hhmm string) {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		h.t.Fatal(err)
	}
	tm, err := time.ParseInLocation("2006-01-02 15:04", "2026-11-30 "+hhmm, loc)
	if err != nil {
		h.t.Fatal(err)
	}
	h.clock.Set(tm)
}

// deliveryIDs returns the delivery ids in a person's DM, from metadata.
func deliveryIDs(t *testing.T, msgs []slackemu.Message) []string {
	t.Helper()
	var ids []string
	for _, m := range msgs {
		if m.Metadata == nil {
			t.Errorf("message %s has no metadata", m.TS)
			continue
		}
		var p struct {
			DeliveryID string `json:"delivery_id"`
		}
		if err := json.Unmarshal(m.Metadata.EventPayload, &p); err != nil {
			t.Errorf("message %s: metadata %s: %v", m.TS, m.Metadata.EventPayload, err)
		}
		ids = append(ids, p.DeliveryID)
	}
	return ids
}

// Ensure /nudge start subscribes a person in their Slack time zone and
// /nudge status shows the next nudge in their local time.
func TestStartAndStatus(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana, chloe)
	h.start()
	contains(t, h.nudge(ana.ID, "status"), "You're not subscribed")
	contains(t, h.nudge(ana.ID, "start"), "You're subscribed", "Mon 30 Nov, 09:00 (Europe/Berlin)")
	contains(t, h.nudge(ana.ID, "start"), "already subscribed")
	// 06:00 UTC is 15:00 in Tokyo: Monday's 09:00 has passed there.
	contains(t, h.nudge(chloe.ID, "start"), "Tue 1 Dec, 09:00 (Asia/Tokyo)")
	contains(t, h.nudge(ana.ID, "status"), "*Subscribed.*", "Mon 30 Nov, 09:00 (Europe/Berlin)", "Streak: 0", "Focus: leading and managing", "Last 4 weeks: 0 leading and 0 managing")
	contains(t, h.nudge(ana.ID, "stop"), "Stopped")
	contains(t, h.nudge(ana.ID, "status"), "Not subscribed")
}

// Ensure each settings command changes what the next nudge will be, in
// the person's zone, and says so.
func TestSettingsCommands(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	h.nudge(ana.ID, "start")
	cases := []struct {
		text string
		want []string
	}{
		{"time 08:30", []string{"08:30", "Next nudge: *Mon 30 Nov, 08:30 (Europe/Berlin)*"}},
		{"time 7pm", []string{"19:00", "Mon 30 Nov, 19:00"}},
		{"days mon,wed,fri", []string{"Mon, Wed, Fri", "Mon 30 Nov, 19:00"}},
		{"days tue-thu", []string{"Tue–Thu", "Tue 1 Dec, 19:00"}},
		{"pause 1w", []string{"Paused until Mon 7 Dec", "Tue 8 Dec, 19:00"}},
		{"resume", []string{"Resumed", "Tue 1 Dec, 19:00"}},
		{"pause until 2027-01-04", []string{"Paused until Mon 4 Jan", "Tue 5 Jan, 19:00"}},
		{"resume", []string{"Resumed"}},
		{"focus agenda-setter", []string{"agenda-setter track"}},
		{"focus lead", []string{"Focus set: leading"}},
		{"tz Asia/Tokyo", []string{"Asia/Tokyo", "Tue 1 Dec, 19:00 (Asia/Tokyo)"}},
		{"tz auto", []string{"Europe/Berlin"}},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.text, " ", "_"), func(t *testing.T) {
			contains(t, h.nudge(ana.ID, tc.text), tc.want...)
		})
	}
	contains(t, h.nudge(ana.ID, "status"), "Tue–Thu at 19:00", "Focus: leading")
}

// Ensure a due nudge arrives by DM at the person's 09:00 with the prompt,
// the why, a reason line and the four kinds of buttons, carries its
// delivery id in metadata, and that Done updates it in place.
func TestDeliveryAndDone(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	h.nudge(ana.ID, "start")
	h.at("Europe/Berlin", "08:59")
	h.tick()
	if n := len(h.emu.DM(ana.ID)); n != 0 {
		t.Fatalf("DMs at 08:59 = %d, want 0", n)
	}
	h.at("Europe/Berlin", "09:00")
	h.tick()
	msg := h.waitDMs(ana.ID, 1)[0]
	text := msg.VisibleText()
	contains(t, text, "Today's nudge", "Why this one:", "[Done]", "[Snooze 1 hour]", "[Until tomorrow]", "[Skip]", "[Reflect]")
	if msg.LinkNames != "" || msg.Parse != "" {
		t.Errorf("nudge sent with link_names=%q parse=%q", msg.LinkNames, msg.Parse)
	}
	ids := deliveryIDs(t, []slackemu.Message{msg})
	if len(ids) != 1 || !strings.HasPrefix(ids[0], ana.ID+"-20261130T080000Z") {
		t.Fatalf("delivery ids = %v", ids)
	}
	h.tick() // a second tick in the same minute sends nothing more
	btn, _ := msg.Button("nudge_done")
	if _, err := h.emu.ClickButton(h.ctx(), ana.ID, msg, "nudge_done", btn.Value); err != nil {
		t.Fatal(err)
	}
	if err := h.emu.WaitFor(h.ctx(), func() bool { return h.emu.DM(ana.ID)[0].Edits > 0 }); err != nil {
		t.Fatal(err)
	}
	updated := h.emu.DM(ana.ID)[0]
	contains(t, updated.VisibleText(), "✅ Done · Mon 09:00", "[Helpful]", "[Not for me]")
	if strings.Contains(updated.VisibleText(), "[Skip]") {
		t.Error("buttons still there after Done")
	}
	contains(t, h.nudge(ana.ID, "status"), "Streak: 1 nudge done in a row")
	if n := len(h.emu.DM(ana.ID)); n != 1 {
		t.Fatalf("DMs = %d, want 1", n)
	}
}

// Ensure Snooze sends the same nudge again later as a new message, Skip
// and Reflect answer, and a click by someone else changes nothing.
func TestSnoozeSkipReflect(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana, ben)
	h.start()
	h.nudge(ben.ID, "start")
	h.at("America/New_York", "09:00")
	h.tick()
	msg := h.waitDMs(ben.ID, 1)[0]
	btn, _ := msg.Button("nudge_snooze_1h")

	// Someone else's click (a forged payload) changes nothing.
	if _, err := h.emu.ClickButton(h.ctx(), ana.ID, msg, "nudge_done", btn.Value); err == nil {
		contains(t, h.lastEphemeral(ana.ID), "belongs to someone else")
	}

	h.click(ben.ID, msg, "nudge_snooze_1h", btn.Value)
	h.waitFor("the snoozed nudge updated", func() bool { return h.emu.DM(ben.ID)[0].Edits > 0 })
	contains(t, h.emu.DM(ben.ID)[0].VisibleText(), "Snoozed until Mon 10:00")
	h.at("America/New_York", "09:59")
	h.tick()
	if n := len(h.emu.DM(ben.ID)); n != 1 {
		t.Fatalf("DMs before the snooze ends = %d, want 1", n)
	}
	h.at("America/New_York", "10:00")
	h.tick()
	again := h.waitDMs(ben.ID, 2)[1]
	contains(t, again.VisibleText(), "Snoozed nudge, back as promised")
	ids := deliveryIDs(t, h.emu.DM(ben.ID))
	if ids[0] != ids[1] {
		t.Errorf("the snoozed nudge came back as a different delivery: %v", ids)
	}

	skip, _ := again.Button("nudge_skip")
	h.click(ben.ID, again, "nudge_skip", skip.Value)
	h.waitFor("the skipped nudge updated", func() bool { return h.emu.DM(ben.ID)[1].Edits > 0 })
	contains(t, h.emu.DM(ben.ID)[1].VisibleText(), "⏭️ Skipped")

	// Reflect opens the reflection form with the nudge and its question.
	h.click(ben.ID, again, "nudge_reflect", "")
	modal := h.waitModal(ben.ID)
	contains(t, modal.VisibleText(), "Today's nudge:", "?")
}

// waitModal waits for the person's top modal.
func (h *harness) waitModal(user string) slackemu.View {
	h.t.Helper()
	var v slackemu.View
	err := h.emu.WaitFor(h.ctx(), func() bool {
		open := h.emu.OpenViews(user)
		if len(open) == 0 {
			return false
		}
		v = open[len(open)-1]
		return true
	})
	if err != nil {
		h.t.Fatalf("no modal opened for %s: %v", user, err)
	}
	return v
}

func (h *harness) lastEphemeral(user string) string {
	h.t.Helper()
	if err := h.emu.WaitFor(h.ctx(), func() bool { return len(h.emu.Ephemerals(user)) > 0 }); err != nil {
		h.t.Fatal(err)
	}
	e := h.emu.Ephemerals(user)
	return e[len(e)-1].VisibleText()
}

// Ensure a 429 storm on chat.postMessage delays deliveries but loses and
// doubles none, and every sender pauses, not one goroutine.
func Test429Storm(t *testing.T) {
	h := newHarness(t)
	people := []slackemu.User{ana, {ID: "UANN00002", Name: "ann", TZ: "Europe/Berlin"}, {ID: "UANN00003", Name: "ann3", TZ: "Europe/Berlin"}}
	h.addPeople(people...)
	h.start()
	for _, p := range people {
		h.nudge(p.ID, "start")
	}
	h.emu.FailNext("chat.postMessage", 3, slackemu.FaultRateLimited(time.Second))
	h.at("Europe/Berlin", "09:00")
	start := time.Now()
	h.tick()
	elapsed := time.Since(start)
	for _, p := range people {
		if n := len(h.emu.DM(p.ID)); n != 1 {
			t.Errorf("%s: %d DMs after a 429 storm, want 1", p.ID, n)
		}
	}
	// Three 429s and three successes: no tight retry loop.
	if n := len(h.emu.Calls("chat.postMessage")); n != 6 {
		t.Errorf("chat.postMessage calls = %d, want 6 (3 refused + 3 delivered)", n)
	}
	// Retry-After is honoured: the method pauses for every sender.
	if elapsed < time.Second {
		t.Errorf("delivery under a 429 storm took %v, want ≥ Retry-After (1s)", elapsed)
	}
}

// Ensure a post whose answer was lost (Slack stored it, the connection
// broke) is found in the DM's history and not sent twice, and a post that
// failed before reaching Slack is sent again, once.
func TestUncertainPostsReconciled(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault slackemu.Fault
	}{
		{"StoredThenDropped", slackemu.FaultDropAfterApply()},
		{"ServerError", slackemu.FaultStatus(503)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, withTune(func(o *knobs) { o.SettleTime = 20 * time.Second }))
			h.addPeople(ana)
			h.start()
			h.nudge(ana.ID, "start")
			h.emu.FailNext("chat.postMessage", 1, tc.fault)
			h.at("Europe/Berlin", "09:00")
			h.tick()
			h.clock.Add(10 * time.Second)
			h.tick() // still settling: no second post
			if n := len(h.emu.Calls("chat.postMessage")); n != 1 {
				t.Fatalf("posts while settling = %d, want 1", n)
			}
			h.clock.Add(20 * time.Second)
			h.tick()
			h.tick()
			if n := len(h.emu.DM(ana.ID)); n != 1 {
				t.Fatalf("DMs = %d, want exactly 1", n)
			}
			h.stop()
			if p, err := h.openDB().Pending(); err != nil || len(p) != 0 {
				t.Fatalf("pending = %d, %v; want 0", len(p), err)
			}
		})
	}
}

// Ensure a slot missed while the bot was down is caught up once within
// nudges.catch_up, recorded as missed beyond it, and that clock jumps
// (days ahead, an hour back) never burst or double.
func TestCatchUpAndClockJumps(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana, ben)
	h.start()
	h.nudge(ana.ID, "start")
	h.nudge(ben.ID, "start")
	h.stop()
	// Down over Berlin's 09:00; back at 10:30 (within 2h). New York's
	// 09:00 is still ahead.
	h.at("Europe/Berlin", "10:30")
	h.start()
	h.tick()
	h.waitDMs(ana.ID, 1)
	// The clock steps back an hour: nothing is sent again.
	h.clock.Add(-time.Hour)
	h.tick()
	// Five days pass in one jump (a resumed VM), to Saturday 08:30 in
	// Berlin: every weekday slot since is more than 2h old, so each is
	// recorded as missed and none is sent: no burst.
	h.clock.Add(5 * 24 * time.Hour)
	h.tick()
	h.tick()
	if n := len(h.emu.DM(ana.ID)); n != 1 {
		t.Errorf("Ana: %d DMs, want 1 (Monday's catch-up only)", n)
	}
	if n := len(h.emu.DM(ben.ID)); n != 0 {
		t.Errorf("Ben: %d DMs, want 0", n)
	}
	h.stop()
	db := h.openDB()
	for _, who := range []string{ana.ID, ben.ID} {
		ds, err := db.Deliveries(who, monday)
		if err != nil {
			t.Fatal(err)
		}
		missed := 0
		for _, d := range ds {
			if d.State == nudges.StateMissed {
				missed++
			}
		}
		if missed == 0 {
			t.Errorf("%s: no missed slots recorded after a 5-day jump", who)
		}
	}
}

// Ensure a slot missed by more than catch_up is recorded as missed and
// not sent.
func TestMissedBeyondCatchUp(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	h.nudge(ana.ID, "start")
	h.stop()
	h.at("Europe/Berlin", "11:30")
	h.start()
	h.tick()
	h.stop()
	if n := len(h.emu.DM(ana.ID)); n != 0 {
		t.Fatalf("DMs = %d, want 0 (2h30 late, beyond catch_up 2h)", n)
	}
	ds, err := h.openDB().Deliveries(ana.ID, monday)
	if err != nil || len(ds) != 1 || ds[0].State != nudges.StateMissed {
		t.Fatalf("deliveries = %+v, %v; want one missed", ds, err)
	}
}

// Ensure a person whose Slack time zone changes gets their nudge at 09:00
// in the new zone.
func TestTimeZoneChange(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	h.nudge(ana.ID, "start")
	moved := ana
	moved.TZ = "America/New_York"
	h.emu.SetUser(moved)
	if _, err := h.emu.SendEvent(h.ctx(), map[string]any{"type": "user_change", "user": h.emu.UserObject(ana.ID)}); err != nil {
		t.Fatal(err)
	}
	if err := h.emu.WaitFor(h.ctx(), func() bool {
		return strings.Contains(h.nudge(ana.ID, "status"), "America/New_York")
	}); err != nil {
		t.Fatal("status never showed the new zone")
	}
	h.at("Europe/Berlin", "09:00")
	h.tick()
	if n := len(h.emu.DM(ana.ID)); n != 0 {
		t.Fatalf("DMs at 09:00 Berlin = %d, want 0 after moving to New York", n)
	}
	h.at("America/New_York", "09:00")
	h.tick()
	h.waitDMs(ana.ID, 1)
}

// Ensure a deactivated person stops receiving nudges (Slack would still
// accept the DM), found by the daily profile refresh or by a permanent
// error such as user_not_found, and their data stays.
func TestDeactivatedPeople(t *testing.T) {
	h := newHarness(t)
	gone := slackemu.User{ID: "UGONE0001", Name: "gone", TZ: "Europe/Berlin"}
	h.addPeople(ana, gone)
	h.start()
	h.nudge(ana.ID, "start")
	h.nudge(gone.ID, "start")
	deactivated := gone
	deactivated.Deleted = true
	h.emu.SetUser(deactivated)
	h.sched.RefreshProfiles(h.ctx())
	h.emu.FailNext("chat.postMessage", 1, slackemu.FaultSlackError("user_not_found"))
	h.at("Europe/Berlin", "09:00")
	h.tick()
	if n := len(h.emu.DM(gone.ID)); n != 0 {
		t.Errorf("deactivated person got %d DMs", n)
	}
	if n := len(h.emu.DM(ana.ID)); n != 0 {
		t.Errorf("Ana got %d DMs, want 0: her post answered user_not_found", n)
	}
	contains(t, h.nudge(ana.ID, "status"), "*Stopped*", "user_not_found")
	h.clock.Add(24 * time.Hour)
	h.tick()
	if n := len(h.emu.Calls("chat.postMessage")); n != 1 {
		t.Errorf("posts = %d, want 1 (the refused one; none after)", n)
	}
	h.stop()
	if _, err := h.openDB().Subscriber(gone.ID); err != nil {
		t.Errorf("deactivated person's data gone: %v", err)
	}
}

// Ensure a company day off in the config skips the slot everywhere it
// applies, and one for a single zone only there.
func TestHolidays(t *testing.T) {
	h := newHarness(t, withConfig("holidays:\n  - 2026-11-30\n  - {date: 2026-12-01, timezone: America/New_York}\ndigests: []\nadmins: []\n"))
	h.addPeople(ana, ben)
	h.start()
	h.nudge(ana.ID, "start")
	contains(t, h.nudge(ben.ID, "start"), "Wed 2 Dec, 09:00 (America/New_York)")
	h.clock.Set(monday)
	for range 48 {
		h.clock.Add(time.Hour)
		h.tick()
	}
	// Ana (Berlin): Monday off, Tuesday on. Ben (New York): both off.
	if n := len(h.emu.DM(ana.ID)); n != 1 {
		t.Errorf("Ana: %d DMs, want 1 (Tuesday only)", n)
	}
	if n := len(h.emu.DM(ben.ID)); n != 0 {
		t.Errorf("Ben: %d DMs, want 0", n)
	}
}

// Ensure a Web API error while subscribing (Slack cannot read the
// profile) still subscribes the person, in the default zone, and says so.
func TestStartWhenSlackFails(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	h.emu.FailNext("users.info", 1, slackemu.FaultSlackError("user_not_found"))
	contains(t, h.nudge(ana.ID, "start"), "You're subscribed", "(UTC)")
	// The next profile refresh finds her zone.
	h.sched.RefreshProfiles(h.ctx())
	contains(t, h.nudge(ana.ID, "status"), "Europe/Berlin")
}

// Ensure a post that was refused with 429 on every attempt is known not
// to have reached Slack: the next tick sends it without waiting to settle
// or searching the DM first, and exactly once.
func TestRateLimitedOutIsNotUncertain(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	h.nudge(ana.ID, "start")
	h.emu.FailNext("chat.postMessage", 5, slackemu.FaultRateLimited(time.Second))
	h.at("Europe/Berlin", "09:00")
	h.tick() // five 429s: gives up for this tick
	if n := len(h.emu.DM(ana.ID)); n != 0 {
		t.Fatalf("DMs = %d after five 429s, want 0", n)
	}
	h.tick() // no settle wait, no history search
	h.waitDMs(ana.ID, 1)
	if n := len(h.emu.Calls("conversations.history")); n != 0 {
		t.Errorf("conversations.history calls = %d, want 0: a refused post is not uncertain", n)
	}
}
