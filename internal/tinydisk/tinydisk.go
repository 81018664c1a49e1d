// Package tinydisk gives tests a real full disk: a small tmpfs of its own
// that a test fills and empties, so that bbolt meets the kernel's own
// ENOSPC rather than an imitation of it. Mounting needs root (or
// CAP_SYS_ADMIN); where it is refused, the test is skipped with a line
// that says why.
package tinydisk

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Disk is a mounted tmpfs.
type Disk struct {
	Dir string
	tb  testing.TB
}

// Filler is the file that takes up a disk's free space.
const Filler = "filler"

// Fill takes up every free byte of the disk, so that the next write that
// needs a new block fails with ENOSPC.
func (d *Disk) Fill() {
	d.tb.Helper()
	f, err := os.OpenFile(filepath.Join(d.Dir, Filler), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.tb.Fatalf("tinydisk: create filler: %v", err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			d.tb.Fatalf("tinydisk: fill: %v", err)
		}
	}
}

// Free gives the filler's space back, as an operator clearing the disk
// would.
func (d *Disk) Free() {
	d.tb.Helper()
	if err := os.Remove(filepath.Join(d.Dir, Filler)); err != nil {
		d.tb.Fatalf("tinydisk: free: %v", err)
	}
}
