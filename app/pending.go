package app

import "sync"

// pending counts work that outlives the call that started it: a sent
// delivery still being recorded. Unlike a sync.WaitGroup it may be
// waited on while work is added, as a tick waits for its marks while
// /nudge now adds one.
type pending struct {
	mu   sync.Mutex
	idle sync.Cond
	n    int
}

// Go runs f in a goroutine of its own, counted until it returns.
func (p *pending) Go(f func()) {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
	go func() {
		defer func() {
			p.mu.Lock()
			if p.n--; p.n == 0 && p.idle.L != nil {
				p.idle.Broadcast()
			}
			p.mu.Unlock()
		}()
		f()
	}()
}

// Wait returns once nothing started with Go is running.
func (p *pending) Wait() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle.L == nil {
		p.idle.L = &p.mu
	}
	for p.n > 0 {
		p.idle.Wait()
	}
}
