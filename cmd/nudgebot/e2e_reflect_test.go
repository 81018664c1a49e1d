package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

// marker is a word only reflections contain: it must never reach a log,
// another person, or the database file in the clear.
const marker = "zanzibar-lighthouse"

func init() { privateMarkers = append(privateMarkers, marker) }

// Ensure /reflect saves inline, answers with the count, rejects empty and
// over-long text with nothing saved, and survives a restart.
func TestReflectInline(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	contains(t, h.say(ana.ID, "/reflect", "Shared the roadmap at standup; "+marker), "Saved privately; 1 reflection so far")
	contains(t, h.say(ana.ID, "/reflect", strings.Repeat("x", 3001)), "3001 characters", "at most 3000", "Nothing was saved")
	contains(t, h.say(ana.ID, "/reflect", "help"), "/reflect list", "/reflect export", "/nudge forget")
	contains(t, h.say(ana.ID, "/reflect", "list of wins: \x00hired Sam"), "Saved privately; 2 reflections")
	h.restart()
	got := h.say(ana.ID, "/reflect", "list")
	contains(t, got, "#2", "#1", "list of wins: hired Sam", marker, "[Draft a team update]")
	if strings.Index(got, "#2") > strings.Index(got, "#1") {
		t.Errorf("list not newest first:\n%s", got)
	}
	contains(t, h.say(ana.ID, "/reflect", "list 1"), "#2")
	contains(t, h.say(ana.ID, "/reflect", "list many"), "Usage: `/reflect list [N]`")
	contains(t, h.say(ana.ID, "/reflect", "search ROADMAP"), "1 reflection mentioning", marker)
	contains(t, h.say(ana.ID, "/reflect", "search nothing-like-it"), "None of your reflections mention")
	contains(t, h.say(ana.ID, "/reflect", "delete 99"), "You have no reflection #99")
	contains(t, h.say(ana.ID, "/reflect", "delete 2"), "Deleted reflection #2")
	if got := h.say(ana.ID, "/reflect", "list"); strings.Contains(got, "hired Sam") {
		t.Errorf("deleted reflection still listed:\n%s", got)
	}
}

// Ensure only the author ever sees a reflection, and mentions typed into
// one can never ping anyone.
func TestReflectionPrivacyAndEscaping(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana, ben)
	h.start()
	h.say(ana.ID, "/reflect", "<!channel> <!here> <@UBEN00001> & <#C123> "+marker)
	got := h.say(ana.ID, "/reflect", "list")
	contains(t, got, "&lt;!channel&gt; &lt;!here&gt; &lt;@UBEN00001&gt; &amp; &lt;#C123&gt;")
	if strings.Contains(got, "<!channel>") || strings.Contains(got, "<@UBEN00001>") {
		t.Errorf("a mention survived unescaped:\n%s", got)
	}
	if got := h.say(ben.ID, "/reflect", "list"); strings.Contains(got, marker) {
		t.Fatalf("Ben sees Ana's reflection:\n%s", got)
	}
	if got := h.say(ben.ID, "/reflect", "search "+marker); strings.Contains(got, "mentioning") {
		t.Fatalf("Ben finds Ana's reflection:\n%s", got)
	}
	for _, m := range h.emu.DM(ben.ID) {
		if strings.Contains(m.VisibleText(), marker) {
			t.Fatal("Ana's reflection reached Ben's DM")
		}
	}
}

// Ensure the form validates in place (errors on the field, nothing lost),
// saves a reflection linked to the day's nudge with a commitment and a
// sharing choice, and that the commitment is quoted back a few working
// days later with Done and Not yet.
func TestReflectModalAndCommitment(t *testing.T) {
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(ana, ben, chloe)
	// Six people in the team, three of them subscribed: enough to share
	// anonymously (threshold 3); two in a small one.
	h.emu.AddChannel("CTEAM0001", "team", ana.ID, ben.ID, chloe.ID, "UX0000003", "UX0000004", "UX0000005")
	h.emu.AddChannel("CBROKEN01", "pair", ana.ID, ben.ID)
	h.start()
	h.nudge(ana.ID, "start")
	h.nudge(ben.ID, "start")
	h.nudge(chloe.ID, "start")
	h.at("Europe/Berlin", "09:00")
	h.tick()
	h.waitDMs(ana.ID, 1)

	if _, err := h.emu.SlashCommand(h.ctx(), ana.ID, "", "/reflect", ""); err != nil {
		t.Fatal(err)
	}
	modal := h.waitModal(ana.ID)
	contains(t, modal.VisibleText(), "Today's nudge:", "One thing I will do next", "Who may see it", "Which team's digest")
	contains(t, string(modal.Raw), "Keep it private", "#team: 6 people will see it", "#pair: 2 people will see it (too few to share anonymously)")
	if _, err := h.emu.SubmitView(h.ctx(), ana.ID, modal.ID, map[string]map[string]string{
		"reflection": {"text": strings.Repeat("y", 3001)},
		"share":      {"choice": "private"},
	}); err != nil {
		t.Fatal(err)
	}
	still := h.waitModal(ana.ID)
	if still.ID != modal.ID || still.Closed || still.Errors["reflection"] == "" {
		t.Fatalf("over-long text: want the form still open with an error on the field, got %+v", still.Errors)
	}
	// Anonymous among two is no anonymity: refused in the form.
	if _, err := h.emu.SubmitView(h.ctx(), ana.ID, modal.ID, map[string]map[string]string{
		"reflection": {"text": "Asked the team what is unclear about our direction. " + marker},
		"share":      {"choice": "anonymous"}, "share_channel": {"channel": "CBROKEN01"},
	}); err != nil {
		t.Fatal(err)
	}
	if still := h.waitModal(ana.ID); !strings.Contains(still.Errors["share"], "too small to share anonymously") {
		t.Fatalf("anonymous share among two: want an error on the choice, got %+v", still.Errors)
	}
	if _, err := h.emu.SubmitView(h.ctx(), ana.ID, modal.ID, map[string]map[string]string{
		"reflection": {"text": "Asked the team what is unclear about our direction. " + marker},
		"commitment": {"text": "hand the roadmap review to Priya"},
		"share":      {"choice": "anonymous"}, "share_channel": {"channel": "CTEAM0001"},
	}); err != nil {
		t.Fatal(err)
	}
	saved := h.lastEphemeralWith(ana.ID, "Saved as #1")
	contains(t, saved, "Saved as #1, to be shared without your name in the digest of", "CTEAM0001", "nowhere else", "few working days")
	if strings.Contains(saved, "privately") {
		t.Errorf("a shared reflection is confirmed as saved privately: %q", saved)
	}
	contains(t, h.say(ana.ID, "/reflect", "list"), "on: _", "next step: hand the roadmap review to Priya", "shared in the digest of", "anonymously")

	// Done through reflecting: the nudge counts as acted on.
	contains(t, h.nudge(ana.ID, "status"), "Streak: 1")

	// Thursday: three working days on, the nudge quotes the commitment.
	h.clock.Add(3 * 24 * time.Hour)
	h.tick()
	msgs := h.waitDMs(ana.ID, 2)
	thursday := msgs[len(msgs)-1]
	contains(t, thursday.VisibleText(), "On Monday you said you would: “hand the roadmap review to Priya”. Did you?")
	kept, ok := thursday.Button("commit_kept")
	if !ok {
		t.Fatal("no Done button for the commitment")
	}
	h.click(ana.ID, thursday, "commit_kept", kept.Value)
	h.waitFor("the follow-up updated", func() bool { return h.emu.DM(ana.ID)[len(msgs)-1].Edits > 0 })
	contains(t, h.emu.DM(ana.ID)[len(msgs)-1].VisibleText(), "You did what you said you would")
	// Quoted once only.
	h.clock.Add(24 * time.Hour)
	h.tick()
	last := h.waitDMs(ana.ID, 3)[2]
	if strings.Contains(last.VisibleText(), "you said you would") {
		t.Error("commitment quoted a second time")
	}
}

// lastEphemeralWith waits for an ephemeral message containing s.
func (h *harness) lastEphemeralWith(user, s string) string {
	h.t.Helper()
	var got string
	err := h.emu.WaitFor(h.ctx(), func() bool {
		for _, m := range h.emu.Ephemerals(user) {
			if strings.Contains(m.VisibleText(), s) {
				got = m.VisibleText()
			}
		}
		return got != ""
	})
	if err != nil {
		h.t.Fatalf("no ephemeral with %q for %s", s, user)
	}
	return got
}

// Ensure "Draft a team update" opens a form pre-filled with the
// reflection, and posting puts the author's edited, escaped text in the
// chosen channel, attributed to them; nothing is posted without it.
func TestDraftTeamUpdate(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.emu.AddChannel("CTEAM0001", "team", ana.ID)
	h.start()
	h.say(ana.ID, "/reflect", "We chose to focus on onboarding this quarter.")
	if _, err := h.emu.SlashCommand(h.ctx(), ana.ID, "", "/reflect", "list"); err != nil {
		t.Fatal(err)
	}
	var list slackemu.Message
	h.waitFor("a list with a draft button", func() bool {
		for _, m := range h.emu.Ephemerals(ana.ID) {
			if _, ok := m.Button("reflect_draft"); ok {
				list = m
				return true
			}
		}
		return false
	})
	btn, _ := list.Button("reflect_draft")
	if _, err := h.emu.ClickButton(h.ctx(), ana.ID, list, "reflect_draft", btn.Value); err != nil {
		t.Fatal(err)
	}
	modal := h.waitModal(ana.ID)
	if !bytes.Contains(modal.Raw, []byte("We chose to focus on onboarding this quarter.")) {
		t.Fatalf("draft not pre-filled: %s", modal.Raw)
	}
	if len(h.emu.Messages("CTEAM0001")) != 0 {
		t.Fatal("something was posted before the author pressed Post")
	}
	if _, err := h.emu.SubmitView(h.ctx(), ana.ID, modal.ID, map[string]map[string]string{
		"update":  {"text": "Onboarding first this quarter <!channel> & why: it is where we lose people."},
		"channel": {"channel": "CTEAM0001"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.emu.WaitFor(h.ctx(), func() bool { return len(h.emu.Messages("CTEAM0001")) == 1 }); err != nil {
		t.Fatal("update not posted")
	}
	posted := h.emu.Messages("CTEAM0001")[0]
	// Credited with a real mention, which no display name can fake.
	contains(t, posted.VisibleText(), "Team update from <@"+ana.ID+">", "&lt;!channel&gt; &amp; why")
	if posted.LinkNames != "" || posted.Parse != "" {
		t.Errorf("posted with link_names=%q parse=%q", posted.LinkNames, posted.Parse)
	}
}

// Ensure /reflect export sends the person's reflections and history as a
// JSON file and a Markdown file in their DM.
func TestReflectExport(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	h.say(ana.ID, "/reflect", "First note "+marker)
	contains(t, h.say(ana.ID, "/reflect", "export"), "Sent to your DMs", "1 reflection and 0 nudges,")
	files := h.emu.Files(ana.ID)
	if len(files) != 2 {
		t.Fatalf("files = %d, want 2", len(files))
	}
	var ex struct {
		Reflections []struct{ Text string }
	}
	var sawMD bool
	for _, f := range files {
		switch {
		case strings.HasSuffix(f.Name, ".json"):
			if err := json.Unmarshal(f.Content, &ex); err != nil {
				t.Fatalf("export JSON: %v", err)
			}
		case strings.HasSuffix(f.Name, ".md"):
			sawMD = bytes.Contains(f.Content, []byte(marker))
		}
	}
	if len(ex.Reflections) != 1 || !strings.Contains(ex.Reflections[0].Text, marker) {
		t.Errorf("export JSON reflections = %+v", ex.Reflections)
	}
	if !sawMD {
		t.Error("Markdown export missing the reflection")
	}
}

// Ensure /nudge forget asks first, then leaves nothing of the person in
// the database file: not their id, not their words, sealed or not.
func TestForget(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana, ben)
	h.start()
	h.nudge(ana.ID, "start")
	h.nudge(ben.ID, "start")
	h.say(ana.ID, "/reflect", "Something only I should know "+marker)
	h.at("Europe/Berlin", "09:00")
	h.tick()
	h.waitDMs(ana.ID, 1)

	if _, err := h.emu.SlashCommand(h.ctx(), ana.ID, "", "/nudge", "forget"); err != nil {
		t.Fatal(err)
	}
	var prompt slackemu.Message
	h.waitFor("the forget prompt", func() bool {
		for _, m := range h.emu.Ephemerals(ana.ID) {
			if _, ok := m.Button("forget_confirm"); ok {
				prompt = m
				return true
			}
		}
		return false
	})
	yes, _ := prompt.Button("forget_confirm")
	if _, err := h.emu.ClickButton(h.ctx(), ana.ID, prompt, "forget_confirm", yes.Value); err != nil {
		t.Fatal(err)
	}
	h.lastEphemeralWith(ana.ID, "everything nudgebot kept about you is deleted")
	contains(t, h.nudge(ana.ID, "status"), "You're not subscribed")
	contains(t, h.say(ana.ID, "/reflect", "list"), "no reflections yet")
	h.stop() // waits for the background compaction

	raw, err := os.ReadFile(h.cfg.Storage.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, needle := range []string{ana.ID, marker, "Something only I should know"} {
		if bytes.Contains(raw, []byte(needle)) {
			t.Errorf("database file still contains %q after forget", needle)
		}
	}
	if !bytes.Contains(raw, []byte(ben.ID)) {
		t.Error("Ben's data went too")
	}
}

// Ensure the database file alone reveals no reflection text.
func TestDatabaseFileHoldsNoReflectionText(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	for range 5 {
		h.say(ana.ID, "/reflect", "Private words about my week "+marker)
	}
	h.stop()
	raw, err := os.ReadFile(h.cfg.Storage.Path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(marker)) || bytes.Contains(raw, []byte("Private words")) {
		t.Fatal("reflection text readable in the database file")
	}
}
