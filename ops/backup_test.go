package ops

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const guardToken = "test-backup-token-0123456789"

// Ensure /backup hands the database only to clients on the same machine
// that address it by a loopback name and present the token, and to one
// of them at a time.
func TestBackupHandler_Guards(t *testing.T) {
	auth := BackupAuth{Token: guardToken, Dir: t.TempDir()}
	tests := []struct {
		name, remote, host, authz string
		code                      int
	}{
		{"another machine", "192.0.2.7:51000", "127.0.0.1:9090", "Bearer " + guardToken, http.StatusForbidden},
		{"another machine v6", "[2001:db8::1]:51000", "127.0.0.1:9090", "Bearer " + guardToken, http.StatusForbidden},
		{"garbage address", "garbage", "127.0.0.1:9090", "Bearer " + guardToken, http.StatusForbidden},
		{"DNS rebinding", "127.0.0.1:51000", "evil.example:9090", "Bearer " + guardToken, http.StatusForbidden},
		{"rebinding to a name that resolves locally", "127.0.0.1:51000", "127.0.0.1.nip.io:9090", "Bearer " + guardToken, http.StatusForbidden},
		{"no token", "127.0.0.1:51000", "127.0.0.1:9090", "", http.StatusUnauthorized},
		{"wrong token", "127.0.0.1:51000", "localhost:9090", "Bearer not-the-token-at-all-xx", http.StatusUnauthorized},
		{"token in the wrong scheme", "127.0.0.1:51000", "[::1]:9090", "Basic " + guardToken, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			free := &blockingSource{started: make(chan struct{}), release: make(chan struct{})}
			close(free.release)
			r := httptest.NewRequest(http.MethodGet, "/backup", nil)
			r.RemoteAddr, r.Host = tt.remote, tt.host
			if tt.authz != "" {
				r.Header.Set("Authorization", tt.authz)
			}
			rec := httptest.NewRecorder()
			backupHandler(free, auth, nil).ServeHTTP(rec, r)
			if rec.Code != tt.code || free.calls.Load() != 0 {
				t.Errorf("%d, %d copies made; want %d and none", rec.Code, free.calls.Load(), tt.code)
			}
			if strings.Contains(rec.Body.String(), guardToken) {
				t.Error("the refusal quotes the token")
			}
		})
	}

	src := &blockingSource{started: make(chan struct{}), release: make(chan struct{})}
	h := backupHandler(src, auth, nil)
	local := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/backup", nil)
		r.RemoteAddr, r.Host = "[::1]:51000", "[::1]:9090"
		r.Header.Set("Authorization", "Bearer "+guardToken)
		return r
	}
	first := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { h.ServeHTTP(first, local()); close(done) }()
	<-src.started
	second := httptest.NewRecorder()
	h.ServeHTTP(second, local())
	if second.Code != http.StatusServiceUnavailable || !strings.Contains(second.Body.String(), "already in progress") {
		t.Errorf("second backup at once: %d %q, want 503 already in progress", second.Code, second.Body.String())
	}
	close(src.release)
	<-done
	if first.Code != http.StatusOK || first.Result().Trailer.Get(trailerBytes) != "5" || first.Body.String() != "hello" {
		t.Errorf("first backup: %d, trailer %q, body %q; want 200, 5 bytes, hello", first.Code, first.Result().Trailer.Get(trailerBytes), first.Body.String())
	}
	if left, _ := filepath.Glob(filepath.Join(auth.Dir, "*")); len(left) > 0 {
		t.Errorf("temporary copies left behind: %q", left)
	}
}

// bigSource writes size bytes, far more than a connection buffers, and
// says when it has finished: when the database's read transaction ends.
type bigSource struct {
	size int64
	done chan struct{}
}

func (s *bigSource) Size() (int64, error) { return s.size, nil }

func (s *bigSource) WriteTo(w io.Writer) (int64, error) {
	defer close(s.done)
	chunk := bytes.Repeat([]byte("nudgebot"), 8<<10)
	var n int64
	for n < s.size {
		m, err := w.Write(chunk[:min(int64(len(chunk)), s.size-n)])
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Ensure a client that stops reading never holds the database: the copy
// is finished (its read transaction over) before the first byte is sent.
func TestBackupHandler_StalledReaderDoesNotHoldDatabase(t *testing.T) {
	src := &bigSource{size: 48 << 20, done: make(chan struct{})}
	srv := httptest.NewServer(backupHandler(src, BackupAuth{Token: guardToken, Dir: t.TempDir()}, nil))
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+guardToken)
	resp, err := srv.Client().Do(req) // headers only: the body is not read yet
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	select {
	case <-src.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the copy is still being written while the client reads nothing: the read transaction waits for the client")
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != src.size || resp.Trailer.Get(trailerBytes) != strconv.FormatInt(src.size, 10) {
		t.Errorf("received %d bytes (%v), trailer %q; want %d", n, err, resp.Trailer.Get(trailerBytes), src.size)
	}
}

type blockingSource struct {
	started, release chan struct{}
	calls            atomic.Int32
}

func (s *blockingSource) Size() (int64, error) { return 5, nil }

func (s *blockingSource) WriteTo(w io.Writer) (int64, error) {
	s.calls.Add(1)
	close(s.started)
	<-s.release
	n, err := w.Write([]byte("hello"))
	return int64(n), err
}

// Ensure the backup client asks a bot listening on every interface on
// loopback, where it answers.
func TestBackupURL(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:9090", "http://127.0.0.1:9090/backup"},
		{":9090", "http://127.0.0.1:9090/backup"},
		{"0.0.0.0:9090", "http://127.0.0.1:9090/backup"},
		{"[::]:9090", "http://[::1]:9090/backup"},
		{"localhost:9090", "http://localhost:9090/backup"},
	}
	for _, tt := range tests {
		if got, err := backupURL(tt.addr); err != nil || got != tt.want {
			t.Errorf("backupURL(%q)=%q, %v; want %q", tt.addr, got, err, tt.want)
		}
	}
}

// Ensure progress redraws nothing off a terminal, and reports quarters
// as plain lines.
func TestProgress_Plain(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, "backing up", 400, count)
	for range 8 {
		p.Add(50)
	}
	p.Done()
	want := "backing up: 25% (100 of 400)\nbacking up: 50% (200 of 400)\nbacking up: 75% (300 of 400)\n"
	if buf.String() != want {
		t.Errorf("progress=%q, want %q", buf.String(), want)
	}
	buf.Reset()
	p = newProgress(&buf, "exporting", 0, count)
	p.Add(1000)
	p.Done()
	if buf.Len() != 0 {
		t.Errorf("progress of unknown total printed %q off a terminal", buf.String())
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := ByteSize(n); got != want {
			t.Errorf("ByteSize(%d)=%q, want %q", n, got, want)
		}
	}
}

// Ensure a file a tool puts in place of the database keeps the old
// file's owner, so a restore run as root leaves the service user a file
// it can open.
func TestKeepOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can give a file away")
	}
	dir := t.TempDir()
	old, repl := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	for _, p := range []string{old, repl} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(old, 4321, 4322); err != nil {
		t.Fatal(err)
	}
	was, err := os.Stat(old)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	keepOwner(repl, was, &stderr)
	now, err := os.Stat(repl)
	if err != nil {
		t.Fatal(err)
	}
	if uid, gid, ok := fileOwner(now); !ok || uid != 4321 || gid != 4322 {
		t.Errorf("owner %d:%d (%v), want 4321:4322; stderr %q", uid, gid, ok, stderr.String())
	}
}

// failingSource is a database whose copy the disk refuses.
type failingSource struct{ err error }

func (f failingSource) WriteTo(io.Writer) (int64, error) { return 0, f.err }
func (f failingSource) Size() (int64, error)             { return 1 << 20, nil }

// Ensure a backup that fails says why, so an operator whose disk is full
// is not sent to a log to find out.
func TestServeCopy_SaysWhyItFailed(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		dir  string
		src  BackupSource
		want string
	}{
		{"disk full while copying", dir, failingSource{&os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}}, "the disk is full; free some space there and try again"},
		{"read error while copying", dir, failingSource{errors.New("read database: input/output error")}, "read database: input/output error"},
		{"no directory for the copy", filepath.Join(dir, "missing"), failingSource{}, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			serveCopy(rec, tt.src, tt.dir, slog.New(slog.DiscardHandler))
			if rec.Code != http.StatusInternalServerError {
				t.Fatalf("code %d, want 500", rec.Code)
			}
			body := rec.Body.String()
			if !strings.Contains(body, tt.want) || strings.Contains(body, "see its log") {
				t.Errorf("answer %q: want it to say %q, not to send the operator to the log", body, tt.want)
			}
		})
	}
}
