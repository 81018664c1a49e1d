package main

import (
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/slackemu"
)

// Ensure the bot's answers in a subscribed person's DM (a /reflect form's
// confirmation, an answer to typing there, an export) go to the DM kept
// since they subscribed and cost no conversations.open; that someone never
// subscribed is still answered, through conversations.open; and that when
// Slack says the kept DM is gone the bot opens it again, once, and keeps
// it.
func TestAnswersUseTheKeptDM(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana, ben)
	h.start()
	h.nudge(ana.ID, "start")
	opens := func() int { return len(h.emu.Calls("conversations.open")) }
	if opens() != 1 {
		t.Fatalf("conversations.open at subscribe: %d calls, want 1", opens())
	}

	// The form's confirmation is a message in the DM (a form has no
	// response_url).
	if _, err := h.emu.SlashCommand(h.ctx(), ana.ID, "", "/reflect", ""); err != nil {
		t.Fatal(err)
	}
	modal := h.waitModal(ana.ID)
	if _, err := h.emu.SubmitView(h.ctx(), ana.ID, modal.ID, map[string]map[string]string{
		"reflection": {"text": "Asked before answering. " + marker},
	}); err != nil {
		t.Fatal(err)
	}
	h.lastEphemeralWith(ana.ID, "Saved")
	h.personSays(ana.ID, "hello?")
	h.lastEphemeralWith(ana.ID, "Typing here saves")
	contains(t, h.say(ana.ID, "/reflect", "export"), "Sent to your DMs")
	if n := len(h.emu.Files(ana.ID)); n != 2 {
		t.Errorf("export: %d files in the DM, want 2", n)
	}
	if n := opens() - 1; n != 0 {
		t.Errorf("answers to a subscribed person cost %d conversations.open, want 0: the DM is kept", n)
	}

	// Ben never subscribed: no DM kept, so the bot asks Slack for it.
	h.personSays(ben.ID, "hello?")
	h.lastEphemeralWith(ben.ID, "Typing here saves")
	if n := opens() - 1; n != 1 {
		t.Errorf("an answer to someone never subscribed: %d conversations.open, want 1", n)
	}

	// Slack says Ana's kept DM is gone: opened again once, and kept.
	before, shown := opens(), len(h.emu.Ephemerals(ana.ID))
	h.emu.FailNext("chat.postEphemeral", 1, slackemu.FaultSlackError("channel_not_found"))
	h.personSays(ana.ID, "still there?")
	h.waitFor("the answer after reopening", func() bool { return len(h.emu.Ephemerals(ana.ID)) > shown })
	h.personSays(ana.ID, "and now?")
	h.waitFor("the next answer", func() bool { return len(h.emu.Ephemerals(ana.ID)) > shown+1 })
	if n := opens() - before; n != 1 {
		t.Errorf("a kept DM gone: %d conversations.open for two answers, want 1 (opened again once, then kept)", n)
	}
	// And so for an export, which is uploaded again from the start.
	before = opens()
	h.emu.FailNext("files.completeUploadExternal", 1, slackemu.FaultSlackError("channel_not_found"))
	contains(t, h.say(ana.ID, "/reflect", "export"), "Sent to your DMs")
	if n := len(h.emu.Files(ana.ID)); n != 4 {
		t.Errorf("export after the kept DM went: %d files in the DM, want 4 (two exports)", n)
	}
	for _, f := range h.emu.Files(ana.ID)[2:] {
		if !strings.Contains(string(f.Content), marker) {
			t.Errorf("export after reopening: %s lacks the reflection (%d bytes)", f.Name, len(f.Content))
		}
	}
	if n := opens() - before; n != 1 {
		t.Errorf("export, kept DM gone: %d conversations.open, want 1", n)
	}
	for _, m := range h.emu.Ephemerals(ana.ID)[shown : shown+2] {
		if !strings.Contains(m.VisibleText(), "Typing here saves") {
			t.Errorf("unexpected answer %q", m.VisibleText())
		}
	}
}

// personSays types text in the person's DM with the bot.
func (h *harness) personSays(user, text string) {
	h.t.Helper()
	if _, _, err := h.emu.PersonSays(h.ctx(), user, "", text); err != nil {
		h.t.Fatalf("%s says %q: %v", user, text, err)
	}
}
