package storage_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// dumpAll is every record db dumps, each in its canonical form, sorted.
func dumpAll(t *testing.T, db interface {
	Dump(func(storage.Record) error) error
}) []string {
	t.Helper()
	var out []string
	err := db.Dump(func(r storage.Record) error {
		raw, err := storage.Canonical(r)
		out = append(out, string(raw))
		return err
	})
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	slices.Sort(out)
	return out
}

func load(t *testing.T, db *storage.DB, recs []string) {
	t.Helper()
	l, err := db.NewLoader()
	if err != nil {
		t.Fatalf("NewLoader: %v", err)
	}
	for _, raw := range recs {
		var r storage.Record
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			t.Fatal(err)
		}
		if err := l.Add(r); err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
	if err := l.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
}

// Ensure a file dumped and loaded into a fresh one holds the same
// records, passes the full check (its indexes were built), and behaves
// as the original: the copy is of records, not of bytes.
func TestDumpLoadRoundTrip(t *testing.T) {
	keys := storagetest.Keys(t, 3)
	src := storagetest.Open(t, storage.Options{Keys: keys})
	p := storagetest.Populate(t, src)
	recs := dumpAll(t, src)
	kinds := map[storage.Kind]int{}
	for _, raw := range recs {
		var r storage.Record
		_ = json.Unmarshal([]byte(raw), &r)
		kinds[r.Kind()]++
		if strings.Contains(raw, "standup") || strings.Contains(raw, "roadmap is unclear") {
			t.Errorf("a dumped record holds a reflection in the clear: %s", raw)
		}
	}
	for _, k := range storage.Kinds() {
		if kinds[k] == 0 && k != storage.KindForgetting {
			t.Errorf("Populate left no %s to copy", k)
		}
	}

	dst := storagetest.Open(t, storage.Options{Keys: keys})
	load(t, dst, recs)
	if got := dumpAll(t, dst); !slices.Equal(got, recs) {
		t.Errorf("the copy dumps differently:\n got %q\nwant %q", got, recs)
	}
	if err := dst.Check(); err != nil {
		t.Fatalf("Check of the copy: %v", err)
	}
	storagetest.CheckPopulated(t, dst, p)
}

// Ensure a load refuses a database that holds records, and writes
// nothing into it.
func TestLoadRefusesNonEmpty(t *testing.T) {
	db := storagetest.Open(t, storage.Options{})
	if err := db.SetStrategyLines([]string{"One line"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewLoader(); !errors.Is(err, storage.ErrNotEmpty) {
		t.Fatalf("NewLoader on a database with a setting: %v, want ErrNotEmpty", err)
	}
	db2 := storagetest.Open(t, storage.Options{})
	if _, err := db2.MarkSeen("envelope", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := db2.NewLoader(); !errors.Is(err, storage.ErrNotEmpty) {
		t.Fatalf("NewLoader on a database with an envelope: %v, want ErrNotEmpty", err)
	}
}

// Ensure a person whose Forget was cut short is not copied, only their
// mark is, and the copy finishes the erasure when it is opened.
func TestDumpLeavesOutPeopleBeingForgotten(t *testing.T) {
	keys := storagetest.Keys(t, 3)
	path := filepath.Join(t.TempDir(), storagetest.FileName)
	src := storagetest.OpenAt(t, path, storage.Options{Keys: keys})
	p := storagetest.Populate(t, src)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	// Cut short after the mark, before the data key went: what a crash
	// inside Forget leaves.
	storagetest.Tamper(t, path, func(tx *bolt.Tx) error {
		raw, _ := json.Marshal(storagetest.PopulateTime)
		return tx.Bucket([]byte("forgetting")).Put([]byte(p.Ben), raw)
	})
	src = storagetest.OpenReadOnly(t, path)
	recs := dumpAll(t, src)
	marks := 0
	for _, raw := range recs {
		var r storage.Record
		_ = json.Unmarshal([]byte(raw), &r)
		if r.Forgetting != nil {
			marks++
			continue
		}
		if strings.Contains(raw, `"`+p.Ben+`"`) && r.Pulse == nil && r.Digest == nil {
			t.Errorf("a record of Ben, who is being forgotten, was dumped: %s", raw)
		}
	}
	if marks != 1 {
		t.Errorf("%d forgetting marks dumped, want 1", marks)
	}
	dstPath := filepath.Join(t.TempDir(), storagetest.FileName)
	dst := storagetest.OpenAt(t, dstPath, storage.Options{Keys: keys})
	load(t, dst, recs)
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	dst = storagetest.OpenAt(t, dstPath, storage.Options{Keys: keys}) // finishes the forget
	if _, err := dst.Subscriber(p.Ben); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("Ben in the copy: %v", err)
	}
	if got := dumpAll(t, dst); slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, `"forgetting"`) }) {
		t.Errorf("the copy still marks Ben as being forgotten after its open")
	}
}

// Ensure a record that does not decode stops the dump with ErrDamaged.
func TestDumpRefusesDamagedRecord(t *testing.T) {
	keys := storagetest.Keys(t, 3)
	path := filepath.Join(t.TempDir(), storagetest.FileName)
	db := storagetest.OpenAt(t, path, storage.Options{Keys: keys})
	storagetest.Populate(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	storagetest.Tamper(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("delivery_records"))
		k, _ := b.Cursor().Last()
		return b.Put(bytes.Clone(k), []byte{0xff, 0xff})
	})
	db = storagetest.OpenReadOnly(t, path)
	defer db.Close()
	err := db.Dump(func(storage.Record) error { return nil })
	if !errors.Is(err, storage.ErrDamaged) {
		t.Fatalf("Dump of a damaged record: %v, want ErrDamaged", err)
	}
}
