package bot

import (
	"log/slog"
	"sync"
	"testing"
)

// Ensure work after acks is bounded before any goroutine starts: past
// MaxWork, goWork runs nothing and says so, and a finished job frees its
// slot.
func TestGoWorkIsBounded(t *testing.T) {
	b := &Bot{workSem: make(chan struct{}, 2), busySem: make(chan struct{}, 1), log: slog.New(slog.DiscardHandler)}
	release := make(chan struct{})
	var started sync.WaitGroup
	for range 2 {
		started.Add(1)
		if !b.goWork(func() { started.Done(); <-release }) {
			t.Fatal("goWork refused work below its bound")
		}
	}
	started.Wait()
	ran := false
	if b.goWork(func() { ran = true }) {
		t.Fatal("goWork took a third job with a bound of two")
	}
	close(release)
	b.work.Wait()
	if ran {
		t.Fatal("refused work ran anyway")
	}
	done := make(chan struct{})
	if !b.goWork(func() { close(done) }) {
		t.Fatal("goWork still refuses after the slots were freed")
	}
	<-done
	b.work.Wait()
}

// Ensure each person has their own allowance: one person past theirs is
// refused while another still gets through, and the sweep forgets the
// idle.
func TestBudgetIsPerPerson(t *testing.T) {
	b := newBudget(60, 3)
	for i := range 3 {
		if !b.allow("UFLOOD") {
			t.Fatalf("click %d refused within the burst", i+1)
		}
	}
	if b.allow("UFLOOD") {
		t.Fatal("a fourth click at once was allowed with a burst of three")
	}
	if !b.allow("UOTHER") {
		t.Fatal("another person was refused because of the first one's flood")
	}
	if !b.allow("") || !(*budget)(nil).allow("UFLOOD") {
		t.Fatal("no person, or no budget, must never refuse")
	}
}
