package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// keyNeedsCompaction in the meta bucket was set by schema 3 and older
// once deleted reflections or a forgotten person's records might linger
// in free pages, and is set by moving the secrets out of the main file
// (moveSecrets) until the compaction at Open that follows; a file that
// still has it is compacted once, at the next read-write Open. keyPruned
// (retention removed records since the last compaction) is only cleared.
// keyCompactedAt holds when the file was last compacted (RFC 3339).
const (
	keyNeedsCompaction = "needs_compaction"
	keyPruned          = "pruned_since_compaction"
	keyCompactedAt     = "compacted_at"
)

// compactTxMaxSize bounds the memory one transaction of Compact's copy
// takes.
const compactTxMaxSize = 64 << 20

// NeedsCompaction reports whether Compact is worth the pause it brings
// (every write waits for its whole copy): only for a file from before
// the secrets file whose free pages may still hold deleted reflections
// that open. Nothing asks for it any more: erasing needs no compaction of
// this file (a deleted reflection's key is retired, a forgotten person's
// key deleted, in the secrets file), and bbolt reuses the pages that
// deletes and retention free, so the file levels off without it (about
// twice the size a compacted copy would be, see docs/performance.md);
// `nudgebot compact` gives the space back when an operator wants it.
func (db *DB) NeedsCompaction() bool {
	return db.needsCompaction.Load()
}

// Compact rewrites the database without its free pages, so that deleted
// and forgotten data leaves the file. It copies the live data to a new
// file beside it (<path>.compact-<random>, created exclusively, so no
// file or symlink already there is ever opened or followed), syncs it,
// checks it, then swaps it in for the file and reopens it. Other calls
// wait meanwhile (they never see a closed
// handle); the file's lock is released for the instant of the swap. On
// an error before the swap the database is left as it was.
func (db *DB) Compact() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return fmt.Errorf("storage: compact %s: %w", db.path, bolterrors.ErrDatabaseNotOpen)
	}
	if db.readOnly {
		return fmt.Errorf("storage: compact %s: the database is open read-only: open it read-write to compact it", db.path)
	}
	before, _ := fileSize(db.path)
	tmp, err := compactionFile(db.path)
	if err != nil {
		return fmt.Errorf("storage: compact %s: %w; the database is unchanged", db.path, err)
	}
	compactedAt := db.now()
	if err := db.writeCompacted(tmp, compactedAt); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("storage: compact %s: %w; the database is unchanged", db.path, err)
	}
	if err := db.bolt.Close(); err != nil {
		_ = os.Remove(tmp)
		db.closed = true
		return fmt.Errorf("storage: compact %s: close the database: %w: restart nudgebot", db.path, err)
	}
	swapErr := os.Rename(tmp, db.path)
	if swapErr != nil {
		_ = os.Remove(tmp)
	} else {
		swapErr = syncDir(filepath.Dir(db.path))
	}
	bdb, err := openBolt(db.path, Options{Timeout: db.timeout})
	if err != nil {
		db.closed = true
		return fmt.Errorf("storage: compact %s: reopen the database: %w: restart nudgebot", db.path, errors.Join(swapErr, err))
	}
	db.bolt = bdb
	if swapErr != nil {
		return fmt.Errorf("storage: compact %s: replace the file: %w; the database is unchanged", db.path, swapErr)
	}
	db.needsCompaction.Store(false)
	after, _ := fileSize(db.path)
	db.log.Info("compacted database", "path", db.path, "bytes_before", before, "bytes_after", after)
	return nil
}

// compactionFile creates the empty file a compaction copies into: a
// random name in the database's own directory (so the swap is a rename
// on one file system), created with O_EXCL and mode 0600. A name chosen
// in advance could be planted as a symlink to any file the bot may
// write, or be an operator's own file.
func compactionFile(dbPath string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(dbPath), filepath.Base(dbPath)+".compact-*")
	if err != nil {
		return "", fmt.Errorf("create the compaction copy: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("create the compaction copy: %w", err)
	}
	return f.Name(), nil
}

// writeCompacted writes a compacted copy of the database into path, an
// empty file compactionFile made, and makes it durable. The caller holds
// the write lock.
func (db *DB) writeCompacted(path string, at time.Time) (err error) {
	// One sync at the end is enough: the copy only counts once renamed.
	dst, err := bolt.Open(path, fileMode, &bolt.Options{Timeout: db.timeout, NoSync: true})
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		if cerr := dst.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
	}()
	if err := bolt.Compact(dst, db.bolt, compactTxMaxSize); err != nil {
		return fmt.Errorf("copy into %s: %w", path, err)
	}
	err = dst.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			return nil
		}
		return errors.Join(meta.Delete([]byte(keyNeedsCompaction)), meta.Delete([]byte(keyPruned)),
			meta.Put([]byte(keyCompactedAt), []byte(at.UTC().Format(time.RFC3339Nano))))
	})
	if err != nil {
		return fmt.Errorf("record the compaction in %s: %w", path, err)
	}
	var size int64
	if err := dst.View(func(tx *bolt.Tx) error { size = tx.Size(); return checkTx(tx) }); err != nil {
		return fmt.Errorf("the compacted copy %s fails its check: %w", path, err)
	}
	// bbolt grows a file it writes in doubling steps, but the copy needs
	// only its pages: cut at the last one, a compaction never leaves a
	// file (a restored backup is exactly its data's length) larger than
	// it found it.
	if err := os.Truncate(path, size); err != nil {
		return fmt.Errorf("trim %s to its %d bytes of pages: %w", path, size, err)
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

func fileSize(path string) (int64, error) {
	info, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}
