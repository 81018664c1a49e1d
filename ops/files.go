package ops

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"syscall"

	"github.com/nudgebot/nudgebot/storage"
)

func openReadOnly(path string) (*storage.DB, error) {
	return storage.Open(path, storage.Options{ReadOnly: true, Timeout: lockWait})
}

// VerifyDatabase checks that the file at path is a database nudgebot
// would open and that it passes the consistency check.
func VerifyDatabase(path string) error {
	db, err := openReadOnly(path)
	if err != nil {
		return err
	}
	return errors.Join(db.Check(), db.Close())
}

// writeAtomic writes path through a fresh temporary file beside it
// (os.CreateTemp: a new name, created exclusively, never a link someone
// planted): fill writes it, it is synced, verify (if any) checks it, and
// only then is it put in place: over an existing path only when replace
// is set, else by a hard link that fails if the name was taken
// meanwhile. Nothing is left behind on failure.
func writeAtomic(path string, replace bool, fill func(*os.File) error, verify func(tmp string) error) error {
	tmp, err := writeTempChecked(path, fill, verify)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // after a link; a no-op after a rename
	switch err := os.Link(tmp, path); {
	case err == nil:
	case errors.Is(err, fs.ErrExist) && !replace:
		return fmt.Errorf("%s appeared while it was being written: nothing was written over it; choose another name, or add -force to replace it", path)
	case !replace && !linkUnsupported(err):
		return fmt.Errorf("move %s into place: %w", path, err)
	default:
		// Replacing, or links are not supported here: a rename, after one
		// more look when nothing may be replaced.
		if _, err := os.Lstat(path); err == nil && !replace {
			return fmt.Errorf("%s appeared while it was being written: nothing was written over it; choose another name, or add -force to replace it", path)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("move %s into place: %w", path, err)
		}
	}
	return syncDir(filepath.Dir(path))
}

// linkUnsupported reports whether a hard link failed because the file
// system has none, not because of the names involved.
func linkUnsupported(err error) bool {
	return errors.Is(err, errors.ErrUnsupported) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EXDEV)
}

// checkOutput refuses out when it is the database, its key file or the
// backup token file, even with force: writing there would destroy what
// the command exists to keep. Any other existing file is refused unless
// force is set. Names are compared as files (os.SameFile, symlinks and
// hard links resolved), not as strings.
func (t Tool) checkOutput(out string, force bool) error {
	cfg := t.Config
	key := cfg.Storage.KeyFile
	if key == "" {
		key = filepath.Join(filepath.Dir(cfg.Storage.Path), storage.KeyFileName)
	}
	for _, p := range []struct{ what, path string }{
		{"the database (storage.path)", cfg.Storage.Path},
		{"the reflection key file", key},
		{"the backup token file", BackupTokenPath(cfg)},
	} {
		if SameFile(out, p.path) {
			return Mark(ErrConfig, fmt.Errorf("%s is %s: nothing was written; name a different file (-force never writes over it)", out, p.what))
		}
	}
	info, err := os.Lstat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("cannot look at %s: %w", out, err)
	case info.IsDir():
		return Mark(ErrConfig, fmt.Errorf("%s is a directory: name the file to write, e.g. %s", out, filepath.Join(out, "nudgebot-backup.db")))
	case !force:
		return Mark(ErrConfig, fmt.Errorf("%s already exists: nothing was written; choose a new name, or add -force to replace it", out))
	}
	return nil
}

// writeTempChecked creates a temporary file with mode 0600 beside path,
// lets fill write it, syncs it to disk and runs verify; it returns the
// file's name, or removes the file on any failure.
func writeTempChecked(path string, fill func(*os.File) error, verify func(string) error) (_ string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("create a temporary file beside %s: %w (check the directory exists and is writable)", path, err)
	}
	name := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(name)
		}
	}()
	// CreateTemp makes it 0600 already; say so in case of an odd umask
	// or platform.
	if err := f.Chmod(0o600); err != nil {
		return "", fmt.Errorf("restrict %s to its owner: %w", name, err)
	}
	if err := fill(f); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("flush %s to disk: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", name, err)
	}
	if verify != nil {
		if err := verify(name); err != nil {
			return "", fmt.Errorf("the copy failed its check, so it was discarded: %w", err)
		}
	}
	return name, nil
}

// syncDir makes a rename in dir survive a power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// keepOwner gives the file at path the owner of was, the file it
// replaces. An operator running a tool as root would otherwise hand the
// bot's own user (a systemd DynamicUser, say) a database it cannot open.
// Without the right to chown, it says what to run instead.
func keepOwner(path string, was os.FileInfo, stderr io.Writer) {
	if was == nil {
		return
	}
	uid, gid, ok := fileOwner(was)
	if !ok {
		return // not Unix
	}
	now, err := os.Stat(path)
	if err != nil {
		return
	}
	if u, g, _ := fileOwner(now); u == uid && g == gid {
		return
	}
	if err := os.Chown(path, uid, gid); err != nil {
		fmt.Fprintf(stderr, "warning: %s is now owned by you, not by the user nudgebot runs as (%d:%d): run `chown %d:%d %s` before starting nudgebot\n", path, uid, gid, uid, gid, path)
	}
}

// fileOwner returns a file's uid and gid where the platform has them.
// Reflection keeps this free of per-platform files: syscall.Stat_t only
// exists on Unix.
func fileOwner(info os.FileInfo) (uid, gid int, ok bool) {
	v := reflect.ValueOf(info.Sys())
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return 0, 0, false
	}
	u, g := v.Elem().FieldByName("Uid"), v.Elem().FieldByName("Gid")
	if !u.IsValid() || !g.IsValid() || !u.CanUint() || !g.CanUint() {
		return 0, 0, false
	}
	return int(u.Uint()), int(g.Uint()), true
}

// SameFile reports whether a and b name the same file or directory,
// existing or not: existing files are compared with os.SameFile (so
// symlinks and hard links are seen through), missing ones by their
// absolute paths with the symlinks in their directories resolved.
func SameFile(a, b string) bool {
	ia, errA := os.Stat(a)
	ib, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(ia, ib)
	}
	if errA == nil || errB == nil {
		return false // one exists, the other not
	}
	ra, rb := resolved(a), resolved(b)
	return ra != "" && ra == rb
}

// resolved is path made absolute with symlinks resolved as far as they
// exist; "" if that fails.
func resolved(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	dir, base := filepath.Split(abs)
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	} else if d := resolved(filepath.Clean(dir)); d != "" && filepath.Clean(dir) != abs {
		dir = d
	}
	// A dangling symlink names where it points.
	if target, err := os.Readlink(abs); err == nil {
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		return filepath.Clean(target)
	}
	return filepath.Join(dir, base)
}

// progress reports a long copy on stderr: redrawn in place at most ten
// times a second on a terminal, and as a plain line at each quarter
// otherwise, so logs and cron mail stay short.
