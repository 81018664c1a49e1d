package main

import (
	"strings"
	"testing"
	"time"
)

// Ensure a reply to a nudge in the DM becomes a private reflection linked
// to it (and counts as acting on it), confirmed quietly in the thread;
// editing the message changes the reflection and deleting it deletes it;
// a message near no nudge gets a short answer on what typing does.
func TestReplyInTheDMIsAReflection(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	h.nudge(ana.ID, "start")
	h.at("Europe/Berlin", "09:00")
	h.tick()
	nudge := h.waitDMs(ana.ID, 1)[0]

	ts, _, err := h.emu.PersonSays(h.ctx(), ana.ID, nudge.TS, "Asked two questions before answering "+marker)
	if err != nil {
		t.Fatal(err)
	}
	h.waitFor("a confirmation in the thread", func() bool {
		for _, m := range h.emu.DM(ana.ID) {
			if m.ThreadTS == nudge.TS && strings.Contains(m.Text, "Saved as private reflection #1") {
				return true
			}
		}
		return false
	})
	contains(t, h.say(ana.ID, "/reflect", "list"), "Asked two questions before answering", "on: _")
	contains(t, h.nudge(ana.ID, "status"), "Streak: 1")

	if _, err := h.emu.PersonEdits(h.ctx(), ana.ID, ts, "Asked three questions, in the end "+marker); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the edit reaches the reflection", func() bool {
		return strings.Contains(h.say(ana.ID, "/reflect", "list"), "Asked three questions")
	})
	if _, err := h.emu.PersonDeletes(h.ctx(), ana.ID, ts); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the delete reaches the reflection", func() bool {
		return strings.Contains(h.say(ana.ID, "/reflect", "list"), "no reflections yet")
	})

	// Two days on, no nudge near: typing gets an answer, and nothing is kept.
	h.clock.Add(48 * time.Hour)
	if _, _, err := h.emu.PersonSays(h.ctx(), ana.ID, "", "hello?"); err != nil {
		t.Fatal(err)
	}
	contains(t, h.lastEphemeralWith(ana.ID, "Typing here saves"), "/reflect your thoughts")
	contains(t, h.say(ana.ID, "/reflect", "list"), "no reflections yet")
}
