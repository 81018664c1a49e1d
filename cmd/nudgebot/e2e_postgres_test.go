package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The end-to-end journeys on PostgreSQL: `run` wired with
// storage.driver: postgres against the emulator. The database is
// NUDGEBOT_TEST_DATABASE_URL (default the local test database); each
// test works in a schema of its own, dropped when it ends.

const envTestDatabase = "NUDGEBOT_TEST_DATABASE_URL"

// postgresSchema makes a fresh schema and returns a URL whose
// connections use it, and a connection to look at its rows; it skips the
// test with one line when no server is reachable.
func postgresSchema(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	url := os.Getenv(envTestDatabase)
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		if os.Getenv("NUDGEBOT_TEST_REQUIRE_POSTGRES") != "" {
			t.Fatalf("PostgreSQL is required here but unreachable: %v", err)
		}
		t.Skipf("no PostgreSQL reachable: set %s to a database URL to run the PostgreSQL journeys", envTestDatabase)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "nbe2e_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET search_path TO "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		_ = conn.Close(context.Background())
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema, conn
}

// withPostgres points the harness's bot at PostgreSQL, with a key file
// (a postgres deployment must configure its key).
func withPostgres(url string) harnessOption {
	return func(h *harness) {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		keyFile := filepath.Join(h.t.TempDir(), "master.key")
		writeFile(h.t, keyFile, base64.StdEncoding.EncodeToString(key)+"\n")
		h.cfg = mustConfig(h.t, h.emu.URL(), h.cfg.Storage.Path,
			"digests: []\nadmins: []\nstorage:\n  driver: postgres\n  url: \""+url+"\"\n  key_file: "+keyFile+"\n")
	}
}

func rows(t *testing.T, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Ensure a person's whole journey works on PostgreSQL: subscribe, get the
// 09:00 nudge once, mark it done, reflect, see it all after a restart,
// and forget, which leaves no row of theirs.
func TestPostgresJourney(t *testing.T) {
	url, conn := postgresSchema(t)
	h := newHarness(t, withPostgres(url))
	h.addPeople(ana, ben)
	h.start()
	if h.w.DB != nil {
		t.Fatal("the bot runs on the bbolt file, not PostgreSQL")
	}
	contains(t, h.nudge(ana.ID, "start"), "You're subscribed", "Mon 30 Nov, 09:00 (Europe/Berlin)")
	contains(t, h.nudge(ben.ID, "start"), "You're subscribed")
	h.at("Europe/Berlin", "09:00")
	h.tick()
	msg := h.waitDMs(ana.ID, 1)[0]
	contains(t, msg.VisibleText(), "Today's nudge", "[Done]")
	h.tick() // the slot is claimed once
	btn, _ := msg.Button("nudge_done")
	if _, err := h.emu.ClickButton(h.ctx(), ana.ID, msg, "nudge_done", btn.Value); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the nudge marked done", func() bool { return h.emu.DM(ana.ID)[0].Edits > 0 })
	contains(t, h.say(ana.ID, "/reflect", "Explained the why at standup; "+marker), "Saved privately; 1 reflection so far")

	h.restart()
	if n := len(h.emu.DM(ana.ID)); n != 1 {
		t.Errorf("Ana has %d nudges after the restart, want 1", n)
	}
	contains(t, h.say(ana.ID, "/reflect", "list"), "#1", marker)
	contains(t, h.nudge(ana.ID, "status"), "*Subscribed.*", "Streak: 1")
	if n := rows(t, conn, "SELECT count(*) FROM reflections WHERE position(convert_to($1, 'UTF8') IN sealed) > 0 OR strpos(record::text, $1) > 0", marker); n != 0 {
		t.Errorf("the reflection is in the database in the clear (%d rows)", n)
	}

	h.forget(ana.ID)
	contains(t, h.say(ana.ID, "/reflect", "list"), "no reflections")
	for _, table := range []string{"subscribers", "deliveries", "reflections", "data_keys", "reflection_seq", "forgetting"} {
		if n := rows(t, conn, "SELECT count(*) FROM "+table+" WHERE user_id = $1", ana.ID); n != 0 {
			t.Errorf("%d rows of Ana's left in %s after forget", n, table)
		}
	}
	if n := rows(t, conn, "SELECT count(*) FROM subscribers WHERE user_id = $1", ben.ID); n != 1 {
		t.Errorf("Ben's subscription is gone too")
	}
}

// Ensure the file-only commands say what to use on PostgreSQL, and
// check looks at the database without writing to it.
func TestPostgresFileOnlyCommands(t *testing.T) {
	url, conn := postgresSchema(t)
	dir := t.TempDir()
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	cfgPath := filepath.Join(dir, "config.yaml")
	writeFile(t, cfgPath, "storage:\n  driver: postgres\n  url: \""+url+"\"\n")
	env := map[string]string{"NUDGEBOT_SECRET_KEY": key}
	for cmd, want := range map[string]string{
		"backup":  "pg_dump",
		"restore": "pg_restore",
		"compact": "autovacuum",
		"export":  "/reflect export",
	} {
		args := []string{cmd, "-config", cfgPath}
		if cmd == "backup" || cmd == "restore" {
			args = append(args, filepath.Join(dir, "x.db"))
		}
		code, _, stderr := toolEnv(t, env, args...)
		if code == 0 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "storage.driver is postgres") {
			t.Errorf("%s: exit %d, stderr %q; want a refusal naming %s", cmd, code, stderr, want)
		}
	}
	env["SLACK_BOT_TOKEN"], env["SLACK_APP_TOKEN"], env["SLACK_API_URL"] = testBotToken, testAppToken, "http://127.0.0.1:1/api/"
	_, stdout, _ := toolEnv(t, env, "check", "-config", cfgPath)
	if !strings.Contains(stdout, "holds no nudgebot tables yet") {
		t.Errorf("check said %q; want it to find an empty database", stdout)
	}
	if n := rows(t, conn, "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"); n != 0 {
		t.Errorf("check created %d tables", n)
	}
	delete(env, "NUDGEBOT_SECRET_KEY")
	code, _, stderr := toolEnv(t, env, "check", "-config", cfgPath)
	if code == 0 || !strings.Contains(stderr, "no reflection key is configured") {
		t.Errorf("check without a key: exit %d, %q", code, stderr)
	}
}
