package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

var opsBase = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// opsSite is a database path and a config file naming it, in a fresh
// directory.
type opsSite struct {
	dir, db, cfg string
}

func newOpsSite(t *testing.T, metricsAddr string) opsSite {
	t.Helper()
	dir := t.TempDir()
	s := opsSite{dir: dir, db: filepath.Join(dir, "nudgebot.db"), cfg: filepath.Join(dir, "config.yaml")}
	yaml := fmt.Sprintf("storage:\n  path: %q\nmetrics:\n  addr: %q\n", s.db, metricsAddr)
	if err := os.WriteFile(s.cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// tool runs a nudgebot subcommand as main would, with no environment.
func tool(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return toolEnv(t, nil, args...)
}

// toolEnv runs a nudgebot subcommand with the environment env.
func toolEnv(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func openDB(t *testing.T, path string) *storage.DB {
	t.Helper()
	// Tests also close it early to free the file; cleanup then only
	// closes it again, which is fine.
	return storagetest.OpenAt(t, path, storage.Options{})
}

// seed stores n subscribers named with prefix, each with one pending
// delivery, and returns their ids.
func seed(t *testing.T, db *storage.DB, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s%06d", prefix, i)
		_, err := db.UpdateSubscriber(id, func(s *nudges.Subscriber) error {
			s.Subscribed = true
			s.NextDue = opsBase
			s.ProfileTZ = "Europe/Berlin"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		d := nudges.Delivery{
			ID: storage.DeliveryID(id, opsBase, false), UserID: id, NudgeID: "lead-001",
			Theme: nudges.ThemeLeading, Role: nudges.RoleLead, Slot: opsBase,
			State: nudges.StatePending, Created: opsBase,
		}
		if _, err := db.StartDelivery(d, opsBase, func(s *nudges.Subscriber) error {
			s.NextDue = opsBase.Add(24 * time.Hour)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// subscriberIDs opens the database at path read-only and lists who is in it.
func subscriberIDs(t *testing.T, path string) []string {
	t.Helper()
	db, err := storage.Open(path, storage.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer closeOK(t, db)
	var ids []string
	if err := db.ForEachSubscriber(func(s nudges.Subscriber) error {
		ids = append(ids, s.UserID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// serveBackups serves /backup for db the way `nudgebot run` does and
// returns the listener's host:port.
func serveBackups(t *testing.T, db *storage.DB) string {
	t.Helper()
	// The token file where `nudgebot run` creates it and `nudgebot
	// backup` looks: beside the key file, which sits beside the database.
	tok, err := makeToken(filepath.Dir(db.Path()))
	if err != nil {
		t.Fatal(err)
	}
	auth := ops.BackupAuth{Token: tok, Dir: filepath.Dir(db.Path())}
	srv := httptest.NewServer(ops.AdminHandler(ops.AdminDeps{Metrics: ops.NewMetrics("test", nil), Bot: fakeConn(true), DB: db, Backup: db, BackupAuth: auth}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// Ensure a database held by a running bot is backed up through the bot's
// /backup endpoint, consistently even while it is being written to, and
// that the copy is complete and checked.
func TestBackup_LiveDatabase(t *testing.T) {
	site := newOpsSite(t, "")
	db := openDB(t, site.db) // holds the exclusive lock, as the bot does
	want := seed(t, db, "U", 300)
	site = rewriteAddr(t, site, serveBackups(t, db))

	// Keep writing while the backup runs: the copy must still be one
	// consistent transaction's view, indexes included.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := db.UpdateSubscriber(fmt.Sprintf("W%06d", i), func(s *nudges.Subscriber) error {
				s.Subscribed = true
				s.NextDue = opsBase.Add(time.Duration(i) * time.Minute)
				return nil
			})
			if err != nil {
				t.Errorf("writer during backup: %v", err)
				return
			}
		}
	})
	out := filepath.Join(t.TempDir(), "backup.db")
	code, stdout, stderr := tool(t, "backup", "-config", site.cfg, out)
	close(stop)
	wg.Wait()
	if code != ops.ExitOK {
		t.Fatalf("backup: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "streamed by the running nudgebot") {
		t.Errorf("backup did not say it used the running bot: %q", stdout)
	}
	if err := ops.VerifyDatabase(out); err != nil {
		t.Fatalf("backup does not pass Check: %v", err)
	}
	got := subscriberIDs(t, out)
	for _, id := range want {
		if !slices.Contains(got, id) {
			t.Fatalf("backup lacks subscriber %s (has %d)", id, len(got))
		}
	}
	assertPrivate(t, out)
	if _, err := os.Stat(out + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backup left %s.tmp behind: %v", out, err)
	}
}

// rewriteAddr points the site's config at a metrics address.
func rewriteAddr(t *testing.T, s opsSite, addr string) opsSite {
	t.Helper()
	yaml := fmt.Sprintf("storage:\n  path: %q\nmetrics:\n  addr: %q\n", s.db, addr)
	if err := os.WriteFile(s.cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func assertPrivate(t *testing.T, path string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %v, want 0600: it holds everyone's data", path, perm)
	}
}

// Ensure a database no bot holds is read directly, without any listener.
func TestBackup_Unlocked(t *testing.T) {
	site := newOpsSite(t, "")
	db := openDB(t, site.db)
	want := seed(t, db, "U", 20)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backup.db")
	// A stale temporary file from an interrupted run is replaced, and its
	// lax mode with it.
	if err := os.WriteFile(out+".tmp", []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := tool(t, "backup", out, "-config", site.cfg) // flags after the file work too
	if code != ops.ExitOK {
		t.Fatalf("backup: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "read directly") {
		t.Errorf("backup did not say it read the file: %q", stdout)
	}
	if got := subscriberIDs(t, out); !slices.Equal(got, want) {
		t.Errorf("backup has %d subscribers, want %d", len(got), len(want))
	}
	assertPrivate(t, out)
	// The source is untouched and free again.
	if got := subscriberIDs(t, site.db); !slices.Equal(got, want) {
		t.Errorf("source has %d subscribers after backup, want %d", len(got), len(want))
	}
}

// Ensure every way a backup can go wrong is reported with what to do,
// and never leaves a file where the backup should be.
func TestBackup_Errors(t *testing.T) {
	closedPort := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		closeOK(t, ln)
		return addr
	}
	answer := func(h http.HandlerFunc) func(t *testing.T) string {
		return func(t *testing.T) string {
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			return srv.Listener.Addr().String()
		}
	}
	tests := []struct {
		name    string
		addr    func(t *testing.T) string // nil: metrics.addr unset
		locked  bool
		noToken bool
		out     string // "" means a fresh file; "DB" the database itself
		want    string
		code    int
	}{
		{name: "ErrLockedNoListener", locked: true, code: ops.ExitDatabase,
			want: "is in use by a running nudgebot, but there is no socket at"},
		{name: "ErrNobodyAnswers", locked: true, addr: closedPort, code: ops.ExitFailed,
			want: "no nudgebot answered at http://127.0.0.1:"},
		{name: "ErrNoToken", locked: true, code: ops.ExitFailed, noToken: true,
			addr: answer(func(w http.ResponseWriter, r *http.Request) { t.Error("asked without a token") }),
			want: "no backup token at"},
		{name: "ErrRefused", locked: true, code: ops.ExitFailed,
			addr: answer(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "go away", http.StatusForbidden) }),
			want: "refused the backup: 403 Forbidden: go away"},
		{name: "ErrCutShort", locked: true, code: ops.ExitFailed,
			addr: answer(func(w http.ResponseWriter, r *http.Request) {
				// Half a database and no trailer: what a crash mid-stream looks like.
				// Write errors are the client's to see, which is what is checked.
				w.Header().Set("Trailer", "Nudgebot-Backup-Bytes")
				_, _ = w.Write(make([]byte, 4096))
			}),
			want: `ended early: received 4096 bytes but the bot confirmed ""`},
		{name: "ErrServerFailed", locked: true, code: ops.ExitFailed,
			addr: answer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "Nudgebot-Backup-Error")
				_, _ = w.Write(make([]byte, 4096))
				w.Header().Set("Nudgebot-Backup-Error", "disk on fire")
			}),
			want: "failed while writing the backup: disk on fire"},
		{name: "ErrGarbage", locked: true, code: ops.ExitDatabase,
			addr: answer(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "Nudgebot-Backup-Bytes")
				_, _ = w.Write(bytes.Repeat([]byte("x"), 8192))
				w.Header().Set("Nudgebot-Backup-Bytes", "8192")
			}),
			want: "the copy failed its check, so it was discarded"},
		{name: "ErrOutIsDatabase", out: "DB", code: ops.ExitConfig, want: "is the database (storage.path)"},
		{name: "ErrNoOut", out: "-", code: ops.ExitConfig, want: "give the one file to write the backup to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := newOpsSite(t, "")
			db := openDB(t, site.db)
			seed(t, db, "U", 3)
			if !tt.locked {
				closeOK(t, db)
			}
			if tt.addr != nil {
				rewriteAddr(t, site, tt.addr(t))
			}
			if !tt.noToken {
				if _, err := makeToken(site.dir); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(t.TempDir(), "backup.db")
			args := []string{"backup", "-config", site.cfg}
			switch tt.out {
			case "":
				args = append(args, out)
			case "DB":
				args = append(args, site.db)
			}
			before := readFile(t, site.db)
			code, _, stderr := tool(t, args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr=%q\nwant it to contain %q", stderr, tt.want)
			}
			for _, p := range []string{out, out + ".tmp"} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists after a failed backup", filepath.Base(p))
				}
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".backup.db.tmp-*")); len(left) > 0 {
				t.Errorf("temporary files left after a failed backup: %q", left)
			}
			if !tt.locked {
				if after := readFile(t, site.db); !bytes.Equal(before, after) {
					t.Error("the database changed")
				}
			}
		})
	}
}

// Ensure restore puts a good backup in place, keeps what it replaced,
// and refuses — changing nothing — whenever it should.
func TestRestore(t *testing.T) {
	makeBackup := func(t *testing.T) string {
		dir := t.TempDir()
		db := openDB(t, filepath.Join(dir, "src.db"))
		seed(t, db, "B", 5)
		closeOK(t, db)
		return filepath.Join(dir, "src.db")
	}
	tests := []struct {
		name    string
		current string // "db" (a good one), "corrupt", "none"
		input   func(t *testing.T) string
		locked  bool
		prior   bool // a .before-restore from an earlier restore exists
		code    int
		want    string
		notWant string
	}{
		{name: "OK", current: "db", input: makeBackup, code: ops.ExitOK, want: "Start nudgebot again"},
		{name: "OverDamaged", current: "corrupt", input: makeBackup, code: ops.ExitOK, want: "Start nudgebot again"},
		{name: "IntoEmptyPlace", current: "none", input: makeBackup, code: ops.ExitOK, want: "Start nudgebot again"},
		{name: "ErrLocked", current: "db", input: makeBackup, locked: true, code: ops.ExitDatabase,
			want: "in use by a running nudgebot: stop nudgebot first"},
		{name: "ErrCorruptInput", current: "db", code: ops.ExitDatabase, want: "is not a usable backup, so nothing was changed",
			input: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "junk.db")
				if err := os.WriteFile(p, bytes.Repeat([]byte{0xAB}, 64<<10), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}},
		{name: "ErrTruncatedInput", current: "db", code: ops.ExitDatabase, want: "is not a usable backup, so nothing was changed",
			input: func(t *testing.T) string {
				p := makeBackup(t)
				data := readFile(t, p)
				if err := os.WriteFile(p, data[:len(data)/2], 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}},
		{name: "ErrMissingInput", current: "db", code: ops.ExitConfig, want: "nope.db cannot be read", notWant: "storage.path",
			input: func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope.db") }},
		{name: "ErrPriorRestore", current: "db", input: makeBackup, prior: true, code: ops.ExitFailed,
			want: "already exists, left by an earlier restore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := newOpsSite(t, "")
			switch tt.current {
			case "db":
				db := openDB(t, site.db)
				seed(t, db, "A", 2)
				if !tt.locked {
					closeOK(t, db)
				}
			case "corrupt":
				if err := os.WriteFile(site.db, bytes.Repeat([]byte{1}, 8192), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.prior {
				if err := os.WriteFile(site.db+".before-restore", []byte("earlier"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			in := tt.input(t)
			before := readIfAny(t, site.db)

			code, stdout, stderr := tool(t, "restore", "-config", site.cfg, in)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("output=%q\nwant it to contain %q", stdout+stderr, tt.want)
			}
			if tt.notWant != "" && strings.Contains(stdout+stderr, tt.notWant) {
				t.Errorf("output=%q\nwant it not to mention %q", stdout+stderr, tt.notWant)
			}
			if _, err := os.Stat(site.db + ".restore.tmp"); !errors.Is(err, os.ErrNotExist) {
				t.Error("restore left its temporary file behind")
			}
			if tt.code != ops.ExitOK {
				if after := readIfAny(t, site.db); !bytes.Equal(before, after) {
					t.Error("the database changed although restore failed")
				}
				if !tt.prior {
					if _, err := os.Stat(site.db + ".before-restore"); !errors.Is(err, os.ErrNotExist) {
						t.Error("a failed restore left a .before-restore")
					}
				}
				return
			}
			if got := subscriberIDs(t, site.db); len(got) != 5 || !strings.HasPrefix(got[0], "B") {
				t.Errorf("after restore the database has %v, want the backup's 5 B… subscribers", got)
			}
			assertPrivate(t, site.db)
			kept, err := os.ReadFile(site.db + ".before-restore")
			switch {
			case tt.current == "none":
				if err == nil {
					t.Error("restore into an empty place made a .before-restore")
				}
			case err != nil:
				t.Errorf("the replaced database was not kept: %v", err)
			case !bytes.Equal(kept, before):
				t.Error(".before-restore is not the database that was replaced")
			}
		})
	}
}

// Ensure export writes every subscriber and delivery as one JSON object
// per line with its kind, from a stopped database and through a running
// bot alike, to standard output or a private file.
func TestExport(t *testing.T) {
	tests := []struct {
		name   string
		locked bool
		toFile bool
	}{
		{name: "Stdout"},
		{name: "File", toFile: true},
		{name: "FromRunningBot", locked: true, toFile: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := newOpsSite(t, "")
			db := openDB(t, site.db)
			ids := seed(t, db, "U", 7)
			// Text a person typed must come out as typed.
			if _, err := db.UpdateSubscriber(ids[0], func(s *nudges.Subscriber) error {
				s.InactiveReason = `<b>"quoted"</b> & ünïcode`
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if tt.locked {
				rewriteAddr(t, site, serveBackups(t, db))
			} else {
				closeOK(t, db)
			}
			args := []string{"export", "-config", site.cfg}
			out := filepath.Join(t.TempDir(), "export.jsonl")
			if tt.toFile {
				args = append(args, "-o", out)
			}
			code, stdout, stderr := tool(t, args...)
			if code != ops.ExitOK {
				t.Fatalf("export: exit %d\nstderr: %s", code, stderr)
			}
			data := []byte(stdout)
			if tt.toFile {
				if stdout != "" {
					t.Errorf("export -o also wrote to stdout: %q", stdout)
				}
				var err error
				if data, err = os.ReadFile(out); err != nil {
					t.Fatal(err)
				}
				assertPrivate(t, out)
			}
			kinds := map[string]int{}
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				var line map[string]any
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatalf("line is not JSON: %v: %s", err, sc.Text())
				}
				kind, _ := line["kind"].(string)
				kinds[kind]++
				if line["user_id"] == nil || line["user_id"] == "" {
					t.Errorf("%s line without user_id: %s", kind, sc.Text())
				}
			}
			if want := map[string]int{"subscriber": 7, "delivery": 7}; !mapsEqual(kinds, want) {
				t.Errorf("kinds=%v, want %v", kinds, want)
			}
			if !bytes.Contains(data, []byte(`<b>\"quoted\"</b> & ünïcode`)) {
				t.Errorf("typed text was escaped or lost:\n%s", data)
			}
			if !strings.Contains(stderr, "exported 7 subscribers, 7 deliveries and 0 reflections") {
				t.Errorf("stderr=%q, want the counts", stderr)
			}
			if !strings.Contains(stderr, "nothing was left out") {
				t.Errorf("stderr=%q, want it to say nothing was left out: there are no reflections", stderr)
			}
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Ensure compact shrinks a database after deletions, keeps what was not
// deleted, and refuses a database in use.
func TestCompact(t *testing.T) {
	site := newOpsSite(t, "")
	db := openDB(t, site.db)
	ids := seed(t, db, "U", 10)
	// Big records fill many pages in few transactions (each costs an fsync).
	for i := range 300 {
		if _, err := db.UpdateSubscriber(fmt.Sprintf("W%06d", i), func(s *nudges.Subscriber) error {
			for j := range 300 {
				s.Seen = append(s.Seen, fmt.Sprintf("nudge-%04d", j))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		if err := db.DeleteSubscriber(fmt.Sprintf("W%06d", i)); err != nil {
			t.Fatal(err)
		}
	}

	code, _, stderr := tool(t, "compact", "-config", site.cfg)
	if code != ops.ExitDatabase || !strings.Contains(stderr, "in use by a running nudgebot: stop nudgebot first") {
		t.Errorf("compact of a database in use: exit %d, %q; want refusal", code, stderr)
	}

	closeOK(t, db)
	before := fileSize(t, site.db)
	code, stdout, stderr := tool(t, "compact", "-config", site.cfg)
	if code != ops.ExitOK {
		t.Fatalf("compact: exit %d\nstderr: %s", code, stderr)
	}
	after := fileSize(t, site.db)
	if after >= before/2 {
		t.Errorf("compact: %d → %d bytes, want it at least halved", before, after)
	}
	if want := fmt.Sprintf("%s before, %s after", ops.ByteSize(before), ops.ByteSize(after)); !strings.Contains(stdout, want) {
		t.Errorf("stdout=%q, want %q", stdout, want)
	}
	if got := subscriberIDs(t, site.db); !slices.Equal(got, ids) {
		t.Errorf("after compact: %d subscribers, want the 10 kept", len(got))
	}
	if err := ops.VerifyDatabase(site.db); err != nil {
		t.Errorf("after compact: %v", err)
	}
}

// Ensure compact never creates a database where none was.
func TestCompact_Missing(t *testing.T) {
	site := newOpsSite(t, "")
	code, _, stderr := tool(t, "compact", "-config", site.cfg)
	if code != ops.ExitDatabase || !strings.Contains(stderr, "no database at") {
		t.Errorf("exit %d, %q; want a refusal naming the path", code, stderr)
	}
	if _, err := os.Stat(site.db); !errors.Is(err, os.ErrNotExist) {
		t.Error("compact created a database")
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// Ensure the data tools need no Slack tokens, only the config, and say
// how they are used.
func TestOpsTools_Usage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"backup", "-h"}, ops.ExitOK, "Usage: nudgebot backup"},
		{[]string{"restore", "-h"}, ops.ExitOK, "Usage: nudgebot restore"},
		{[]string{"export", "-h"}, ops.ExitOK, "-o string"},
		{[]string{"export", "-strict", "-h"}, ops.ExitOK, "-strict\n    \texit with status 1 if any record was left out"},
		{[]string{"compact", "-h"}, ops.ExitOK, "Usage: nudgebot compact"},
		{[]string{"restore"}, ops.ExitConfig, "give the one backup file to restore"},
		{[]string{"export", "stray"}, ops.ExitConfig, `unexpected argument "stray"`},
		{[]string{"compact", "-config", "/nonexistent/config.yaml"}, ops.ExitConfig, "not found"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := tool(t, tt.args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("exit %d, output %q; want exit %d containing %q", code, stdout+stderr, tt.code, tt.want)
			}
			// The backup token is the tools' own; Slack's they never need.
			if slackTokenWords.MatchString(stderr) {
				t.Errorf("a data tool asked for Slack tokens: %q", stderr)
			}
		})
	}
}

var slackTokenWords = regexp.MustCompile(`(?i)slack[ _-]?(bot|app)?[ _-]?token|bot[ _]token|app[ _]token|xoxb|xapp`)

// reflectionSite is a database with sealed reflections and the key that
// opens them.
type reflectionSite struct {
	opsSite
	key    string // base64, as NUDGEBOT_SECRET_KEY holds it
	people []string
}

const reflectionMarker = "zebracorn"

func newReflectionSite(t *testing.T) reflectionSite {
	t.Helper()
	site := newOpsSite(t, "")
	raw := bytes.Repeat([]byte{7}, 32)
	rs := reflectionSite{opsSite: site, key: base64.StdEncoding.EncodeToString(raw)}
	keys, err := storage.NewKeys(raw)
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(site.db, storage.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	rs.people = seed(t, db, "U", 3)
	for i, who := range []string{rs.people[0], rs.people[0], rs.people[1]} {
		if _, err := db.SaveReflection(nudges.Reflection{
			UserID: who, Created: opsBase.Add(time.Duration(i) * time.Hour),
			Text: fmt.Sprintf("%s note %d: <talked> & listened", reflectionMarker, i), Commitment: "ask more",
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return rs
}

// Ensure reflections are exported, decrypted and oldest first, only
// with their key; without it they are left out and nothing sealed leaks;
// with the wrong key export stops and says which key is needed.
func TestExport_Reflections(t *testing.T) {
	tests := []struct {
		name   string
		key    string // "" none, "right", "wrong"
		locked bool
		code   int
		want   int // reflection lines
		note   string
	}{
		{name: "WithKey", key: "right", code: ops.ExitOK, want: 3, note: "and 3 reflections"},
		{name: "WithKeyFromRunningBot", key: "right", locked: true, code: ops.ExitOK, want: 3, note: "and 3 reflections"},
		{name: "NoKey", code: ops.ExitOK, want: 0, note: "reflections were left out"},
		{name: "ErrWrongKey", key: "wrong", code: ops.ExitKey, note: "were sealed with key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := newReflectionSite(t)
			env := map[string]string{}
			switch tt.key {
			case "right":
				env[storage.EnvSecretKey] = site.key
			case "wrong":
				env[storage.EnvSecretKey] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
			}
			if tt.locked {
				keys, err := storage.NewKeys(bytes.Repeat([]byte{7}, 32))
				if err != nil {
					t.Fatal(err)
				}
				db, err := storage.Open(site.db, storage.Options{Keys: keys})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { closeOK(t, db) })
				rewriteAddr(t, site.opsSite, serveBackups(t, db))
			}
			code, stdout, stderr := toolEnv(t, env, "export", "-config", site.cfg)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.note) {
				t.Errorf("stderr=%q, want %q", stderr, tt.note)
			}
			var texts []string
			for line := range strings.Lines(stdout) {
				var r struct {
					Kind   string `json:"kind"`
					UserID string `json:"user_id"`
					Seq    int    `json:"seq"`
					Text   string `json:"text"`
				}
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("not JSON: %v: %s", err, line)
				}
				if r.Kind == "reflection" {
					texts = append(texts, fmt.Sprintf("%s/%d: %s", r.UserID, r.Seq, r.Text))
				}
			}
			if len(texts) != tt.want {
				t.Fatalf("%d reflections exported, want %d: %q", len(texts), tt.want, texts)
			}
			if tt.want > 0 {
				want := []string{
					site.people[0] + "/1: " + reflectionMarker + " note 0: <talked> & listened",
					site.people[0] + "/2: " + reflectionMarker + " note 1: <talked> & listened",
					site.people[1] + "/1: " + reflectionMarker + " note 2: <talked> & listened",
				}
				if !slices.Equal(texts, want) {
					t.Errorf("reflections=%q\nwant %q", texts, want)
				}
			} else if strings.Contains(stdout+stderr, reflectionMarker) {
				t.Error("reflection text reached the output without the key")
			}
			if _, err := os.Stat(filepath.Join(site.dir, storage.KeyFileName)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("export created a key file beside the database: %v", err)
			}
		})
	}
}

// Ensure compact of a database with reflections needs their key, says
// so, and then keeps every reflection readable.
func TestCompact_Reflections(t *testing.T) {
	site := newReflectionSite(t)
	before := readFile(t, site.db)
	code, _, stderr := tool(t, "compact", "-config", site.cfg)
	if code != ops.ExitKey || !strings.Contains(stderr, "were sealed with key") || !strings.Contains(stderr, storage.EnvSecretKey) {
		t.Errorf("compact without the key: exit %d, %q; want a refusal naming %s", code, stderr, storage.EnvSecretKey)
	}
	if after := readFile(t, site.db); !bytes.Equal(before, after) {
		t.Error("a refused compact changed the database")
	}
	env := map[string]string{storage.EnvSecretKey: site.key}
	if code, _, stderr := toolEnv(t, env, "compact", "-config", site.cfg); code != ops.ExitOK {
		t.Fatalf("compact with the key: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := toolEnv(t, env, "export", "-config", site.cfg)
	if code != ops.ExitOK || strings.Count(stdout, `"kind":"reflection"`) != 3 {
		t.Errorf("after compact: exit %d, %d reflections; stderr %s", code, strings.Count(stdout, `"kind":"reflection"`), stderr)
	}
}

// Ensure restore warns, before the swap, that the bot will need the key
// the backup's reflections were sealed with, and still restores.
func TestRestore_WarnsAboutKeys(t *testing.T) {
	backup := newReflectionSite(t)
	tests := []struct {
		name string
		env  map[string]string
		warn bool
	}{
		{name: "RightKey", env: map[string]string{storage.EnvSecretKey: backup.key}},
		{name: "NoKey", env: nil, warn: true},
		{name: "OtherKey", env: map[string]string{storage.EnvSecretKey: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))}, warn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := newOpsSite(t, "")
			code, _, stderr := toolEnv(t, tt.env, "restore", "-config", site.cfg, backup.db)
			if code != ops.ExitOK {
				t.Fatalf("restore: exit %d: %s", code, stderr)
			}
			if warned := strings.Contains(stderr, "will not start with this backup until its key is configured"); warned != tt.warn {
				t.Errorf("warned=%v, want %v: %q", warned, tt.warn, stderr)
			}
		})
	}
}

// makeToken creates the backup token where `nudgebot run` does: beside
// the key file, which sits beside the database in dir.
func makeToken(dir string) (string, error) {
	return ops.BackupToken(config.Config{Storage: config.StorageConfig{Path: filepath.Join(dir, "nudgebot.db")}}, nil, true)
}

type fakeConn bool

func (c fakeConn) Connected() bool { return bool(c) }
