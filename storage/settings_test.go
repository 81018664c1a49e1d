package storage_test

import (
	"testing"
	"time"
)

// Ensure the company-wide pause is stored, survives a reopen, and lifts.
func TestPausedAll(t *testing.T) {
	db := MustOpen(t)
	if until, err := db.PausedAll(); err != nil || !until.IsZero() {
		t.Fatalf("PausedAll=%v,%v, want zero", until, err)
	}
	want := time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)
	if err := db.SetPausedAll(want); err != nil {
		t.Fatal(err)
	}
	if got, err := db.PausedAll(); err != nil || !got.Equal(want) {
		t.Fatalf("PausedAll=%v, %v; want %v", got, err, want)
	}
	if err := db.SetPausedAll(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, err := db.PausedAll(); err != nil || !got.IsZero() {
		t.Fatalf("PausedAll=%v, %v after lifting; want zero", got, err)
	}
}
