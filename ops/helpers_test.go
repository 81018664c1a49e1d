package ops

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

var opsBase = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func openDB(t *testing.T, path string) *storage.DB {
	t.Helper()
	// Tests also close it early to free the file; cleanup then only
	// closes it again, which is fine.
	return storagetest.OpenAt(t, path, storage.Options{})
}

// seed stores n subscribers named with prefix, each with one pending
// delivery, and returns their ids.
func seed(t *testing.T, db *storage.DB, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s%06d", prefix, i)
		_, err := db.UpdateSubscriber(id, func(s *nudges.Subscriber) error {
			s.Subscribed = true
			s.NextDue = opsBase
			s.ProfileTZ = "Europe/Berlin"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		d := nudges.Delivery{
			ID: storage.DeliveryID(id, opsBase, false), UserID: id, NudgeID: "lead-001",
			Theme: nudges.ThemeLeading, Role: nudges.RoleLead, Slot: opsBase,
			State: nudges.StatePending, Created: opsBase,
		}
		if _, err := db.StartDelivery(d, opsBase, func(s *nudges.Subscriber) error {
			s.NextDue = opsBase.Add(24 * time.Hour)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// closeOK closes c and fails the test if that fails: a database that
// cannot be closed cleanly may not have written what the test checks.
func closeOK(t testing.TB, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("close %T: %v", c, err)
	}
}
