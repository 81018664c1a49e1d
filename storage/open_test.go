package storage_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// Ensure a missing file becomes a fresh database, private to its owner,
// at the current schema version.
func TestOpen_Fresh(t *testing.T) {
	db := MustOpen(t)
	info, err := os.Stat(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("mode=%v, want 0600", got)
	}
	size, err := db.Size()
	if err != nil {
		t.Fatalf("Size: %v", err)
	}
	if size != info.Size() || size == 0 {
		t.Errorf("Size()=%d, want the file's size %d (> 0)", size, info.Size())
	}
	if err := db.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rawSchemaVersion(t, db.Path()); got != strconv.Itoa(storage.SchemaVersion) {
		t.Errorf("schema_version=%q, want %d", got, storage.SchemaVersion)
	}
}

// Ensure everything written survives a restart.
func TestOpen_ReopenKeepsState(t *testing.T) {
	db := MustOpen(t)
	want := subscribe(t, db, "U1", base)
	subscribe(t, db, "U2", time.Time{})
	d := pending("U1", base)
	if _, err := db.StartDelivery(d, base, setNextDue(base.Add(24*time.Hour))); err != nil {
		t.Fatal(err)
	}
	want.NextDue = base.Add(24 * time.Hour)
	if _, err := db.MarkSeen("env-1", base); err != nil {
		t.Fatal(err)
	}

	db = reopen(t, db)

	got, err := db.Subscriber("U1")
	if err != nil {
		t.Fatalf("Subscriber: %v", err)
	}
	if !equalJSON(t, got, want) {
		t.Errorf("Subscriber=%+v, want %+v", got, want)
	}
	if ids := mustDue(t, db, base.Add(48*time.Hour)); !slices.Equal(ids, []string{"U1"}) {
		t.Errorf("Due=%v, want [U1]", ids)
	}
	if ids := mustPendingIDs(t, db); !slices.Equal(ids, []string{d.ID}) {
		t.Errorf("Pending=%v, want [%s]", ids, d.ID)
	}
	if first, err := db.MarkSeen("env-1", base.Add(time.Hour)); err != nil || first {
		t.Errorf("MarkSeen after reopen = %v, %v; want false, nil", first, err)
	}
	total, active, err := db.CountSubscribers()
	if err != nil || total != 2 || active != 2 {
		t.Errorf("CountSubscribers=%d, %d, %v; want 2, 2, nil", total, active, err)
	}
}

// Ensure the operator hears about a database file others can read, and
// about a missing path.
func TestOpen_WarnsAboutLaxPermissions(t *testing.T) {
	db := MustOpen(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(db.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	MustOpenAt(t, db.Path(), storage.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "chmod 600") {
		t.Errorf("logs=%q, want a warning to chmod 600", logs.String())
	}

	if _, err := storage.Open("", storage.Options{}); err == nil || !strings.Contains(err.Error(), "storage.path") {
		t.Errorf("Open(\"\"): err=%v, want one naming storage.path", err)
	}
}

// Ensure a second nudgebot on the same file gets a clear ErrInUse within
// about the timeout, instead of hanging on the lock.
func TestOpen_InUse(t *testing.T) {
	db := MustOpen(t)
	for _, readOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("ReadOnly=%v", readOnly), func(t *testing.T) {
			const timeout = 100 * time.Millisecond
			start := time.Now()
			other, err := storage.Open(db.Path(), storage.Options{Timeout: timeout, ReadOnly: readOnly})
			elapsed := time.Since(start)
			if err == nil {
				closeOK(t, other)
				t.Fatal("second Open succeeded, want ErrInUse")
			}
			if !errors.Is(err, storage.ErrInUse) {
				t.Errorf("err=%v, want ErrInUse", err)
			}
			want := "database " + db.Path() + " is in use by another process: stop the other nudgebot, or point storage.path elsewhere"
			if err.Error() != want {
				t.Errorf("err=%q, want %q", err, want)
			}
			// bbolt polls the lock every 50ms and stops one poll early.
			if elapsed > timeout+time.Second {
				t.Errorf("Open gave up after %v, want about %v", elapsed, timeout)
			}
		})
	}
}

// Ensure an empty file where a database was expected is refused, not
// silently turned into a fresh database.
func TestOpen_RefusesEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nudgebot.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, readOnly := range []bool{false, true} {
		db, err := storage.Open(path, storage.Options{ReadOnly: readOnly})
		if err == nil {
			closeOK(t, db)
			t.Fatalf("Open(ReadOnly=%v) of a 0-byte file succeeded, want ErrCorrupt", readOnly)
		}
		if !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("err=%v, want ErrCorrupt", err)
		}
		want := "database " + path + " is empty (0 bytes) but a database was expected: restore it from a backup, or delete the file to start afresh"
		if err.Error() != want {
			t.Errorf("err=%q, want %q", err, want)
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != 0 {
		t.Errorf("the refused file grew to %d bytes", info.Size())
	}
}

// Ensure damaged files are refused with restore instructions, without a
// panic and without a single byte written to them.
func TestOpen_RefusesDamagedFiles(t *testing.T) {
	orig, layout := realDatabase(t)
	const page = 4096
	used := int(layout.used)
	if used < 16*page {
		t.Fatalf("the sample database holds only %d bytes; the cases need at least %d", used, 16*page)
	}
	scribble := func(b []byte, from, to int) []byte {
		b = bytes.Clone(b)
		r := rand.New(rand.NewPCG(1, uint64(from)))
		for i := from; i < to; i++ {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	scribblePage := func(id uint64) []byte {
		if id < 2 || int(id+1)*page > used {
			t.Fatalf("page %d is not a data page of the sample database", id)
		}
		return scribble(orig, int(id)*page, int(id+1)*page)
	}
	tests := map[string][]byte{
		"truncated to 100 bytes":          orig[:100],
		"truncated to 4096":               orig[:4096],
		"truncated to 12288":              orig[:12288],
		"truncated to 16384":              orig[:16384],
		"truncated to half its data":      orig[:used/2],
		"truncated by its last used page": orig[:used-page],
		"random garbage":                  scribble(orig, 0, len(orig)),
		"both meta pages damaged":         scribble(orig, 16, 2*page),
		"every data page damaged":         scribble(orig, 2*page, used),
		"subscribers root page damaged":   scribblePage(layout.roots["subscribers"]),
		"deliveries root page damaged":    scribblePage(layout.roots[storage.RawRecordsBucket]),
	}
	for name, damaged := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "nudgebot.db")
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			// Twice: a refused open must also release the file's lock.
			for range 2 {
				db, err := storage.Open(path, storage.Options{Timeout: 100 * time.Millisecond})
				if err == nil {
					closeOK(t, db)
					t.Fatal("Open succeeded, want ErrCorrupt")
				}
				if !errors.Is(err, storage.ErrCorrupt) {
					t.Fatalf("err=%v, want ErrCorrupt", err)
				}
				for _, want := range []string{path, "nudgebot restore", "changed nothing", "keep the damaged file"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("err=%q lacks %q", err, want)
					}
				}
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, damaged) {
				t.Errorf("the refused file was modified: %d bytes before, %d after", len(damaged), len(after))
			}
		})
	}
}

// Ensure a file from a newer nudgebot is refused and left alone.
func TestOpen_RefusesNewerSchema(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", base)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, db.Path(), func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte(strconv.Itoa(storage.SchemaVersion+1)))
	})
	before, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}

	_, err = storage.Open(db.Path(), storage.Options{})
	if !errors.Is(err, storage.ErrNewerSchema) {
		t.Fatalf("err=%v, want ErrNewerSchema", err)
	}
	want := fmt.Sprintf("database schema version %d is newer than this nudgebot understands (%d): upgrade nudgebot or restore a backup made by this version", storage.SchemaVersion+1, storage.SchemaVersion)
	if err.Error() != want {
		t.Errorf("err=%q, want %q", err, want)
	}
	after, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the refused file was modified")
	}
}

// Ensure a file from before schema versioning is migrated: it gets a
// version, the missing buckets, and indexes built from its records.
func TestOpen_MigratesVersion0(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nudgebot.db")
	sub := nudges.Subscriber{UserID: "U1", Subscribed: true, NextDue: base}
	d := pending("U1", base.Add(-24*time.Hour))
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		subs, err := tx.CreateBucket([]byte("subscribers"))
		if err != nil {
			return err
		}
		if err := subs.Put([]byte("U1"), mustJSON(t, sub)); err != nil {
			return err
		}
		dels, err := tx.CreateBucket([]byte("deliveries"))
		if err != nil {
			return err
		}
		return dels.Put([]byte(d.ID), mustJSON(t, d))
	})

	db := MustOpenAt(t, path, storage.Options{})

	got, err := db.Subscriber("U1")
	if err != nil {
		t.Fatalf("Subscriber: %v", err)
	}
	if !got.NextDue.Equal(base) || !got.Subscribed {
		t.Errorf("Subscriber=%+v, want the stored record", got)
	}
	if ids := mustDue(t, db, base); !slices.Equal(ids, []string{"U1"}) {
		t.Errorf("Due=%v, want [U1] (the due index rebuilt)", ids)
	}
	if ids := mustPendingIDs(t, db); !slices.Equal(ids, []string{d.ID}) {
		t.Errorf("Pending=%v, want [%s] (the outbox rebuilt)", ids, d.ID)
	}
	if first, err := db.MarkSeen("e", base); err != nil || !first {
		t.Errorf("MarkSeen=%v, %v; want true, nil (the seen buckets created)", first, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rawSchemaVersion(t, path); got != strconv.Itoa(storage.SchemaVersion) {
		t.Errorf("schema_version=%q, want %d", got, storage.SchemaVersion)
	}
}

// Ensure read-only opens serve reads, refuse writes and never create
// a file.
func TestOpen_ReadOnly(t *testing.T) {
	t.Run("ErrNotExist", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.db")
		_, err := storage.Open(path, storage.Options{ReadOnly: true})
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
			t.Errorf("err=%v, want fs.ErrNotExist naming %s", err, path)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a read-only open created %s", path)
		}
	})
	t.Run("OK", func(t *testing.T) {
		rw := MustOpen(t)
		subscribe(t, rw, "U1", base)
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
		ro := MustOpenAt(t, rw.Path(), storage.Options{ReadOnly: true})
		if _, err := ro.Subscriber("U1"); err != nil {
			t.Errorf("Subscriber: %v", err)
		}
		if err := ro.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
		if _, err := ro.UpdateSubscriber("U1", func(*nudges.Subscriber) error { return nil }); err == nil {
			t.Error("UpdateSubscriber on a read-only database succeeded")
		}
		// Read-only opens share the lock.
		ro2 := MustOpenAt(t, rw.Path(), storage.Options{ReadOnly: true})
		if _, err := ro2.Subscriber("U1"); err != nil {
			t.Errorf("Subscriber via a second reader: %v", err)
		}
	})
}

// Ensure WriteTo produces a consistent copy that opens as a database.
func TestWriteTo(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", base)
	if _, err := db.StartDelivery(pending("U1", base), base, setNextDue(base.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := db.WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Errorf("WriteTo returned %d for %d bytes written", n, buf.Len())
	}
	// Writes after the backup must not show up in it.
	subscribe(t, db, "U2", base)

	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	backup := MustOpenAt(t, path, storage.Options{})
	if err := backup.Check(); err != nil {
		t.Errorf("Check of the backup: %v", err)
	}
	if _, err := backup.Subscriber("U1"); err != nil {
		t.Errorf("Subscriber U1 in the backup: %v", err)
	}
	if _, err := backup.Subscriber("U2"); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("Subscriber U2 in the backup: err=%v, want ErrNotFound", err)
	}
	if ids := mustPendingIDs(t, backup); len(ids) != 1 {
		t.Errorf("Pending in the backup=%v, want one", ids)
	}
}

// sampleLayout says where a sample database keeps its data.
type sampleLayout struct {
	used  int64             // bytes below the high-water mark; the file may be longer
	roots map[string]uint64 // root page of each bucket that has its own pages
}

// realDatabase returns the bytes of a closed database holding enough data
// to span many pages, and where that data is.
func realDatabase(t testing.TB) ([]byte, sampleLayout) {
	t.Helper()
	db := MustOpen(t)
	for i := range 24 {
		user := fmt.Sprintf("U%03d", i)
		_, err := db.UpdateSubscriber(user, func(s *nudges.Subscriber) error {
			s.Subscribed = true
			s.NextDue = base.Add(time.Duration(i) * time.Minute)
			for j := range 150 {
				s.Seen = append(s.Seen, fmt.Sprintf("nudge-%04d", j))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		d := pending(user, base)
		d.Reason = strings.Repeat("a reason long enough that the records fill pages of their own ", 2)
		if _, err := db.StartDelivery(d, base.Add(time.Duration(i)*time.Minute), setNextDue(base.Add(24*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	layout := sampleLayout{roots: map[string]uint64{}}
	bdb, err := bolt.Open(db.Path(), 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.View(func(tx *bolt.Tx) error {
		layout.used = tx.Size()
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if root := uint64(b.Root()); root != 0 {
				layout.roots[string(name)] = root
			}
			return nil
		})
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	return b, layout
}

func rawUpdate(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, bdb)
	if err := bdb.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func rawSchemaVersion(t *testing.T, path string) string {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, bdb)
	var v string
	err = bdb.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if meta == nil {
			return errors.New("no meta bucket")
		}
		v = string(meta.Get([]byte("schema_version")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// equalJSON compares values as stored, which is what a round trip keeps.
func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	return bytes.Equal(mustJSON(t, a), mustJSON(t, b))
}

// Ensure Check finds indexes that disagree with their records, which
// bbolt's own check cannot see.
func TestCheck_FindsIndexDrift(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", base)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, db.Path(), func(tx *bolt.Tx) error {
		// A pending delivery the outbox does not list.
		d := pending("U1", base)
		return tx.Bucket([]byte(storage.RawRecordsBucket)).Put(storage.RawDeliveryKey(t, d.ID), storage.RawDeliveryRecord(t, d))
	})
	db, err := storage.Open(db.Path(), storage.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer closeOK(t, db)
	err = db.Check()
	if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "outbox index lacks U1-20260302T090000Z") {
		t.Errorf("Check: err=%v, want ErrCorrupt naming the missing outbox entry", err)
	}
}

// Ensure a schema 2 file, from before retention, gets its slot index
// built from its deliveries and then its deliveries moved to the records
// of schema 5, so the oldest can be pruned and Check passes.
func TestOpen_MigratesToSlotIndex(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", base)
	old := pending("U1", base.Add(-400*24*time.Hour))
	old.State = nudges.StateSent
	recent := pending("U1", base)
	recent.State = nudges.StateSent
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	oldLayout(t, db.Path(), 2, []nudges.Delivery{old, recent})

	db = MustOpenAt(t, db.Path(), storage.Options{})
	if err := db.Check(); err != nil {
		t.Errorf("Check after migrating: %v", err)
	}
	st, err := db.Prune(base.Add(-24*time.Hour), 0)
	if err != nil || st.Deliveries != 1 {
		t.Errorf("Prune = %+v, %v; want the old delivery removed through the rebuilt index", st, err)
	}
	if _, err := db.Delivery(recent.ID); err != nil {
		t.Errorf("the recent delivery: %v", err)
	}
}

// Ensure damage to any one page in use (a tree's, or the free list) is
// found: either Open refuses the file at once, or it opens and the
// background check reports it.
func TestStartCheck_FindsWhatOpenLetsThrough(t *testing.T) {
	orig, _ := realDatabase(t)
	const page = 4096
	var inUse []int
	bdb, err := bolt.Open(writeTemp(t, orig), 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.View(func(tx *bolt.Tx) error {
		for id := 2; int64(id)*page < tx.Size(); id++ {
			if info, err := tx.Page(id); err == nil && info != nil && info.Type != "free" {
				inUse = append(inUse, id)
			}
		}
		return nil
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(inUse) < 5 {
		t.Fatalf("the sample has %d pages in use; want several", len(inUse))
	}
	openedAnyway := 0
	for _, id := range inUse {
		damaged := bytes.Clone(orig)
		r := rand.New(rand.NewPCG(2, uint64(id)))
		for i := id * page; i < (id+1)*page; i++ {
			damaged[i] = byte(r.Uint32())
		}
		path := writeTemp(t, damaged)
		db, err := storage.Open(path, storage.Options{Timeout: 100 * time.Millisecond})
		if err != nil {
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Errorf("page %d: Open err=%v, want ErrCorrupt", id, err)
			}
			continue
		}
		openedAnyway++
		<-db.StartCheck()
		done, err := db.CheckResult()
		if !done || !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("page %d: Open accepted the file and the background check says done=%v, err=%v; want ErrCorrupt", id, done, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		// `nudgebot check` and restore's verification open it read-only.
		if ro, err := storage.Open(path, storage.Options{ReadOnly: true, Timeout: 100 * time.Millisecond}); err == nil {
			if err := ro.Check(); !errors.Is(err, storage.ErrCorrupt) {
				t.Errorf("page %d: a read-only Check says %v; want ErrCorrupt", id, err)
			}
			if err := ro.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%d of %d damaged pages refused at Open, the rest found by the background check", len(inUse)-openedAnyway, len(inUse))
}

// Ensure the background check of a sound file passes, and that StartCheck
// runs it once.
func TestStartCheck_Passes(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", base)
	if done, err := db.CheckResult(); done || err != nil {
		t.Errorf("before StartCheck: done=%v err=%v, want false, nil", done, err)
	}
	first := db.StartCheck()
	if again := db.StartCheck(); again != first {
		t.Error("a second StartCheck started another check")
	}
	<-first
	if done, err := db.CheckResult(); !done || err != nil {
		t.Errorf("CheckResult = %v, %v; want true, nil", done, err)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nudgebot.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// oldLayout takes the file at path, written by this nudgebot with no
// delivery, back to the delivery layout of schema version (JSON records
// under their ids, an outbox of ids and, from schema 3, the slot index)
// holding ds, and marks it with version.
func oldLayout(t *testing.T, path string, version int, ds []nudges.Delivery) {
	t.Helper()
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		for _, name := range []string{storage.RawRecordsBucket, storage.RawByPersonBucket, storage.RawOutboxBucket} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		dels, err := tx.CreateBucket([]byte("deliveries"))
		if err != nil {
			return err
		}
		outbox, err := tx.CreateBucket([]byte("outbox"))
		if err != nil {
			return err
		}
		var bySlot *bolt.Bucket
		if version >= 3 {
			if bySlot, err = tx.CreateBucket([]byte("deliveries_by_slot")); err != nil {
				return err
			}
		}
		for _, d := range ds {
			if err := dels.Put([]byte(d.ID), mustJSON(t, d)); err != nil {
				return err
			}
			if d.State == nudges.StatePending {
				if err := outbox.Put([]byte(d.ID), []byte{}); err != nil {
					return err
				}
			}
			if bySlot != nil {
				k := binary.BigEndian.AppendUint64(nil, uint64(d.Slot.UnixNano()))
				if err := bySlot.Put(append(k, d.ID...), []byte{}); err != nil {
					return err
				}
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte(strconv.Itoa(version)))
	})
}
