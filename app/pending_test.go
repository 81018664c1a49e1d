package app

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Ensure Wait returns only once everything started has finished, also
// when work is added while another caller waits.
func TestPending(t *testing.T) {
	var p pending
	p.Wait() // nothing started: returns at once

	var done atomic.Int32
	release := make(chan struct{})
	for range 5 {
		p.Go(func() { <-release; done.Add(1) })
	}
	var waiters sync.WaitGroup
	for range 3 {
		waiters.Go(func() {
			p.Wait()
			if n := done.Load(); n != 6 {
				t.Errorf("Wait returned with %d of 6 done", n)
			}
		})
	}
	p.Go(func() { <-release; done.Add(1) }) // added while others wait
	close(release)
	waiters.Wait()
	p.Wait()
}
