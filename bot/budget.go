package bot

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// budget gives each person their own allowance of interactive work
// (commands and clicks). The Web API limiters are per method and shared,
// so without it one person clicking Reflect a hundred times a minute
// would queue a hundred views.open calls ahead of everyone else's, and
// their three-second form triggers would expire.
type budget struct {
	perMinute int
	burst     int

	mu     sync.Mutex
	people map[string]*allowance
	swept  time.Time
}

type allowance struct {
	lim  *rate.Limiter
	used time.Time
}

func newBudget(perMinute, burst int) *budget {
	return &budget{perMinute: perMinute, burst: burst, people: map[string]*allowance{}}
}

// allow spends one unit of the person's allowance, reporting false when
// they have none left for now.
func (b *budget) allow(userID string) bool {
	if b == nil || b.perMinute <= 0 || userID == "" {
		return true
	}
	now := time.Now() // the limiter's own clock: real time, as Slack's is
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.people[userID]
	if !ok {
		a = &allowance{lim: rate.NewLimiter(rate.Limit(float64(b.perMinute)/60), b.burst)}
		b.people[userID] = a
	}
	a.used = now
	b.sweepLocked(now)
	return a.lim.AllowN(now, 1)
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

// slowDownText is the answer past a person's allowance.
const slowDownText = "You're going faster than I can keep up with, so I skipped that one. Give me a few seconds and try again."
