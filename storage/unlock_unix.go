//go:build unix

package storage

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// releaseLock drops bbolt's flock on f. Closing f alone is not enough when
// bbolt panicked after mapping the file: the mapping keeps the open file
// description, and with it the lock, alive until the process exits.
func releaseLock(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// errLocked is why lockShared gave up.
var errLocked = errors.New("the file is locked")

// lockShared takes a shared flock on f, as bbolt does for a read-only
// open and against bbolt's exclusive one, waiting up to timeout.
func lockShared(f *os.File, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, syscall.EWOULDBLOCK):
			return err
		case time.Now().After(deadline):
			return errLocked
		}
		time.Sleep(50 * time.Millisecond)
	}
}
