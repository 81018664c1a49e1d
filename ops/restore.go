package ops

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/storage"
)

// Restore puts the backup in into place and returns where the replaced
// database was kept ("" if there was none).
func (t Tool) Restore(in string) (kept string, err error) {
	cfg, getenv, stderr := t.Config, t.Getenv, t.stderr()
	path := cfg.Storage.Path
	if err := checkBackupFile(in, path); err != nil {
		return "", err
	}
	warnIfKeysDiffer(cfg, getenv, in, stderr)

	// Hold the current file open (a shared lock) until it is replaced, so
	// a nudgebot starting meanwhile waits rather than writes to it.
	live, err := openReadOnly(path)
	exists := true
	switch {
	case err == nil:
		defer live.Close()
	case errors.Is(err, storage.ErrInUse):
		return "", Mark(storage.ErrInUse, fmt.Errorf("%s is in use by a running nudgebot: stop nudgebot first (e.g. systemctl stop nudgebot), then run restore again; nothing was changed", path))
	case errors.Is(err, fs.ErrNotExist):
		exists = false
	case errors.Is(err, storage.ErrCorrupt), errors.Is(err, storage.ErrNewerSchema):
		// Restoring over a damaged file is what restore is for.
		fmt.Fprintf(stderr, "nudgebot restore: the current database cannot be used (%v); it will be kept\n", err)
	default:
		return "", fmt.Errorf("cannot check the current database, so nothing was changed: %w", err)
	}

	before := path + ".before-restore"
	if exists {
		if _, err := os.Lstat(before); err == nil {
			return "", fmt.Errorf("%s already exists, left by an earlier restore: move it somewhere safe or delete it, then run restore again; nothing was changed", before)
		}
	}

	var liveInfo os.FileInfo
	if exists {
		liveInfo, _ = os.Stat(path)
	}
	tmp, err := writeTempChecked(path, func(f *os.File) error {
		keepOwner(f.Name(), liveInfo, stderr)
		return copyFile(f, in, stderr)
	}, VerifyDatabase)
	if err != nil {
		return "", fmt.Errorf("%w; nothing was changed", err)
	}
	if !exists {
		before = ""
	}
	return swapIn(tmp, path, before)
}

// copyFile writes the database at in to f, with progress, through
// storage rather than byte by byte: a database copied with its secrets
// file beside it becomes one self-contained file (see storage.DB.WriteTo).
func copyFile(f *os.File, in string, stderr io.Writer) error {
	src, err := openReadOnly(in)
	if err != nil {
		return fmt.Errorf("open %s: %w", in, err)
	}
	defer src.Close()
	total, _ := src.Size()
	prog := newProgress(stderr, "restoring", total, ByteSize)
	defer prog.Done()
	if _, err := src.WriteTo(io.MultiWriter(f, prog)); err != nil {
		return fmt.Errorf("copy %s: %w", in, err)
	}
	return nil
}

// swapIn puts tmp in place at path, first keeping the file there as
// before (unless before is ""), and returns where it was kept. A hard
// link keeps the old file under its new name while the rename swaps the
// new one in atomically, so the path is never missing; two renames are
// the fallback only where links are not supported, and never over a
// file that appeared at before meanwhile.
func swapIn(tmp, path, before string) (kept string, err error) {
	if before != "" {
		if err := os.Link(path, before); err != nil {
			if !linkUnsupported(err) {
				_ = os.Remove(tmp)
				return "", fmt.Errorf("keep the current database as %s: %w; nothing was changed", before, err)
			}
			if _, err := os.Lstat(before); err == nil {
				_ = os.Remove(tmp)
				return "", fmt.Errorf("%s appeared meanwhile: move it somewhere safe, then run restore again; nothing was changed", before)
			}
			if err := os.Rename(path, before); err != nil {
				_ = os.Remove(tmp)
				return "", fmt.Errorf("keep the current database as %s: %w; nothing was changed", before, err)
			}
		}
		kept = before
		if err := keepSecrets(path, before); err != nil {
			_ = os.Remove(tmp)
			return kept, fmt.Errorf("keep the current database's secrets file beside %s: %w; the database itself is unchanged", before, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return kept, fmt.Errorf("put the backup in place at %s: %w (the previous database is at %s)", path, err, before)
	}
	return kept, syncDir(filepath.Dir(path))
}

// keepSecrets moves the secrets file of the database at path to go with
// its kept copy at before; the restored file carries its own secrets,
// which its first read-write Open moves out beside it.
func keepSecrets(path, before string) error {
	from, to := storage.SecretsPath(path), storage.SecretsPath(before)
	if _, err := os.Lstat(from); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("%s already exists, left by an earlier restore: move it somewhere safe or delete it", to)
	}
	return os.Rename(from, to)
}

// warnIfKeysDiffer tells the operator, before the swap, if the backup's
// reflections need a key nudgebot is not configured with: it would then
// refuse to start. It only warns, since the old key may be on its way
// into the configuration.
func warnIfKeysDiffer(cfg config.Config, getenv func(string) string, in string, stderr io.Writer) {
	keys, err := toolKeys(cfg, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "nudgebot restore: warning: %v\n", err)
		return
	}
	if err := keysCover(in, keys); errors.Is(err, storage.ErrKeyMissing) {
		fmt.Fprintf(stderr, "nudgebot restore: warning: nudgebot will not start with this backup until its key is configured: %v\n", err)
	}
}

// keysCover reports, without writing to the file, whether keys open the
// reflections in the database at path: storage's ErrKeyMissing error
// names the keys it lacks. With no keys configured, a throwaway key makes
// the read-only open check at all, as it skips the check without keys.
func keysCover(path string, keys *storage.Keys) error {
	if keys == nil {
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		var err error
		if keys, err = storage.NewKeys(raw); err != nil {
			return fmt.Errorf("throwaway key: %w", err)
		}
	}
	db, err := storage.Open(path, storage.Options{ReadOnly: true, Timeout: lockWait, Keys: keys})
	if err != nil {
		return err
	}
	return db.Close()
}

// checkBackupFile refuses, before anything is touched, an input that is
// missing, is the database itself, or does not open and pass the
// consistency check.
func checkBackupFile(in, path string) error {
	if _, err := os.Stat(in); err != nil {
		return Mark(ErrConfig, fmt.Errorf("the backup file %s cannot be read (%w): check its name; nothing was changed", in, err))
	}
	if SameFile(in, path) {
		return Mark(ErrConfig, fmt.Errorf("%s is the database itself: name the backup file to restore from", in))
	}
	if err := VerifyDatabase(in); err != nil {
		return fmt.Errorf("%s is not a usable backup, so nothing was changed: %w", in, err)
	}
	return nil
}
