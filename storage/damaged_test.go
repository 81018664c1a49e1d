package storage_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/boltwalk"
)

// The damaged files the operator-safety issue names, each played through
// every command's open path. bbolt panics, loops for ever or faults on
// them, and a fault cannot be recovered, so the open paths run in a child
// process (openPathsInChild) under a time and memory limit: the test
// fails, rather than dies, if one of them crashes or hangs.

const (
	childEnv = "NUDGEBOT_OPEN_PATHS_CHILD"
	// childTimeout bounds one child's run: the open paths on a file of
	// a few hundred KB take well under a second, even under -race.
	childTimeout = 60 * time.Second
	// childMaxRSS bounds its resident memory; a looping bbolt grows by
	// about 0.7 GB a second.
	childMaxRSS = 768 << 20
)

var le = binary.LittleEndian

// namedDamage is a damaged file and what the refusal must say.
type namedDamage struct {
	name string
	data []byte
	want string
}

// namedDamages builds each damage the issue names on a real database.
func namedDamages(tb testing.TB) []namedDamage {
	tb.Helper()
	orig, layout := realDatabase(tb)
	r := rawFile{tb: tb, data: orig, roots: layout.roots}
	r.meta = r.openMeta()
	inline, empty := r.inlineBuckets()
	with := func(fn func(r *rawFile)) []byte {
		c := &rawFile{tb: tb, data: bytes.Clone(orig), meta: r.meta, roots: layout.roots}
		fn(c)
		return c.data
	}
	return []namedDamage{
		{"a free list naming a page above the high-water mark", with(func(c *rawFile) {
			p := c.page(c.meta.Freelist)
			if le.Uint16(p[10:]) == 0 {
				le.PutUint16(p[10:], 1)
			}
			le.PutUint64(p[16:], c.meta.HWM+10)
		}), "is outside pages 2 to"},
		{"an inline bucket page whose flags are 0", with(func(c *rawFile) {
			le.PutUint16(c.value(inline)[16+8:], 0)
		}), "its inline page is not a leaf page"},
		{"an inline key whose size points outside its value", with(func(c *rawFile) {
			le.PutUint32(c.value(inline)[16+16+8:], 1<<20)
		}), "outside the page"},
		{"an inline bucket holding a bucket", with(func(c *rawFile) {
			le.PutUint32(c.value(inline)[16+16:], 1)
		}), "an inline bucket holds none"},
		{"a branch page pointing at itself", with(func(c *rawFile) {
			id := c.branch()
			le.PutUint64(c.page(id)[16+8:], id)
		}), "reached more than once"},
		{"8,192 keys sharing their bytes", with(func(c *rawFile) {
			id := c.extend(empty, 40)
			shareKeys(c.data[id*4096:(id+40)*4096], 8192)
		}), "overlap"},
		{"children pointing into one run of 64 overflow pages", with(func(c *rawFile) {
			const run = 64
			id := c.extend(empty, run+1) // a branch, then the run
			branch := c.page(id)
			le.PutUint16(branch[8:], 0x01)
			le.PutUint16(branch[10:], run)
			le.PutUint32(branch[12:], 0)
			for j := range run {
				child := id + 1 + uint64(run-1-j) // the last page first, claiming the rest of the run
				h := c.page(child)
				le.PutUint64(h, child)
				le.PutUint16(h[8:], 0x02)
				le.PutUint16(h[10:], 0)
				le.PutUint32(h[12:], uint32(j))
				e := branch[16+j*16:]
				le.PutUint32(e[0:], uint32(run*16+2*j-16*j)) // each key, 2 bytes, after the table
				le.PutUint32(e[4:], 2)
				le.PutUint64(e[8:], child)
				binary.BigEndian.PutUint16(branch[16+run*16+2*j:], uint16(j+1))
			}
		}), "reached more than once"},
	}
}

// rawFile reads and rewrites a database file's pages, 4 KB each.
type rawFile struct {
	tb    testing.TB
	data  []byte
	meta  boltwalk.Meta
	roots map[string]uint64 // top-level buckets with pages of their own
}

func (r rawFile) openMeta() boltwalk.Meta {
	m, err := boltwalk.OpenMeta(bytes.NewReader(r.data), int64(len(r.data)))
	if err != nil || m.PageSize != 4096 {
		r.tb.Fatalf("the sample's meta: page size %d, %v", m.PageSize, err)
	}
	return m
}

func (r rawFile) page(id uint64) []byte { return r.data[id*4096 : (id+1)*4096] }

// inlineBuckets returns the names of a top-level inline bucket with keys
// in it, and of an empty one.
func (r rawFile) inlineBuckets() (withKeys, empty string) {
	root := r.page(r.meta.Root)
	if le.Uint16(root[8:]) != 0x02 || le.Uint32(root[12:]) != 0 {
		r.tb.Fatal("the sample's root bucket is not one leaf page")
	}
	for i := range int(le.Uint16(root[10:])) {
		name, v := leafKV(root, i)
		if le.Uint64(v) != 0 {
			continue
		}
		if le.Uint16(v[16+10:]) > 0 && withKeys == "" {
			withKeys = string(name)
		} else if le.Uint16(v[16+10:]) == 0 && empty == "" {
			empty = string(name)
		}
	}
	if withKeys == "" || empty == "" {
		r.tb.Fatalf("the sample lacks inline buckets: %q %q", withKeys, empty)
	}
	return withKeys, empty
}

// value returns the value of the top-level bucket name: its header and,
// if inline, its page.
func (r rawFile) value(name string) []byte {
	root := r.page(r.meta.Root)
	for i := range int(le.Uint16(root[10:])) {
		if k, v := leafKV(root, i); string(k) == name {
			return v
		}
	}
	r.tb.Fatalf("no bucket %q", name)
	return nil
}

func leafKV(p []byte, i int) (k, v []byte) {
	e := 16 + i*16
	pos, ksize, vsize := int(le.Uint32(p[e+4:])), int(le.Uint32(p[e+8:])), int(le.Uint32(p[e+12:]))
	return p[e+pos : e+pos+ksize], p[e+pos+ksize : e+pos+ksize+vsize]
}

// branch returns a bucket's root page that is a branch page.
func (r rawFile) branch() uint64 {
	for _, id := range r.roots {
		if le.Uint16(r.page(id)[8:]) == 0x01 {
			return id
		}
	}
	r.tb.Fatal("the sample has no bucket whose root is a branch page")
	return 0
}

// extend adds n zeroed pages after the high-water mark, makes the first
// of them the root of the empty inline bucket name, and returns its id.
// The current meta page is rewritten to name them.
func (r *rawFile) extend(name string, n int) uint64 {
	id := r.meta.HWM
	r.data = append(r.data[:id*4096], make([]byte, n*4096)...)
	p := r.page(id)
	le.PutUint64(p, id)
	le.PutUint16(p[8:], 0x02)
	le.PutUint32(p[12:], uint32(n-1))
	le.PutUint64(r.value(name), id)
	for m := range 2 {
		meta := r.data[m*4096+16 : m*4096+16+64]
		if le.Uint64(meta[48:]) == r.meta.TxID {
			le.PutUint64(meta[40:], id+uint64(n))
			h := fnv.New64a()
			_, _ = h.Write(meta[:56])
			le.PutUint64(meta[56:], h.Sum64())
		}
	}
	return id
}

// shareKeys rewrites the leaf page p (with its overflow) into n entries
// whose keys are the suffixes of one run of bytes, "aa…ab", "a…ab", …,
// "b": strictly ascending, so bbolt's own check passes them, but each as
// long as the rest of the run.
func shareKeys(p []byte, n int) {
	run := 16 + n*16
	le.PutUint16(p[10:], uint16(n))
	for i := range n {
		e := p[16+i*16:]
		le.PutUint32(e[0:], 0)
		le.PutUint32(e[4:], uint32(run+i-(16+i*16)))
		le.PutUint32(e[8:], uint32(n-i))
		le.PutUint32(e[12:], 0)
		p[run+i] = 'a'
	}
	p[run+n-1] = 'b'
}

// Ensure every command's open path refuses each named damaged file with
// ErrDamaged, in a message that says what to do, and changes nothing in
// it; in a child process first, so that a crash or a hang fails the test.
func TestOpen_RefusesNamedDamage(t *testing.T) {
	for _, d := range namedDamages(t) {
		t.Run(d.name, func(t *testing.T) {
			path := writeTemp(t, d.data)
			out := openPathsInChild(t, path)
			if t.Failed() {
				return
			}
			for _, mode := range []string{"read-only", "read-write"} {
				if !strings.Contains(out, mode+" open: refused, damaged") {
					t.Errorf("the %s open did not refuse it as damaged:\n%s", mode, out)
				}
			}
			for _, readOnly := range []bool{false, true} {
				db, err := storage.Open(path, storage.Options{ReadOnly: readOnly, Timeout: time.Second})
				if err == nil {
					closeOK(t, db)
					t.Fatalf("read-only %v: Open accepted it", readOnly)
				}
				if !errors.Is(err, storage.ErrDamaged) {
					t.Errorf("read-only %v: err = %v, want ErrDamaged", readOnly, err)
				}
				for _, want := range []string{path, d.want, "changed nothing", "nudgebot restore"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("read-only %v: the refusal\n%v\ndoes not say %q", readOnly, err, want)
					}
				}
			}
			if after := readFile(t, path); !bytes.Equal(after, d.data) {
				t.Error("the refused file was changed")
			}
		})
	}
}

// FuzzOpenDamaged mutates a real database file (page flags, counts, page
// ids, overflow, inline buckets, the free list: whatever the fuzzer
// reaches from the seeds, which include every named damage) and holds
// every command's open path to answering. A file the walk refuses is
// refused by Open before bbolt maps it, so that runs here; one it
// accepts goes to bbolt, so its open paths run in a child process under
// a time and memory limit.
func FuzzOpenDamaged(f *testing.F) {
	orig, layout := realDatabase(f)
	f.Add(orig[:layout.used])
	for _, d := range namedDamages(f) {
		f.Add(d.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := writeTemp(t, data)
		if _, err := boltwalk.File(bytes.NewReader(data), int64(len(data))); err == nil {
			openPathsInChild(t, path)
			return
		}
		for _, readOnly := range []bool{false, true} {
			db, err := storage.Open(path, storage.Options{ReadOnly: readOnly, Timeout: time.Second})
			if err == nil {
				closeOK(t, db)
				t.Fatalf("read-only %v: Open accepted a file the walk refuses", readOnly)
			}
			if !errors.Is(err, storage.ErrDamaged) {
				t.Errorf("read-only %v: err = %v, want ErrDamaged", readOnly, err)
			}
		}
		if after := readFile(t, path); !bytes.Equal(after, data) {
			t.Error("the refused file was changed")
		}
	})
}

// openPathsInChild runs openPaths on path in a child process (this test
// binary, running TestOpenPathsChild) and returns what it printed. The
// test fails if the child crashes, runs past childTimeout or grows past
// childMaxRSS.
func openPathsInChild(t *testing.T, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestOpenPathsChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited, tooBig := make(chan struct{}), make(chan int64, 1)
	go watchRSS(cmd.Process, exited, tooBig)
	err := cmd.Wait()
	close(exited)
	tail := out.String()
	if len(tail) > 4000 {
		tail = "…" + tail[len(tail)-4000:]
	}
	select {
	case rss := <-tooBig:
		t.Errorf("the open paths grew to %d MB of resident memory; killed:\n%s", rss>>20, tail)
	default:
		switch {
		case ctx.Err() != nil:
			t.Errorf("the open paths ran past %v; killed:\n%s", childTimeout, tail)
		case err != nil:
			t.Errorf("the open paths crashed (%v):\n%s", err, tail)
		}
	}
	return out.String()
}

// watchRSS kills p once its resident memory passes childMaxRSS.
func watchRSS(p *os.Process, exited <-chan struct{}, tooBig chan<- int64) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return
		case <-tick.C:
		}
		if rss := residentBytes(p.Pid); rss > childMaxRSS {
			tooBig <- rss
			_ = p.Kill()
			return
		}
	}
}

// residentBytes reads a process's VmRSS; 0 if it cannot.
func residentBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestOpenPathsChild is openPathsInChild's child, and skips otherwise.
func TestOpenPathsChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("runs only as openPathsInChild's child process")
	}
	openPaths(os.Stdout, path)
}

// openPaths opens path as each command does and uses it as each does,
// printing what happened. Any error is an answer; only a crash or a hang
// is not.
func openPaths(w io.Writer, path string) {
	say := func(what string, err error) {
		switch {
		case err == nil:
			fmt.Fprintf(w, "%s: ok\n", what)
		case errors.Is(err, storage.ErrDamaged):
			fmt.Fprintf(w, "%s: refused, damaged: %v\n", what, err)
		default:
			fmt.Fprintf(w, "%s: refused: %v\n", what, err)
		}
	}
	// export, check, restore and backup's verification of its copy.
	db, err := storage.Open(path, storage.Options{ReadOnly: true, Timeout: time.Second})
	say("read-only open", err)
	if err == nil {
		say("export", db.ExportAll(func(nudges.PersonRecord) error { return nil }))
		say("check", db.Check())
		say("close", db.Close())
	}
	// run (with its background check and a hot backup) and compact.
	db, err = storage.Open(path, storage.Options{Timeout: time.Second})
	say("read-write open", err)
	if err == nil {
		<-db.StartCheck()
		_, err := db.CheckResult()
		say("background check", err)
		_, err = db.WriteTo(io.Discard)
		say("backup", err)
		say("compact", db.Compact())
		say("close", db.Close())
	}
}
