// Package boltwalk checks a bbolt file by reading its pages itself,
// without bbolt and without mapping the file, so that a damaged file is
// named before bbolt touches it. bbolt trusts its file: on damaged bytes
// it panics (a free list naming pages above the high-water mark), loops
// for ever while memory grows (an inline bucket page whose flags are 0)
// or faults reading outside its mapping (an inline key whose size points
// past its value), and a fault kills the process with no recover.
//
// # What it checks
//
// OpenMeta chooses the meta page as bbolt will at Open (the page size
// from the first meta page that validates, then the valid meta with the
// higher transaction id) and SnapshotMeta the one of a given transaction.
// Walk then checks what bbolt's tx.Check checks, and what bbolt relies on
// without checking: every page of every bucket's tree, nested and inline
// buckets included, is a branch or leaf page below the high-water mark,
// reached once and not free, its header names it, its elements fit in it
// and their keys and values lie one after the other after the element
// table, as bbolt writes them; keys ascend strictly within a page and lie
// in the range the parent gives; an inline bucket's page is a leaf page
// inside its value and holds no buckets (bbolt never writes one that
// does); the free list names no page twice and none outside pages 2 to
// the high-water mark; every page is either reached or free.
//
// # What it costs
//
// Time is linear in the file's size: each page is read at most once (a
// page already reached, or overlapped by another's overflow, is named as
// damage without being read), and each byte of a page is looked at a
// bounded number of times, because keys and values may not overlap (two
// keys are compared at a cost bounded by the shorter, and each key is
// compared with at most its two neighbours and, if first or last, the
// parent's bounds). Inline buckets live inside their parent's value, so
// walking them reads nothing more. On a 1 GB file the walk takes about
// a second with the file in the page cache (docs/operations.md, "A
// damaged database file").
//
// Memory is bounded: two bits per page of the file for the bitmaps of
// pages reached and free (64 KB for 1 GB at 4 KB pages), one page buffer
// per level of the path being walked (at most MaxDepth), and pages with
// overflow held only while walked, at most MaxPageBytes each and
// MaxHeldBytes along one path; a file claiming more is damage.
//
// It reads only with io.ReaderAt (pread on an *os.File), and never
// beyond the end of the file it was given: the high-water mark is
// checked against the file's size before any page is read, and every
// offset within a page is checked before it is used, so no bytes make it
// panic (FuzzWalk holds it to that).
//
// It depends on bbolt's on-disk format, version 2, unchanged since
// boltdb and the only one bbolt opens; every platform nudgebot builds for
// is little-endian, as that format is on them.
package boltwalk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/bits"
	"strings"
)

const (
	magic            = 0xED0CDAED
	version          = 2
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

	// NoFreelist is the free list page id of a file written with
	// NoFreelistSync: bbolt rebuilds its free list by walking the tree.
	NoFreelist = ^uint64(0)

	// minPageSize and maxPageSize bound the page sizes accepted: bbolt
	// uses the OS page size (4 KB, 16 KB or 64 KB) unless told otherwise,
	// and nudgebot never tells it.
	minPageSize = 1024
	maxPageSize = 64 << 10
)

// le is the byte order of bbolt's file on every platform nudgebot builds
// for: bbolt maps its structs onto the pages, so it is the machine's.
var le = binary.LittleEndian

// Meta is what a meta page says about its transaction's snapshot.
type Meta struct {
	PageSize int
	Root     uint64 // the root bucket's page
	Freelist uint64 // NoFreelist when not stored
	HWM      uint64 // the high-water mark: pages 0 to HWM-1 are in use or free
	TxID     uint64
}

// Damage is what a walk found wrong with the file: its bytes, not the
// reading of them. Problems lists the first few; More counts the rest.
type Damage struct {
	Problems []error
	More     int
}

func (d *Damage) Error() string {
	lines := make([]string, 0, len(d.Problems)+1)
	for _, p := range d.Problems {
		lines = append(lines, p.Error())
	}
	if d.More > 0 {
		lines = append(lines, fmt.Sprintf("and %d more problems", d.More))
	}
	return strings.Join(lines, "\n")
}

func (d *Damage) Unwrap() []error { return d.Problems }

func damage(format string, args ...any) error {
	return &Damage{Problems: []error{fmt.Errorf(format, args...)}}
}

// OpenMeta returns the meta page bbolt will use when it opens the file r
// of size bytes, once it is known to name pages inside the file. It
// chooses as bbolt does, so the walk checks the snapshot bbolt will read:
// the page size from the first meta page that validates (magic, version,
// checksum), then of the two meta pages the one with the higher
// transaction id if it validates, else the other.
func OpenMeta(r io.ReaderAt, size int64) (Meta, error) {
	pageSize, err := detectPageSize(r, size)
	if err != nil {
		return Meta{}, err
	}
	if size < 2*int64(pageSize) {
		return Meta{}, damage("the file is %d bytes, too short for its two meta pages of %d bytes", size, pageSize)
	}
	var metas [2][]byte
	for id := range metas {
		metas[id] = make([]byte, pageHeaderSize+metaSize)
		if err := readAt(r, metas[id], int64(id)*int64(pageSize)); err != nil {
			return Meta{}, fmt.Errorf("read meta page %d: %w", id, err)
		}
	}
	a, b := 0, 1
	if le.Uint64(metas[1][pageHeaderSize+48:]) > le.Uint64(metas[0][pageHeaderSize+48:]) {
		a, b = 1, 0
	}
	chosen := a
	if validate(metas[a][pageHeaderSize:]) != nil {
		chosen = b
		if validate(metas[b][pageHeaderSize:]) != nil {
			return Meta{}, damage("neither meta page is valid: %v; %v", validate(metas[0][pageHeaderSize:]), validate(metas[1][pageHeaderSize:]))
		}
	}
	return checkMeta(metas[chosen], chosen, pageSize, size)
}

// SnapshotMeta returns the sound meta page of the file r of size bytes
// that transaction txid wrote, for a walk of a snapshot pinned by a read
// transaction.
func SnapshotMeta(r io.ReaderAt, pageSize int, size int64, txid uint64) (Meta, error) {
	var problems []error
	buf := make([]byte, pageHeaderSize+metaSize)
	for id := range 2 {
		if err := readAt(r, buf, int64(id)*int64(pageSize)); err != nil {
			return Meta{}, fmt.Errorf("read meta page %d: %w", id, err)
		}
		if err := validate(buf[pageHeaderSize:]); err != nil {
			problems = append(problems, fmt.Errorf("meta page %d: %w", id, err))
		} else if le.Uint64(buf[pageHeaderSize+48:]) == txid {
			return checkMeta(buf, id, pageSize, size)
		}
	}
	return Meta{}, &Damage{Problems: append(problems, fmt.Errorf("neither meta page is the one of transaction %d", txid))}
}

// detectPageSize finds the page size as bbolt's getPageSize does: from
// meta page 0 if it validates, else from the first offset of 1 KB << i
// that holds a valid meta page.
func detectPageSize(r io.ReaderAt, size int64) (int, error) {
	buf := make([]byte, 0x1000)
	found := 0
	if size >= int64(len(buf)) && readAt(r, buf, 0) == nil && validate(buf[pageHeaderSize:]) == nil {
		found = int(le.Uint32(buf[pageHeaderSize+8:]))
	}
	for i := 0; found == 0 && i <= 14; i++ {
		pos := int64(1024) << i
		if pos >= size-1024 {
			break
		}
		n := min(int64(len(buf)), size-pos)
		if readAt(r, buf[:n], pos) == nil && n >= pageHeaderSize+metaSize && validate(buf[pageHeaderSize:n]) == nil {
			found = int(le.Uint32(buf[pageHeaderSize+8:]))
		}
	}
	switch {
	case found == 0:
		return 0, damage("no valid meta page: the file is not a bbolt database, or both its meta pages are damaged")
	case found < minPageSize || found > maxPageSize || found&(found-1) != 0:
		return 0, damage("its meta page gives a page size of %d bytes, not a power of two from %d to %d", found, minPageSize, maxPageSize)
	}
	return found, nil
}

// validate checks a meta as bbolt's Meta.Validate does, no more, so
// that OpenMeta chooses the page bbolt chooses.
func validate(m []byte) error {
	switch {
	case len(m) < metaSize:
		return errors.New("too short")
	case le.Uint32(m[0:]) != magic:
		return errors.New("bad magic number")
	case le.Uint32(m[4:]) != version:
		return fmt.Errorf("format version %d, not %d", le.Uint32(m[4:]), version)
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:metaChecksumAt])
	if h.Sum64() != le.Uint64(m[metaChecksumAt:]) {
		return errors.New("bad checksum")
	}
	return nil
}

// checkMeta reads the valid meta page id (its page header and meta) and
// checks what bbolt does not before it maps and reads the file: that it
// is a meta page of this page size whose pages lie inside the file.
func checkMeta(b []byte, id, pageSize int, size int64) (Meta, error) {
	m := b[pageHeaderSize:]
	meta := Meta{PageSize: pageSize, Root: le.Uint64(m[16:]), Freelist: le.Uint64(m[32:]), HWM: le.Uint64(m[40:]), TxID: le.Uint64(m[48:])}
	pages := uint64(size) / uint64(pageSize)
	switch {
	case le.Uint16(b[8:]) != metaPage:
		return meta, damage("meta page %d: flags %#x, not a meta page", id, le.Uint16(b[8:]))
	case int(le.Uint32(m[8:])) != pageSize:
		return meta, damage("meta page %d: page size %d, not %d", id, le.Uint32(m[8:]), pageSize)
	case meta.HWM > pages:
		return meta, damage("meta page %d names %d pages, but the file holds %d: it was truncated", id, meta.HWM, pages)
	case meta.Root < 2 || meta.Root >= meta.HWM || (meta.Freelist != NoFreelist && (meta.Freelist < 2 || meta.Freelist >= meta.HWM)):
		return meta, damage("meta page %d: root page %d or free list page %d is outside pages 2 to %d", id, meta.Root, meta.Freelist, meta.HWM)
	}
	return meta, nil
}

// readAt fills b from off: a short read means the file ended early.
func readAt(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return damage("bytes %d to %d are past the end of the file", off, off+int64(len(b)))
	}
	return err
}

// span returns the size bytes at pos past the element at off, as bbolt
// finds a key, with their start and end in p.
func span(p []byte, off int, pos, size uint32) (start, end uint64, err error) {
	start, carry := bits.Add64(uint64(off), uint64(pos), 0)
	end, carry2 := bits.Add64(start, uint64(size), carry)
	if carry2 != 0 || end > uint64(len(p)) {
		return 0, 0, fmt.Errorf("bytes %d to %d are outside the page's %d", uint64(off)+uint64(pos), uint64(off)+uint64(pos)+uint64(size), len(p))
	}
	return start, end, nil
}
