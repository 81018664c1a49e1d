package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/internal/tinydisk"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// syncBuffer is a log sink the test reads while the database writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeUntilRefused stores people until the disk refuses one, and returns
// that refusal and the id it was for.
func writeUntilRefused(t *testing.T, db *storage.DB) (string, error) {
	t.Helper()
	note := strings.Repeat("a strategy line long enough to need new pages ", 40)
	for i := range 5000 {
		id := fmt.Sprintf("U%06d", i)
		_, err := db.UpdateSubscriber(id, func(s *nudges.Subscriber) error {
			s.Subscribed = true
			s.Focus = note[:len(note)-i%7]
			return nil
		})
		if err != nil {
			return id, err
		}
	}
	t.Fatal("5,000 writes fitted on a full disk: the disk was not full")
	return "", nil
}

// A full disk, the kernel's own ENOSPC on a tiny tmpfs: the refused write
// says nothing of it was saved, the fault stands (and is counted) until a
// write succeeds, probing does not end it while the disk is still full,
// and once space returns the first probe ends it by itself and the file
// holds every write but the refused ones.
func TestFullDiskFaultAndRecovery(t *testing.T) {
	disk := tinydisk.Mount(t, 2<<20)
	var logs syncBuffer
	clock := base
	db := MustOpenAt(t, filepath.Join(disk.Dir, "nudgebot.db"), storage.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Now:    func() time.Time { return clock },
	})
	subscribe(t, db, "UBEFORE", time.Time{})
	if _, err := db.WriteFault(); err != nil {
		t.Fatalf("WriteFault before the disk filled = %v, want nil", err)
	}
	if err := db.ProbeWrite(); err != nil {
		t.Fatalf("ProbeWrite with no fault = %v, want nil", err)
	}

	disk.Fill()
	refusedID, err := writeUntilRefused(t, db)
	we, ok := errors.AsType[*storage.WriteError](err)
	if !ok || !we.NotSaved() {
		t.Fatalf("a write on a full disk failed with %v (%T), want a *storage.WriteError", err, err)
	}
	if !errors.Is(err, syscall.ENOSPC) && !strings.Contains(err.Error(), "no space left") {
		t.Errorf("the refusal does not say the disk is full: %v", err)
	}
	since, fault := db.WriteFault()
	if fault == nil || !since.Equal(clock) {
		t.Fatalf("WriteFault after a refusal = %v, %v; want the refusal, since %v", since, fault, clock)
	}
	// Many more refusals within the minute: counted, not logged.
	for range 20 {
		clock = clock.Add(time.Second)
		if _, err := db.UpdateSubscriber(refusedID, func(s *nudges.Subscriber) error {
			s.Focus = strings.Repeat("x", 8000)
			return nil
		}); err == nil {
			t.Fatal("a write succeeded on a full disk")
		}
	}
	if err := db.ProbeWrite(); err == nil {
		t.Error("ProbeWrite on a still full disk succeeded")
	}
	if st := db.Stats(); st.WriteErrors < 21 {
		t.Errorf("Stats().WriteErrors = %d, want at least the 21 refused writes", st.WriteErrors)
	}
	if n := strings.Count(logs.String(), "database writes are failing"); n != 1 {
		t.Errorf("the fault was logged %d times within a minute, want once:\n%s", n, logs.String())
	}
	clock = clock.Add(time.Minute)
	if _, err := db.UpdateSubscriber(refusedID, func(s *nudges.Subscriber) error {
		s.Focus = strings.Repeat("y", 8000)
		return nil
	}); err == nil {
		t.Fatal("a write succeeded on a full disk")
	}
	if !strings.Contains(logs.String(), "similar_lines_suppressed=") || strings.Count(logs.String(), "database writes are failing") != 2 {
		t.Errorf("a minute later the fault is not logged again with the count of lines it stands for:\n%s", logs.String())
	}

	disk.Free()
	if err := db.ProbeWrite(); err != nil {
		t.Fatalf("ProbeWrite once space returned = %v, want nil", err)
	}
	if _, err := db.WriteFault(); err != nil {
		t.Fatalf("WriteFault after a successful probe = %v, want nil", err)
	}
	if !strings.Contains(logs.String(), "database writes succeed again") {
		t.Errorf("the recovery was not logged:\n%s", logs.String())
	}
	if _, err := db.Subscriber(refusedID); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("the refused person %s: err = %v, want not found (nothing of a refused write is saved)", refusedID, err)
	}
	subscribe(t, db, refusedID, time.Time{})
	db = reopen(t, db)
	for _, id := range []string{"UBEFORE", refusedID} {
		if s, err := db.Subscriber(id); err != nil || !s.Subscribed {
			t.Errorf("after recovery and a restart, %s = %+v, %v", id, s, err)
		}
	}
}

// A full disk refusing a write to the secrets file (a pulse vote, which
// writes only there) is a write fault like one of the main file: a
// *storage.WriteError naming the secrets file, counted, logged, and
// standing until a write succeeds again.
func TestFullDiskSecretsFileFault(t *testing.T) {
	disk := tinydisk.Mount(t, 2<<20)
	var logs syncBuffer
	path := filepath.Join(disk.Dir, "nudgebot.db")
	db := MustOpenAt(t, path, storage.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	voters := make([]string, 20000)
	for i := range voters {
		voters[i] = fmt.Sprintf("U%06d", i)
	}
	if err := db.OpenPulse("C1", "p1", base, voters...); err != nil {
		t.Fatal(err)
	}

	disk.Fill()
	var err error
	for _, v := range voters {
		if _, err = db.VotePulse("p1", v, 3); err != nil {
			break
		}
	}
	we, ok := errors.AsType[*storage.WriteError](err)
	if !ok || we.Path != storage.SecretsPath(path) {
		t.Fatalf("a vote on a full disk failed with %v (%T), want a *storage.WriteError naming %s", err, err, storage.SecretsPath(path))
	}
	if _, fault := db.WriteFault(); fault == nil {
		t.Error("WriteFault after the secrets file refused a write = nil, want the refusal")
	}
	if st := db.Stats(); st.WriteErrors < 1 {
		t.Errorf("Stats().WriteErrors = %d, want the refused write counted", st.WriteErrors)
	}
	if !strings.Contains(logs.String(), "database writes are failing") {
		t.Errorf("the fault was not logged:\n%s", logs.String())
	}
	disk.Free()
	if err := db.ProbeWrite(); err != nil {
		t.Fatalf("ProbeWrite once space returned = %v, want nil", err)
	}
	if _, err := db.VotePulse("p1", "UAFTER", 4); err != nil {
		t.Errorf("a vote once space returned: %v", err)
	}
}

// Ensure a backup into a file is made in that file, with no second
// copy beside the database: on a disk with room for one copy and a half,
// it succeeds, and the copy opens with everything in it.
func TestWriteTo_FileNeedsNoSecondCopy(t *testing.T) {
	disk := tinydisk.Mount(t, 32<<20)
	keys := mustKeys(t, testKey("master-1"))
	path := filepath.Join(disk.Dir, "nudgebot.db")
	db := MustOpenAt(t, path, storage.Options{Keys: keys})
	note := strings.Repeat("a strategy line long enough to take some room ", 20)
	var subs []nudges.Subscriber
	for i := range 3000 {
		subs = append(subs, nudges.Subscriber{UserID: fmt.Sprintf("U%06d", i), Subscribed: true, Focus: note})
	}
	if err := db.ImportSubscribers(subs); err != nil {
		t.Fatal(err)
	}
	mustSave(t, db, nudges.Reflection{UserID: "U000001", Text: "kept in the backup"})
	var sized bytes.Buffer
	size, err := db.WriteTo(&sized) // a plain writer: through a temporary file
	if err != nil {
		t.Fatal(err)
	}

	// Leave room for one copy and a half.
	var st syscall.Statfs_t
	if err := syscall.Statfs(disk.Dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	pad, err := os.Create(filepath.Join(disk.Dir, "pad"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pad.Write(make([]byte, free-size*3/2)); err != nil {
		t.Fatal(err)
	}
	if err := pad.Close(); err != nil {
		t.Fatal(err)
	}
	// The same file hidden behind a plain writer: a second copy, which
	// does not fit.
	plainOut, err := os.CreateTemp(disk.Dir, "plain-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.WriteTo(struct{ io.Writer }{plainOut}); err == nil {
		t.Fatal("a backup through a temporary file fitted: the disk was not short enough to tell")
	}
	_ = plainOut.Close()
	if err := os.Remove(plainOut.Name()); err != nil {
		t.Fatal(err)
	}

	out, err := os.CreateTemp(disk.Dir, "backup-*")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := db.WriteTo(out); err != nil {
		t.Fatalf("a backup into a file on a disk with room for it: %v", err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	closeOK(t, db)
	if err := os.Remove(pad.Name()); err != nil { // restoring compacts the copy once
		t.Fatal(err)
	}
	restored := MustOpenAt(t, out.Name(), storage.Options{Keys: keys})
	if got, err := restored.Reflections("U000001", 0); err != nil || len(got) != 1 || got[0].Text != "kept in the backup" {
		t.Errorf("the backup's reflections = %+v, %v", got, err)
	}
	if s, err := restored.Subscriber("U002999"); err != nil || s.Focus != note {
		t.Errorf("the backup's last subscriber = %+v, %v", s, err)
	}
}
