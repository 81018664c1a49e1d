package storage

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openGroupDB(t *testing.T) *DB {
	t.Helper()
	return openTest(t, "", Options{})
}

// holdLead starts a write that leads and stays inside its transaction
// until the returned release is called, so that writes started meanwhile
// queue behind it. It returns once the write is inside the transaction;
// wait returns the held write's error.
func holdLead(t *testing.T, db *DB) (release func(), wait func() error) {
	t.Helper()
	inside, hold := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.write(func(tx *bolt.Tx) error {
			close(inside)
			<-hold
			return putRaw(tx, "held", "1")
		})
	}()
	<-inside
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	// A test that fails while holding must still let go, or closing the
	// database would wait for the held write forever.
	t.Cleanup(release)
	return release, func() error { return <-done }
}

// queueDeadline bounds waitQueued: a write that never queues (a bug in
// the grouping) fails the test instead of hanging it.
const queueDeadline = 10 * time.Second

// waitQueued waits until n writes are queued, yielding rather than
// sleeping, and fails the test if they are not within queueDeadline.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	deadline := time.Now().Add(queueDeadline)
	for {
		db.group.mu.Lock()
		queued := len(db.group.queue)
		db.group.mu.Unlock()
		if queued >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes queued after %v; the rest never queued", queued, n, queueDeadline)
		}
		runtime.Gosched()
	}
}

func putRaw(tx *bolt.Tx, k, v string) error {
	return tx.Bucket([]byte(bucketMeta)).Put([]byte("test-"+k), []byte(v))
}

func getRaw(t *testing.T, db *DB, k string) string {
	t.Helper()
	var v string
	err := db.view(func(tx *bolt.Tx) error {
		v = string(tx.Bucket([]byte(bucketMeta)).Get([]byte("test-" + k)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Ensure writes that arrive while a transaction commits share the next
// one, and each caller returns only once its write is durable.
func TestWrite_GroupsWritesQueuedDuringACommit(t *testing.T) {
	db := openGroupDB(t)
	release, wait := holdLead(t, db)
	before := db.Stats()

	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = db.write(func(tx *bolt.Tx) error { return putRaw(tx, fmt.Sprint(i), "v") })
		})
	}
	waitQueued(t, db, n)
	release()
	wg.Wait()
	if err := wait(); err != nil {
		t.Fatalf("held write: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
		if got := getRaw(t, db, fmt.Sprint(i)); got != "v" {
			t.Errorf("write %d reads back %q after it returned", i, got)
		}
	}
	after := db.Stats()
	if w := after.Writes - before.Writes; w != n {
		t.Errorf("Writes grew by %d, want %d", w, n)
	}
	// The held write's transaction, then one for all twenty.
	if c := after.Commits - before.Commits; c != 2 {
		t.Errorf("Commits grew by %d for a held write and %d queued behind it, want 2", c, n)
	}
}

// Ensure a failing write in a group fails alone: its caller gets its
// error, none of its changes stay, and the others run again and commit.
func TestWrite_FailureInAGroupFailsOnlyItsWrite(t *testing.T) {
	db := openGroupDB(t)
	release, wait := holdLead(t, db)
	errBoom := errors.New("boom")

	type result struct {
		err  error
		runs int
	}
	const n = 5
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i].err = db.write(func(tx *bolt.Tx) error {
				results[i].runs++
				if err := putRaw(tx, fmt.Sprint(i), "v"); err != nil {
					return err
				}
				if i == 2 {
					return errBoom // after a change: it must not stay
				}
				return nil
			})
		})
		waitQueued(t, db, i+1) // a known order: 0 and 1 run before 2
	}
	release()
	wg.Wait()
	if err := wait(); err != nil {
		t.Fatalf("held write: %v", err)
	}
	for i, r := range results {
		want := "v"
		if i == 2 {
			want = ""
			if !errors.Is(r.err, errBoom) {
				t.Errorf("failing write: err=%v, want %v", r.err, errBoom)
			}
		} else if r.err != nil {
			t.Errorf("write %d: %v", i, r.err)
		}
		if got := getRaw(t, db, fmt.Sprint(i)); got != want {
			t.Errorf("write %d reads back %q, want %q", i, got, want)
		}
	}
	// 0 and 1 ran before the failure and again after it.
	for i, wantRuns := range []int{2, 2, 1, 1, 1} {
		if results[i].runs != wantRuns {
			t.Errorf("write %d ran %d times, want %d", i, results[i].runs, wantRuns)
		}
	}
}

// Ensure a panic in a write is raised in its own caller, and the rest of
// its group still commits.
func TestWrite_PanicReachesItsCaller(t *testing.T) {
	db := openGroupDB(t)
	release, wait := holdLead(t, db)
	var wg sync.WaitGroup
	var recovered any
	var otherErr error
	wg.Go(func() {
		defer func() { recovered = recover() }()
		_ = db.write(func(*bolt.Tx) error { panic("kaboom") })
	})
	waitQueued(t, db, 1)
	wg.Go(func() {
		otherErr = db.write(func(tx *bolt.Tx) error { return putRaw(tx, "other", "v") })
	})
	waitQueued(t, db, 2)
	release()
	wg.Wait()
	if err := wait(); err != nil {
		t.Fatalf("held write: %v", err)
	}
	if recovered != "kaboom" {
		t.Errorf("recovered %v in the panicking caller, want kaboom", recovered)
	}
	if otherErr != nil || getRaw(t, db, "other") != "v" {
		t.Errorf("the other write: err=%v, value %q; want committed", otherErr, getRaw(t, db, "other"))
	}
}

// Ensure many writers changing the same values lose no update and end
// with more writes than commits only as grouping allows.
func TestWrite_ConcurrentCountersLoseNothing(t *testing.T) {
	db := openGroupDB(t)
	const writers, each = 8, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range each {
				err := db.write(func(tx *bolt.Tx) error {
					b := tx.Bucket([]byte(bucketMeta))
					for _, k := range []string{"test-total", fmt.Sprintf("test-w%d", w)} {
						var n int
						fmt.Sscan(string(b.Get([]byte(k))), &n)
						if err := b.Put([]byte(k), []byte(fmt.Sprint(n+1))); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, want := getRaw(t, db, "total"), fmt.Sprint(writers*each); got != want {
		t.Errorf("total=%s, want %s", got, want)
	}
	for w := range writers {
		if got := getRaw(t, db, fmt.Sprintf("w%d", w)); got != fmt.Sprint(each) {
			t.Errorf("writer %d counted %s, want %d", w, got, each)
		}
	}
	if s := db.Stats(); s.Commits > s.Writes {
		t.Errorf("Stats=%+v: more commits than writes", s)
	}
}

// Ensure a write to a closed database fails rather than hangs.
func TestWrite_AfterClose(t *testing.T) {
	db := openGroupDB(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	err := db.write(func(tx *bolt.Tx) error { return putRaw(tx, "late", "v") })
	if err == nil {
		t.Fatal("write after Close succeeded")
	}
}
