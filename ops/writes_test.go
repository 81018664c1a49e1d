package ops

import (
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// fakeWrites is a disk that refuses writes while full is set; a probe
// succeeds once it is cleared, or blocks until release is closed.
type fakeWrites struct {
	mu      sync.Mutex
	full    bool
	since   time.Time
	probes  int
	release chan struct{}
}

func (f *fakeWrites) WriteFault() (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.full {
		return time.Time{}, nil
	}
	return f.since, errors.New("database x refused a write, so nothing of it was saved:\nwrite x: " + syscall.ENOSPC.Error())
}

func (f *fakeWrites) ProbeWrite() error {
	if f.release != nil {
		<-f.release
	}
	f.mu.Lock()
	f.probes++
	f.mu.Unlock()
	_, err := f.WriteFault()
	return err
}

func (f *fakeWrites) set(full bool) { f.mu.Lock(); f.full = full; f.mu.Unlock() }

// Ensure /readyz answers 503, with the reason in one line, while the disk
// refuses writes, probes only then, and is ready again once a probe
// succeeds; /healthz stays 200 throughout, since a restart frees no disk.
func TestReadyz_WritesRefused(t *testing.T) {
	m := NewMetrics("test", nil)
	m.Ticked(0)
	w := &fakeWrites{since: time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)}
	h := AdminHandler(AdminDeps{Metrics: m, Bot: fakeConn(true), DB: fakeHealthDB{}, Writes: w})
	if code, body := get(t, h, "/readyz"); code != 200 || w.probes != 0 {
		t.Fatalf("writes succeed: GET /readyz = %d %q after %d probes, want 200 and no probe", code, body, w.probes)
	}
	w.set(true)
	code, body := get(t, h, "/readyz")
	for _, want := range []string{"not ready: the database refuses writes since 2026-12-07T09:30:00Z", "no space left on device", "free space on the disk"} {
		if code != 503 || !strings.Contains(body, want) {
			t.Errorf("disk full: GET /readyz = %d %q, want 503 and %q", code, body, want)
		}
	}
	if strings.Count(body, "\n") != 1 {
		t.Errorf("reason is not one line: %q", body)
	}
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Errorf("disk full: GET /healthz = %d, want 200 (a restart frees no disk)", code)
	}
	w.set(false)
	if code, body := get(t, h, "/readyz"); code != 200 {
		t.Errorf("space back: GET /readyz = %d %q, want 200", code, body)
	}
	if w.probes != 1 {
		t.Errorf("probes = %d, want 1: one while the fault stood", w.probes)
	}
}

// Ensure a probe write that hangs turns /readyz into a 503 after the
// timeout instead of hanging it.
func TestReadyz_ProbeHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMetrics("test", nil)
		m.Ticked(0)
		w := &fakeWrites{full: true, release: make(chan struct{})}
		defer close(w.release)
		h := AdminHandler(AdminDeps{Metrics: m, Bot: fakeConn(true), DB: fakeHealthDB{}, Writes: w})
		start := time.Now()
		if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "did not finish within 2s") {
			t.Errorf("GET /readyz = %d %q, want 503 and the timeout", code, body)
		}
		if took := time.Since(start); took != healthTimeout {
			t.Errorf("took %v, want %v", took, healthTimeout)
		}
	})
}
