package app_test

import (
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
)

// Ensure a company-wide pause "until resumed" is recognised wherever it
// is read back, and a dated one is not.
func TestPausedForever(t *testing.T) {
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	newYork, _ := time.LoadLocation("America/New_York")
	tests := []struct {
		until time.Time
		want  bool
	}{
		{app.Forever, true},
		{app.Forever.In(tokyo), true},
		{app.Forever.In(newYork), true}, // 31 Dec 9998 there
		{app.Forever.Add(-time.Hour), false},
		{time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC), false},
		{time.Time{}, false},
	}
	for _, tt := range tests {
		if got := app.PausedForever(tt.until); got != tt.want {
			t.Errorf("PausedForever(%v) = %v, want %v", tt.until, got, tt.want)
		}
	}
}
