package storagetest

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/storage"
)

// OpenReadOnly opens the existing database at path the way check and
// backup tools do (a shared lock, no migration), to read what a command
// or the bot left in it. The caller closes it before anything needs the
// file's writer lock again; cleanup checks and closes it otherwise.
func OpenReadOnly(tb testing.TB, path string) *storage.DB {
	tb.Helper()
	return OpenAt(tb, path, storage.Options{ReadOnly: true, Timeout: time.Second})
}

// Tamper runs edit in one bbolt transaction on the closed database at
// path, below storage and its seals: what a writer without the key, or a
// damaged disk, can do to the file. It is how attack and damage tests
// change raw records, so no test opens bbolt itself.
func Tamper(tb testing.TB, path string, edit func(tx *bolt.Tx) error) {
	tb.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatalf("open %s below storage: %v", path, err)
	}
	// Closed however edit ends, a t.Fatal inside it included, so the
	// file is free for what the test does next or for its cleanup.
	defer func() {
		if err := bdb.Close(); err != nil {
			tb.Errorf("close %s: %v", path, err)
		}
	}()
	if err := bdb.Update(edit); err != nil {
		tb.Fatalf("tamper with %s: %v", path, err)
	}
}
