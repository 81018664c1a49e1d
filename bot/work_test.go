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
