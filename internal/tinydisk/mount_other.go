//go:build !linux

package tinydisk

import "testing"

// Mount skips: only Linux gives a test its own small file system.
func Mount(tb testing.TB, size int64) *Disk {
	tb.Skip("tinydisk: a full disk is played only on Linux, with a tmpfs")
	return nil
}
