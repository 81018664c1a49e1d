package bot

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// budget gives each person one allowance for every way they reach the
// bot: commands, clicks, forms, typed DMs and App Home opens. The Web
// API limiters are per method and shared, and work slots are few, so
// without it one person clicking Reflect a hundred times a minute would
// queue a hundred views.open calls ahead of everyone else's (whose
// three-second form triggers would expire), and one person typing a
// hundred DMs would hold the work slots everyone else's commands need.
//
// It is checked on the Socket Mode loop before a work slot is reserved
// and before the core is called, which is why it lives here, beside the
// slots it guards, and not in the core: the core only ever sees requests
// the bot has room for.
type budget struct {
	perMinute int
	burst     int

	mu     sync.Mutex
	people map[string]*allowance
	swept  time.Time
}

type allowance struct {
	lim    *rate.Limiter
	used   time.Time
	warned time.Time // when they were last told to slow down
}

func newBudget(perMinute, burst int) *budget {
	return &budget{perMinute: perMinute, burst: burst, people: map[string]*allowance{}}
}

// allow spends one unit of the person's allowance, reporting false when
// they have none left for now.
func (b *budget) allow(userID string) bool {
	ok, _ := b.admit(userID)
	return ok
}

// admit is allow for what has no reply of its own to carry a refusal (a
// typed DM): warn is true for the first refusal in a minute, so the
// person is told once, not once per message.
func (b *budget) admit(userID string) (ok, warn bool) {
	if b == nil || b.perMinute <= 0 || userID == "" {
		return true, false
	}
	now := time.Now() // the limiter's own clock: real time, as Slack's is
	b.mu.Lock()
	defer b.mu.Unlock()
	a, found := b.people[userID]
	if !found {
		a = &allowance{lim: rate.NewLimiter(rate.Limit(float64(b.perMinute)/60), b.burst)}
		b.people[userID] = a
	}
	a.used = now
	b.sweepLocked(now)
	if a.lim.AllowN(now, 1) {
		return true, false
	}
	if now.Sub(a.warned) < time.Minute {
		return false, false
	}
	a.warned = now
	return false, true
}

// sweepLocked forgets people idle long enough to have a full allowance
// again, so the map does not grow with everyone who ever clicked.
func (b *budget) sweepLocked(now time.Time) {
	if now.Sub(b.swept) < time.Minute {
		return
	}
	b.swept = now
	for id, a := range b.people {
		if now.Sub(a.used) > 2*time.Minute {
			delete(b.people, id)
		}
	}
}

// slowDownDMText is told, once a minute at most, to someone typing in
// the DM past their allowance: what they typed was not kept.
const slowDownDMText = "You're typing faster than I can keep up with, so I didn't keep your last messages as reflections. They are still here: send the ones you want kept again in a few seconds."

// slowDownFormText is shown on a form submitted past the allowance.
const slowDownFormText = "You're going faster than I can keep up with, so I didn't save this yet. Give me a few seconds and press the button again: everything you wrote is still here."

// slowDownText is the answer past a person's allowance.
const slowDownText = "You're going faster than I can keep up with, so I skipped that one. Give me a few seconds and try again."
