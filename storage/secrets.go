package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The secrets file is a small bbolt file beside the main one that holds
// whatever must be erasable at once: each person's data key, and each
// open pulse's voter key, running totals and voter markers. bbolt never
// zeroes the pages it frees, so erasing means rewriting the file without
// them; this one is small (about 150 bytes a person), so it is compacted
// after every change that must erase something (a forget, a vote, a
// pulse closing) in milliseconds. The main file then never holds a
// secret: a forgotten person's reflections left in its free pages are
// ciphertext whose key is gone, with no compaction of the big file.

// Buckets of the secrets file.
const (
	secretDataKeys   = "datakeys"     // user id → dataKeyRecord
	secretPulses     = "open_pulses"  // pulse id → pulseSecret, while open
	secretVoters     = "pulse_voters" // voterMarker → pulseVoter, while open
	secretsFileMode  = fileMode
	secretsTmpSuffix = ".tmp"
)

func secretBuckets() []string { return []string{secretDataKeys, secretPulses, secretVoters} }

// SecretsPath is where the secrets file of the database at path lives:
// nudgebot.db keeps its secrets in nudgebot.keys.db. Backups, restores
// and copies of a database must take both files (WriteTo does).
func SecretsPath(path string) string {
	dir, base := filepath.Split(path)
	if ext := filepath.Ext(base); ext != "" && ext != base {
		return filepath.Join(dir, strings.TrimSuffix(base, ext)+".keys"+ext)
	}
	return path + ".keys"
}

// secretsFile is the open secrets file. mu guards the handle, which
// compact replaces: transactions take the read lock, compact and close
// the write lock.
type secretsFile struct {
	mu       sync.RWMutex
	bolt     *bolt.DB
	closed   bool
	path     string
	opts     Options
	readOnly bool
}

// openSecrets opens the secrets file at path; a missing file is created
// only if mayCreate, and otherwise refused with what to do.
func openSecrets(path string, opts Options, log *slog.Logger, mayCreate bool) (*secretsFile, error) {
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !mayCreate:
		return nil, &openError{
			msg:   fmt.Sprintf("the secrets file %s is missing, but the database beside it needs it (it holds the people's data keys and open pulses): restore both files from a backup with `nudgebot restore`", path),
			kinds: []error{ErrCorrupt, err},
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("secrets file %s cannot be read: %w: check its permissions", path, err)
	}
	if err := checkFile(path, opts.ReadOnly, log); err != nil {
		return nil, err
	}
	bdb, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s := &secretsFile{bolt: bdb, path: path, opts: opts, readOnly: opts.ReadOnly}
	if err := bdb.View(checkTx); err != nil {
		return nil, errors.Join(corruptError(path, err), closeRefused(bdb))
	}
	if !opts.ReadOnly {
		if err := bdb.Update(createSecretBuckets); err != nil {
			return nil, errors.Join(fmt.Errorf("prepare secrets file %s: %w", path, err), closeRefused(bdb))
		}
	}
	return s, nil
}

func createSecretBuckets(tx *bolt.Tx) error {
	for _, name := range secretBuckets() {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

func (s *secretsFile) view(fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("secrets file %s: %w", s.path, bolterrors.ErrDatabaseNotOpen)
	}
	return s.bolt.View(fn)
}

func (s *secretsFile) update(fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("secrets file %s: %w", s.path, bolterrors.ErrDatabaseNotOpen)
	}
	return s.bolt.Update(fn)
}

func (s *secretsFile) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.bolt.Close(); err != nil {
		return fmt.Errorf("close secrets file %s: %w", s.path, err)
	}
	return nil
}

// compact rewrites the secrets file without its free pages, so that what
// was erased from it is gone from the file too. The copy goes to a new
// file of a random name beside it, is synced and checked, then renamed
// over it.
func (s *secretsFile) compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("compact secrets file %s: %w", s.path, bolterrors.ErrDatabaseNotOpen)
	}
	tmp, err := writeSecretsCopy(s.path, func(dst *bolt.DB) error {
		return bolt.Compact(dst, s.bolt, compactTxMaxSize)
	})
	if err != nil {
		return &secretsCopyError{fmt.Errorf("compact secrets file %s: %w; it is unchanged", s.path, err)}
	}
	if err := s.bolt.Close(); err != nil {
		_ = os.Remove(tmp)
		s.closed = true
		return fmt.Errorf("compact secrets file %s: close it: %w: restart nudgebot", s.path, err)
	}
	swapErr := renameDurably(tmp, s.path)
	bdb, err := openBolt(s.path, s.opts)
	if err != nil {
		s.closed = true
		return fmt.Errorf("compact secrets file %s: reopen it: %w: restart nudgebot", s.path, errors.Join(swapErr, err))
	}
	s.bolt = bdb
	if swapErr != nil {
		return fmt.Errorf("compact secrets file %s: %w; it is unchanged, and what was erased may linger in its free pages until the next compaction", s.path, swapErr)
	}
	return nil
}

// secretsCopyError is a compaction whose copy could not be written: the
// disk refused it, and the file is as it was.
type secretsCopyError struct{ err error }

func (e *secretsCopyError) Error() string { return e.err.Error() }
func (e *secretsCopyError) Unwrap() error { return e.err }

// writeSecretsCopy creates a new bbolt file beside path with a random
// name, lets fill write it, checks and syncs it, and returns its name;
// on an error it removes it.
func writeSecretsCopy(path string, fill func(dst *bolt.DB) error) (tmp string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*"+secretsTmpSuffix)
	if err != nil {
		return "", fmt.Errorf("create a file beside %s: %w", path, err)
	}
	tmp = f.Name()
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	// One sync at the end is enough: the copy only counts once renamed.
	dst, err := bolt.Open(tmp, secretsFileMode, &bolt.Options{Timeout: defaultTimeout, NoSync: true})
	if err != nil {
		return "", fmt.Errorf("open %s: %w", tmp, err)
	}
	err = fill(dst)
	if err == nil {
		err = dst.Update(createSecretBuckets)
	}
	if err == nil {
		err = dst.View(checkTx)
	}
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	return tmp, nil
}

// renameDurably renames tmp to path and syncs the directory; on an error
// it removes tmp.
func renameDurably(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// copyBucket copies every entry of src into dst, creating dst's bucket.
func copyBucket(src *bolt.Bucket, dst *bolt.Tx, name string) error {
	b, err := dst.CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	if src == nil {
		return nil
	}
	return src.ForEach(func(k, v []byte) error {
		if v == nil {
			return nil // no nested buckets here
		}
		// Cloned: bbolt keeps what Put is given until the commit, and
		// src's memory is only valid during its own transaction.
		return b.Put(bytes.Clone(k), bytes.Clone(v))
	})
}

// openSecretsFile opens the secrets file beside the main one. A missing
// one is created only by a read-write open whose main file needs none
// yet (no reflection, no open pulse): otherwise its loss must be
// noticed, not papered over with an empty file that opens nothing.
func (db *DB) openSecretsFile() error {
	mayCreate := false
	if !db.readOnly {
		unused, err := db.needsNoSecrets()
		if err != nil {
			return err
		}
		mayCreate = unused
	}
	path := SecretsPath(db.path)
	if _, err := os.Stat(path); db.readOnly && errors.Is(err, fs.ErrNotExist) {
		// Check and inspection tools still read everything else.
		db.log.Warn("the secrets file is missing: no reflection can be read and open pulses cannot go on; restore both files from a backup",
			"path", path)
		return nil
	}
	s, err := openSecrets(path, Options{Timeout: db.timeout, ReadOnly: db.readOnly}, db.log, mayCreate)
	if err != nil {
		return err
	}
	db.secrets = s
	return nil
}

// needsNoSecrets reports whether the main file holds no reflection and
// no open pulse, so that a missing secrets file loses nothing.
func (db *DB) needsNoSecrets() (bool, error) {
	unused := true
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucketReflections)); b != nil {
			if k, _ := b.Cursor().First(); k != nil {
				unused = false
				return nil
			}
		}
		if b := tx.Bucket([]byte(bucketPulses)); b != nil {
			return b.ForEach(func(_, v []byte) error {
				var p pulseRecord
				if err := json.Unmarshal(v, &p); err != nil || p.Closed.IsZero() {
					unused = false
				}
				return nil
			})
		}
		return nil
	})
	return unused, err
}

// closeRefusedBoth closes both files of a database Open refuses.
func (db *DB) closeRefusedBoth() error {
	var err error
	if db.secrets != nil {
		err = db.secrets.close()
	}
	return errors.Join(err, closeRefused(db.bolt))
}
