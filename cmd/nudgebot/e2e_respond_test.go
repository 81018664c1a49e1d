package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/slackemu"
)

// responseURLFields are the fields Slack documents for a message sent to
// a response_url (/work/shared/reference/slack-protocol.md, "response_url").
var responseURLFields = []string{"text", "blocks", "response_type", "replace_original", "delete_original", "thread_ts", "mrkdwn", "attachments"}

// Ensure what the bot sends to a response_url holds only documented
// fields, none of them null or empty: a follow-up with blocks (/reflect
// list), a plain reply to a click (someone else's nudge) and a
// replace_original (cancelling /nudge forget).
func TestResponseURLBodies(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana, ben)
	h.start()
	h.nudge(ana.ID, "start")
	h.nudge(ben.ID, "start")
	h.say(ana.ID, "/reflect", "A thought to list")
	contains(t, h.say(ana.ID, "/reflect", "list"), "A thought to list")

	h.at("Europe/Berlin", "09:00")
	h.tick()
	msg := h.waitDMs(ana.ID, 1)[0]
	before := len(h.emu.Ephemerals(ben.ID))
	h.click(ben.ID, msg, "nudge_done", "")
	h.waitFor("ben told the nudge is not his", func() bool { return len(h.emu.Ephemerals(ben.ID)) > before })

	if _, err := h.emu.SlashCommand(h.ctx(), ana.ID, "", "/nudge", "forget"); err != nil {
		t.Fatal(err)
	}
	var prompt slackemu.Message
	h.waitFor("the forget prompt", func() bool {
		for _, m := range h.emu.Ephemerals(ana.ID) {
			if _, ok := m.Button("forget_cancel"); ok {
				prompt = m
				return true
			}
		}
		return false
	})
	h.click(ana.ID, prompt, "forget_cancel", "")
	h.lastEphemeralWith(ana.ID, "nothing was deleted")

	// The emulator shows a reply before it has recorded the call that
	// carried it: wait for the record of the last one.
	h.waitFor("the replace_original call recorded", func() bool {
		for _, c := range h.emu.Calls("response_url") {
			if c.JSON != nil && c.JSON["replace_original"] == true {
				return true
			}
		}
		return false
	})
	calls := h.emu.Calls("response_url")
	var withBlocks, replacing, plain int
	for i, c := range calls {
		if c.JSON == nil {
			t.Errorf("call %d: not a JSON body: %v", i, c.Form)
			continue
		}
		for k, v := range c.JSON {
			if !slices.Contains(responseURLFields, k) {
				t.Errorf("call %d: field %q is not one Slack documents for response_url", i, k)
			}
			if v == nil {
				t.Errorf("call %d: field %q is null", i, k)
			}
		}
		if c.JSON["response_type"] != "ephemeral" {
			t.Errorf("call %d: response_type %v, want ephemeral", i, c.JSON["response_type"])
		}
		switch blocks, ok := c.JSON["blocks"].([]any); {
		case ok && len(blocks) == 0:
			t.Errorf("call %d: an empty blocks array", i)
		case ok:
			withBlocks++
		case c.JSON["replace_original"] == true:
			replacing++
		case strings.Contains(c.Param("text"), "belongs to someone else"):
			plain++
		}
	}
	if withBlocks == 0 || replacing == 0 || plain == 0 {
		t.Errorf("%d response_url calls: %d with blocks, %d replacing, %d plain replies; want each kind at least once",
			len(calls), withBlocks, replacing, plain)
	}
}
