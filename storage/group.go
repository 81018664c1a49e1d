package storage

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// maxGroup bounds how many writes share one transaction. A write that
// fails makes the rest of its group run again without it, so the worst
// case of a group grows with the square of its size; the senders and the
// Socket Mode handlers that write at once are far fewer than this.
const maxGroup = 64

// groupCommit queues writes that arrive while a transaction commits, so
// that they all share the next one: one fsync for many state changes.
// There is no goroutine and no timer. The first writer to find nobody
// committing leads: it runs the queue (its own write first) in one
// transaction, answers everyone in it, then hands the lead to the first
// writer still queued, so no caller keeps committing for others forever.
// A lone writer therefore commits at once; under load, a group is what
// queued during the previous commit.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*groupWrite
	leading bool
}

// groupWrite is one caller's write; done carries its outcome, or first
// the news that it now leads.
type groupWrite struct {
	fn   func(*bolt.Tx) error
	done chan groupResult
}

type groupResult struct {
	lead     bool
	err      error
	panicked any // a panic of fn, raised again in its caller's goroutine
}

// Stats counts what the file was asked to do: Writes are the write calls
// (state changes), Commits the transactions that made them durable, each
// with bbolt's two fsyncs (data pages, then the meta page). Commits below
// Writes is the grouping at work. PagesWritten is bbolt's count of pages
// those commits wrote, since the file was opened or last compacted: on a
// disk that writes few random pages a second, it sets the pace more than
// the fsyncs do.
//
// WriteErrors are the writes the disk refused (see WriteError).
type Stats struct {
	Writes       uint64
	Commits      uint64
	PagesWritten uint64
	WriteErrors  uint64
}

type stats struct {
	writes, commits atomic.Uint64
}

// Stats returns the counts since Open.
func (db *DB) Stats() Stats {
	db.mu.RLock()
	defer db.mu.RUnlock()
	tx := db.bolt.Stats().TxStats
	return Stats{Writes: db.stats.writes.Load(), Commits: db.stats.commits.Load(), PagesWritten: uint64(max(0, tx.GetWrite())),
		WriteErrors: db.health.refused.Load()}
}

// write runs fn in a write transaction it may share with other writes
// (see groupCommit) and returns once that transaction is durable, or
// failed. fn may run more than once, in a transaction of its own or of a
// group: when another write in its group fails, the transaction rolls
// back and the rest run again without it. So fn must start from what it
// reads in the transaction and overwrite, not accumulate, whatever it
// hands back to its caller through captured variables. fn's error is
// returned as is; a panic in fn is raised again in the caller.
func (db *DB) write(fn func(*bolt.Tx) error) error {
	db.stats.writes.Add(1)
	w := &groupWrite{fn: fn, done: make(chan groupResult, 1)}
	g := &db.group
	g.mu.Lock()
	g.queue = append(g.queue, w)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	for {
		if lead {
			db.leadGroup()
		}
		r := <-w.done
		switch {
		case r.lead:
			lead = true
		case r.panicked != nil:
			panic(r.panicked)
		default:
			return db.refusedBy(r.err)
		}
	}
}

// leadGroup commits the head of the queue, which holds the leader's own
// write first, then passes the lead on.
func (db *DB) leadGroup() {
	g := &db.group
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	group := slices.Clone(g.queue[:n])
	g.queue = slices.Delete(g.queue, 0, n)
	g.mu.Unlock()

	db.commitGroup(group)

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- groupResult{lead: true}
	} else {
		g.leading = false
	}
	g.mu.Unlock()
}

// errGroupMember aborts a group's transaction when one of its writes
// fails; that write's own error goes to its caller.
var errGroupMember = errors.New("a write in the group failed")

// commitGroup runs ws in one transaction and answers each. bbolt has no
// savepoints, so a write that fails (its changes may be half made)
// rolls the whole transaction back: its caller gets its error, and the
// others run again without it. Its error stands as seen after the writes
// before it in the group, which is an order the writes could have had.
func (db *DB) commitGroup(ws []*groupWrite) {
	for len(ws) > 0 {
		failed := -1
		var failure groupResult
		err := db.commit(func(tx *bolt.Tx) error {
			for i, w := range ws {
				if r := callWrite(w.fn, tx); r.err != nil || r.panicked != nil {
					failed, failure = i, r
					return errGroupMember
				}
			}
			return nil
		})
		if failed < 0 {
			// Committed, or failed as a whole (a full disk, a closed file).
			for _, w := range ws {
				w.done <- groupResult{err: err}
			}
			return
		}
		ws[failed].done <- failure
		ws = slices.Delete(ws, failed, failed+1)
	}
}

func callWrite(fn func(*bolt.Tx) error, tx *bolt.Tx) (r groupResult) {
	defer func() {
		if p := recover(); p != nil {
			r = groupResult{panicked: p, err: fmt.Errorf("write panicked: %v", p)}
		}
	}()
	return groupResult{err: fn(tx)}
}
