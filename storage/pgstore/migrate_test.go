package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/pgstore"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// dumpJSON is every record dump yields, in its canonical form, sorted:
// the engines agree on the records, not on their order.
func dumpJSON(t *testing.T, dump func(func(storage.Record) error) error) []string {
	t.Helper()
	var out []string
	err := dump(func(r storage.Record) error {
		raw, err := storage.Canonical(r)
		out = append(out, string(raw))
		return err
	})
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	slices.Sort(out)
	return out
}

func records(t *testing.T, raws []string) []storage.Record {
	t.Helper()
	out := make([]storage.Record, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal([]byte(raw), &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Ensure a bbolt file loaded into PostgreSQL and back holds the same
// records at every step, each engine dumping them alike, and the
// PostgreSQL copy behaves as the file did (the contract's semantics,
// through the ports), including a pulse that goes on taking votes.
func TestLoadRoundTripThroughBBolt(t *testing.T) {
	keys := testKeys(t)
	file := storagetest.Open(t, storage.Options{Keys: keys})
	p := storagetest.Populate(t, file)
	want := dumpJSON(t, file.Dump)

	pg, conn, _ := open(t)
	load, err := pg.BeginLoad(context.Background())
	if err != nil {
		t.Fatalf("BeginLoad: %v", err)
	}
	for _, r := range records(t, want) {
		if err := load.Add(r); err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
	if got := dumpJSON(t, load.Dump); !slices.Equal(got, want) {
		t.Errorf("read back through the load:\n got %q\nwant %q", got, want)
	}
	if n := rows(t, conn, "SELECT count(*) FROM subscribers"); n != 0 {
		t.Errorf("%d subscribers visible before the commit", n)
	}
	if err := load.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	inPG := dumpJSON(t, func(fn func(storage.Record) error) error { return pg.Dump(context.Background(), fn) })
	if !slices.Equal(inPG, want) {
		t.Errorf("PostgreSQL dumps differently:\n got %q\nwant %q", inPG, want)
	}

	back := storagetest.Open(t, storage.Options{Keys: keys})
	l, err := back.NewLoader()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records(t, inPG) {
		if err := l.Add(r); err != nil {
			t.Fatalf("Add to the file: %v", err)
		}
	}
	if err := l.Finish(); err != nil {
		t.Fatal(err)
	}
	if got := dumpJSON(t, back.Dump); !slices.Equal(got, want) {
		t.Errorf("the file copied back dumps differently:\n got %q\nwant %q", got, want)
	}
	if err := back.Check(); err != nil {
		t.Errorf("Check of the file copied back: %v", err)
	}
	storagetest.CheckPopulated(t, pg, p)
	storagetest.CheckPopulated(t, back, p)
}

func rows(t *testing.T, conn *pgx.Conn, sql string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Ensure a load refuses a database with a row in any table, and one
// abandoned (an error, a crash, a lost connection) leaves it empty.
func TestLoadEmptyOnly(t *testing.T) {
	ctx := context.Background()
	s, conn, opts := open(t)
	if empty, err := pgstore.Empty(ctx, opts); err != nil || !empty {
		t.Fatalf("Empty on a fresh schema: %v, %v", empty, err)
	}
	load, err := s.BeginLoad(ctx)
	if err != nil {
		t.Fatal(err)
	}
	file := storagetest.Open(t, storage.Options{Keys: testKeys(t)})
	storagetest.Populate(t, file)
	for _, r := range records(t, dumpJSON(t, file.Dump)) {
		if err := load.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := load.Finish(); err != nil {
		t.Fatal(err)
	}
	// The process dies: its connection goes, the transaction with it.
	exec(t, conn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'", "nudgebot/"+opts.Schema)
	if err := load.Commit(); err == nil {
		t.Fatal("a load whose connection was cut committed")
	}
	load.Rollback()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"subscribers", "deliveries", "reflections", "data_keys", "pulses", "meta"} {
		if n := rows(t, conn, "SELECT count(*) FROM "+table); n != 0 {
			t.Errorf("%d rows in %s after a load that never committed", n, table)
		}
	}
	if empty, err := pgstore.Empty(ctx, opts); err != nil || !empty {
		t.Errorf("Empty after an abandoned load: %v, %v", empty, err)
	}

	s, err = pgstore.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, table := range []string{"meta", "seen", "forgetting"} {
		exec(t, conn, "DELETE FROM meta")
		exec(t, conn, "DELETE FROM seen")
		exec(t, conn, "DELETE FROM forgetting")
		switch table {
		case "meta":
			exec(t, conn, `INSERT INTO meta (key, value) VALUES ('strategy_lines', '["x"]')`)
		case "seen":
			exec(t, conn, `INSERT INTO seen (key, seen_at) VALUES ('envelope', 1)`)
		case "forgetting":
			exec(t, conn, `INSERT INTO forgetting (user_id, since) VALUES ('U1', 1)`)
		}
		if l, err := s.BeginLoad(ctx); !errors.Is(err, storage.ErrNotEmpty) {
			t.Errorf("BeginLoad with a row in %s: %v, want ErrNotEmpty", table, err)
			if l != nil {
				l.Rollback() // its locks would hold up the next case
			}
		}
		if empty, err := pgstore.Empty(ctx, opts); err != nil || empty {
			t.Errorf("Empty with a row in %s: %v, %v", table, empty, err)
		}
	}
}

// Ensure every table the migrations create is either listed as holding
// records (so Empty, BeginLoad and the dump see it) or is the schema's
// own: a table added later cannot be forgotten by migrate.
func TestDataTablesListed(t *testing.T) {
	_, conn, _ := open(t)
	got, err := conn.Query(context.Background(), "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(got, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	listed := append(slices.Clone(pgstore.DataTables()), pgstore.SchemaTables()...)
	slices.Sort(listed)
	if !slices.Equal(tables, listed) {
		t.Errorf("tables %v, listed %v: list a new table that holds records in dataTables (and dump and load it)", tables, listed)
	}
}

// Ensure a running bot's connections are seen, by the name a bot's
// store gives them, and a tool's are not.
func TestBotConnections(t *testing.T) {
	ctx := context.Background()
	_, _, opts := open(t) // a bot's store
	n, err := pgstore.BotConnections(ctx, opts)
	if err != nil || n == 0 {
		t.Fatalf("BotConnections with a bot's store open: %d, %v", n, err)
	}
	other := opts
	other.Schema = opts.Schema + "_other"
	if n, err := pgstore.BotConnections(ctx, other); err != nil || n != 0 {
		t.Errorf("BotConnections of another schema: %d, %v", n, err)
	}
	tool := opts
	tool.ApplicationName = "nudgebot-migrate"
	ts, err := pgstore.Open(ctx, tool)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	withTool, err := pgstore.BotConnections(ctx, tool)
	if err != nil || withTool != n {
		t.Errorf("BotConnections with a tool's store open too: %d, %v; want %d", withTool, err, n)
	}
}

// Ensure the lease's holder is seen while it holds it, and nobody once
// it was released.
func TestLeaderSeen(t *testing.T) {
	ctx := context.Background()
	s, _, opts := open(t)
	if holder, _, err := pgstore.Leader(ctx, opts); err != nil || holder != "" {
		t.Fatalf("Leader before anyone led: %q, %v", holder, err)
	}
	epoch, _, err := s.Lead("replica-a", 0, time.Minute)
	if err != nil || epoch == 0 {
		t.Fatalf("Lead: %d, %v", epoch, err)
	}
	holder, left, err := pgstore.Leader(ctx, opts)
	if err != nil || holder != "replica-a" || left <= 0 || left > time.Minute {
		t.Errorf("Leader while replica-a leads: %q, %s, %v", holder, left, err)
	}
	if err := s.Release("replica-a", epoch); err != nil {
		t.Fatal(err)
	}
	if holder, _, err := pgstore.Leader(ctx, opts); err != nil || holder != "" {
		t.Errorf("Leader after the release: %q, %v", holder, err)
	}
}
