package boltwalk

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

const testPageSize = 4096

// sampleFile is a closed bbolt file written by bbolt itself, with what is
// on its pages: branch pages, a free list with pages on it, buckets nested
// in buckets, inline buckets, and a value on overflow pages.
type sampleFile struct {
	data     []byte
	meta     Meta
	kinds    map[uint64]string // page id → "branch", "leaf", "free", "freelist", "meta", …
	children map[uint64][]uint64
	roots    map[string]uint64 // top-level bucket → root page
}

func newSampleFile(tb testing.TB) sampleFile { return buildSample(tb, 3000, 64) }

// buildSample writes the sample with this many subscribers and pages of
// its big value.
func buildSample(tb testing.TB, subscribers, bigPages int) sampleFile {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "sample.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: testPageSize})
	if err != nil {
		tb.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		subs, err := tx.CreateBucket([]byte("subscribers"))
		if err != nil {
			return err
		}
		for i := range subscribers {
			if err := subs.Put(fmt.Appendf(nil, "U%07d", i), bytes.Repeat([]byte{'s'}, 100)); err != nil {
				return err
			}
		}
		people, err := tx.CreateBucket([]byte("people"))
		if err != nil {
			return err
		}
		for i := range 40 { // small: inline
			b, err := people.CreateBucket(fmt.Appendf(nil, "P%03d", i))
			if err != nil {
				return err
			}
			for j := range 3 {
				if err := b.Put(fmt.Appendf(nil, "k%d", j), []byte("value")); err != nil {
					return err
				}
			}
		}
		many, err := people.CreateBucket([]byte("Q-many")) // large: pages of its own
		if err != nil {
			return err
		}
		for j := range subscribers / 6 {
			if err := many.Put(fmt.Appendf(nil, "k%04d", j), bytes.Repeat([]byte{'m'}, 50)); err != nil {
				return err
			}
		}
		big, err := tx.CreateBucket([]byte("zbig"))
		if err != nil {
			return err
		}
		return big.Put([]byte("v"), bytes.Repeat([]byte{'b'}, bigPages*testPageSize))
	})
	if err == nil {
		// Delete some, so pages go on the free list.
		err = db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("subscribers"))
			for i := 0; i < subscribers; i += 3 {
				if err := b.Delete(fmt.Appendf(nil, "U%07d", i)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	meta, err := OpenMeta(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		tb.Fatal(err)
	}
	s := sampleFile{data: data, meta: meta, kinds: map[uint64]string{}, children: map[uint64][]uint64{}, roots: map[string]uint64{}}
	s.survey(tb, path)
	return s
}

// survey asks bbolt what each page is.
func (s *sampleFile) survey(tb testing.TB, path string) {
	tb.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.View(func(tx *bolt.Tx) error {
		for id := 0; int64(id)*testPageSize < tx.Size(); id++ {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return fmt.Errorf("page %d: %v", id, err)
			}
			s.kinds[uint64(id)] = info.Type
			id += info.OverflowCount
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			s.roots[string(name)] = uint64(b.Root())
			return nil
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	for id, kind := range s.kinds {
		if kind == "branch" {
			p := s.page(s.data, id)
			for i := range int(le.Uint16(p[10:])) {
				s.children[id] = append(s.children[id], le.Uint64(p[pageHeaderSize+i*elementSize+8:]))
			}
		}
	}
}

func (s sampleFile) page(data []byte, id uint64) []byte {
	return data[id*testPageSize : (id+1)*testPageSize]
}

// first returns the first page of a kind that pred accepts.
func (s sampleFile) first(tb testing.TB, kind string, pred func(id uint64) bool) uint64 {
	tb.Helper()
	for id := uint64(0); id < s.meta.HWM; id++ {
		if s.kinds[id] == kind && (pred == nil || pred(id)) {
			return id
		}
	}
	tb.Fatalf("the sample has no %s page that fits", kind)
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

// inlineValue returns the value (bucket header and inline page) of the
// first inline bucket in the leaf page id of data.
func (s sampleFile) inlineValue(tb testing.TB, data []byte, id uint64) []byte {
	tb.Helper()
	p := s.page(data, id)
	for i := range int(le.Uint16(p[10:])) {
		if le.Uint32(p[pageHeaderSize+i*elementSize:])&bucketLeaf == 0 {
			continue
		}
		_, v, err := element(p, i, true)
		if err == nil && le.Uint64(p[v.start:]) == 0 {
			return p[v.start:v.end]
		}
	}
	tb.Fatalf("page %d holds no inline bucket", id)
	return nil
}

// leafElement returns element i of the leaf page p: its flags, pos,
// ksize and vsize fields.
func leafElement(p []byte, i int) []byte {
	return p[pageHeaderSize+i*elementSize : pageHeaderSize+(i+1)*elementSize]
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r    *bytes.Reader
	read int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.read += int64(n)
	return n, err
}

func fnvSum(b []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}
