//go:build unix

package storage

import (
	"os"
	"syscall"
)

// releaseLock drops bbolt's flock on f. Closing f alone is not enough when
// bbolt panicked after mapping the file: the mapping keeps the open file
// description, and with it the lock, alive until the process exits.
func releaseLock(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
