package boltwalk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	// MaxPageBytes bounds one page with its overflow: nudgebot's largest
	// record is a few KB, so a page claiming more is damage, not data,
	// and reading it would cost memory the walk promises not to use.
	// The free list is read in pieces and has no such bound.
	MaxPageBytes = 16 << 20

	// MaxHeldBytes bounds the pages held at once along one path of the
	// walk, a parent's keys staying valid while its children are read.
	MaxHeldBytes = 32 << 20

	// MaxDepth bounds the walk's recursion: a bbolt tree of a billion
	// keys is a few levels deep and nudgebot nests buckets twice, so a
	// deeper path is damage, which must not exhaust the stack.
	MaxDepth = 64

	// maxProblems caps what one walk reports: damage tends to repeat
	// down a tree, and the first lines are the ones to read.
	maxProblems = 20

	// stopEvery is how many pages the walk reads between calls to stop.
	stopEvery = 64
)

// File checks the file r of size bytes as bbolt will open it: OpenMeta,
// then Walk. It returns the meta it walked, for the caller to confirm
// that bbolt opened the same transaction.
func File(r io.ReaderAt, size int64) (Meta, error) {
	meta, err := OpenMeta(r, size)
	if err != nil {
		return meta, err
	}
	return meta, Walk(r, meta, nil)
}

// Walk checks the snapshot meta describes in r (see the package doc for
// what and at what cost). It returns nil, a *Damage naming every problem
// found (up to a few dozen), the error stop returned, or an error reading
// r. stop, if not nil, is called every few hundred pages.
func Walk(r io.ReaderAt, meta Meta, stop func() error) error {
	_, err := run(r, meta, stop)
	return err
}

// run is Walk, returning its state too, for tests to read its costs.
func run(r io.ReaderAt, meta Meta, stop func() error) (*walk, error) {
	if stop == nil {
		stop = func() error { return nil }
	}
	if meta.PageSize < pageHeaderSize+metaSize {
		return nil, damage("page size %d is too small", meta.PageSize)
	}
	w := &walk{r: r, meta: meta, stop: stop, reached: newBitmap(meta.HWM), free: newBitmap(meta.HWM)}
	if err := stop(); err != nil {
		return w, err
	}
	w.reach(0, 0, "meta", "")
	w.reach(1, 0, "meta", "")
	w.readFreelist()
	if w.failed == nil {
		w.tree(meta.Root, nil, nil, "(root)", 0)
	}
	if w.failed != nil {
		return w, w.failed
	}
	if meta.Freelist != NoFreelist {
		// Without a stored free list there is nothing to account
		// unreached pages against.
		w.unaccounted()
	}
	if len(w.damage.Problems) == 0 {
		return w, nil
	}
	return w, &w.damage
}

// unaccounted reports, in one line, the pages neither reached nor free:
// after damage higher up a tree there are often many.
func (w *walk) unaccounted() {
	var first []string
	n := 0
	for id := uint64(2); id < w.meta.HWM; id++ {
		if !w.reached.has(id) && !w.free.has(id) {
			if n++; n <= 5 {
				first = append(first, fmt.Sprint(id))
			}
		}
	}
	switch {
	case n == 1:
		w.add(fmt.Errorf("page %s: neither reachable nor free", first[0]))
	case n > 1 && n <= 5:
		w.add(fmt.Errorf("pages %s: neither reachable nor free", strings.Join(first, ", ")))
	case n > 5:
		w.add(fmt.Errorf("pages %s and %d more: neither reachable nor free", strings.Join(first, ", "), n-5))
	}
}

// walk is one Walk's state.
type walk struct {
	r       io.ReaderAt
	meta    Meta
	reached bitmap
	free    bitmap
	bufs    [][]byte // by depth, a page each: a page's keys stay valid while its children are read
	held    int      // bytes of pages with overflow held along the current path
	damage  Damage
	reads   int          // pages read, for stop
	stop    func() error // polled every stopEvery pages; an error ends the walk
	failed  error        // stop's error or a read error: the walk ends with it

	// compared counts the bytes key comparisons may look at (the shorter
	// key's length each time), so a test can hold the walk to its cost.
	compared int
}

// compare compares two keys, counting what it may cost.
func (w *walk) compare(a, b []byte) int {
	w.compared += min(len(a), len(b))
	return bytes.Compare(a, b)
}

func (w *walk) add(err error) {
	if len(w.damage.Problems) < maxProblems {
		w.damage.Problems = append(w.damage.Problems, err)
	} else {
		w.damage.More++
	}
}

// reach notes pages id to id+overflow as reached (as kind+path: "meta",
// or "bucket " and its path, built only for a message), reporting a
// page outside the file, reached twice, or reached and free. It says
// whether all of them were reached for the first time, so the caller
// may read them: each page is read at most once, which also ends cycles.
// It stops at the first page reached before, so each page is marked once
// however many claims overlap it.
func (w *walk) reach(id uint64, overflow uint32, kind, path string) bool {
	if id >= w.meta.HWM || uint64(overflow) >= w.meta.HWM-id {
		w.add(fmt.Errorf("page %d (%s%s): its %d pages run past the high-water mark %d", id, kind, path, uint64(overflow)+1, w.meta.HWM))
		return false
	}
	for p := id; p <= id+uint64(overflow); p++ {
		if w.reached.has(p) {
			w.add(fmt.Errorf("page %d (%s%s): reached more than once", p, kind, path))
			return false
		}
		w.reached.set(p)
		if w.free.has(p) {
			w.add(fmt.Errorf("page %d (%s%s): reached, but listed as free", p, kind, path))
		}
	}
	return true
}

// read claims page id and returns it with its overflow: in the buffer
// for depth, or in one of its own while it is held. release gives back
// what the caller holds once it is done with the page. Each page is
// claimed before it is read, so none is read twice, however many
// references to it the file holds.
func (w *walk) read(id uint64, depth int, path string) (p []byte, release func(), ok bool) {
	if w.reads++; w.reads%stopEvery == 0 {
		if err := w.stop(); err != nil {
			w.failed = err
			return nil, nil, false
		}
	}
	if !w.reach(id, 0, "bucket ", path) {
		return nil, nil, false
	}
	for len(w.bufs) <= depth {
		w.bufs = append(w.bufs, make([]byte, w.meta.PageSize))
	}
	p = w.bufs[depth]
	if !w.readAt(p, id) {
		return nil, nil, false
	}
	if got := le.Uint64(p); got != id {
		w.add(fmt.Errorf("page %d (bucket %s): its header says it is page %d", id, path, got))
		return nil, nil, false
	}
	overflow := le.Uint32(p[12:])
	if overflow == 0 {
		return p, func() {}, true
	}
	if uint64(overflow) >= w.meta.HWM-id {
		w.add(fmt.Errorf("page %d (bucket %s): its %d overflow pages run past the high-water mark %d", id, path, overflow, w.meta.HWM))
		return nil, nil, false
	}
	if size := (uint64(overflow) + 1) * uint64(w.meta.PageSize); size > MaxPageBytes || w.held+int(size) > MaxHeldBytes {
		w.add(fmt.Errorf("page %d (bucket %s): claims %d overflow pages (%d MB), more than any nudgebot record needs", id, path, overflow, size>>20))
		return nil, nil, false
	}
	if !w.reach(id+1, overflow-1, "overflow of a page of bucket ", path) {
		return nil, nil, false
	}
	size := (int(overflow) + 1) * w.meta.PageSize
	big := make([]byte, size)
	copy(big, p)
	if !w.readAt(big[w.meta.PageSize:], id+1) {
		return nil, nil, false
	}
	w.held += size
	return big, func() { w.held -= size }, true
}

// readAt reads b from page id on; the caller has checked that it lies
// below the high-water mark, which lies inside the file.
func (w *walk) readAt(b []byte, id uint64) bool {
	err := readAt(w.r, b, int64(id)*int64(w.meta.PageSize))
	if err == nil {
		return true
	}
	var d *Damage // declared here, as it escapes: on the error path only
	switch {
	case errors.As(err, &d):
		w.add(fmt.Errorf("page %d: %w", id, d.Problems[0]))
	default:
		w.failed = fmt.Errorf("read page %d: %w", id, err)
	}
	return false
}

// readFreelist reads the free list the meta names, in pieces, into
// w.free, reporting pages listed twice or outside the file.
func (w *walk) readFreelist() {
	id := w.meta.Freelist
	if id == NoFreelist {
		return
	}
	head := make([]byte, pageHeaderSize+8)
	if !w.readAt(head, id) {
		return
	}
	flags, overflow := le.Uint16(head[8:]), le.Uint32(head[12:])
	if le.Uint64(head) != id || flags != freelistPage {
		w.add(fmt.Errorf("free list page %d: header says page %d with flags %#x", id, le.Uint64(head), flags))
		return
	}
	if !w.reach(id, overflow, "free list", "") {
		return
	}
	count, at := uint64(le.Uint16(head[10:])), int64(id)*int64(w.meta.PageSize)+pageHeaderSize
	if count == 0xFFFF { // more ids than the header's count holds: the first element is the count
		count, at = le.Uint64(head[pageHeaderSize:]), at+8
	}
	end := int64(id+uint64(overflow)+1) * int64(w.meta.PageSize)
	if count > uint64(end-at)/8 {
		w.add(fmt.Errorf("free list page %d: lists %d pages, more than its %d pages hold", id, count, uint64(overflow)+1))
		return
	}
	chunk := make([]byte, 64<<10)
	for count > 0 {
		n := min(count, uint64(len(chunk)/8))
		b := chunk[:n*8]
		if err := readAt(w.r, b, at); err != nil {
			w.failed = fmt.Errorf("read free list page %d: %w", id, err)
			return
		}
		for i := range n {
			w.freed(le.Uint64(b[i*8:]))
		}
		count, at = count-n, at+int64(n)*8
	}
}

func (w *walk) freed(p uint64) {
	switch {
	case p < 2 || p >= w.meta.HWM:
		w.add(fmt.Errorf("free list: page %d is outside pages 2 to %d", p, w.meta.HWM))
	case w.free.has(p):
		w.add(fmt.Errorf("free list: page %d listed twice", p))
	case w.reached.has(p):
		w.add(fmt.Errorf("page %d (free list): listed as free, but it holds the free list", p))
	default:
		w.free.set(p)
	}
}

// tree checks the tree under page id, whose keys must lie in [lo, hi)
// (nil: unbounded), for the bucket at path.
func (w *walk) tree(id uint64, lo, hi []byte, path string, depth int) {
	switch {
	case id < 2 || id >= w.meta.HWM:
		w.add(fmt.Errorf("bucket %s: refers to page %d, outside pages 2 to %d", path, id, w.meta.HWM))
		return
	case w.reached.has(id):
		w.add(fmt.Errorf("page %d (bucket %s): reached more than once", id, path))
		return
	case depth > MaxDepth:
		w.add(fmt.Errorf("page %d (bucket %s): %d levels deep, deeper than any sound tree", id, path, depth))
		return
	}
	p, release, ok := w.read(id, depth, path)
	if !ok {
		return
	}
	defer release()
	switch flags := le.Uint16(p[8:]); flags {
	case branchPage:
		w.branch(id, p, lo, hi, path, depth)
	case leafPage:
		w.leaf(place(id), p, lo, hi, path, depth)
	default:
		w.add(fmt.Errorf("page %d (bucket %s): flags %#x, not a branch or leaf page", id, path, flags))
	}
}

// elements checks a page's element table and the keys (and values) it
// points at: they fit, they follow the table and one another without
// overlapping, as bbolt writes them, and the keys ascend strictly within
// [lo, hi). So the bytes a page's checks look at are bounded by its size.
func (w *walk) elements(where place, p, lo, hi []byte, path string, leaf bool) (int, bool) {
	n := int(le.Uint16(p[10:]))
	if pageHeaderSize+n*elementSize > len(p) {
		w.add(fmt.Errorf("%s (bucket %s): %d elements do not fit in %d bytes", where, path, n, len(p)))
		return 0, false
	}
	next := uint64(pageHeaderSize + n*elementSize)
	var prev []byte
	for i := range n {
		k, v, err := element(p, i, leaf)
		if err == nil && k.start < next {
			err = fmt.Errorf("its bytes %d to %d overlap the element table or the element before", k.start, v.end)
		}
		if err != nil {
			w.add(fmt.Errorf("%s (bucket %s) element %d: %w", where, path, i, err))
			return 0, false
		}
		next = v.end
		key := p[k.start:k.end]
		switch {
		case i > 0 && w.compare(prev, key) >= 0:
			w.add(fmt.Errorf("%s (bucket %s): key %s is not after key %s", where, path, showName(key), showName(prev)))
			return 0, false
		case i == 0 && lo != nil && w.compare(key, lo) < 0:
			w.add(fmt.Errorf("%s (bucket %s): key %s is below its parent's range, which starts at %s", where, path, showName(key), showName(lo)))
			return 0, false
		case i == n-1 && hi != nil && w.compare(key, hi) >= 0:
			w.add(fmt.Errorf("%s (bucket %s): key %s is not below the next range, which starts at %s", where, path, showName(key), showName(hi)))
			return 0, false
		}
		prev = key
	}
	return n, true
}

// place says where a page is, in a message: its id, or inlinePage. It
// is formatted only when there is something to say.
type place uint64

const inlinePage = place(^uint64(0))

func (p place) String() string {
	if p == inlinePage {
		return "its inline page"
	}
	return fmt.Sprintf("page %d", uint64(p))
}

// bounds are a key's or value's start and end in its page.
type bounds struct{ start, end uint64 }

// element returns where element i's key and value lie in p (a branch
// element's value is empty, at the key's end), or why they do not fit.
func element(p []byte, i int, leaf bool) (k, v bounds, err error) {
	off := pageHeaderSize + i*elementSize
	if !leaf {
		start, end, err := span(p, off, le.Uint32(p[off:]), le.Uint32(p[off+4:]))
		return bounds{start, end}, bounds{end, end}, err
	}
	pos, ksize, vsize := le.Uint32(p[off+4:]), le.Uint32(p[off+8:]), le.Uint32(p[off+12:])
	if ksize+vsize < ksize {
		return k, v, fmt.Errorf("a key and value of %d and %d bytes", ksize, vsize)
	}
	start, end, err := span(p, off, pos, ksize+vsize)
	return bounds{start, start + uint64(ksize)}, bounds{start + uint64(ksize), end}, err
}

func (w *walk) branch(id uint64, p, lo, hi []byte, path string, depth int) {
	where := place(id)
	n, ok := w.elements(where, p, lo, hi, path, false)
	if !ok {
		return
	}
	if n == 0 {
		w.add(fmt.Errorf("%s (bucket %s): a branch page with no children", where, path))
		return
	}
	for i := range n {
		// Each child holds the keys from its separator to the next one's,
		// the first child's included, as bbolt's own check has it.
		k, _, _ := element(p, i, false)
		chi := hi
		if i+1 < n {
			nk, _, _ := element(p, i+1, false)
			chi = p[nk.start:nk.end]
		}
		child := le.Uint64(p[pageHeaderSize+i*elementSize+8:])
		if w.tree(child, p[k.start:k.end], chi, path, depth+1); w.failed != nil {
			return
		}
	}
}

// leaf checks a leaf page, and goes into the buckets it holds: a tree's
// page at depth, or with depth -1 an inline bucket's page, held in its
// parent's value. bbolt keeps a bucket inline only while it holds no
// buckets, so one that holds some is damage (and the walk's cost stays
// bounded by the parent page's bytes).
func (w *walk) leaf(where place, p, lo, hi []byte, path string, depth int) {
	n, ok := w.elements(where, p, lo, hi, path, true)
	if !ok {
		return
	}
	for i := range n {
		if le.Uint32(p[pageHeaderSize+i*elementSize:])&bucketLeaf == 0 {
			continue
		}
		k, v, _ := element(p, i, true)
		name, value := p[k.start:k.end], p[v.start:v.end]
		if depth < 0 {
			w.add(fmt.Errorf("%s (bucket %s): holds bucket %s, but an inline bucket holds none", where, path, showName(name)))
			return
		}
		w.bucket(child(path, name), value, depth)
		if w.failed != nil {
			return
		}
	}
}

// bucket checks the nested bucket whose header and inline page are value.
func (w *walk) bucket(path string, value []byte, depth int) {
	if len(value) < bucketHeaderSize {
		w.add(fmt.Errorf("bucket %s: its header is %d bytes, not %d", path, len(value), bucketHeaderSize))
		return
	}
	if root := le.Uint64(value); root != 0 {
		w.tree(root, nil, nil, path, depth+1)
		return
	}
	// bbolt reads an inline page's header and elements as it would a
	// page's, and treats any page that is not a leaf as a branch, so a
	// zeroed flags field sends it round the same bytes for ever.
	inline := value[bucketHeaderSize:]
	if len(inline) < pageHeaderSize || le.Uint16(inline[8:]) != leafPage {
		w.add(fmt.Errorf("bucket %s: its inline page is not a leaf page", path))
		return
	}
	w.leaf(inlinePage, inline, nil, nil, path, -1)
}

func child(path string, name []byte) string {
	if path == "(root)" {
		return showName(name)
	}
	return path + "/" + showName(name)
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
