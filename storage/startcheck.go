package storage

import (
	"errors"
	"sync"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"
)

// checkState is the outcome of the background check.
type checkState struct {
	mu       sync.Mutex
	finished chan struct{} // nil until StartCheck; closed when it is done
	done     bool
	err      error
	took     time.Duration
}

// StartCheck checks the whole file in the background, once per DB; later
// calls start nothing. The channel is closed when the check has
// finished. It checks what Check does, on a snapshot (see fullCheck):
// writers wait only while it begins, and the tree walk reads the file
// with pread rather than through bbolt's mapping, so the process does
// not grow by the size of the file. While it runs, a commit that must
// grow the mapping waits for it (bbolt remaps only with no read
// transaction open); Close stops it. A failure is logged as an error and
// kept for CheckResult.
func (db *DB) StartCheck() <-chan struct{} {
	db.bgCheck.mu.Lock()
	defer db.bgCheck.mu.Unlock()
	if db.bgCheck.finished != nil {
		return db.bgCheck.finished
	}
	finished := make(chan struct{})
	db.bgCheck.finished = finished
	go func() {
		defer close(finished)
		start := time.Now()
		err := db.fullCheck(db.stopCheck)
		took := time.Since(start)
		if errors.Is(err, bolterrors.ErrDatabaseNotOpen) || errors.Is(err, errCheckStopped) {
			err = nil // closed before the check finished: nothing found in what was read
		}
		db.bgCheck.mu.Lock()
		db.bgCheck.done, db.bgCheck.err, db.bgCheck.took = true, err, took
		db.bgCheck.mu.Unlock()
		if err != nil {
			db.log.Error("THE DATABASE IS DAMAGED: the full consistency check after start-up failed; nudgebot keeps running, but /healthz now fails: "+
				"stop it, keep the damaged file, and restore a backup with `nudgebot restore`",
				"path", db.path, "took", took.Round(time.Millisecond), "error", err)
			return
		}
		db.log.Info("full database check passed", "path", db.path, "took", took.Round(time.Millisecond))
	}()
	return finished
}

// CheckResult reports whether the background check has finished and what
// it found; err is nil while it runs, when it passed, and before
// StartCheck.
func (db *DB) CheckResult() (done bool, err error) {
	db.bgCheck.mu.Lock()
	defer db.bgCheck.mu.Unlock()
	return db.bgCheck.done, db.bgCheck.err
}

// dropEveryRecords is how many records and index entries the background
// check's record walk reads between giving back the mapped pages it has
// read, and between asking whether Close wants it to stop. On a 1 GB
// file the process's mapped file pages peaked at 24 MB (7 MB of them the
// binary) with 1,024, and the walk took 10 s; dropping more often costs
// more than it saves, since each drop walks the page tables of the whole
// mapping and the pages still in use fault back in. The tree walk reads
// the file with pread and maps nothing.
const dropEveryRecords = 1024

// errCheckStopped ends a background check that Close overtook: nothing
// was found, and not everything was read.
var errCheckStopped = errors.New("the check stopped: the database is closing")

func (db *DB) stopCheck() error {
	if db.closing.Load() {
		return errCheckStopped
	}
	return nil
}
