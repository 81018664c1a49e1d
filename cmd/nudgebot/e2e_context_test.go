package main

import (
	"strings"
	"testing"
	"time"
)

// Ensure a person can say what their work has, once, and later change or
// read it; nudgebot remembers it, /nudge status shows it, and a malformed
// answer gets the usage line and changes nothing.
func TestNudgeContext(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	contains(t, h.nudge(ana.ID, "start"), "Optional, so every nudge fits", "/nudge context")
	contains(t, h.nudge(ana.ID, "context"), "not told yet", "one-to-ones")
	contains(t, h.nudge(ana.ID, "context standup, 1:1s and channel"), "Noted", "Next nudge")
	got := h.nudge(ana.ID, "status")
	contains(t, got, "Your work has:", "a standup or daily check-in")
	contains(t, h.nudge(ana.ID, "context <!channel> & sometimes"), "Usage: `/nudge context", "&lt;!channel&gt;")
	contains(t, h.nudge(ana.ID, "context"), "a standup or daily check-in")
	contains(t, h.nudge(ana.ID, "context none"), "none of the listed settings")
	if strings.Contains(h.nudge(ana.ID, "start"), "Optional, so every nudge fits") {
		t.Error("asked again after the person answered")
	}
}

// Ensure admins can put the strategy in their own words and strategy
// nudges quote it, while nobody else may change it.
func TestAdminStrategyLines(t *testing.T) {
	h := newHarness(t, withConfig("digests: []\nadmins: [UADMIN001]\nstrategy:\n  lines: [\"Win the mid-market by making onboarding effortless\"]\n"))
	h.addPeople(ana, boss)
	h.start()
	contains(t, h.nudge(ana.ID, "admin strategy add Grow"), "only for the nudgebot admins")
	contains(t, h.nudge(boss.ID, "admin strategy"), "1. Win the mid-market")
	contains(t, h.nudge(boss.ID, "admin strategy set 1 Keep <!here> customers & their trust"), "1. Keep &lt;!here&gt; customers &amp; their trust")
	contains(t, h.nudge(boss.ID, "admin strategy remove 7"), "strategy")
	contains(t, h.nudge(boss.ID, "admin strategy clear"), "No strategy lines")
	contains(t, h.nudge(boss.ID, "admin strategy add Keep customers by earning their trust"), "1. Keep customers")

	// Strategy nudges quote the line; ask for them until one comes.
	h.nudge(ana.ID, "start")
	h.nudge(ana.ID, "focus strategy")
	h.at("Europe/Berlin", "09:00")
	for range 14 {
		h.tick() // synchronous: what it sends is in the DM when it returns
		for _, m := range h.emu.DM(ana.ID) {
			if strings.Contains(m.VisibleText(), "Keep customers by earning their trust") {
				return
			}
		}
		h.clock.Add(24 * time.Hour)
	}
	t.Fatal("no strategy nudge quoted the admins' line in two weeks of strategy focus")
}
