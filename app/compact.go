package app

import (
	"fmt"
	"sync"
	"time"
)

// compactEvery is the least time between two compactions. A compaction
// holds the database's write lock for the whole copy, so anyone able to
// trigger one at will (each /nudge forget did) could stall everyone's
// work; the hourly housekeeping picks up what a debounced request left.
const compactEvery = 55 * time.Minute

// compactGate lets at most one compaction run, and none sooner than
// compactEvery after the last one started.
type compactGate struct {
	mu      sync.Mutex
	running bool
	last    time.Time
}

// claim reports whether a compaction may start at now, and if so marks
// one as running.
func (g *compactGate) claim(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running || (!g.last.IsZero() && now.Sub(g.last) < compactEvery && !now.Before(g.last)) {
		return false
	}
	g.running, g.last = true, now
	return true
}

func (g *compactGate) done() {
	g.mu.Lock()
	g.running = false
	g.mu.Unlock()
}

// CompactSoon compacts the database in the background, at most once per
// compactEvery and only when storage says it needs it (since storage's
// secrets file, only a file from before it does: erasing destroys keys
// there instead). It never runs on the caller's goroutine, so a
// person's request never waits for it; Flush waits for one in progress.
// Forget asks for one; the scheduler's hourly housekeeping picks up what
// a debounced request left.
func (s *Service) CompactSoon() {
	if !s.compaction.claim(s.clock()) {
		return
	}
	s.background.Go(func() {
		defer s.compaction.done()
		if err := s.compact(); err != nil {
			s.log.Error("compacting the database; it will be retried hourly", "error", err)
		}
	})
}

// compact gives the space of deleted records back, when there is any.
func (s *Service) compact() error {
	if !s.eraser.NeedsCompaction() {
		return nil
	}
	if err := s.eraser.Compact(); err != nil {
		return fmt.Errorf("compacting the database: %w", err)
	}
	s.log.Info("database compacted")
	return nil
}
