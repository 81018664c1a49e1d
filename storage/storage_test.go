package storage_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// base is a Monday morning; tests build every time from it.
var base = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// MustOpen opens a fresh database in a temporary directory. At cleanup it
// runs bbolt's consistency check, then closes the database.
func MustOpen(tb testing.TB) *storage.DB {
	tb.Helper()
	return MustOpenAt(tb, filepath.Join(tb.TempDir(), "nudgebot.db"), storage.Options{})
}

// MustOpenAt opens path with storagetest.OpenAt, with the clock at base
// unless opts has one. A test may close the database itself, to reopen
// it; cleanup then skips the check.
func MustOpenAt(tb testing.TB, path string, opts storage.Options) *storage.DB {
	tb.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return base }
	}
	return storagetest.OpenAt(tb, path, opts)
}

// reopen closes db and opens its file again, as a restart would.
func reopen(tb testing.TB, db *storage.DB) *storage.DB {
	tb.Helper()
	if err := db.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
	return MustOpenAt(tb, db.Path(), storage.Options{})
}

// subscribe stores a subscribed person due at next (zero: not scheduled).
func subscribe(tb testing.TB, db *storage.DB, userID string, next time.Time) nudges.Subscriber {
	tb.Helper()
	s, err := db.UpdateSubscriber(userID, func(s *nudges.Subscriber) error {
		s.Subscribed = true
		s.SubscribedAt = base.Add(-24 * time.Hour)
		s.NextDue = next
		return nil
	})
	if err != nil {
		tb.Fatalf("UpdateSubscriber(%s): %v", userID, err)
	}
	return s
}

// pending is a scheduled, not yet sent delivery of userID's slot.
func pending(userID string, slot time.Time) nudges.Delivery {
	return nudges.Delivery{
		ID:      storage.DeliveryID(userID, slot, false),
		UserID:  userID,
		NudgeID: "lead-001",
		Theme:   nudges.ThemeLeading,
		Role:    nudges.RoleLead,
		Slot:    slot,
		State:   nudges.StatePending,
		Created: slot,
	}
}

// setNextDue is an advance func that moves NextDue to t.
func setNextDue(t time.Time) func(*nudges.Subscriber) error {
	return func(s *nudges.Subscriber) error {
		s.NextDue = t
		return nil
	}
}

func mustDue(tb testing.TB, db *storage.DB, now time.Time) []string {
	tb.Helper()
	ids, err := db.Due(now, 0)
	if err != nil {
		tb.Fatalf("Due(%v): %v", now, err)
	}
	return ids
}

func mustPendingIDs(tb testing.TB, db *storage.DB) []string {
	tb.Helper()
	ds, err := db.Pending()
	if err != nil {
		tb.Fatalf("Pending: %v", err)
	}
	ids := []string{}
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

// closeOK closes c and fails the test if that fails: a database that does
// not close cleanly may not have written what the test checks next.
func closeOK(tb testing.TB, c io.Closer) {
	tb.Helper()
	if err := c.Close(); err != nil {
		tb.Errorf("close %T: %v", c, err)
	}
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func equalKV(a, b [2][]byte) bool { return bytes.Equal(a[0], b[0]) && bytes.Equal(a[1], b[1]) }
