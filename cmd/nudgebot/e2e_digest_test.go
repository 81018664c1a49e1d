package main

import (
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

var (
	dan  = slackemu.User{ID: "UDAN00001", Name: "dan", RealName: "Dan", TZ: "Europe/Berlin"}
	boss = slackemu.User{ID: "UADMIN001", Name: "boss", RealName: "Boss", TZ: "Europe/London"}
)

const digestConfig = `digests:
  - channel: CTEAM0001
    schedule: "0 16 * * FRI"
    timezone: Europe/Berlin
  - channel: CBROKEN01
    schedule: "0 16 * * FRI"
    timezone: Europe/Berlin
admins: [UADMIN001]
anonymity_threshold: 3 # these tests probe the rule at its floor
`

func channelText(emu *slackemu.Server, channel string) string {
	var b strings.Builder
	for _, m := range emu.Messages(channel) {
		b.WriteString(m.VisibleText())
		b.WriteString("\n")
	}
	return b.String()
}

// clickIn clicks the first button with actionID in the channel's messages.
func (h *harness) clickIn(channel, user, actionID string) slackemu.Ack {
	h.t.Helper()
	for _, m := range h.emu.Messages(channel) {
		if b, ok := m.Button(actionID); ok {
			ack, err := h.emu.ClickButton(h.ctx(), user, m, actionID, b.Value)
			if err != nil {
				h.t.Fatalf("%s clicks %s: %v", user, actionID, err)
			}
			return ack
		}
	}
	h.t.Fatalf("no %s button in %s", actionID, channel)
	return slackemu.Ack{}
}

// Ensure a digest shows what the team practised, what authors chose to
// share (with name or anonymously, escaped, private ones never), runs a
// clarity pulse with one vote per person, and shows the pulse's result,
// trend and anonymous "hear more" answers in the next digest.
func TestDigestAndPulse(t *testing.T) {
	h := newHarness(t, withConfig(digestConfig))
	team := []slackemu.User{ana, ben, chloe, dan}
	h.addPeople(append(team, boss)...)
	h.emu.AddChannel("CTEAM0001", "team", ana.ID, ben.ID, chloe.ID, dan.ID)
	h.start()
	for _, p := range team {
		h.nudge(p.ID, "start")
	}
	// Monday and into Tuesday: everyone's nudge, in their own zone (Tokyo's
	// Monday 09:00 had passed at 06:00 UTC); three mark it done.
	h.clock.Set(monday)
	for range 20 {
		h.clock.Add(time.Hour)
		h.tick()
	}
	for _, p := range team[:3] {
		msg := h.waitDMs(p.ID, 1)[0]
		h.click(p.ID, msg, "nudge_done", "")
	}
	h.waitFor("three nudges marked done", func() bool {
		n := 0
		for _, p := range team[:3] {
			if h.emu.DM(p.ID)[0].Edits > 0 {
				n++
			}
		}
		return n == 3
	})
	// Shared and private reflections.
	shareVia := func(user, text, share string) {
		if _, err := h.emu.SlashCommand(h.ctx(), user, "", "/reflect", ""); err != nil {
			t.Fatal(err)
		}
		m := h.waitModal(user)
		contains(t, string(m.Raw), "#team: 4 people will see it")
		if _, err := h.emu.SubmitView(h.ctx(), user, m.ID, map[string]map[string]string{
			"reflection": {"text": text}, "share": {"choice": share}, "share_channel": {"channel": "CTEAM0001"},
		}); err != nil {
			t.Fatal(err)
		}
		// Private or shared in one digest, as chosen; never both.
		want, not := "to be shared with", "privately"
		if share == "private" {
			want, not = "Saved privately", "shared"
		}
		if got := h.lastEphemeralWith(user, want); strings.Contains(got, not) {
			t.Errorf("%s reflection confirmed as %q", share, got)
		}
	}
	shareVia(ana.ID, "We picked onboarding as the one priority <!channel>", "named")
	shareVia(ben.ID, "I explained the why behind the reorg", "anonymous")
	shareVia(chloe.ID, "Private doubts "+marker, "private")

	h.clock.Add(4 * 24 * time.Hour)
	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	digest := channelText(h.emu, "CTEAM0001")
	contains(t, digest, "Team digest", "#team", "— <@UANA00001>,", "3* acted on", "would let you work out", "We picked onboarding as the one priority &lt;!channel&gt;", "I explained the why behind the reorg", "How clear is our direction right now?")
	if strings.Contains(digest, marker) || strings.Contains(digest, "Private doubts") {
		t.Fatal("a private reflection reached the channel")
	}
	if strings.Contains(digest, "<!channel>") {
		t.Fatal("a mention reached the channel unescaped")
	}
	if strings.Contains(digest, "Ben") {
		t.Error("an anonymous reflection shows its author")
	}
	for _, m := range h.emu.Messages("CTEAM0001") {
		if m.LinkNames != "" || m.Parse != "" {
			t.Errorf("digest posted with link_names=%q parse=%q", m.LinkNames, m.Parse)
		}
	}

	// The pulse: one vote each; a second vote changes nothing.
	h.clickIn("CTEAM0001", ana.ID, "pulse_vote_4")
	contains(t, h.lastEphemeralWith(ana.ID, "Thanks"), "forgotten when the pulse closes")
	h.clickIn("CTEAM0001", ana.ID, "pulse_vote_1")
	h.lastEphemeralWith(ana.ID, "already answered")
	h.clickIn("CTEAM0001", ben.ID, "pulse_vote_5")
	h.clickIn("CTEAM0001", chloe.ID, "pulse_vote_3")
	h.clickIn("CTEAM0001", dan.ID, "pulse_hear_more")
	m := h.waitModal(dan.ID)
	if _, err := h.emu.SubmitView(h.ctx(), dan.ID, m.ID, map[string]map[string]string{"hear_more": {"text": "how the roadmap was chosen & <@UANA00001>"}}); err != nil {
		t.Fatal(err)
	}
	// Said the same to every writer, the first as the last: when the
	// answers show, not that this one will.
	contains(t, h.lastEphemeralWith(dan.ID, "your answer is kept without your name"), "only if at least 3 people wrote in")
	// "Hear more" answers show once enough people wrote them, whoever
	// voted: two more.
	for _, who := range []string{ana.ID, ben.ID} {
		h.clickIn("CTEAM0001", who, "pulse_hear_more")
		m := h.waitModal(who)
		if _, err := h.emu.SubmitView(h.ctx(), who, m.ID, map[string]map[string]string{"hear_more": {"text": "hiring plans"}}); err != nil {
			t.Fatal(err)
		}
		h.lastEphemeralWith(who, "your answer is kept without your name")
	}
	h.waitFor("chloe's vote confirmed", func() bool { return len(h.emu.Ephemerals(chloe.ID)) > 0 })

	before := len(h.emu.Messages("CTEAM0001"))
	h.clock.Add(7 * 24 * time.Hour)
	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	var next strings.Builder
	for _, m := range h.emu.Messages("CTEAM0001")[before:] {
		next.WriteString(m.VisibleText() + "\n")
	}
	contains(t, next.String(), "*4.0* out of 5, from 3 answers", "Trend", "how the roadmap was chosen &amp; &lt;@UANA00001&gt;")
}

// Ensure the three-person rule: with fewer than three members acting, no
// figure that could single out one person is shown.
func TestDigestThreePersonRule(t *testing.T) {
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(ana, ben)
	h.emu.AddChannel("CTEAM0001", "team", ana.ID, ben.ID)
	h.start()
	h.nudge(ana.ID, "start")
	h.nudge(ben.ID, "start")
	h.at("Europe/Berlin", "09:00")
	h.tick()
	msg := h.waitDMs(ana.ID, 1)[0]
	h.click(ana.ID, msg, "nudge_done", "")
	h.clock.Add(24 * time.Hour)
	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	contains(t, channelText(h.emu, "CTEAM0001"), "fewer than 3")
}

// Ensure a digest that cannot be posted (the bot is not in the channel)
// is logged and told to the admins once, retried at the next time, and
// never stops the other digests.
func TestDigestFailureToldToAdminsOnce(t *testing.T) {
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(ana, boss)
	h.emu.AddChannel("CTEAM0001", "team", ana.ID)
	h.emu.AddChannel("CBROKEN01", "broken", ana.ID)
	h.emu.RemoveBotFromChannel("CBROKEN01")
	h.start()
	for range 3 {
		h.sched.RunDigest(h.ctx(), "CBROKEN01")
		h.sched.RunDigest(h.ctx(), "CTEAM0001")
		h.clock.Add(7 * 24 * time.Hour)
	}
	told := 0
	for _, m := range h.emu.Ephemerals(boss.ID) {
		if strings.Contains(m.VisibleText(), "could not be posted") {
			told++
			contains(t, m.VisibleText(), "invite it with /invite @nudgebot")
		}
	}
	if told != 1 {
		t.Errorf("admin told %d times, want once", told)
	}
	pulses := 0
	for _, m := range h.emu.Messages("CTEAM0001") {
		if _, ok := m.Button("pulse_vote_1"); ok {
			pulses++
		}
	}
	if n := pulses; n != 3 {
		t.Errorf("the healthy channel got %d digests, want 3", n)
	}
	// Fixed: the next run posts, and a later failure would be told again.
	h.emu.AddChannel("CBROKEN01", "broken", ana.ID)
	h.sched.RunDigest(h.ctx(), "CBROKEN01")
	if !strings.Contains(channelText(h.emu, "CBROKEN01"), "Team digest") {
		t.Error("digest not posted once the bot was invited")
	}
}

// Ensure /nudge digest shows a channel's digest only to the caller, only
// to its members and the admins: a member sees what the last digest
// showed and when the next comes, and so does an admin (nobody sees the
// period under way), anyone else a refusal; and each person may look
// once a minute.
func TestDigestPreview(t *testing.T) {
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(ana, dan, boss)
	h.emu.AddChannel("CTEAM0001", "team", ana.ID)
	h.start()
	before := len(h.emu.Messages("CTEAM0001"))
	if _, err := h.emu.SlashCommand(h.ctx(), ana.ID, "CTEAM0001", "/nudge", "digest"); err != nil {
		t.Fatal(err)
	}
	contains(t, h.lastEphemeralWith(ana.ID, "No digest"), "has been posted in that channel yet", "The next one comes Fri 4 Dec, 16:00 (Europe/Berlin)")
	contains(t, h.nudge(ana.ID, "digest #team"), "give it a minute")

	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	posted := len(h.emu.Messages("CTEAM0001"))
	h.clock.Add(2 * time.Minute)
	contains(t, h.nudge(ana.ID, "digest #team"), "Only you can see this: the last digest, posted", "Team digest", "Nobody sees the period under way")
	contains(t, h.nudge(boss.ID, "digest <#CTEAM0001|team>"), "Only you can see this: the last digest, posted", "Team digest")
	contains(t, h.nudge(dan.ID, "digest <#CTEAM0001|team>"), "only for members of that channel and the nudgebot admins")
	contains(t, h.nudge(ana.ID, "digest <#CNOTHING1|x>"), "no digest configured")
	if n := len(h.emu.Messages("CTEAM0001")); n != posted || posted == before {
		t.Errorf("channel messages: %d before, %d after the digest, %d after the previews; a preview posted in the channel", before, posted, n)
	}
}

// Ensure App Home shows a new, an active and a paused person their own
// state, and that every button there works like its slash command and
// refreshes the home.
func TestAppHome(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	home := func() slackemu.View {
		t.Helper()
		var v slackemu.View
		h.waitFor("ana's home view", func() bool {
			var ok bool
			v, ok = h.emu.HomeView(ana.ID)
			return ok
		})
		return v
	}
	waitHome := func(want string) slackemu.View {
		t.Helper()
		var v slackemu.View
		err := h.emu.WaitFor(h.ctx(), func() bool {
			var ok bool
			v, ok = h.emu.HomeView(ana.ID)
			return ok && strings.Contains(v.VisibleText(), want)
		})
		if err != nil {
			t.Fatalf("home never showed %q:\n%s", want, v.VisibleText())
		}
		return v
	}
	click := func(action string) {
		t.Helper()
		v := home()
		b, ok := v.Button(action)
		if !ok {
			t.Fatalf("home has no %s button:\n%s", action, v.VisibleText())
		}
		if _, err := h.emu.ClickViewButton(h.ctx(), ana.ID, v.ID, action, b.Value); err != nil {
			t.Fatal(err)
		}
	}
	openHome := func() {
		t.Helper()
		if _, err := h.emu.OpenAppHome(h.ctx(), ana.ID); err != nil {
			t.Fatal(err)
		}
	}
	openHome()
	contains(t, waitHome("Not subscribed").VisibleText(), "[Start]", "No nudges yet this week", "None yet")

	click("home_start")
	contains(t, waitHome("*Subscribed.*").VisibleText(), "Mon 30 Nov, 09:00 (Europe/Berlin)", "[Stop]")

	click("home_pause_week")
	contains(t, waitHome("Paused until").VisibleText(), "[Resume now]")
	click("home_resume")
	h.waitFor("the pause gone from home", func() bool { v, _ := h.emu.HomeView(ana.ID); return !strings.Contains(v.VisibleText(), "Paused until") })

	click("home_focus_lead")
	waitHome("Focus: leading")

	click("home_time")
	m := h.waitModal(ana.ID)
	if _, err := h.emu.SubmitView(h.ctx(), ana.ID, m.ID, map[string]map[string]string{
		"time": {"time": "07:45"}, "days": {"days": "mon,wed"},
	}); err != nil {
		t.Fatal(err)
	}
	contains(t, waitHome("At 07:45").VisibleText(), "Mon, Wed")
	contains(t, h.nudge(ana.ID, "status"), "Mon, Wed at 07:45")

	contains(t, home().VisibleText(), "Your work has: not told yet")
	click("home_context")
	m = h.waitModal(ana.ID)
	if _, err := h.emu.SubmitView(h.ctx(), ana.ID, m.ID, map[string]map[string]string{
		"context": {"context": "standup,one-to-ones"},
	}); err != nil {
		t.Fatal(err)
	}
	waitHome("Your work has: a standup or daily check-in; regular 1:1s")
	contains(t, h.nudge(ana.ID, "context"), "a standup or daily check-in")

	// Active: a nudge this week and a reflection, shown only to her.
	h.at("Europe/Berlin", "07:45")
	h.tick()
	h.waitDMs(ana.ID, 1)
	h.say(ana.ID, "/reflect", "Home shows this "+marker)
	openHome()
	contains(t, waitHome(marker).VisibleText(), "This week", "Mon 07:45", "#1")

	click("home_stop")
	waitHome("Not subscribed")
}

// Ensure admin commands work for admins only, pause-all holds everyone's
// nudges until resume-all, and a person's status never shows their words.
func TestAdminCommands(t *testing.T) {
	h := newHarness(t, withConfig("digests: []\nadmins: [UADMIN001]\n"))
	h.addPeople(ana, boss)
	h.start()
	contains(t, h.nudge(ana.ID, "admin stats"), "only for the nudgebot admins")
	h.nudge(ana.ID, "start")
	h.say(ana.ID, "/reflect", "Never for an admin's eyes "+marker)
	contains(t, h.nudge(boss.ID, "admin stats"), "Subscribers: 1 active of 1")
	contains(t, h.nudge(boss.ID, "admin pause-all"), "Paused: no nudges for anyone")
	h.at("Europe/Berlin", "09:00")
	h.tick()
	if n := len(h.emu.DM(ana.ID)); n != 0 {
		t.Fatalf("DMs during a company-wide pause = %d", n)
	}
	contains(t, h.nudge(boss.ID, "admin resume-all"), "Resumed")
	h.clock.Add(24 * time.Hour)
	h.tick()
	h.waitDMs(ana.ID, 1)
	got := h.nudge(boss.ID, "admin user <@UANA00001>")
	contains(t, got, "Status of", "Subscribed", "arrived")
	if strings.Contains(got, marker) {
		t.Fatal("admin saw reflection text")
	}
	contains(t, h.nudge(boss.ID, "admin user @ana"), "Time zone: Europe/Berlin")
	contains(t, h.nudge(boss.ID, "admin"), "/nudge admin stats")
}
