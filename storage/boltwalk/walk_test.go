package boltwalk

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Ensure the walk passes files bbolt wrote: the sample, with its nested,
// inline and overflowing buckets, and a fresh empty file.
func TestWalk_SoundFiles(t *testing.T) {
	s := newSampleFile(t)
	if _, err := File(bytes.NewReader(s.data), int64(len(s.data))); err != nil {
		t.Errorf("the sample: %v", err)
	}
	for _, kind := range []string{"branch", "leaf", "free", "freelist"} {
		s.first(t, kind, nil) // the sample has each kind of page
	}
	if s.roots["zbig"] == 0 || le.Uint32(s.page(s.data, s.roots["zbig"])[12:]) == 0 {
		t.Error("the sample's big value is not on overflow pages")
	}
	s.inlineValue(t, s.data, s.inlineLeaf(t))
}

// inlineLeaf returns a leaf page holding an inline bucket.
func (s sampleFile) inlineLeaf(tb testing.TB) uint64 {
	tb.Helper()
	return s.first(tb, "leaf", func(id uint64) bool {
		p := s.page(s.data, id)
		for i := range int(le.Uint16(p[10:])) {
			if le.Uint32(leafElement(p, i))&bucketLeaf != 0 {
				if _, v, err := element(p, i, true); err == nil && le.Uint64(p[v.start:]) == 0 {
					return true
				}
			}
		}
		return false
	})
}

// damageCase is a way a file can go wrong and what the walk must say.
type damageCase struct {
	name   string
	damage func(data []byte)
	want   []string
}

// damageCases plays each way a page can go wrong that bbolt's own check
// looks for, and each that the operator-safety issue names: bbolt panics,
// loops or faults on the last ones.
func damageCases(tb testing.TB, s sampleFile) []damageCase {
	tb.Helper()
	leaf := s.first(tb, "leaf", func(id uint64) bool { _, i := s.parentOf(id); return i > 0 })
	branch := s.first(tb, "branch", func(id uint64) bool { return len(s.children[id]) >= 2 })
	inline := s.inlineLeaf(tb)
	freeCount := le.Uint16(s.page(s.data, s.meta.Freelist)[10:])
	if freeCount < 2 || freeCount == 0xFFFF {
		tb.Fatalf("the sample's free list holds %d pages; want a few", freeCount)
	}
	ids := func(p []byte) []byte { return p[pageHeaderSize:] } // the free list's ids
	key := func(p []byte, i int) []byte {
		k, _, _ := element(p, i, true)
		return p[k.start:k.end]
	}
	at := func(d []byte, id uint64) []byte { return s.page(d, id) }
	inlinePage := func(d []byte) []byte { return s.inlineValue(tb, d, inline)[bucketHeaderSize:] }
	return []damageCase{
		{"a leaf turned into another kind of page", func(d []byte) { le.PutUint16(at(d, leaf)[8:], freelistPage) },
			[]string{fmt.Sprintf("page %d", leaf), "not a branch or leaf page"}},
		{"a page header naming another page", func(d []byte) { le.PutUint64(at(d, leaf), leaf+1) },
			[]string{"its header says it is page"}},
		{"two children of a branch on one page", func(d []byte) {
			le.PutUint64(at(d, branch)[pageHeaderSize+elementSize+8:], s.children[branch][0])
		}, []string{"reached more than once", "neither reachable nor free"}},
		{"a branch that points back at itself", func(d []byte) { le.PutUint64(at(d, branch)[pageHeaderSize+8:], branch) },
			[]string{fmt.Sprintf("page %d", branch), "reached more than once"}},
		{"keys out of order in a leaf", func(d []byte) { p := at(d, leaf); key(p, int(le.Uint16(p[10:]))-1)[0] = 0 },
			[]string{"is not after key"}},
		{"a key below the range its parent gives", func(d []byte) { key(at(d, leaf), 0)[0] = 0 },
			[]string{"below its parent's range"}},
		{"a reachable page listed as free", func(d []byte) { le.PutUint64(ids(at(d, s.meta.Freelist)), leaf) },
			[]string{fmt.Sprintf("page %d", leaf), "listed as free", "neither reachable nor free"}},
		{"a page freed twice", func(d []byte) {
			f := ids(at(d, s.meta.Freelist))
			copy(f[8:16], f[0:8])
		}, []string{"listed twice", "neither reachable nor free"}},
		{"a free page left off the list", func(d []byte) { le.PutUint16(at(d, s.meta.Freelist)[10:], freeCount-1) },
			[]string{"neither reachable nor free"}},
		{"a free list longer than its page", func(d []byte) { le.PutUint16(at(d, s.meta.Freelist)[10:], 0xFFFE) },
			[]string{"more than its 1 pages hold"}},
		{"a free list naming a page above the high-water mark", func(d []byte) {
			le.PutUint64(ids(at(d, s.meta.Freelist)), s.meta.HWM+10)
		}, []string{fmt.Sprintf("page %d is outside pages 2 to %d", s.meta.HWM+10, s.meta.HWM)}},
		{"overflow past the end of the file", func(d []byte) { le.PutUint32(at(d, leaf)[12:], 1<<30) },
			[]string{"run past the high-water mark"}},
		{"an element pointing outside its page", func(d []byte) { le.PutUint32(leafElement(at(d, leaf), 0)[4:], 1<<31) },
			[]string{"outside the page"}},
		{"two keys on the same bytes", func(d []byte) {
			p := at(d, leaf)
			le.PutUint32(leafElement(p, 1)[4:], le.Uint32(leafElement(p, 0)[4:])+elementSize)
		}, []string{"overlap the element table or the element before"}},
		{"more elements than the page holds", func(d []byte) { le.PutUint16(at(d, leaf)[10:], 0xFFFF) },
			[]string{"do not fit"}},
		{"a bucket whose root is past the end", func(d []byte) {
			root := at(d, s.meta.Root)
			_, v, _ := element(root, 0, true)
			le.PutUint64(root[v.start:], s.meta.HWM+5)
		}, []string{"outside pages 2 to"}},
		{"a branch with no children", func(d []byte) { le.PutUint16(at(d, branch)[10:], 0) },
			[]string{"a branch page with no children"}},
		{"an inline bucket page whose flags are 0", func(d []byte) { le.PutUint16(inlinePage(d)[8:], 0) },
			[]string{"its inline page is not a leaf page"}},
		{"an inline key whose size points outside its value", func(d []byte) {
			le.PutUint32(leafElement(inlinePage(d), 0)[8:], 3*testPageSize)
		}, []string{"its inline page", "outside the page"}},
		{"an inline bucket holding a bucket", func(d []byte) { le.PutUint32(leafElement(inlinePage(d), 0), bucketLeaf) },
			[]string{"an inline bucket holds none"}},
		{"a meta page naming pages past the end of the file", func(d []byte) { setHWM(d, s.meta, s.meta.HWM+100) },
			[]string{"it was truncated"}},
	}
}

// setHWM rewrites the current meta page's high-water mark, and its checksum.
func setHWM(d []byte, m Meta, hwm uint64) {
	for id := range 2 {
		p := d[id*m.PageSize:]
		if le.Uint64(p[pageHeaderSize+48:]) == m.TxID {
			meta := p[pageHeaderSize : pageHeaderSize+metaSize]
			le.PutUint64(meta[40:], hwm)
			h := fnvSum(meta[:metaChecksumAt])
			le.PutUint64(meta[metaChecksumAt:], h)
		}
	}
}

// Ensure each kind of damage is found and named, that the walk reads no
// page twice, and that its key comparisons look at no more bytes than the
// file holds.
func TestWalk_FindsDamage(t *testing.T) {
	s := newSampleFile(t)
	for _, tt := range damageCases(t, s) {
		t.Run(tt.name, func(t *testing.T) {
			damaged := bytes.Clone(s.data)
			tt.damage(damaged)
			r := &countingReader{r: bytes.NewReader(damaged)}
			meta, err := File(r, int64(len(damaged)))
			if err == nil {
				t.Fatal("the walk found nothing")
			}
			var d *Damage
			if !errors.As(err, &d) {
				t.Errorf("err is a %T, not a *Damage", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the walk says\n%v\nwhich does not say %q", err, w)
				}
			}
			if max := int64(len(damaged)) + 3*testPageSize; r.read > max { // the meta pages and the free list's head are read twice
				t.Errorf("the walk read %d bytes of a %d-byte file", r.read, len(damaged))
			}
			if meta.TxID != s.meta.TxID && !strings.Contains(tt.name, "meta") {
				t.Errorf("the walk chose transaction %d, not %d", meta.TxID, s.meta.TxID)
			}
		})
	}
}

// Ensure crafted files cost the walk time in proportion to their size.
// Keys that share their bytes made the walk before this package compare
// them at a cost of the square of a page's entries (6.3 s at 8,192, and
// 50 minutes at 65,535); children pointing into one long run of overflow
// pages made it read each run again from each child (4 GB of reads for
// a 17 MB file). Each is damage, found at a cost bounded by the file.
func TestWalk_CostIsLinear(t *testing.T) {
	s := newSampleFile(t)
	big := s.roots["zbig"]
	overflow := int(le.Uint32(s.page(s.data, big)[12:]))
	branch := s.first(t, "branch", func(id uint64) bool { return len(s.children[id]) > overflow })
	tests := []struct {
		name   string
		damage func(d []byte)
		want   string
	}{
		{"sound", func([]byte) {}, ""},
		{"8,192 keys sharing their bytes", func(d []byte) { shareKeys(d[big*testPageSize:(big+uint64(overflow)+1)*testPageSize], 8192) },
			"overlap the element table or the element before"},
		{"4,096 buckets sharing one inline page of 4,096 keys sharing their bytes", func(d []byte) {
			shareBuckets(d[big*testPageSize:(big+uint64(overflow)+1)*testPageSize], 4096, 4096)
		}, "overlap the element table or the element before"},
		{"children pointing into one run of overflow pages", func(d []byte) {
			p := s.page(d, branch)
			for j := 0; j <= overflow; j++ {
				// Child j is page big+overflow-j, whose header claims
				// the overflow pages up to the end of the run.
				id := big + uint64(overflow-j)
				h := s.page(d, id)
				le.PutUint64(h, id)
				le.PutUint16(h[8:], leafPage)
				le.PutUint16(h[10:], 0)
				le.PutUint32(h[12:], uint32(j))
				le.PutUint64(p[pageHeaderSize+j*elementSize+8:], id)
			}
		}, "reached more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := bytes.Clone(s.data)
			tt.damage(d)
			r := &countingReader{r: bytes.NewReader(d)}
			w, err := run(r, s.meta, nil)
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if r.read > int64(len(d))+testPageSize {
				t.Errorf("the walk read %d bytes of a %d-byte file", r.read, len(d))
			}
			if w.compared > 2*len(d) {
				t.Errorf("the walk's key comparisons looked at %d bytes of a %d-byte file", w.compared, len(d))
			}
			t.Logf("read %d bytes, compared %d, of %d", r.read, w.compared, len(d))
		})
	}
}

// shareKeys rewrites the leaf page p (with its overflow) into n entries
// whose keys are the suffixes of one run of bytes, "aa…ab", "a…ab", …,
// "b": in strictly ascending order, so bbolt's own check passes them,
// but each as long as the rest of the run.
func shareKeys(p []byte, n int) {
	run := pageHeaderSize + n*elementSize
	if run+n > len(p) {
		panic(fmt.Sprintf("%d keys do not fit in %d bytes", n, len(p)))
	}
	le.PutUint16(p[10:], uint16(n))
	for i := range n {
		e := leafElement(p, i)
		le.PutUint32(e[0:], 0)
		le.PutUint32(e[4:], uint32(run+i-(pageHeaderSize+i*elementSize)))
		le.PutUint32(e[8:], uint32(n-i))
		le.PutUint32(e[12:], 0)
		p[run+i] = 'a'
	}
	p[run+n-1] = 'b'
}

// shareBuckets rewrites the leaf page p (with its overflow) into n
// buckets whose names are suffixes of one run of bytes, as shareKeys
// makes them, and whose values are therefore one and the same: an inline
// page of m keys made by shareKeys. A walk that follows each bucket
// compares n·m²/2 bytes.
func shareBuckets(p []byte, n, m int) {
	inline := make([]byte, pageHeaderSize+m*elementSize+m)
	le.PutUint16(inline[8:], leafPage)
	shareKeys(inline, m)
	value := append(make([]byte, bucketHeaderSize), inline...)
	run := pageHeaderSize + n*elementSize
	if run+n+len(value) > len(p) {
		panic(fmt.Sprintf("%d buckets do not fit in %d bytes", n, len(p)))
	}
	le.PutUint16(p[10:], uint16(n))
	for i := range n {
		e := leafElement(p, i)
		le.PutUint32(e[0:], bucketLeaf)
		le.PutUint32(e[4:], uint32(run+i-(pageHeaderSize+i*elementSize)))
		le.PutUint32(e[8:], uint32(n-i))
		le.PutUint32(e[12:], uint32(len(value)))
		p[run+i] = 'a'
	}
	p[run+n-1] = 'b'
	copy(p[run+n:], value)
}

// Ensure OpenMeta chooses the meta page bbolt chooses: the valid one with
// the higher transaction id, else the other.
func TestOpenMeta_ChoosesAsBboltDoes(t *testing.T) {
	s := newSampleFile(t)
	current := 0
	if le.Uint64(s.data[testPageSize+pageHeaderSize+48:]) == s.meta.TxID {
		current = 1
	}
	d := bytes.Clone(s.data)
	d[current*testPageSize+pageHeaderSize+20]++ // the current meta's root: its checksum fails
	m, err := OpenMeta(bytes.NewReader(d), int64(len(d)))
	if err != nil || m.TxID != s.meta.TxID-1 {
		t.Errorf("with the current meta damaged: txid %d, %v; want the previous one, %d", m.TxID, err, s.meta.TxID-1)
	}
	d[(1-current)*testPageSize+pageHeaderSize+20]++
	if _, err := OpenMeta(bytes.NewReader(d), int64(len(d))); err == nil || !strings.Contains(err.Error(), "no valid meta page") {
		t.Errorf("with both damaged: %v; want no valid meta page", err)
	}
	for _, n := range []int{0, 100, testPageSize, testPageSize + 100} {
		if _, err := OpenMeta(bytes.NewReader(s.data[:n]), int64(n)); err == nil {
			t.Errorf("a file of %d bytes: no error", n)
		}
	}
}

// Ensure the walk ends with stop's error, and calls it as it goes.
func TestWalk_Stops(t *testing.T) {
	s := newSampleFile(t)
	stopped := errors.New("stopped")
	calls := 0
	err := Walk(bytes.NewReader(s.data), s.meta, func() error {
		if calls++; calls == 2 {
			return stopped
		}
		return nil
	})
	if !errors.Is(err, stopped) || calls != 2 {
		t.Errorf("err = %v after %d calls; want stopped after 2", err, calls)
	}
}

// FuzzWalk holds the walk to its promise on any bytes: it answers, it
// never panics, and it reads no page twice.
func FuzzWalk(f *testing.F) {
	s := buildSample(f, 300, 2) // small, so the fuzzer's mutations more often land in page headers
	f.Add(s.data[:s.meta.HWM*testPageSize])
	for _, tt := range damageCases(f, s) {
		d := bytes.Clone(s.data)
		tt.damage(d)
		f.Add(d[:s.meta.HWM*testPageSize])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &countingReader{r: bytes.NewReader(data)}
		meta, err := OpenMeta(r, int64(len(data)))
		if err != nil {
			return
		}
		r.read = 0
		w, _ := run(r, meta, nil)
		if r.read > int64(len(data))+int64(meta.PageSize) {
			t.Errorf("the walk read %d bytes of a %d-byte file", r.read, len(data))
		}
		if w != nil && w.compared > 2*len(data) {
			t.Errorf("the walk's key comparisons looked at %d bytes of a %d-byte file", w.compared, len(data))
		}
	})
}

// failingReader fails every read past its first n bytes, as a disk
// might.
type failingReader struct {
	r *bytes.Reader
	n int64
}

var errDisk = errors.New("input/output error")

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.n {
		return 0, errDisk
	}
	return f.r.ReadAt(p, off)
}

// Ensure a read that fails is reported as such, not as damage: the file
// may be sound and the disk at fault.
func TestWalk_ReadErrorIsNotDamage(t *testing.T) {
	s := newSampleFile(t)
	err := Walk(failingReader{bytes.NewReader(s.data), 4 * testPageSize}, s.meta, nil)
	var d *Damage
	if !errors.Is(err, errDisk) || errors.As(err, &d) {
		t.Errorf("err = %v; want the read error, not damage", err)
	}
}
