package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// fsyncProbe is how many synced writes the bench times at start.
const (
	fsyncProbe     = 200
	fsyncProbeSize = 4 << 10
)

// fsyncResult is what one synced 4 KiB write costs on the disk the
// databases live on. A bbolt commit pays two of them (its data pages,
// then its meta page), so this, more than the CPU, bounds how many
// commits a second the bot can make; the figures that depend on it say
// so in the report.
type fsyncResult struct {
	Dir  string
	Sync summary
	Err  string // why it could not be measured
}

func (r fsyncResult) String() string {
	if r.Err != "" {
		return "fsync latency not measured: " + r.Err
	}
	return fmt.Sprintf("a synced 4 KiB write (fdatasync, %d in the databases' directory) p50 %s, p99 %s", r.Sync.N, ms(r.Sync.P50), ms(r.Sync.P99))
}

// probeFsync times n rewrites of one 4 KiB block each followed by
// fdatasync, as bbolt syncs, in a file in dir. The file is written out
// and synced first, so the probe measures the disk's flush, not the
// file system growing the file.
func probeFsync(dir string, n int) fsyncResult {
	r := fsyncResult{Dir: dir}
	ds, err := timeSyncs(filepath.Join(dir, "fsync-probe"), n)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	r.Sync = summarize(ds)
	return r
}

func timeSyncs(path string, n int) (ds []time.Duration, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create the fsync probe file: %w", err)
	}
	defer func() {
		err = errors.Join(err, f.Close(), os.Remove(path))
	}()
	block := make([]byte, fsyncProbeSize)
	if _, err := f.Write(make([]byte, fsyncProbeSize*16)); err != nil {
		return nil, fmt.Errorf("write the fsync probe file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sync the fsync probe file: %w", err)
	}
	for i := range n {
		block[0] = byte(i) // a real change each time
		if _, err := f.WriteAt(block, int64(i%16)*fsyncProbeSize); err != nil {
			return nil, fmt.Errorf("write the fsync probe file: %w", err)
		}
		start := time.Now()
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return nil, fmt.Errorf("fdatasync the fsync probe file: %w", err)
		}
		ds = append(ds, time.Since(start))
	}
	return ds, nil
}
