package storage_test

import (
	"fmt"
	"testing"
	"time"
)

// Ensure an envelope is handled once, also after a restart.
func TestMarkSeen(t *testing.T) {
	db := MustOpen(t)
	steps := []struct {
		key       string
		wantFirst bool
	}{
		{"env-1", true},
		{"env-1", false},
		{"env-2", true},
	}
	for i, s := range steps {
		first, err := db.MarkSeen(s.key, base.Add(time.Duration(i)*time.Second))
		if err != nil || first != s.wantFirst {
			t.Errorf("MarkSeen(%s)=%v, %v; want %v, nil", s.key, first, err, s.wantFirst)
		}
	}
	db = reopen(t, db)
	for _, key := range []string{"env-1", "env-2"} {
		if first, err := db.MarkSeen(key, base.Add(time.Hour)); err != nil || first {
			t.Errorf("MarkSeen(%s) after reopen=%v, %v; want false, nil", key, first, err)
		}
	}
	if _, err := db.MarkSeen("", base); err == nil {
		t.Error("MarkSeen with an empty key succeeded")
	}
}

// Ensure pruning forgets exactly the envelopes seen before the cut-off.
func TestPruneSeen(t *testing.T) {
	db := MustOpen(t)
	for i := range 10 {
		if _, err := db.MarkSeen(fmt.Sprintf("env-%d", i), base.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		before time.Time
		want   int
	}{
		{base, 0}, // strictly before
		{base.Add(4*time.Minute + time.Second), 5},
		{base.Add(4*time.Minute + time.Second), 0},
		{base.Add(time.Hour), 5},
	}
	for _, tt := range tests {
		n, err := db.PruneSeen(tt.before)
		if err != nil || n != tt.want {
			t.Errorf("PruneSeen(%v)=%d, %v; want %d, nil", tt.before, n, err, tt.want)
		}
	}
	// Forgotten envelopes count as new again.
	if first, err := db.MarkSeen("env-0", base.Add(2*time.Hour)); err != nil || !first {
		t.Errorf("MarkSeen(env-0) after pruning=%v, %v; want true, nil", first, err)
	}
}
