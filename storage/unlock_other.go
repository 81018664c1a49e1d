//go:build !unix

package storage

import (
	"os"
	"time"
)

// releaseLock is a no-op where bbolt does not lock with flock; closing the
// file releases its lock there.
func releaseLock(*os.File) {}

// lockShared is a no-op where bbolt does not lock with flock.
func lockShared(*os.File, time.Duration) error { return nil }
