//go:build !unix

package storage

import "os"

// releaseLock is a no-op where bbolt does not lock with flock; closing the
// file releases its lock there.
func releaseLock(*os.File) {}
