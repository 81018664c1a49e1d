package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// WriteError is a change the disk refused: the transaction was complete,
// but committing it failed (a full disk, an I/O error, a file system
// remounted read-only). bbolt writes the meta page last, so none of the
// change was saved and the file stays as it was.
type WriteError struct {
	Path string
	Err  error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("database %s refused a write, so nothing of it was saved: %v", e.Path, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// NotSaved tells the core, which knows no storage types, that nothing of
// the change was saved and the same change may simply be tried again.
func (e *WriteError) NotSaved() bool { return true }

// faultLogEvery bounds how often a write fault is logged: a full disk
// refuses every write of every person, and one line per refusal would
// fill what space is left with the news that there is none.
const faultLogEvery = time.Minute

// headroom is the free space a write fault waits for before it ends. On
// a full disk some commits still succeed, those that fit in pages the
// file already has, while the next one that needs a new page fails:
// ending the fault on any success would flap /readyz between ready and
// not, and with it the log. A commit that succeeds with less free space
// than this leaves the fault standing.
const headroom = 1 << 20

// writeHealth remembers whether the disk is refusing writes, from the
// first refusal until a commit succeeds again with headroom to spare.
type writeHealth struct {
	refused  atomic.Uint64 // write calls refused since Open
	probing  atomic.Bool   // a probe write is under way
	standing atomic.Bool   // fault is set: the one check every commit makes

	mu    sync.Mutex
	fault error     // the latest refusal; nil while writes succeed
	since time.Time // when the current run of refusals began
	inRun uint64    // refusals in the current run
	// logged and quiet throttle the log: when each message was last
	// written, and how many were not written since.
	logged map[string]time.Time
	quiet  map[string]int
}

const (
	msgFailing   = "database writes are failing: people's changes are not saved (each is told to try again) and the bot reports itself not ready until a write succeeds again; free space on the disk or fix it, nudgebot recovers by itself"
	msgRecovered = "database writes succeed again; the bot reports itself ready again"
)

// committed records a commit that reached the disk, ending a fault
// when the disk holding dir has headroom (or cannot tell).
func (h *writeHealth) committed(log *slog.Logger, now time.Time, dir string) {
	if !h.standing.Load() {
		return
	}
	if free, ok := freeBytes(dir); ok && free < headroom {
		return
	}
	h.mu.Lock()
	if h.fault == nil {
		h.mu.Unlock()
		return
	}
	since, n := h.since, h.inRun
	h.fault, h.inRun = nil, 0
	h.standing.Store(false)
	quiet, ok := h.mayLog(msgRecovered, now)
	h.mu.Unlock()
	if ok {
		log.Info(msgRecovered, "failing_for", now.Sub(since).Round(time.Second).String(), "writes_refused", n, "similar_lines_suppressed", quiet)
	}
}

// failed records a commit the disk refused and logs it, at most once per
// faultLogEvery, with how many refusals the line stands for.
func (h *writeHealth) failed(log *slog.Logger, now time.Time, err error) {
	h.mu.Lock()
	if h.fault == nil {
		h.since = now
	}
	h.fault = err
	h.standing.Store(true)
	h.inRun++
	since := h.since
	quiet, ok := h.mayLog(msgFailing, now)
	h.mu.Unlock()
	if ok {
		log.Error(msgFailing, "error", err, "failing_since", since.UTC().Format(time.RFC3339), "similar_lines_suppressed", quiet)
	}
}

// mayLog says whether msg may be logged now, and how many times it was
// held back since it last was. The caller holds h.mu.
func (h *writeHealth) mayLog(msg string, now time.Time) (quiet int, ok bool) {
	if h.logged == nil {
		h.logged, h.quiet = map[string]time.Time{}, map[string]int{}
	}
	if last, seen := h.logged[msg]; seen && now.Sub(last) < faultLogEvery && !now.Before(last) {
		h.quiet[msg]++
		return 0, false
	}
	quiet = h.quiet[msg]
	h.logged[msg], h.quiet[msg] = now, 0
	return quiet, true
}

// WriteFault reports whether the disk is refusing writes: the latest
// refusal and when the refusals began, or a nil error once a write has
// succeeded since.
func (db *DB) WriteFault() (since time.Time, err error) {
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	return db.health.since, db.health.fault
}

// keyWriteProbe is the meta entry ProbeWrite overwrites.
const keyWriteProbe = "write_probe"

// ProbeWrite, while the disk is refusing writes, tries one small write to
// see whether it takes them again, so that a bot nobody is using still
// notices that space came back; its outcome ends or continues the fault
// as any write's does (a success on a disk still without headroom ends
// nothing). It returns the fault that stands afterwards (nil:
// writes succeed). With no fault standing it writes nothing, and only one
// probe runs at a time: a caller that finds one under way gets the fault
// as it stands.
func (db *DB) ProbeWrite() error {
	if _, err := db.WriteFault(); err == nil {
		return nil
	}
	if !db.health.probing.CompareAndSwap(false, true) {
		_, err := db.WriteFault()
		return err
	}
	defer db.health.probing.Store(false)
	at, err := json.Marshal(db.now().UTC())
	if err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	err = db.commit(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			return missingBucket(bucketMeta)
		}
		return meta.Put([]byte(keyWriteProbe), at)
	})
	if err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	_, err = db.WriteFault()
	return err
}

// refusedBy counts err against the writes-refused figure when the disk
// refused it, and returns it unchanged.
func (db *DB) refusedBy(err error) error {
	if _, ok := errors.AsType[*WriteError](err); ok {
		db.health.refused.Add(1)
	}
	return err
}

// updateSecrets runs fn in a write transaction of the secrets file. A
// commit the disk refuses there is a write fault like one of the main
// file (a *WriteError naming the secrets file, counted, logged and
// standing until a commit succeeds), as is a refused compaction copy:
// the two files share a disk, and a person's change that cannot be
// saved is the same news wherever it failed.
func (db *DB) updateSecrets(fn func(*bolt.Tx) error) error {
	built := false
	err := db.secrets.update(func(stx *bolt.Tx) error {
		built = false
		if err := fn(stx); err != nil {
			return err
		}
		built = true
		return nil
	})
	switch {
	case err == nil:
		db.health.committed(db.log, db.now(), filepath.Dir(db.secrets.path))
	case built:
		err = &WriteError{Path: db.secrets.path, Err: err}
		db.health.failed(db.log, db.now(), err)
	}
	return db.refusedBy(err)
}

// compactSecrets compacts the secrets file; a copy the disk refused is
// a write fault (see updateSecrets).
func (db *DB) compactSecrets() error {
	err := db.secrets.compact()
	if _, ok := errors.AsType[*secretsCopyError](err); ok {
		err = &WriteError{Path: db.secrets.path, Err: err}
		db.health.failed(db.log, db.now(), err)
	}
	return db.refusedBy(err)
}
