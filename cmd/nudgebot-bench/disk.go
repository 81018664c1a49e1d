package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Ways to run out of disk, for -faults-disk.
const (
	diskAuto  = "auto"  // both; tmpfs skipped, with a note, when it cannot be mounted
	diskTmpfs = "tmpfs" // the database on a small tmpfs that the bench fills
	diskFsize = "fsize" // the bot's RLIMIT_FSIZE lowered under the file's size
)

// diskModes lists the disk-full runs an -faults-disk setting asks for.
func diskModes(setting string) []string {
	if setting == diskAuto {
		return []string{diskTmpfs, diskFsize}
	}
	return []string{setting}
}

// errCannotMount means the tmpfs could not be mounted (no root, or a
// container without CAP_SYS_ADMIN).
var errCannotMount = errors.New("cannot mount a tmpfs")

// tmpfsSize is the tmpfs the disk-full run puts the database on: room for
// a few hundred people's records and deliveries, small enough to fill in
// a moment.
const tmpfsSize = 16 << 20

// diskFault makes the database's disk full and frees it again.
//
// With tmpfs the bench fills the file system with a filler file, as a
// log or a backup filling a shared disk would; bbolt then fails on a
// write to a page the file system has not allocated yet, that is,
// whenever the file must grow; writes into its free pages still succeed.
// With fsize it lowers the bot's file-size limit (prlimit) below the
// file's size: every write past the first page then fails with EFBIG
// (the Go runtime ignores SIGXFSZ), which is the worst case, every
// write failing.
type diskFault struct {
	mode   string
	dir    string // where the database goes
	filler string
	filled int64
}

// setupDisk prepares a directory under parent for the database.
func setupDisk(ctx context.Context, parent, mode string) (*diskFault, error) {
	dir := filepath.Join(parent, "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the disk-full directory: %w", err)
	}
	if mode == diskFsize {
		if _, err := exec.LookPath("prlimit"); err != nil {
			return nil, errors.New("the file-size-limit run needs prlimit (util-linux)")
		}
		return &diskFault{mode: diskFsize, dir: dir}, nil
	}
	out, err := exec.CommandContext(ctx, "mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", tmpfsSize), "nudgebot-bench", dir).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%w of %d MiB on %s: %v: %s (run as root, or use -faults-disk fsize)", errCannotMount, tmpfsSize>>20, dir, err, bytesTrim(out))
	}
	return &diskFault{mode: diskTmpfs, dir: dir, filler: filepath.Join(dir, "filler")}, nil
}

func bytesTrim(b []byte) string {
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}

// fill makes the next writes of the bot with pid fail.
func (d *diskFault) fill(ctx context.Context, pid int) error {
	if d.mode == diskFsize {
		return prlimitFsize(ctx, pid, "4096:")
	}
	f, err := os.OpenFile(d.filler, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create the filler file: %w", err)
	}
	chunk := make([]byte, 1<<20)
	// Bounded by the tmpfs size: it ends in ENOSPC long before the bound.
	for range 2 * tmpfsSize / len(chunk) {
		n, err := f.Write(chunk)
		d.filled += int64(n)
		if errors.Is(err, syscall.ENOSPC) {
			return f.Close()
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("fill the disk: %w", err)
		}
	}
	f.Close()
	return fmt.Errorf("wrote %d bytes to a %d-byte tmpfs without filling it", d.filled, tmpfsSize)
}

// free undoes fill.
func (d *diskFault) free(ctx context.Context, pid int) error {
	if d.mode == diskFsize {
		return prlimitFsize(ctx, pid, "unlimited:")
	}
	if err := os.Remove(d.filler); err != nil {
		return fmt.Errorf("remove the filler file: %w", err)
	}
	return nil
}

// close unmounts the tmpfs; the bot must have exited.
func (d *diskFault) close() error {
	if d.mode != diskTmpfs {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "umount", d.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("unmount the tmpfs at %s: %w: %s (unmount it by hand)", d.dir, err, bytesTrim(out))
	}
	return nil
}

func (d *diskFault) String() string {
	if d.mode == diskTmpfs {
		return fmt.Sprintf("the database on a %d MiB tmpfs, filled by a %.1f MB filler file", tmpfsSize>>20, float64(d.filled)/1e6)
	}
	return "the bot's file-size limit (RLIMIT_FSIZE, set with `prlimit --pid`) lowered to 4096 bytes, under the database's size, so every write past the first page fails with EFBIG; its log goes through a pipe so the limit does not cut it off"
}

func prlimitFsize(ctx context.Context, pid int, limit string) error {
	out, err := exec.CommandContext(ctx, "prlimit", "--pid", strconv.Itoa(pid), "--fsize="+limit).CombinedOutput()
	if err != nil {
		return fmt.Errorf("prlimit --fsize=%s on the bot: %w: %s", limit, err, bytesTrim(out))
	}
	return nil
}
