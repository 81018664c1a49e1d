package main

import (
	"strings"
	"testing"
)

// Ensure one person flooding the bot with clicks cannot starve everyone
// else: past their own allowance they are asked to slow down and nothing
// runs for them, while another person's form still opens.
func TestClickFloodFromOnePerson(t *testing.T) {
	h := newHarness(t)
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
		return slowed >= clicks-5
	}); err != nil {
		t.Fatalf("%d of %d flood clicks were told to slow down, want at least %d", slowed, clicks, clicks-5)
	}
	opened := 0
	for _, c := range h.emu.Calls("views.open") {
		if c.Param("trigger_id") != "" && !strings.Contains(c.Param("view"), "Hear more") {
			opened++
		}
	}
	// Ana's burst of five, and Ben's one.
	if opened > 6 {
		t.Errorf("views.open called %d times, want at most 6: the flood was not held back", opened)
	}
}
