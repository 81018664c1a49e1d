package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/slackemu"
	"github.com/nudgebot/nudgebot/storage"
)

// The attacks of issue 19 (privacy, second round), each played end to
// end through the emulator and the real wiring, as a curious colleague
// would.

const exportMarker = "pangolin-cartography"

func init() { privateMarkers = append(privateMarkers, exportMarker) }

// ephemeralText is everything the person was shown only to them.
func ephemeralText(emu *slackemu.Server, user string) string {
	var b strings.Builder
	for _, m := range emu.Ephemerals(user) {
		b.WriteString(m.VisibleText() + "\n")
	}
	return b.String()
}

// Issue 19, item 1: typed DMs and App Home opens draw on the same
// allowance as commands and clicks, checked before any work slot is
// taken, and one person's flood never delays another's command.
func TestDMAndHomeFloodDrawOnOneAllowance(t *testing.T) {
	h := newHarness(t, withTune(func(o *knobs) { o.Budget, o.BudgetBurst = 0, 0 })) // the default allowance
	h.addPeople(ana, ben)
	h.start()
	logsBefore := len(allLogs.String())
	const dms, homes = 100, 30
	for i := range dms {
		if _, _, err := h.emu.PersonSays(h.ctx(), ana.ID, "", fmt.Sprintf("hello %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	got := h.nudge(ben.ID, "status") // Ben, in the middle of Ana's flood
	if strings.Contains(got, "busy") || strings.Contains(got, "faster than") {
		t.Errorf("another person's command was held back by one person's flood: %q", got)
	}
	for range homes {
		if _, err := h.emu.OpenAppHome(h.ctx(), ana.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Each DM the bot takes on holds a work slot while it waits on the
	// Web API; one person's must never use them all up.
	if strings.Contains(allLogs.String()[logsBefore:], "too much work in flight") {
		t.Errorf("%d DMs and %d Home opens from one person used up the work slots everyone shares", dms, homes)
	}
	h.waitFor("the person flooding the DM told their messages were not kept", func() bool {
		return strings.Contains(ephemeralText(h.emu, ana.ID), "faster than I can keep up")
	})
}

// Issue 19, item 1: forms draw on the same allowance, and a form past it
// stays open with everything in it.
func TestFormFloodDrawsOnTheAllowance(t *testing.T) {
	h := newHarness(t, withTune(func(o *knobs) { o.Budget, o.BudgetBurst = 0, 0 }))
	h.addPeople(ana)
	h.start()
	if _, err := h.emu.SlashCommand(h.ctx(), ana.ID, "", "/reflect", ""); err != nil {
		t.Fatal(err)
	}
	m := h.waitModal(ana.ID)
	slowed := 0
	for range 20 { // each too long, so the form stays open to submit again
		ack, err := h.emu.SubmitView(h.ctx(), ana.ID, m.ID, map[string]map[string]string{"reflection": {"text": strings.Repeat("y", 3001)}})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(ack.Payload), "faster than I can keep up") {
			slowed++
		}
	}
	if slowed < 8 {
		t.Errorf("%d of 20 form submissions were held to the allowance, want at least 8", slowed)
	}
	if v, ok := h.emu.View(m.ID); !ok || v.Closed {
		t.Error("a form past the allowance was closed, losing what was in it")
	}
}

// Issue 19, item 2: an "anonymous" share counts the people whose
// contributions can appear in the digest (its subscribed members), at
// share time and again when the digest is built.
func TestAnonymousShareCountsSubscribers(t *testing.T) {
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(ana, ben, chloe, dan, boss)
	h.emu.AddChannel("CTEAM0001", "team", ana.ID, ben.ID, chloe.ID, dan.ID)
	h.start()
	h.nudge(ana.ID, "start") // the only subscriber of four members
	share := func(user, text string) slackemu.Ack {
		if _, err := h.emu.SlashCommand(h.ctx(), user, "", "/reflect", ""); err != nil {
			t.Fatal(err)
		}
		m := h.waitModal(user)
		ack, err := h.emu.SubmitView(h.ctx(), user, m.ID, map[string]map[string]string{
			"reflection": {"text": text}, "share": {"choice": "anonymous"}, "share_channel": {"channel": "CTEAM0001"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return ack
	}
	const alone = "Only I subscribe here and wrote this"
	ack := share(ana.ID, alone)
	if !strings.Contains(string(ack.Payload), "too small") {
		t.Errorf("sharing anonymously among one subscriber was accepted: ack %s", ack.Payload)
	} else { // she keeps it private instead, which closes the form
		m := h.waitModal(ana.ID)
		if _, err := h.emu.SubmitView(h.ctx(), ana.ID, m.ID, map[string]map[string]string{
			"reflection": {"text": alone}, "share": {"choice": "private"},
		}); err != nil {
			t.Fatal(err)
		}
		h.lastEphemeralWith(ana.ID, "Saved privately")
	}
	h.clock.Add(time.Hour)
	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	if d := channelText(h.emu, "CTEAM0001"); strings.Contains(d, alone) {
		t.Fatalf("an anonymous reflection appeared among one subscriber, so everyone knows its author:\n%s", d)
	}

	// Three subscribe, Ana shares; two stop before the digest.
	h.nudge(ben.ID, "start")
	h.nudge(chloe.ID, "start")
	h.clock.Add(time.Minute)
	const later = "Shared when three of us subscribed"
	if ack := share(ana.ID, later); strings.Contains(string(ack.Payload), "errors") {
		t.Fatalf("a share among three subscribers was refused: %s", ack.Payload)
	}
	h.waitEphemerals(ana.ID, "Saved", 2)
	h.nudge(ben.ID, "stop")
	h.nudge(chloe.ID, "forget")
	h.forget(chloe.ID)
	h.clock.Add(time.Hour)
	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	if d := channelText(h.emu, "CTEAM0001"); strings.Contains(d, later) {
		t.Errorf("an anonymous reflection appeared in a digest of fewer subscribers than the threshold:\n%s", d)
	}
	h.waitFor("Ana told her share was held back", func() bool {
		return strings.Contains(ephemeralText(h.emu, ana.ID), "held back your anonymous reflection")
	})
}

// Issue 19, item 3: only the members of the channel when the pulse was
// posted count in it, without a Slack call per click; others are told
// why their click did nothing.
func TestOutsidersCannotAnswerThePulse(t *testing.T) {
	eve := slackemu.User{ID: "UEVE00001", Name: "eve", RealName: "Eve", TZ: "Europe/Berlin"}
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(ana, ben, chloe, dan, eve, boss)
	h.emu.AddChannel("CTEAM0001", "team", ana.ID, ben.ID, chloe.ID)
	h.start()
	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	infos := len(h.emu.Calls("conversations.info")) + len(h.emu.Calls("conversations.members"))

	h.clickIn("CTEAM0001", ben.ID, "pulse_vote_2") // the member
	h.waitEphemerals(ben.ID, "Thanks", 1)
	for _, outsider := range []string{dan.ID, eve.ID} {
		h.clickIn("CTEAM0001", outsider, "pulse_vote_5")
		contains(t, h.lastEphemeral(outsider), "members of <#CTEAM0001>")
	}
	h.clickIn("CTEAM0001", eve.ID, "pulse_hear_more")
	h.waitEphemerals(eve.ID, "members of <#CTEAM0001>", 2)
	if open := h.emu.OpenViews(eve.ID); len(open) > 0 {
		t.Error("an outsider was given the hear-more form")
	}
	if n := len(h.emu.Calls("conversations.info")) + len(h.emu.Calls("conversations.members")) - infos; n != 0 {
		t.Errorf("pulse clicks made %d calls to ask Slack who is in the channel, want none", n)
	}
	before := len(h.emu.Messages("CTEAM0001"))
	h.clock.Add(7 * 24 * time.Hour)
	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	var next strings.Builder
	for _, m := range h.emu.Messages("CTEAM0001")[before:] {
		next.WriteString(m.VisibleText() + "\n")
	}
	if strings.Contains(next.String(), "out of 5") || !strings.Contains(next.String(), "1 answer") {
		t.Errorf("outsiders' votes counted beside one member's:\n%s", next.String())
	}
}

// Issue 19, item 4: nobody, admins included, sees a figure that two
// looks around one join or one action can isolate, in the first period
// (before any digest) as in later ones.
func TestPreviewsAroundOneJoinOrActionInTheFirstPeriod(t *testing.T) {
	eve := slackemu.User{ID: "UEVE00001", Name: "eve", RealName: "Eve", TZ: "Europe/Berlin"}
	fay := slackemu.User{ID: "UFAY00001", Name: "fay", RealName: "Fay", TZ: "Europe/Berlin"}
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(ana, fay, dan, boss, eve)
	team := []string{ana.ID, fay.ID, dan.ID}
	h.emu.AddChannel("CTEAM0001", "team", team...)
	h.start()
	acts := func(people ...string) {
		for _, id := range people {
			dms := h.waitDMs(id, 1)
			last := dms[len(dms)-1]
			if b, ok := last.Button("nudge_done"); ok {
				h.click(id, last, "nudge_done", b.Value)
				h.waitFor("the nudge marked done", func() bool { return h.emu.DM(id)[len(dms)-1].Edits > 0 })
			}
		}
	}
	for _, id := range append(team, eve.ID) {
		h.nudge(id, "start")
	}
	h.at("Europe/Berlin", "09:00")
	h.tick()
	acts(append(team, eve.ID)...)
	h.clock.Add(time.Minute)
	before := h.nudge(boss.ID, "digest <#CTEAM0001|team>")
	h.emu.AddChannel("CTEAM0001", "team", append(team, eve.ID)...) // Eve joins
	h.clock.Add(2 * time.Minute)
	after := h.nudge(boss.ID, "digest <#CTEAM0001|team>")
	if before != after {
		t.Errorf("two looks around one join, before any digest, differ:\nbefore: %s\nafter:  %s", before, after)
	}

	// A later period: two looks around one person acting.
	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	h.clock.Add(24 * time.Hour)
	h.tick()
	acts(ana.ID, fay.ID)
	h.clock.Add(time.Minute)
	before = h.nudge(boss.ID, "digest <#CTEAM0001|team>")
	acts(dan.ID)
	h.clock.Add(2 * time.Minute)
	after = h.nudge(boss.ID, "digest <#CTEAM0001|team>")
	if before != after {
		t.Errorf("two looks around one person acting differ:\nbefore: %s\nafter:  %s", before, after)
	}
}

// seedPeriod writes subscribers and acted-on deliveries of the given
// themes into the database before the bot opens it: who acted on what in
// the week before monday.
func seedPeriod(t *testing.T, path string, acted map[string][]nudges.Theme) {
	t.Helper()
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, db)
	var subs []nudges.Subscriber
	for id := range acted {
		subs = append(subs, nudges.Subscriber{UserID: id, Subscribed: true, ProfileTZ: "Europe/Berlin", NextDue: monday.Add(24 * time.Hour)})
	}
	if err := db.ImportSubscribers(subs); err != nil {
		t.Fatal(err)
	}
	for id, themes := range acted {
		for i, th := range themes {
			slot := monday.Add(-time.Duration(i+1) * 24 * time.Hour)
			d := nudges.Delivery{ID: storage.DeliveryID(id, slot, false), UserID: id, NudgeID: "seeded", Theme: th, Slot: slot, State: nudges.StatePending, Created: slot}
			if _, err := db.StartDelivery(d, monday.Add(24*time.Hour), nil); err != nil {
				t.Fatal(err)
			}
			if _, err := db.UpdateDelivery(d.ID, func(d *nudges.Delivery) error {
				d.State, d.SentAt, d.Outcome, d.ActedAt = nudges.StateSent, slot, nudges.OutcomeDone, slot.Add(time.Hour)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Issue 19, item 5: a withheld figure cannot be worked out by
// subtracting the ones shown: strategy updates (7) minus the strategy
// theme (5) would give one person's organisation count (2).
func TestWithheldFigureCannotBeSubtracted(t *testing.T) {
	h := newHarness(t, withConfig(digestConfig))
	people := map[string][]nudges.Theme{
		"UP0000001": {nudges.ThemeStrategy, nudges.ThemeStrategy},
		"UP0000002": {nudges.ThemeStrategy, nudges.ThemeStrategy},
		"UP0000003": {nudges.ThemeStrategy},
		"UP0000004": {nudges.ThemeOrganisation, nudges.ThemeOrganisation}, // the one to hide
		"UP0000005": {nudges.ThemeStrategy},
	}
	var ids []string
	for id := range people {
		h.addPeople(slackemu.User{ID: id, Name: strings.ToLower(id), TZ: "Europe/Berlin"})
		ids = append(ids, id)
	}
	h.emu.AddChannel("CTEAM0001", "team", ids...)
	seedPeriod(t, h.cfg.Storage.Path, people)
	h.start()
	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	d := channelText(h.emu, "CTEAM0001")
	if !strings.Contains(d, "Team digest") {
		t.Fatalf("no digest:\n%s", d)
	}
	strategy := strings.Contains(d, "*8* strategy updates")
	theme := strings.Contains(d, "Communicating strategy · 6 nudges acted on")
	acted := strings.Contains(d, "*8* acted on")
	if strategy && theme {
		t.Errorf("strategy updates (8) minus the strategy theme (6) gives one person's organisation count:\n%s", d)
	}
	if acted && theme && !strategy {
		t.Errorf("acted on (8) minus the strategy theme (6) gives one person's count:\n%s", d)
	}
	if !strategy && !theme && !acted {
		t.Errorf("everything was withheld; the safe figures should show:\n%s", d)
	}
}

// forgedSubmission is a view_submission payload for the view, with its
// private_metadata replaced: what someone gets by editing the payload of
// a form they were shown.
func forgedSubmission(t *testing.T, user string, v slackemu.View, metadata string, values map[string]map[string]any) []byte {
	t.Helper()
	var view map[string]any
	if err := json.Unmarshal(v.Raw, &view); err != nil {
		t.Fatal(err)
	}
	view["id"], view["private_metadata"] = v.ID, metadata
	view["state"] = map[string]any{"values": values}
	p, err := json.Marshal(map[string]any{
		"type": "view_submission", "user": map[string]any{"id": user, "name": user, "team_id": "T0001"},
		"api_app_id": slackemu.AppID, "trigger_id": "1.forged", "view": view,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Issue 19, item 6: a reflection form whose metadata names another
// person's nudge marks nothing of theirs.
func TestForgedFormMetadataChangesNobodyElsesNudge(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana, ben)
	h.start()
	h.nudge(ben.ID, "start")
	h.at("America/New_York", "09:00")
	h.tick()
	victim := deliveryIDs(t, h.waitDMs(ben.ID, 1))[0]
	if _, err := h.emu.SlashCommand(h.ctx(), ana.ID, "", "/reflect", ""); err != nil {
		t.Fatal(err)
	}
	form := h.waitModal(ana.ID)
	const words = "Forged onto Ben's nudge"
	payload := forgedSubmission(t, ana.ID, form, `{"d":"`+victim+`"}`, map[string]map[string]any{
		"reflection": {"text": map[string]any{"type": "plain_text_input", "value": words}},
	})
	if _, err := h.emu.Send(h.ctx(), slackemu.Envelope{Type: "interactive", Payload: payload, AcceptsResponsePayload: true}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("Ana answered", func() bool { return len(h.emu.Ephemerals(ana.ID)) > 0 })
	contains(t, h.nudge(ben.ID, "status"), "Streak: 0 nudges")
	contains(t, ephemeralText(h.emu, ana.ID), "belongs to someone else", words)
}

// Issue 19, item 7: a named share is credited with a real mention, which
// no display name can fake.
func TestNamedShareCreditedByMention(t *testing.T) {
	mal := slackemu.User{ID: "UMAL00001", Name: "boss", RealName: "Mal", TZ: "Europe/Berlin"}
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(mal, ben, chloe)
	h.emu.AddChannel("CTEAM0001", "team", mal.ID, ben.ID, chloe.ID)
	h.start()
	for _, id := range []string{mal.ID, ben.ID, chloe.ID} {
		h.nudge(id, "start")
	}
	if _, err := h.emu.SlashCommand(h.ctx(), mal.ID, "", "/reflect", ""); err != nil {
		t.Fatal(err)
	}
	m := h.waitModal(mal.ID)
	if _, err := h.emu.SubmitView(h.ctx(), mal.ID, m.ID, map[string]map[string]string{
		"reflection": {"text": "We cancel Friday's release"}, "share": {"choice": "named"}, "share_channel": {"channel": "CTEAM0001"},
	}); err != nil {
		t.Fatal(err)
	}
	h.lastEphemeralWith(mal.ID, "Saved as #1")
	h.clock.Add(time.Hour)
	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	d := channelText(h.emu, "CTEAM0001")
	if strings.Contains(d, "— boss") || !strings.Contains(d, "<@UMAL00001>") {
		t.Errorf("a named share is credited by a display name its author chose:\n%s", d)
	}
}

// Issue 19, item 8: /nudge digest #name passes the once-a-minute gate
// before it asks Slack anything, and names come from a cache.
func TestDigestByNameGateFirst(t *testing.T) {
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(ana)
	h.emu.AddChannel("CTEAM0001", "team", ana.ID)
	h.emu.AddChannel("CBROKEN01", "other", ana.ID)
	h.start()
	before := len(h.emu.Calls("conversations.info"))
	for range 10 {
		h.nudge(ana.ID, "digest #team")
	}
	if n := len(h.emu.Calls("conversations.info")) - before; n > 3 {
		t.Errorf("ten looks by name made %d conversations.info calls, want at most 3", n)
	}
	contains(t, h.lastEphemeral(ana.ID), "a moment ago")
}

// Issue 19, item 10: /nudge admin user shows what docs/security.md
// promises admins (subscription state), not a person's streak, counts,
// work contexts or reflections.
func TestAdminUserShowsSubscriptionOnly(t *testing.T) {
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(ana, boss)
	h.start()
	h.nudge(ana.ID, "start")
	h.nudge(ana.ID, "context standup one-to-ones")
	h.say(ana.ID, "/reflect", "A private thought")
	got := h.nudge(boss.ID, "admin user <@"+ana.ID+">")
	contains(t, got, "Subscribed", "Europe/Berlin")
	for _, leak := range []string{"Streak", "Reflections", "stand-up", "standup", "one-to-one", "Last 4 weeks", "Focus"} {
		if strings.Contains(got, leak) {
			t.Errorf("an admin sees %q of one person:\n%s", leak, got)
		}
	}
}

// Issue 19, item 11: a compaction never touches a file it did not make,
// and leaves nothing behind.
func TestCompactTouchesOnlyItsOwnFile(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	h.nudge(ana.ID, "start")
	stale := h.cfg.Storage.Path + ".compact"
	writeFile(t, stale, "the operator's own notes")
	if err := h.w.DB.Compact(); err != nil {
		t.Fatal(err)
	}
	if got := string(readIfAny(t, stale)); got != "the operator's own notes" {
		t.Errorf("compaction overwrote a file it was not asked to: %q", got)
	}
	entries, err := os.ReadDir(filepath.Dir(h.cfg.Storage.Path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".compact") && e.Name() != filepath.Base(stale) {
			t.Errorf("compaction left %s behind", e.Name())
		}
	}
}

// Issue 19, item 11: /reflect export puts no plaintext reflection on
// disk, even while the upload waits.
func TestExportSpoolsNoPlaintext(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads open files through /proc")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	h.say(ana.ID, "/reflect", "Secret plans "+exportMarker)
	h.emu.SetLatency("files.getUploadURLExternal", 2*time.Second)
	if _, err := h.emu.SlashCommand(h.ctx(), ana.ID, "", "/reflect", "export"); err != nil {
		t.Fatal(err)
	}
	seen, spooled := false, 0
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !seen {
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, fd := range fds {
			p := filepath.Join("/proc/self/fd", fd.Name())
			target, err := os.Readlink(p)
			if err != nil || !strings.HasPrefix(target, tmp) {
				continue
			}
			spooled++
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(exportMarker)) {
				seen = true
			}
		}
		if len(h.emu.Files(ana.ID)) >= 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if seen {
		t.Error("a reflection lies in plaintext on disk while the export uploads")
	}
	h.waitFor("the export", func() bool { return len(h.emu.Files(ana.ID)) >= 2 })
	var all strings.Builder
	for _, f := range h.emu.Files(ana.ID) {
		all.Write(f.Content)
	}
	if !strings.Contains(all.String(), exportMarker) {
		t.Error("the export lost the reflection")
	}
	if spooled == 0 {
		t.Log("no spool file was seen open under TMPDIR while the upload waited")
	}
}
