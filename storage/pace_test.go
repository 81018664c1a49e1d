package storage_test

import "testing"

// Ensure the learned Slack pace is 0 until saved, then survives a reopen,
// and a later figure replaces it.
func TestLearnedPace(t *testing.T) {
	db := MustOpen(t)
	if v, err := db.LearnedPace(); err != nil || v != 0 {
		t.Fatalf("LearnedPace=%v,%v before any, want 0", v, err)
	}
	for _, want := range []float64{287.5, 932} {
		if err := db.SetLearnedPace(want); err != nil {
			t.Fatal(err)
		}
		db = reopen(t, db)
		if got, err := db.LearnedPace(); err != nil || got != want {
			t.Fatalf("LearnedPace=%v,%v after a reopen, want %v", got, err, want)
		}
	}
}
