//go:build !nopostgres

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/pgstore"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// migrateSite is a bbolt file holding every kind of record, sealed with
// key, and a config naming it.
type migrateSite struct {
	opsSite
	key  string // base64, as NUDGEBOT_SECRET_KEY holds it
	keys *storage.Keys
	p    storagetest.Populated
}

func newMigrateSite(t *testing.T) migrateSite {
	t.Helper()
	raw := bytes.Repeat([]byte{9}, 32)
	keys, err := storage.NewKeys(raw)
	if err != nil {
		t.Fatal(err)
	}
	s := migrateSite{opsSite: newOpsSite(t, ""), key: base64.StdEncoding.EncodeToString(raw), keys: keys}
	db := storagetest.OpenAt(t, s.db, storage.Options{Keys: keys})
	s.p = storagetest.Populate(t, db)
	closeOK(t, db)
	return s
}

func (s migrateSite) env() map[string]string {
	return map[string]string{storage.EnvSecretKey: s.key}
}

// postgresConfig writes a config naming the PostgreSQL database at url.
func postgresConfig(t *testing.T, url string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "postgres.yaml")
	writeFile(t, path, "storage:\n  driver: postgres\n  url: \""+url+"\"\n")
	return path
}

// fileDump is every record of the bbolt file at path, in its canonical
// form, sorted.
func fileDump(t *testing.T, path string, keys *storage.Keys) []string {
	t.Helper()
	db := storagetest.OpenAt(t, path, storage.Options{ReadOnly: true, Keys: keys})
	defer closeOK(t, db)
	var out []string
	if err := db.Dump(func(r storage.Record) error {
		raw, err := storage.Canonical(r)
		out = append(out, string(raw))
		return err
	}); err != nil {
		t.Fatalf("dump %s: %v", path, err)
	}
	slices.Sort(out)
	return out
}

// dataRows counts the rows of every nudgebot table in conn's schema.
func dataRows(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	total := 0
	for _, table := range []string{"meta", "subscribers", "deliveries", "seen", "digests", "pulses", "pulse_voters",
		"pulse_history", "data_keys", "reflections", "reflection_seq", "forgetting"} {
		var exists bool
		if err := conn.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			total += rows(t, conn, "SELECT count(*) FROM "+table)
		}
	}
	return total
}

// Ensure a bbolt file migrated into PostgreSQL and back into a new file
// comes back with every record of every kind equal, the copy in
// PostgreSQL works as the file did, and the summary says what moved;
// nothing of a reflection appears in the output.
func TestMigrateRoundTrip(t *testing.T) {
	site := newMigrateSite(t)
	url, conn := postgresSchema(t)
	want := fileDump(t, site.db, site.keys)

	code, stdout, stderr := toolEnv(t, site.env(), "migrate", "-config", site.cfg, "-to-postgres", url)
	if code != ops.ExitOK {
		t.Fatalf("migrate -to-postgres: exit %d\n%s%s", code, stdout, stderr)
	}
	contains(t, stdout, "deliveries", "reflections", "pulse voter markers", "3 of 3 reflections opened", "records/s")
	if n := rows(t, conn, "SELECT count(*) FROM deliveries"); n != 6 {
		t.Errorf("%d deliveries in PostgreSQL, want 6", n)
	}
	if n := rows(t, conn, "SELECT count(*) FROM seen"); n != 0 {
		t.Errorf("%d handled envelopes copied; they are left out", n)
	}

	back := filepath.Join(t.TempDir(), "back.db")
	code, stdout2, stderr2 := toolEnv(t, site.env(), "migrate", "-config", postgresConfig(t, url), "-to-file", back)
	if code != ops.ExitOK {
		t.Fatalf("migrate -to-file: exit %d\n%s%s", code, stdout2, stderr2)
	}
	if got := fileDump(t, back, site.keys); !slices.Equal(got, want) {
		t.Errorf("the file migrated back differs from the original:\n got %q\nwant %q", got, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(back))
	for _, e := range entries {
		if strings.Contains(e.Name(), "migrate") {
			t.Errorf("%s left beside the copy", e.Name())
		}
	}
	for _, out := range []string{stdout, stderr, stdout2, stderr2} {
		if strings.Contains(out, "standup") || strings.Contains(out, "roadmap") || strings.Contains(out, site.key) {
			t.Errorf("the output holds a reflection or the key: %q", out)
		}
	}

	pg, err := pgstore.Open(context.Background(), pgstore.Options{URL: url, Keys: site.keys})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	storagetest.CheckPopulated(t, pg, site.p)
	db := storagetest.OpenAt(t, back, storage.Options{Keys: site.keys})
	storagetest.CheckPopulated(t, db, site.p)
}

// Ensure a database the bot wrote on PostgreSQL, where records keep the
// zone their times were given in, moves into a file (which keeps the
// instant) and verifies: the engines agree on instants, not zones.
func TestMigrateFromPostgres(t *testing.T) {
	url, _ := postgresSchema(t)
	raw := bytes.Repeat([]byte{4}, 32)
	keys, err := storage.NewKeys(raw)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := pgstore.Open(context.Background(), pgstore.Options{URL: url, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	p := storagetest.Populate(t, pg)
	closeOK(t, pg)
	out := filepath.Join(t.TempDir(), "nudgebot.db")
	env := map[string]string{storage.EnvSecretKey: base64.StdEncoding.EncodeToString(raw)}
	code, stdout, stderr := toolEnv(t, env, "migrate", "-config", postgresConfig(t, url), "-to-file", out)
	if code != ops.ExitOK {
		t.Fatalf("migrate -to-file: exit %d\n%s%s", code, stdout, stderr)
	}
	contains(t, stdout, "3 of 3 reflections opened")
	storagetest.CheckPopulated(t, storagetest.OpenAt(t, out, storage.Options{Keys: keys}), p)
}

// Ensure migrate refuses, with the exit code of each kind of problem and
// a message saying what to do, and leaves the target as it was: a target
// that is not empty, a source in use, damaged or sealed with another
// key, and a copy that fails part-way.
func TestMigrateRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("target not empty", func(t *testing.T) {
		site := newMigrateSite(t)
		url, conn := postgresSchema(t)
		pg, err := pgstore.Open(ctx, pgstore.Options{URL: url, Keys: site.keys})
		if err != nil {
			t.Fatal(err)
		}
		if err := pg.SetStrategyLines([]string{"Already here"}); err != nil {
			t.Fatal(err)
		}
		closeOK(t, pg)
		code, _, stderr := toolEnv(t, site.env(), "migrate", "-config", site.cfg, "-to-postgres", url)
		if code != ops.ExitConfig || !strings.Contains(stderr, "is not empty") || !strings.Contains(stderr, "nothing was written") {
			t.Errorf("exit %d, %q; want %d and a refusal", code, stderr, ops.ExitConfig)
		}
		if n := dataRows(t, conn); n != 1 {
			t.Errorf("%d rows in the target after the refusal, want its 1", n)
		}
	})
	t.Run("file target exists", func(t *testing.T) {
		url, _ := postgresSchema(t)
		site := newMigrateSite(t)
		if code, out, errs := toolEnv(t, site.env(), "migrate", "-config", site.cfg, "-to-postgres", url); code != 0 {
			t.Fatalf("exit %d: %s%s", code, out, errs)
		}
		before := readFile(t, site.db)
		code, _, stderr := toolEnv(t, site.env(), "migrate", "-config", postgresConfig(t, url), "-to-file", site.db)
		if code != ops.ExitConfig || !strings.Contains(stderr, "exists") {
			t.Errorf("exit %d, %q; want %d and a refusal", code, stderr, ops.ExitConfig)
		}
		if !bytes.Equal(readFile(t, site.db), before) {
			t.Error("the existing file changed")
		}
	})
	t.Run("damaged record", func(t *testing.T) {
		site := newMigrateSite(t)
		url, conn := postgresSchema(t)
		storagetest.Tamper(t, site.db, func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("delivery_records"))
			k, _ := b.Cursor().Last()
			return b.Put(bytes.Clone(k), []byte{0xff, 0xff})
		})
		code, _, stderr := toolEnv(t, site.env(), "migrate", "-config", site.cfg, "-to-postgres", url)
		if code != ops.ExitDatabase || !strings.Contains(stderr, "damaged") {
			t.Errorf("exit %d, %q; want %d, damaged", code, stderr, ops.ExitDatabase)
		}
		if n := dataRows(t, conn); n != 0 {
			t.Errorf("%d rows in the target after the refusal", n)
		}
	})
	t.Run("damaged file", func(t *testing.T) {
		site := newMigrateSite(t)
		url, conn := postgresSchema(t)
		data := readFile(t, site.db)
		writeFile(t, site.db, string(data[:len(data)/2]))
		code, _, stderr := toolEnv(t, site.env(), "migrate", "-config", site.cfg, "-to-postgres", url)
		if code != ops.ExitDatabase || !strings.Contains(stderr, "damaged") {
			t.Errorf("exit %d, %q; want %d, damaged", code, stderr, ops.ExitDatabase)
		}
		if n := dataRows(t, conn); n != 0 {
			t.Errorf("%d rows in the target after the refusal", n)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		site := newMigrateSite(t)
		url, conn := postgresSchema(t)
		env := map[string]string{storage.EnvSecretKey: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))}
		code, _, stderr := toolEnv(t, env, "migrate", "-config", site.cfg, "-to-postgres", url)
		if code != ops.ExitKey || !strings.Contains(stderr, "not configured") {
			t.Errorf("exit %d, %q; want %d naming the key", code, stderr, ops.ExitKey)
		}
		code, _, stderr = toolEnv(t, nil, "migrate", "-config", site.cfg, "-to-postgres", url)
		if code != ops.ExitKey || !strings.Contains(stderr, "no reflection key") {
			t.Errorf("without a key: exit %d, %q; want %d", code, stderr, ops.ExitKey)
		}
		if n := dataRows(t, conn); n != 0 {
			t.Errorf("%d rows in the target after the refusal", n)
		}
	})
	t.Run("file in use", func(t *testing.T) {
		site := newMigrateSite(t)
		url, conn := postgresSchema(t)
		db := storagetest.OpenAt(t, site.db, storage.Options{Keys: site.keys}) // as a running bot holds it
		code, _, stderr := toolEnv(t, site.env(), "migrate", "-config", site.cfg, "-to-postgres", url)
		if code != ops.ExitDatabase || !strings.Contains(stderr, "in use by a running nudgebot") {
			t.Errorf("exit %d, %q; want %d, in use", code, stderr, ops.ExitDatabase)
		}
		closeOK(t, db)
		if n := dataRows(t, conn); n != 0 {
			t.Errorf("%d rows in the target after the refusal", n)
		}
	})
	t.Run("postgres in use", func(t *testing.T) {
		site := newMigrateSite(t)
		url, conn := postgresSchema(t)
		bot, err := pgstore.Open(ctx, pgstore.Options{URL: url, Keys: site.keys}) // a bot connected to the target
		if err != nil {
			t.Fatal(err)
		}
		code, _, stderr := toolEnv(t, site.env(), "migrate", "-config", site.cfg, "-to-postgres", url)
		if code != ops.ExitDatabase || !strings.Contains(stderr, "is in use") {
			t.Errorf("target: exit %d, %q; want %d, in use", code, stderr, ops.ExitDatabase)
		}
		if n := dataRows(t, conn); n != 0 {
			t.Errorf("%d rows in the target after the refusal", n)
		}
		code, _, stderr = toolEnv(t, site.env(), "migrate", "-config", postgresConfig(t, url), "-to-file", filepath.Join(t.TempDir(), "out.db"))
		if code != ops.ExitDatabase || !strings.Contains(stderr, "is in use") {
			t.Errorf("source: exit %d, %q; want %d, in use", code, stderr, ops.ExitDatabase)
		}
		closeOK(t, bot)
		// A follower whose connections go by another name (a pooler, a
		// URL of its own) recorded itself alive.
		other, err := pgstore.Open(ctx, pgstore.Options{URL: url, Keys: site.keys, ApplicationName: "elsewhere"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Present("replica-b", time.Minute); err != nil {
			t.Fatal(err)
		}
		code, _, stderr = toolEnv(t, site.env(), "migrate", "-config", postgresConfig(t, url), "-to-file", filepath.Join(t.TempDir(), "out.db"))
		if code != ops.ExitDatabase || !strings.Contains(stderr, "1 nudgebot replica(s) recorded themselves alive") {
			t.Errorf("source with a follower alive: exit %d, %q; want %d, in use", code, stderr, ops.ExitDatabase)
		}
		if err := other.Depart("replica-b"); err != nil {
			t.Fatal(err)
		}
		// A leader whose connections go by another name still holds the
		// lease.
		if _, _, err := other.Lead("replica-a", 0, time.Minute); err != nil {
			t.Fatal(err)
		}
		closeOK(t, other)
		code, _, stderr = toolEnv(t, site.env(), "migrate", "-config", postgresConfig(t, url), "-to-file", filepath.Join(t.TempDir(), "out.db"))
		if code != ops.ExitDatabase || !strings.Contains(stderr, "replica-a leads its replicas") {
			t.Errorf("source led: exit %d, %q; want %d, in use", code, stderr, ops.ExitDatabase)
		}
	})
	t.Run("bot starting mid-copy", func(t *testing.T) {
		site := newMigrateSite(t)
		url, conn := postgresSchema(t)
		// Hold the target's load lock, as a load already running would,
		// so the copy waits at its start with its own locks taken.
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, hashtext(current_schema()))", 0x6e6c); err != nil {
			t.Fatal(err)
		}
		done := make(chan int, 1)
		var stderr string
		go func() {
			code, _, errs := toolEnv(t, site.env(), "migrate", "-config", site.cfg, "-to-postgres", url)
			stderr = errs
			done <- code
		}()
		waitForLockWait(t, conn, "nudgebot-migrate")
		_, err := pgstore.Open(ctx, pgstore.Options{URL: url, Keys: site.keys})
		if !errors.Is(err, storage.ErrInUse) || !strings.Contains(err.Error(), "nudgebot migrate is copying this database") {
			t.Errorf("a bot opening the target mid-copy: %v; want it refused, in use", err)
		}
		code, _, errs := toolEnv(t, site.env(), "migrate", "-config", postgresConfig(t, url), "-to-file", filepath.Join(t.TempDir(), "out.db"))
		if code != ops.ExitDatabase || !strings.Contains(errs, "nudgebot migrate is copying") {
			t.Errorf("a second migrate from it: exit %d, %q; want %d, being copied", code, errs, ops.ExitDatabase)
		}
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1, hashtext(current_schema()))", 0x6e6c); err != nil {
			t.Fatal(err)
		}
		if code := <-done; code != ops.ExitOK {
			t.Fatalf("the copy: exit %d, %s", code, stderr)
		}
		bot, err := pgstore.Open(ctx, pgstore.Options{URL: url, Keys: site.keys})
		if err != nil {
			t.Fatalf("a bot opening the target after the copy: %v", err)
		}
		defer closeOK(t, bot)
		storagetest.CheckPopulated(t, bot, site.p)
	})
	t.Run("cut short", func(t *testing.T) {
		// More deliveries than one batch, so rows were copied in before
		// the damaged record at the end of the dump stops it.
		site := newMigrateSite(t)
		db := storagetest.OpenAt(t, site.db, storage.Options{Keys: site.keys})
		var ds []nudges.Delivery
		for i := range 12_000 {
			slot := storagetest.PopulateTime.Add(-time.Duration(i+10) * 24 * time.Hour)
			ds = append(ds, nudges.Delivery{ID: storage.DeliveryID(site.p.Dev, slot, false), UserID: site.p.Dev, NudgeID: "lead-001",
				Theme: nudges.ThemeLeading, Role: nudges.RoleLead, Slot: slot, State: nudges.StateSent, Created: slot})
		}
		if err := db.ImportDeliveries(ds); err != nil {
			t.Fatal(err)
		}
		closeOK(t, db)
		url, conn := postgresSchema(t)
		code, out, errs := toolEnv(t, site.env(), "migrate", "-config", site.cfg, "-to-postgres", url)
		if code != ops.ExitOK {
			t.Fatalf("exit %d: %s%s", code, out, errs)
		}
		// The damaged row comes last in the dump: the pulse history.
		if _, err := conn.Exec(ctx, `UPDATE pulse_history SET summary = '"damaged"'`); err != nil {
			t.Fatal(err)
		}
		back := filepath.Join(t.TempDir(), "back.db")
		code, _, stderr := toolEnv(t, site.env(), "migrate", "-config", postgresConfig(t, url), "-to-file", back)
		if code != ops.ExitDatabase || !strings.Contains(stderr, "was not written") {
			t.Errorf("-to-file: exit %d, %q; want %d", code, stderr, ops.ExitDatabase)
		}
		if entries, _ := os.ReadDir(filepath.Dir(back)); len(entries) != 0 {
			t.Errorf("a copy cut short left %v", entries)
		}

		storagetest.Tamper(t, site.db, func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("pulse_history"))
			k, _ := b.Cursor().Last()
			return b.Put(bytes.Clone(k), []byte("{damaged"))
		})
		url2, conn2 := postgresSchema(t)
		code, _, stderr = toolEnv(t, site.env(), "migrate", "-config", site.cfg, "-to-postgres", url2)
		if code != ops.ExitDatabase || !strings.Contains(stderr, "left empty") {
			t.Errorf("-to-postgres: exit %d, %q; want %d", code, stderr, ops.ExitDatabase)
		}
		if n := dataRows(t, conn2); n != 0 {
			t.Errorf("%d rows in the target after a copy cut short", n)
		}
	})
	t.Run("usage", func(t *testing.T) {
		site := newMigrateSite(t)
		for _, args := range [][]string{
			{"-config", site.cfg},
			{"-config", site.cfg, "-to-postgres", "postgres://x@127.0.0.1/x", "-to-file", "x.db"},
			{"-config", site.cfg, "-to-file", filepath.Join(site.dir, "x.db")},
			{"-config", postgresConfig(t, "postgres://x@127.0.0.1:1/x"), "-to-postgres", "postgres://x@127.0.0.1/x"},
			{"-config", site.cfg, "-to-postgres", "postgres://x@127.0.0.1/x", "-sample", "-1"},
		} {
			code, _, stderr := toolEnv(t, site.env(), append([]string{"migrate"}, args...)...)
			if code != ops.ExitConfig {
				t.Errorf("migrate %v: exit %d, %q; want %d", args, code, stderr, ops.ExitConfig)
			}
		}
	})
}

// waitForLockWait waits until a connection named app waits on a lock.
func waitForLockWait(t *testing.T, conn *pgx.Conn, app string) {
	t.Helper()
	for range 1000 {
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no connection of %s came to wait on a lock", app)
}

// Ensure the help names both directions.
func TestMigrateHelp(t *testing.T) {
	code, _, stderr := tool(t, "migrate", "-h")
	if code != ops.ExitOK {
		t.Fatalf("exit %d", code)
	}
	contains(t, stderr, "-to-postgres URL", "-to-file PATH", "PGPASSWORD")
}
