package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// sampleFile is a closed database file with branch pages, nested
// buckets and a free list with pages on it, and what is on its pages.
type sampleFile struct {
	data     []byte
	pageSize int
	meta     snapMeta
	kinds    map[uint64]string // page id → "branch", "leaf", "free", "freelist", "meta", …
	children map[uint64][]uint64
}

func newSampleFile(t *testing.T) sampleFile {
	t.Helper()
	db := openWithSubscribers(t, 3000, 10)
	// Delete some, so pages go on the free list.
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketSubscribers))
		for i := 0; i < 3000; i += 3 {
			if err := b.Delete(fmt.Appendf(nil, "U%07d", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pageSize := db.bolt.Info().PageSize
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	s := sampleFile{data: data, pageSize: pageSize, meta: currentMeta(t, data, pageSize),
		kinds: map[uint64]string{}, children: map[uint64][]uint64{}}
	bdb, err := bolt.Open(writeSample(t, data), 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.View(func(tx *bolt.Tx) error {
		for id := 0; int64(id)*int64(pageSize) < tx.Size(); id++ {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return fmt.Errorf("page %d: %v", id, err)
			}
			s.kinds[uint64(id)] = info.Type
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, kind := range s.kinds {
		if kind == "branch" {
			p := s.page(id)
			for i := range int(le.Uint16(p[10:])) {
				s.children[id] = append(s.children[id], le.Uint64(p[pageHeaderSize+i*elementSize+8:]))
			}
		}
	}
	return s
}

func writeSample(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sample.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// currentMeta is the sound meta page with the higher txid, as bbolt
// chooses at open.
func currentMeta(tb testing.TB, data []byte, pageSize int) snapMeta {
	tb.Helper()
	var best snapMeta
	found := false
	for id := range 2 {
		if len(data) < (id+1)*pageSize {
			break
		}
		if m, err := parseMeta(data[id*pageSize:], pageSize); err == nil && (!found || m.txid > best.txid) {
			best, found = m, true
		}
	}
	if !found {
		tb.Fatal("no sound meta page")
	}
	return best
}

func (s sampleFile) page(id uint64) []byte {
	return s.data[id*uint64(s.pageSize) : (id+1)*uint64(s.pageSize)]
}

// first returns the first page of a kind that pred accepts.
func (s sampleFile) first(t *testing.T, kind string, pred func(id uint64) bool) uint64 {
	t.Helper()
	for id := uint64(0); id < s.meta.hwm; id++ {
		if s.kinds[id] == kind && (pred == nil || pred(id)) {
			return id
		}
	}
	t.Fatalf("the sample has no %s page that fits", kind)
	return 0
}

// parentOf returns the branch page holding child, and its index there.
func (s sampleFile) parentOf(child uint64) (uint64, int) {
	for id, kids := range s.children {
		for i, k := range kids {
			if k == child {
				return id, i
			}
		}
	}
	return 0, -1
}

func (s sampleFile) walk(data []byte) error {
	return walkSnapshot(bytes.NewReader(data), s.pageSize, s.meta, func() error { return nil })
}

// Ensure the walk passes sound files: the sample, and files with
// reflections under their seal.
func TestSnapshotWalk_SoundFiles(t *testing.T) {
	s := newSampleFile(t)
	if err := s.walk(s.data); err != nil {
		t.Errorf("the sample: %v", err)
	}
	db := openWithReflections(t, "U1", 2000, benchText)
	if err := db.Check(); err != nil {
		t.Errorf("reflections: %v", err)
	}
}

// Ensure each kind of damage is found and named: the table plays each
// way a page can go wrong that bbolt's own check looks for.
func TestSnapshotWalk_FindsDamage(t *testing.T) {
	s := newSampleFile(t)
	if len(s.children) == 0 {
		t.Fatal("the sample has no branch pages")
	}
	leaf := s.first(t, "leaf", func(id uint64) bool { _, i := s.parentOf(id); return i > 0 })
	branch := s.first(t, "branch", func(id uint64) bool { return len(s.children[id]) >= 2 })
	freeCount := le.Uint16(s.page(s.meta.freelist)[10:])
	if freeCount < 2 || freeCount == 0xFFFF {
		t.Fatalf("the sample's free list holds %d pages; want a few", freeCount)
	}
	ids := func(p []byte) []byte { return p[pageHeaderSize:] } // the free list's ids
	lastKey := func(p []byte) []byte {
		off := pageHeaderSize + (int(le.Uint16(p[10:]))-1)*elementSize
		k, _ := span(p, off, le.Uint32(p[off+4:]), le.Uint32(p[off+8:]))
		return k
	}
	firstKey := func(p []byte) []byte {
		k, _ := span(p, pageHeaderSize, le.Uint32(p[pageHeaderSize+4:]), le.Uint32(p[pageHeaderSize+8:]))
		return k
	}
	tests := []struct {
		name   string
		damage func(data []byte)
		want   []string
	}{
		{"a leaf turned into another kind of page", func(d []byte) { le.PutUint16(s.at(d, leaf)[8:], freelistPage) },
			[]string{fmt.Sprintf("page %d", leaf), "not a branch or leaf page"}},
		{"a page header naming another page", func(d []byte) { le.PutUint64(s.at(d, leaf), leaf+1) },
			[]string{"its header says it is page"}},
		{"two children of a branch on one page", func(d []byte) {
			p := s.at(d, branch)
			le.PutUint64(p[pageHeaderSize+elementSize+8:], s.children[branch][0])
		}, []string{"reached more than once", "neither reachable nor free"}},
		{"a branch that points back at itself", func(d []byte) { le.PutUint64(s.at(d, branch)[pageHeaderSize+8:], branch) },
			[]string{fmt.Sprintf("page %d", branch), "reached more than once"}},
		{"keys out of order in a leaf", func(d []byte) { lastKey(s.at(d, leaf))[0] = 0 },
			[]string{"is not after key"}},
		{"a key below the range its parent gives", func(d []byte) { firstKey(s.at(d, leaf))[0] = 0 },
			[]string{"below its parent's range"}},
		{"a reachable page listed as free", func(d []byte) { le.PutUint64(ids(s.at(d, s.meta.freelist)), leaf) },
			[]string{fmt.Sprintf("page %d", leaf), "listed as free", "neither reachable nor free"}},
		{"a page freed twice", func(d []byte) {
			f := ids(s.at(d, s.meta.freelist))
			copy(f[8:16], f[0:8])
		}, []string{"listed twice", "neither reachable nor free"}},
		{"a free page left off the list", func(d []byte) { le.PutUint16(s.at(d, s.meta.freelist)[10:], freeCount-1) },
			[]string{"neither reachable nor free"}},
		{"a free list longer than its page", func(d []byte) { le.PutUint16(s.at(d, s.meta.freelist)[10:], 0xFFFE) },
			[]string{"more than its 1 pages hold"}},
		{"overflow past the end of the file", func(d []byte) { le.PutUint32(s.at(d, leaf)[12:], 1<<30) },
			[]string{"run past the high-water mark"}},
		{"an element pointing outside its page", func(d []byte) { le.PutUint32(s.at(d, leaf)[pageHeaderSize+4:], 1<<31) },
			[]string{"outside the page"}},
		{"more elements than the page holds", func(d []byte) { le.PutUint16(s.at(d, leaf)[10:], 0xFFFF) },
			[]string{"do not fit"}},
		{"a bucket whose root is past the end", func(d []byte) {
			root := s.at(d, s.meta.root)
			v, _ := span(root, pageHeaderSize, le.Uint32(root[pageHeaderSize+4:]), le.Uint32(root[pageHeaderSize+8:])+le.Uint32(root[pageHeaderSize+12:]))
			le.PutUint64(v[le.Uint32(root[pageHeaderSize+8:]):], s.meta.hwm+5)
		}, []string{"outside pages 2 to"}},
		{"a branch with no children", func(d []byte) { le.PutUint16(s.at(d, branch)[10:], 0) },
			[]string{"a branch page with no children"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			damaged := bytes.Clone(s.data)
			tt.damage(damaged)
			err := s.walk(damaged)
			if err == nil {
				t.Fatal("the walk found nothing")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the walk says\n%v\nwhich does not say %q", err, w)
				}
			}
		})
	}
}

func (s sampleFile) at(data []byte, id uint64) []byte {
	return data[id*uint64(s.pageSize) : (id+1)*uint64(s.pageSize)]
}

// Ensure writers are not held up by the background check: at every
// point where it stops to ask whether to go on (as it starts, every 256
// pages of the tree walk, every 1,024 records), a write commits before
// it goes on. If the check held bbolt's writer lock, the write would
// wait for the check, which waits for the write.
func TestStartCheck_WritersGoOn(t *testing.T) {
	db := openWithSubscribers(t, 5000, 0)
	paused, resume := make(chan struct{}), make(chan struct{})
	var broken atomic.Bool // once a write has waited, let the check run out
	done := make(chan error, 1)
	go func() {
		done <- db.fullCheck(func() error {
			if broken.Load() {
				return nil
			}
			paused <- struct{}{}
			<-resume
			return nil
		})
	}()
	writes := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the check: %v", err)
			}
			if writes < 3 {
				t.Errorf("the check paused %d times; want the start, the tree walk and the records", writes)
			}
			return
		case <-paused:
		}
		committed := make(chan error, 1)
		go func() {
			committed <- db.update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte(bucketMeta)).Put([]byte("test-write"), fmt.Appendf(nil, "%d", writes))
			})
		}()
		select {
		case err := <-committed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second): // only when broken: the write is waiting for the check
			t.Errorf("write %d waited for the check", writes+1)
			broken.Store(true)
			resume <- struct{}{}
			<-done
			<-committed
			return
		}
		writes++
		resume <- struct{}{}
	}
}

// Ensure Close overtakes a background check rather than wait for it to
// read the whole file, and that what it read counts as nothing found.
func TestStartCheck_CloseStopsIt(t *testing.T) {
	db := openWithSubscribers(t, 5000, 0)
	calls := 0
	err := db.fullCheck(func() error {
		if calls++; calls == 2 {
			db.closing.Store(true) // as Close does before it waits
		}
		return db.stopCheck()
	})
	if !errors.Is(err, errCheckStopped) {
		t.Fatalf("err = %v, want errCheckStopped", err)
	}
	if calls != 2 {
		t.Errorf("the check asked %d times; want it to stop when first told", calls)
	}
}

// FuzzSnapshotWalk holds the walk to its promise on any bytes: it
// answers, it never panics, and it reads no more than the file.
func FuzzSnapshotWalk(f *testing.F) {
	db := openWithSubscribers(f, 40, 0)
	pageSize := db.bolt.Info().PageSize
	if err := db.Close(); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(db.Path())
	if err != nil {
		f.Fatal(err)
	}
	// Only the pages in use: the rest of the file is room bbolt grew
	// into, and mutating it teaches the fuzzer nothing.
	f.Add(seed[:currentMeta(f, seed, pageSize).hwm*uint64(pageSize)])
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var txid uint64
		for id := range 2 {
			if len(data) >= (id+1)*pageSize {
				if m, err := parseMeta(data[id*pageSize:], pageSize); err == nil {
					txid = max(txid, m.txid)
				}
			}
		}
		meta, err := readSnapMeta(r, pageSize, int64(len(data)), txid)
		if err != nil {
			return // pinSnapshot refuses it before any walk
		}
		_ = walkSnapshot(r, pageSize, meta, func() error { return nil })
	})
}

// Ensure an inline bucket that claims to hold buckets is damage, not a
// place to go into: its elements may all point at the same bytes, and
// following them would revisit those bytes without end.
func TestSnapshotWalk_InlineBucketHoldsNone(t *testing.T) {
	leaf := func(flags uint32, key string, value []byte) []byte {
		p := make([]byte, pageHeaderSize+elementSize)
		le.PutUint16(p[8:], leafPage)
		le.PutUint16(p[10:], 1)
		e := p[pageHeaderSize:]
		le.PutUint32(e[0:], flags)
		le.PutUint32(e[4:], elementSize) // the key follows the element table
		le.PutUint32(e[8:], uint32(len(key)))
		le.PutUint32(e[12:], uint32(len(value)))
		return append(append(p, key...), value...)
	}
	bucketValue := func(inline []byte) []byte { return append(make([]byte, bucketHeaderSize), inline...) }
	inner := leaf(bucketLeaf, "b", bucketValue(leaf(0, "k", []byte("v"))))
	w := &snapshotWalk{meta: snapMeta{hwm: 10}, stop: func() error { return nil }}
	w.walkLeaf("its inline page", inner, nil, nil, "a", -1)
	if err := errors.Join(w.errs...); err == nil || !strings.Contains(err.Error(), "an inline bucket holds none") {
		t.Errorf("err = %v, want the inline bucket named as damage", err)
	}
	w = &snapshotWalk{meta: snapMeta{hwm: 10}, stop: func() error { return nil }}
	w.walkLeaf("page 2", leaf(bucketLeaf, "a", bucketValue(leaf(0, "k", []byte("v")))), nil, nil, "(root)", 0)
	if len(w.errs) != 0 {
		t.Errorf("a sound inline bucket: %v", errors.Join(w.errs...))
	}
}

// Ensure Check names damage that would send bbolt's own check outside
// the file, instead of letting it fault and take the process down: the
// walk runs first, and bbolt's check only on a tree the walk found sound.
func TestCheck_WalksBeforeBboltFollowsPageIDs(t *testing.T) {
	s := newSampleFile(t)
	branch := s.first(t, "branch", func(id uint64) bool { return len(s.children[id]) >= 3 })
	damaged := bytes.Clone(s.data)
	// A middle child, so Open's quick look at each bucket's first and
	// last keys does not pass through it.
	// Far enough past the end to be outside bbolt's mapping too: its
	// check would read there and fault, which no recover catches.
	le.PutUint64(s.at(damaged, branch)[pageHeaderSize+elementSize+8:], s.meta.hwm+100_000)
	for _, readOnly := range []bool{false, true} {
		db, err := Open(writeSample(t, damaged), Options{ReadOnly: readOnly, Timeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatalf("read-only %v: Open refused the file (%v); the test wants it to get as far as Check", readOnly, err)
		}
		err = db.Check()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "outside pages 2 to") {
			t.Errorf("read-only %v: Check = %v; want ErrCorrupt naming the page outside the file", readOnly, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
