package simclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/internal/simclock"
)

// Ensure the clock reads what it was set to, moves by Add, goes back on
// Set, and is safe to move and read at once (run with -race).
func TestClock(t *testing.T) {
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	c := simclock.New(start)
	steps := []struct {
		do   func()
		want time.Time
	}{
		{func() {}, start},
		{func() { c.Add(90 * time.Minute) }, start.Add(90 * time.Minute)},
		{func() { c.Set(start.Add(-time.Hour)) }, start.Add(-time.Hour)},
		{func() { c.Add(0) }, start.Add(-time.Hour)},
	}
	for i, s := range steps {
		s.do()
		if got := c.Now(); !got.Equal(s.want) {
			t.Errorf("step %d: Now()=%v, want %v", i, got, s.want)
		}
	}

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				c.Add(time.Second)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(-time.Hour+400*time.Second); !got.Equal(want) {
		t.Errorf("after 400 concurrent one-second steps Now()=%v, want %v", got, want)
	}
}
