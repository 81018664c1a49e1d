package main

import (
	"time"

	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/slackemu"
)

// Ensure one person flooding the bot with clicks cannot starve everyone
// else: past their own allowance they are asked to slow down and nothing
// runs for them, while another person's form still opens.
func TestClickFloodFromOnePerson(t *testing.T) {
	h := newHarness(t, withTune(func(o *knobs) { o.Budget, o.BudgetBurst = 0, 0 })) // the default allowance
	h.addPeople(ana, ben)
	h.start()
	h.nudge(ana.ID, "start")
	h.at("Europe/Berlin", "09:00")
	h.tick()
	msg := h.waitDMs(ana.ID, 1)[0]
	btn, ok := msg.Button("nudge_reflect")
	if !ok {
		t.Fatal("no Reflect button")
	}
	const clicks = 40
	for range clicks {
		if _, err := h.emu.ClickButton(h.ctx(), ana.ID, msg, "nudge_reflect", btn.Value); err != nil {
			t.Fatal(err)
		}
	}
	// Ben asks for the reflection form in the middle of it.
	if _, err := h.emu.SlashCommand(h.ctx(), ben.ID, "", "/reflect", ""); err != nil {
		t.Fatal(err)
	}
	h.waitModal(ben.ID)

	slowed := 0
	if err := h.emu.WaitFor(h.ctx(), func() bool {
		slowed = 0
		for _, e := range h.emu.Ephemerals(ana.ID) {
			if strings.Contains(e.VisibleText(), "faster than I can keep up") {
				slowed++
			}
		}
		return slowed >= clicks-10
	}); err != nil {
		t.Fatalf("%d of %d flood clicks were told to slow down, want at least %d", slowed, clicks, clicks-10)
	}
	opened := 0
	for _, c := range h.emu.Calls("views.open") {
		if c.Param("trigger_id") != "" && !strings.Contains(c.Param("view"), "Hear more") {
			opened++
		}
	}
	// Ana's burst of ten (and what her allowance refills while the
	// test runs, at one every two seconds), and Ben's one.
	if opened > 13 {
		t.Errorf("views.open called %d times, want at most 13: the flood was not held back", opened)
	}
}

// Ensure two previews either side of one person joining the channel tell
// nothing about that person: members and admins alike see the last
// digest, which the join does not change.
func TestPreviewsAroundAJoinIsolateNobody(t *testing.T) {
	eve := slackemu.User{ID: "UEVE00001", Name: "eve", RealName: "Eve", TZ: "Europe/Berlin"}
	fay := slackemu.User{ID: "UFAY00001", Name: "fay", RealName: "Fay", TZ: "Europe/Berlin"}
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(ana, fay, dan, boss, eve)
	team := []string{ana.ID, fay.ID, dan.ID}
	h.emu.AddChannel("CTEAM0001", "team", team...)
	h.start()
	everyoneActs := func(people ...string) {
		h.tick()
		for _, id := range people {
			dms := h.waitDMs(id, 1)
			last := dms[len(dms)-1]
			if b, ok := last.Button("nudge_done"); ok {
				if _, err := h.emu.ClickButton(h.ctx(), id, last, "nudge_done", b.Value); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, id := range append(team, eve.ID) {
		h.nudge(id, "start")
	}
	h.at("Europe/Berlin", "09:00")
	everyoneActs(append(team, eve.ID)...)
	h.sched.RunDigest(h.ctx(), "CTEAM0001")

	h.clock.Add(24 * time.Hour)
	everyoneActs(team...)
	h.clock.Add(time.Minute) // past the slot: the period now holds today's nudges
	member1, admin1 := h.nudge(ana.ID, "digest #team"), h.nudge(boss.ID, "digest <#CTEAM0001|team>")

	// Eve joins, and acts on her nudge.
	h.emu.AddChannel("CTEAM0001", "team", append(team, eve.ID)...)
	h.clock.Add(2 * time.Minute)
	everyoneActs(eve.ID)
	h.clock.Add(2 * time.Minute)
	member2, admin2 := h.nudge(ana.ID, "digest #team"), h.nudge(boss.ID, "digest <#CTEAM0001|team>")

	if member1 != member2 {
		t.Errorf("a member's preview changed when one person joined:\nbefore: %s\nafter:  %s", member1, member2)
	}
	if admin1 != admin2 {
		t.Errorf("the running period changed when one person joined mid-period:\nbefore: %s\nafter:  %s", admin1, admin2)
	}
	contains(t, admin1, "the last digest", "3 subscribers in this channel") // the posted period: never Eve
}

// Ensure a shared reflection goes to the one digest its author chose and
// nowhere else: not to another digest channel they are in, not to one
// they join later.
func TestSharedReflectionStaysInItsChannel(t *testing.T) {
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(ana, dan)
	h.emu.AddChannel("CTEAM0001", "team", ana.ID, dan.ID, "UX0000001")
	h.emu.AddChannel("CBROKEN01", "other", dan.ID, "UX0000001")
	h.start()
	h.nudge(ana.ID, "start")
	h.nudge(dan.ID, "start")
	if _, err := h.emu.SlashCommand(h.ctx(), ana.ID, "", "/reflect", ""); err != nil {
		t.Fatal(err)
	}
	m := h.waitModal(ana.ID)
	if strings.Contains(string(m.Raw), "CBROKEN01") {
		t.Fatal("the form offers a digest channel the author is not in")
	}
	const words = "Only for my own team to read"
	if _, err := h.emu.SubmitView(h.ctx(), ana.ID, m.ID, map[string]map[string]string{
		"reflection": {"text": words}, "share": {"choice": "named"}, "share_channel": {"channel": "CTEAM0001"},
	}); err != nil {
		t.Fatal(err)
	}
	h.lastEphemeralWith(ana.ID, "to be shared with your name")
	// Ana joins the other channel afterwards.
	h.emu.AddChannel("CBROKEN01", "other", ana.ID, dan.ID, "UX0000001")
	h.clock.Add(time.Hour)
	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	h.sched.RunDigest(h.ctx(), "CBROKEN01")
	if !strings.Contains(channelText(h.emu, "CTEAM0001"), words) {
		t.Error("the reflection did not reach the channel its author chose")
	}
	if strings.Contains(channelText(h.emu, "CBROKEN01"), words) {
		t.Error("the reflection reached a channel its author did not choose")
	}
}

// Ensure a team update goes only to a channel its author is in: one
// posted into a channel they never joined is refused, their text comes
// back to them, and the channel gets nothing.
func TestTeamUpdateOnlyWhereTheAuthorIs(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana, dan)
	h.emu.AddChannel("CLEADERS1", "leaders", dan.ID) // the bot is in it; Ana is not
	h.start()
	h.say(ana.ID, "/reflect", "We chose onboarding first")
	var list slackemu.Message
	for _, m := range h.emu.Ephemerals(ana.ID) {
		if _, ok := m.Button("reflect_draft"); ok {
			list = m
		}
	}
	if _, ok := list.Button("reflect_draft"); !ok {
		h.say(ana.ID, "/reflect", "list")
		for _, m := range h.emu.Ephemerals(ana.ID) {
			if _, ok := m.Button("reflect_draft"); ok {
				list = m
			}
		}
	}
	btn, _ := list.Button("reflect_draft")
	h.click(ana.ID, list, "reflect_draft", btn.Value)
	modal := h.waitModal(ana.ID)
	if _, err := h.emu.SubmitView(h.ctx(), ana.ID, modal.ID, map[string]map[string]string{
		"update": {"text": "Onboarding first, in the leaders' channel"}, "channel": {"channel": "CLEADERS1"},
	}); err != nil {
		t.Fatal(err)
	}
	contains(t, h.lastEphemeralWith(ana.ID, "channel you are a member of"), "Onboarding first, in the leaders")
	if n := len(h.emu.Messages("CLEADERS1")); n != 0 {
		t.Fatalf("%d messages posted in a channel the author is not in", n)
	}
}
