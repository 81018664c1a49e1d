package tinydisk

import (
	"fmt"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size bytes in a temporary directory, unmounted
// at cleanup (register whatever uses the disk after calling Mount, so it
// is closed first). It skips the test when mounting is refused.
func Mount(tb testing.TB, size int64) *Disk {
	tb.Helper()
	dir := tb.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		tb.Skipf("tinydisk: cannot mount a %d-byte tmpfs to play a full disk (%v): run the tests as root (or with CAP_SYS_ADMIN) to play it", size, err)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("tinydisk: unmount %s: %v", dir, err)
		}
	})
	return &Disk{Dir: dir, tb: tb}
}
