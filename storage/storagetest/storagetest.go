// Package storagetest is how tests outside package storage open a
// database: one helper, so every test's database is a fresh file in the
// test's own temporary directory, logs where the test's output goes, and
// is checked for consistency and closed at cleanup.
//
// (storage's own internal tests cannot import it, as it imports storage;
// they open theirs through storage.openTest, which does the same.)
package storagetest

import (
	"bytes"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/nudgebot/nudgebot/storage"
)

// FileName is the database's name in the test's temporary directory.
const FileName = "nudgebot.db"

// Open opens a fresh database in a temporary directory with opts.
func Open(tb testing.TB, opts storage.Options) *storage.DB {
	tb.Helper()
	return OpenAt(tb, filepath.Join(tb.TempDir(), FileName), opts)
}

// OpenAt opens the database at path with opts; a nil Logger logs
// warnings and worse to the test's output. At cleanup it runs the full
// consistency check, then closes the database; a test may close it
// itself (to reopen it, or to run a command on the file), and cleanup
// then skips both.
func OpenAt(tb testing.TB, path string, opts storage.Options) *storage.DB {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	db, err := storage.Open(path, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := db.Check(); err != nil && !errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
			tb.Errorf("Check at cleanup: %v", err)
		}
		if err := db.Close(); err != nil {
			tb.Errorf("Close at cleanup: %v", err)
		}
	})
	return db
}

// Keys are master keys made from a fixed byte, so a test can reopen its
// file with the same keys, or a different byte for a wrong key.
func Keys(tb testing.TB, b byte) *storage.Keys {
	tb.Helper()
	keys, err := storage.NewKeys(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}
