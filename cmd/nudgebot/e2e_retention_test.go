package main

import (
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// Ensure what /nudge status shows (streak and the 4-week balance) is the
// same before and after the hourly retention removes history, at the
// shortest retention the config allows, for someone whose streak reaches
// back past it.
func TestRetention_StatusUnchanged(t *testing.T) {
	h := newHarness(t, withConfig("digests: []\nadmins: []\nstorage:\n  retention: 61d\n"))
	h.addPeople(ana)
	h.start()
	contains(t, h.nudge(ana.ID, "start"), "You're subscribed")

	// 120 days of nudges at 09:00 Berlin, every one acted on.
	now := h.clock.Now()
	roles := []nudges.Role{nudges.RoleLead, nudges.RoleManage, nudges.RoleBoth}
	var ds []nudges.Delivery
	for i := 1; i <= 120; i++ {
		slot := now.Truncate(24*time.Hour).AddDate(0, 0, -i).Add(8 * time.Hour)
		ds = append(ds, nudges.Delivery{
			ID: storage.DeliveryID(ana.ID, slot, false), UserID: ana.ID, NudgeID: "lead-001",
			Theme: nudges.ThemeLeading, Role: roles[i%3], Slot: slot, State: nudges.StateSent,
			Created: slot, SentAt: slot, Outcome: nudges.OutcomeDone, ActedAt: slot.Add(time.Hour),
		})
	}
	if err := h.w.DB.ImportDeliveries(ds); err != nil {
		t.Fatal(err)
	}
	before := h.nudge(ana.ID, "status")
	contains(t, before, "Streak: ", "Last 4 weeks: ")

	// What the hourly housekeeping calls.
	removed, err := h.w.DB.ApplyRetention(h.clock.Now())
	if err != nil {
		t.Fatalf("ApplyRetention: %v", err)
	}
	if removed < 50 {
		t.Fatalf("removed %d records, want the ~59 deliveries older than 61 days", removed)
	}
	if after := h.nudge(ana.ID, "status"); after != before {
		t.Errorf("status changed after retention:\nbefore: %s\nafter:  %s", before, after)
	}
}
