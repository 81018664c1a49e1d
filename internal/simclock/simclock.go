// Package simclock is nudgebot's one settable clock: time that moves only
// when told to. The demo steps it so a working day around the world
// passes in seconds; the end-to-end, storage and emulator tests set it
// to exercise schedules without sleeping. Its Now is what bot.Options,
// storage.Options and slackemu.WithClock take, so one Clock can drive
// the bot and the emulator together, as one real clock would.
package simclock

import (
	"sync"
	"time"
)

// Clock is safe for concurrent use; the zero Clock reads the zero time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock that reads start.
func New(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the time the clock was last set or moved to.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t, backwards too: tests use that for clock jumps.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
