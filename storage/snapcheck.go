package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/bits"
)

// The background check reads the file itself rather than through bbolt.
// bbolt's own check (tx.Check) reads the in-memory free list, which
// writers change, so it is only safe beside them inside a write
// transaction: on a 1 GB file that held every writer for 14–25 s. And it
// reads every page through bbolt's shared mapping, where each page read
// counts in the process's resident memory until it is given back.
//
// A snapshot walk needs neither. A read transaction is begun while the
// writer lock is held for a moment, and the meta page naming that
// transaction is read from the file then, before any commit can
// overwrite it. Once the lock is released, bbolt reuses no page that the
// read transaction can reach, nor the free-list page its meta names, until
// the transaction ends, so the snapshot stays as it was while writers go
// on; the walk reads it with pread, one page at a time, and keeps two
// bitmaps of the file's pages. It checks what tx.Check checks: every
// page of every bucket's tree is a branch or leaf page below the
// high-water mark, reached once, not free; keys are in order within a
// page and within the range its parent gives it; no page is freed twice;
// every page below the high-water mark is either reached or free.
//
// It depends on bbolt's on-disk format, version 2 (unchanged since boltdb,
// and the only one bbolt opens). It must not panic on any bytes, so every
// offset is checked before it is used; FuzzSnapshotWalk holds it to that.
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	elementSize      = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	bucketHeaderSize = 16 // root pgid u64, sequence u64; an inline bucket's page follows
	metaSize         = 64 // magic, version, page size, flags u32; root bucket; free list, high-water mark, txid, checksum u64
	metaChecksumAt   = 56

	branchPage   = 0x01
	leafPage     = 0x02
	metaPage     = 0x04
	freelistPage = 0x10
	bucketLeaf   = 0x01 // a leaf element that is a nested bucket

	noFreelist = ^uint64(0)

	// maxPageBytes bounds one page with its overflow: nudgebot's largest
	// record is a few KB, so a page claiming more is damage, not data,
	// and reading it would cost memory the check promises not to use.
	// The free list is read in pieces and has no such bound.
	maxPageBytes = 16 << 20

	// maxWalkErrors caps what one walk reports: damage tends to repeat
	// down a tree, and the first lines are the ones to read.
	maxWalkErrors = 20
)

// snapMeta is what a meta page says about its transaction's snapshot.
type snapMeta struct {
	root, freelist, hwm, txid uint64
}

// readSnapMeta reads both meta pages of a file of size bytes and returns
// the sound one written by transaction txid, once it is known to name
// pages inside the file: the walk sizes its bitmaps by it.
func readSnapMeta(r io.ReaderAt, pageSize int, size int64, txid uint64) (snapMeta, error) {
	var problems []error
	buf := make([]byte, pageHeaderSize+metaSize)
	for id := range 2 {
		if _, err := r.ReadAt(buf, int64(id)*int64(pageSize)); err != nil {
			return snapMeta{}, fmt.Errorf("read meta page %d: %w", id, err)
		}
		m, err := parseMeta(buf, pageSize)
		switch {
		case err != nil:
			problems = append(problems, fmt.Errorf("meta page %d: %w", id, err))
		case m.txid == txid:
			if pages := uint64(size) / uint64(pageSize); m.hwm > pages {
				return m, fmt.Errorf("meta page %d names %d pages, but the file holds %d", id, m.hwm, pages)
			}
			if m.root < 2 || m.root >= m.hwm || (m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.hwm)) {
				return m, fmt.Errorf("meta page %d: root page %d or free list page %d is outside pages 2 to %d", id, m.root, m.freelist, m.hwm)
			}
			return m, nil
		}
	}
	return snapMeta{}, errors.Join(append(problems, fmt.Errorf("neither meta page is the one of transaction %d", txid))...)
}

func parseMeta(b []byte, pageSize int) (snapMeta, error) {
	if flags := le.Uint16(b[8:]); flags != metaPage {
		return snapMeta{}, fmt.Errorf("flags %#x, not a meta page", flags)
	}
	m := b[pageHeaderSize:]
	switch {
	case le.Uint32(m[0:]) != boltMagic:
		return snapMeta{}, errors.New("bad magic number")
	case le.Uint32(m[4:]) != boltVersion:
		return snapMeta{}, fmt.Errorf("format version %d, not %d", le.Uint32(m[4:]), boltVersion)
	case int(le.Uint32(m[8:])) != pageSize:
		return snapMeta{}, fmt.Errorf("page size %d, not %d", le.Uint32(m[8:]), pageSize)
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:metaChecksumAt])
	if h.Sum64() != le.Uint64(m[metaChecksumAt:]) {
		return snapMeta{}, errors.New("bad checksum")
	}
	return snapMeta{root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]), hwm: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, nil
}

// le is the byte order bbolt writes in: the machine's own, since it maps
// its structs onto the pages; every platform nudgebot builds for is
// little-endian.
var le = binary.LittleEndian

// snapshotWalk checks one snapshot. Its memory is two bits per page of
// the file plus one buffer per level of the tree being walked.
type snapshotWalk struct {
	r        io.ReaderAt
	pageSize int
	meta     snapMeta
	reached  bitmap
	free     bitmap
	bufs     [][]byte // by depth: a page's keys stay valid while its children are read
	errs     []error
	more     int          // problems past maxWalkErrors
	reads    int          // pages read, for stop
	stop     func() error // polled every stopEvery pages; an error ends the walk
	stopped  error
}

const (
	stopEvery = 256
	// maxDepth bounds the walk's recursion: a bbolt tree of a billion
	// keys is a few levels deep and nudgebot nests buckets twice, so a
	// deeper path is damage, which must not exhaust the stack.
	maxDepth = 64
)

// walkSnapshot checks the snapshot meta describes and returns every
// problem it found, joined; or the error stop returned.
func walkSnapshot(r io.ReaderAt, pageSize int, meta snapMeta, stop func() error) error {
	w := &snapshotWalk{r: r, pageSize: pageSize, meta: meta, stop: stop,
		reached: newBitmap(meta.hwm), free: newBitmap(meta.hwm)}
	if err := stop(); err != nil {
		return err
	}
	w.reach(0, 0, "meta")
	w.reach(1, 0, "meta")
	w.readFreelist()
	if w.stopped == nil {
		w.walkTree(meta.root, nil, nil, "(root)", 0)
	}
	if w.stopped != nil {
		return w.stopped
	}
	if meta.freelist != noFreelist {
		// Without a stored free list (NoFreelistSync) there is nothing to
		// account unreached pages against.
		for id := uint64(2); id < meta.hwm; id++ {
			if !w.reached.has(id) && !w.free.has(id) {
				w.add(fmt.Errorf("page %d: neither reachable nor free", id))
			}
		}
	}
	if w.more > 0 {
		w.errs = append(w.errs, fmt.Errorf("and %d more problems", w.more))
	}
	return errors.Join(w.errs...)
}

func (w *snapshotWalk) add(err error) {
	if len(w.errs) < maxWalkErrors {
		w.errs = append(w.errs, err)
	} else {
		w.more++
	}
}

// reach notes pages id to id+overflow as reached from what, reporting a
// page reached twice or reached and free. It says whether the walk
// should go into the page: not a second time, which also ends cycles.
func (w *snapshotWalk) reach(id uint64, overflow uint32, what string) bool {
	if id >= w.meta.hwm || uint64(overflow) >= w.meta.hwm-id {
		w.add(fmt.Errorf("page %d (%s): its %d pages run past the high-water mark %d", id, what, uint64(overflow)+1, w.meta.hwm))
		return false
	}
	first := true
	for p := id; p <= id+uint64(overflow); p++ {
		if w.reached.has(p) {
			w.add(fmt.Errorf("page %d (%s): reached more than once", p, what))
			first = false
			continue
		}
		w.reached.set(p)
		if w.free.has(p) {
			w.add(fmt.Errorf("page %d (%s): reached, but listed as free", p, what))
		}
	}
	return first
}

// read returns page id, with its overflow, in the buffer for depth.
func (w *snapshotWalk) read(id uint64, depth int) ([]byte, error) {
	if w.reads++; w.reads%stopEvery == 0 {
		if err := w.stop(); err != nil {
			w.stopped = err
			return nil, err
		}
	}
	for len(w.bufs) <= depth {
		w.bufs = append(w.bufs, make([]byte, w.pageSize))
	}
	p := w.bufs[depth][:w.pageSize]
	if _, err := w.r.ReadAt(p, int64(id)*int64(w.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: read: %w", id, err)
	}
	if got := le.Uint64(p); got != id {
		return nil, fmt.Errorf("page %d: its header says it is page %d", id, got)
	}
	overflow := uint64(le.Uint32(p[12:]))
	if overflow >= w.meta.hwm-id {
		return nil, fmt.Errorf("page %d: its %d overflow pages run past the high-water mark %d", id, overflow, w.meta.hwm)
	}
	size := (overflow + 1) * uint64(w.pageSize)
	if size > maxPageBytes {
		return nil, fmt.Errorf("page %d: claims %d overflow pages (%d MB), more than any nudgebot record needs", id, overflow, size>>20)
	}
	if uint64(cap(w.bufs[depth])) < size {
		grown := make([]byte, size)
		copy(grown, p)
		w.bufs[depth] = grown
	}
	p = w.bufs[depth][:size]
	if overflow > 0 {
		if _, err := w.r.ReadAt(p[w.pageSize:], int64(id+1)*int64(w.pageSize)); err != nil {
			return nil, fmt.Errorf("page %d: read its overflow: %w", id, err)
		}
	}
	return p, nil
}

// readFreelist reads the free list the meta names, in pieces, into
// w.free, reporting pages listed twice or outside the file.
func (w *snapshotWalk) readFreelist() {
	id := w.meta.freelist
	if id == noFreelist {
		return
	}
	head := make([]byte, pageHeaderSize+8)
	if _, err := w.r.ReadAt(head, int64(id)*int64(w.pageSize)); err != nil {
		w.add(fmt.Errorf("free list page %d: read: %w", id, err))
		return
	}
	flags, overflow := le.Uint16(head[8:]), le.Uint32(head[12:])
	if le.Uint64(head) != id || flags != freelistPage {
		w.add(fmt.Errorf("free list page %d: header says page %d with flags %#x", id, le.Uint64(head), flags))
		return
	}
	if !w.reach(id, overflow, "free list") {
		return
	}
	count, at := uint64(le.Uint16(head[10:])), int64(id)*int64(w.pageSize)+pageHeaderSize
	if count == 0xFFFF { // more ids than the header's count holds: the first element is the count
		count, at = le.Uint64(head[pageHeaderSize:]), at+8
	}
	end := int64(id+uint64(overflow)+1) * int64(w.pageSize)
	if count > uint64(end-at)/8 {
		w.add(fmt.Errorf("free list page %d: lists %d pages, more than its %d pages hold", id, count, uint64(overflow)+1))
		return
	}
	chunk := make([]byte, 64<<10)
	for count > 0 {
		n := min(count, uint64(len(chunk)/8))
		b := chunk[:n*8]
		if _, err := w.r.ReadAt(b, at); err != nil {
			w.add(fmt.Errorf("free list page %d: read: %w", id, err))
			return
		}
		for i := range n {
			w.freed(le.Uint64(b[i*8:]))
		}
		count, at = count-n, at+int64(n)*8
	}
}

func (w *snapshotWalk) freed(p uint64) {
	switch {
	case p < 2 || p >= w.meta.hwm:
		w.add(fmt.Errorf("free list: page %d is outside pages 2 to %d", p, w.meta.hwm))
	case w.free.has(p):
		w.add(fmt.Errorf("free list: page %d listed twice", p))
	case w.reached.has(p):
		w.add(fmt.Errorf("page %d (free list): listed as free, but it holds the free list", p))
	default:
		w.free.set(p)
	}
}

// walkTree checks the tree under page id, whose keys must lie in [lo, hi)
// (nil: unbounded), for the bucket at path.
func (w *snapshotWalk) walkTree(id uint64, lo, hi []byte, path string, depth int) {
	if id < 2 || id >= w.meta.hwm {
		w.add(fmt.Errorf("bucket %s: refers to page %d, outside pages 2 to %d", path, id, w.meta.hwm))
		return
	}
	if w.reached.has(id) {
		w.add(fmt.Errorf("page %d (bucket %s): reached more than once", id, path))
		return
	}
	if depth > maxDepth {
		w.add(fmt.Errorf("page %d (bucket %s): %d levels deep, deeper than any sound tree", id, path, depth))
		return
	}
	p, err := w.read(id, depth)
	if err != nil {
		if w.stopped == nil {
			w.add(fmt.Errorf("bucket %s: %w", path, err))
		}
		return
	}
	if !w.reach(id, le.Uint32(p[12:]), "bucket "+path) {
		return
	}
	switch flags := le.Uint16(p[8:]); flags {
	case branchPage:
		w.walkBranch(id, p, lo, hi, path, depth)
	case leafPage:
		w.walkLeaf(fmt.Sprintf("page %d", id), p, lo, hi, path, depth)
	default:
		w.add(fmt.Errorf("page %d (bucket %s): flags %#x, not a branch or leaf page", id, path, flags))
	}
}

func (w *snapshotWalk) walkBranch(id uint64, p, lo, hi []byte, path string, depth int) {
	n, err := elementCount(p)
	if err == nil && n == 0 {
		err = errors.New("a branch page with no children")
	}
	if err != nil {
		w.add(fmt.Errorf("page %d (bucket %s): %w", id, path, err))
		return
	}
	keys, children := make([][]byte, n), make([]uint64, n)
	for i := range n {
		off := pageHeaderSize + i*elementSize
		k, err := span(p, off, le.Uint32(p[off:]), le.Uint32(p[off+4:]))
		if err != nil {
			w.add(fmt.Errorf("page %d (bucket %s) element %d: %w", id, path, i, err))
			return
		}
		keys[i], children[i] = k, le.Uint64(p[off+8:])
	}
	if !w.inOrder(fmt.Sprintf("page %d", id), keys, lo, hi, path) {
		return
	}
	for i, child := range children {
		// Each child holds the keys from its separator to the next one's,
		// the first child's included, as bbolt's own check has it.
		chi := hi
		if i+1 < n {
			chi = keys[i+1]
		}
		if w.walkTree(child, keys[i], chi, path, depth+1); w.stopped != nil {
			return
		}
	}
}

// walkLeaf checks a leaf page, and goes into the buckets it holds: a
// tree's page at depth, or with depth -1 an inline bucket's page, held in
// its parent's value. bbolt keeps a bucket inline only while it holds no
// buckets, and following one there could revisit the same bytes without
// end (inline pages are not pages the bitmaps track), so one is damage.
func (w *snapshotWalk) walkLeaf(where string, p, lo, hi []byte, path string, depth int) {
	n, err := elementCount(p)
	if err != nil {
		w.add(fmt.Errorf("%s (bucket %s): %w", where, path, err))
		return
	}
	keys := make([][]byte, n)
	type nested struct {
		name  []byte
		value []byte
	}
	var buckets []nested
	for i := range n {
		off := pageHeaderSize + i*elementSize
		flags, pos, ksize, vsize := le.Uint32(p[off:]), le.Uint32(p[off+4:]), le.Uint32(p[off+8:]), le.Uint32(p[off+12:])
		if ksize+vsize < ksize {
			w.add(fmt.Errorf("%s (bucket %s) element %d: a key and value of %d and %d bytes", where, path, i, ksize, vsize))
			return
		}
		kv, err := span(p, off, pos, ksize+vsize)
		if err != nil {
			w.add(fmt.Errorf("%s (bucket %s) element %d: %w", where, path, i, err))
			return
		}
		keys[i] = kv[:ksize]
		if flags&bucketLeaf != 0 && depth < 0 {
			w.add(fmt.Errorf("%s (bucket %s): holds bucket %s, but an inline bucket holds none", where, path, showName(kv[:ksize])))
			return
		}
		if flags&bucketLeaf != 0 {
			buckets = append(buckets, nested{kv[:ksize], kv[ksize:]})
		}
	}
	if !w.inOrder(where, keys, lo, hi, path) {
		return
	}
	for _, b := range buckets {
		child := path + "/" + showName(b.name)
		if path == "(root)" {
			child = showName(b.name)
		}
		if len(b.value) < bucketHeaderSize {
			w.add(fmt.Errorf("bucket %s: its header is %d bytes, not %d", child, len(b.value), bucketHeaderSize))
			continue
		}
		if root := le.Uint64(b.value); root != 0 {
			w.walkTree(root, nil, nil, child, depth+1)
		} else if inline := b.value[bucketHeaderSize:]; len(inline) < pageHeaderSize || le.Uint16(inline[8:]) != leafPage {
			w.add(fmt.Errorf("bucket %s: its inline page is not a leaf page", child))
		} else {
			w.walkLeaf("its inline page", inline, nil, nil, child, -1)
		}
		if w.stopped != nil {
			return
		}
	}
}

// inOrder reports keys that are not strictly ascending or fall outside
// [lo, hi); bbolt finds keys by binary search, so either hides records.
func (w *snapshotWalk) inOrder(where string, keys [][]byte, lo, hi []byte, path string) bool {
	for i, k := range keys {
		switch {
		case i > 0 && string(keys[i-1]) >= string(k):
			w.add(fmt.Errorf("%s (bucket %s): key %s is not after key %s", where, path, showName(k), showName(keys[i-1])))
			return false
		case lo != nil && string(k) < string(lo):
			w.add(fmt.Errorf("%s (bucket %s): key %s is below its parent's range, which starts at %s", where, path, showName(k), showName(lo)))
			return false
		case hi != nil && string(k) >= string(hi):
			w.add(fmt.Errorf("%s (bucket %s): key %s is not below the next range, which starts at %s", where, path, showName(k), showName(hi)))
			return false
		}
	}
	return true
}

// elementCount returns a page's element count once its element table is
// known to fit in it.
func elementCount(p []byte) (int, error) {
	n := int(le.Uint16(p[10:]))
	if pageHeaderSize+n*elementSize > len(p) {
		return 0, fmt.Errorf("%d elements do not fit in %d bytes", n, len(p))
	}
	return n, nil
}

// span returns the size bytes at pos past the element at off, as bbolt
// finds a key: relative to its element.
func span(p []byte, off int, pos, size uint32) ([]byte, error) {
	start, carry := bits.Add64(uint64(off), uint64(pos), 0)
	end, carry2 := bits.Add64(start, uint64(size), carry)
	if carry2 != 0 || end > uint64(len(p)) {
		return nil, fmt.Errorf("bytes %d to %d are outside the page's %d", uint64(off)+uint64(pos), uint64(off)+uint64(pos)+uint64(size), len(p))
	}
	return p[start:end], nil
}

// showName shows a bucket name or key: as text when it is, else in hex,
// and never long.
func showName(k []byte) string {
	if len(k) > 40 {
		return showName(k[:40]) + "…"
	}
	for _, c := range k {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%x", k)
		}
	}
	return fmt.Sprintf("%q", k)
}

// bitmap is a set of page ids below a bound.
type bitmap []uint64

func newBitmap(n uint64) bitmap { return make(bitmap, (n+63)/64) }

func (b bitmap) has(i uint64) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitmap) set(i uint64)      { b[i/64] |= 1 << (i % 64) }
