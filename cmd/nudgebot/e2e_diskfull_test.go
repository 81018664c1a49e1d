package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/internal/tinydisk"
	"github.com/nudgebot/nudgebot/ops"
)

// Ensure a full disk is visible and survivable, played with the kernel's
// own ENOSPC on a tiny tmpfs through the emulator: a person's /reflect is
// answered "nothing was saved, try again" with their words back, /readyz
// answers 503 with the reason, the write-error counter counts, the log
// says so once; when space returns, /readyz is ready again by itself and
// the same /reflect is saved.
func TestE2E_DiskFull(t *testing.T) {
	disk := tinydisk.Mount(t, 4<<20)
	m := ops.NewMetrics("test", nil)
	h := newHarness(t, func(h *harness) {
		h.cfg = mustConfig(h.t, h.emu.URL(), filepath.Join(disk.Dir, "nudgebot.db"), "")
	}, withTune(func(o *knobs) { o.Metrics = m }))
	h.addPeople(ana)
	h.start()
	h.tick()
	m.WatchDB(h.w.DB, nil)
	admin := httptest.NewServer(ops.AdminHandler(ops.AdminDeps{Metrics: m, Bot: h.bot, DB: h.w.DB, Writes: h.w.DB}))
	t.Cleanup(admin.Close)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(admin.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer closeOK(t, resp.Body)
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	writeErrors := func() int {
		t.Helper()
		_, text := get("/metrics")
		got := regexp.MustCompile(`(?m)^nudgebot_storage_write_errors_total (\d+)`).FindStringSubmatch(text)
		if got == nil {
			t.Fatalf("/metrics has no nudgebot_storage_write_errors_total:\n%s", text)
		}
		n, _ := strconv.Atoi(got[1])
		return n
	}
	contains(t, h.nudge(ana.ID, "start"), "You're subscribed")
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("before the disk filled: /readyz = %d %q", code, body)
	}
	if n := writeErrors(); n != 0 {
		t.Fatalf("before the disk filled: write errors = %d", n)
	}
	logsBefore := len(allLogs.String())

	disk.Fill()
	// Writes that fit in pages the file already has still succeed on a
	// full disk; each saved reflection grows the file, until one needs a
	// block the disk no longer has.
	var refused, text string
	for i := 0; i < 40 && refused == ""; i++ {
		text = strconv.Itoa(i) + " " + strings.Repeat("Thought about who decides what on the team. ", 60) + marker
		got := h.say(ana.ID, "/reflect", text)
		switch {
		case strings.Contains(got, "nothing was saved"):
			refused = got
		case !strings.Contains(got, "Saved privately"):
			t.Fatalf("reflection %d on a full disk: %q", i, got)
		}
	}
	if refused == "" {
		t.Fatal("40 reflections were saved on a full disk: the disk was not full")
	}
	contains(t, refused, "couldn't save that", "nothing was saved", "try again", "Your words, so nothing is lost", "Thought about who decides")
	// Everyone keeps trying: each is answered, the log does not grow a
	// line per attempt.
	for range 5 {
		contains(t, h.say(ana.ID, "/reflect", text), "nothing was saved")
	}
	code, body := get("/readyz")
	if code != 503 {
		t.Errorf("disk full: /readyz = %d %q, want 503", code, body)
	}
	contains(t, body, "not ready: the database refuses writes since", "no space left on device", "free space on the disk")
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("disk full: /healthz = %d, want 200: a restart frees no disk", code)
	}
	failed := writeErrors()
	if failed < 1 {
		t.Errorf("disk full: write errors = %d, want at least the refused reflection", failed)
	}

	disk.Free()
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("space back: /readyz = %d %q, want 200 without a restart or a person's write", code, body)
	}
	if got := h.say(ana.ID, "/reflect", text); !strings.Contains(got, "Saved privately") {
		t.Errorf("space back: the same /reflect answered %q, want it saved", got)
	}
	if n := writeErrors(); n != failed {
		t.Errorf("space back: write errors went from %d to %d", failed, n)
	}
	logs := allLogs.String()[logsBefore:]
	if n := strings.Count(logs, "database writes are failing"); n != 1 {
		t.Errorf("the fault was logged %d times within the test's minute, want once", n)
	}
	if n := len(regexp.MustCompile(`level=(WARN|ERROR)`).FindAllString(logs, -1)); n != 1 {
		t.Errorf("%d warnings and errors logged during the fault, want only the one that says so:\n%s", n, logs)
	}
	if !strings.Contains(logs, "database writes succeed again") {
		t.Error("the recovery was not logged")
	}
}
