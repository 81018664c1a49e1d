package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudgebot/nudgebot/nudges"
)

func TestDBURL(t *testing.T) {
	tests := map[string]struct {
		admin, want string
		ok          bool
	}{
		"local":        {"postgres://postgres@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1:5432/nudgebot_bench_x", true},
		"options kept": {"postgresql://u:pw@db:5433/app?sslmode=disable", "postgresql://u:pw@db:5433/nudgebot_bench_x?sslmode=disable", true},
		"no database":  {"postgres://postgres@127.0.0.1", "postgres://postgres@127.0.0.1/nudgebot_bench_x", true},
		"key=value":    {"host=127.0.0.1 dbname=test", "", false},
		"not postgres": {"mysql://root@127.0.0.1/test", "", false},
		"no host":      {"postgres:///test", "", false},
		"empty":        {"", "", false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := dbURL(tt.admin, "nudgebot_bench_x")
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("dbURL(%q) = %q, %v; want %q, ok %v", tt.admin, got, err, tt.want, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "-pg-url") {
				t.Errorf("the refusal does not name the flag: %v", err)
			}
		})
	}
	if got := redactURL("postgres://u:secret@db/x"); strings.Contains(got, "secret") {
		t.Errorf("redactURL kept the password: %s", got)
	}
	if got := defaultPGServer(func(string) string { return "" }); got != defaultPGURL {
		t.Errorf("defaultPGServer without the tests' variable = %s", got)
	}
	if got := defaultPGServer(func(k string) string { return map[string]string{envTestDatabase: "postgres://h/d"}[k] }); got != "postgres://h/d" {
		t.Errorf("defaultPGServer = %s, want the tests' server", got)
	}
}

// Ensure a run's database is seeded through pgstore, counted, and gone
// afterwards, on the server the PostgreSQL tests use.
func TestPGDatabaseLifecycle(t *testing.T) {
	url := defaultPGServer(os.Getenv)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	conn, err := pgx.Connect(ctx, url)
	cancel()
	if err != nil {
		if os.Getenv("NUDGEBOT_TEST_REQUIRE_POSTGRES") != "" {
			t.Fatalf("PostgreSQL is required (NUDGEBOT_TEST_REQUIRE_POSTGRES) but unreachable at %s: %v", envTestDatabase, err)
		}
		t.Skipf("no PostgreSQL server reachable; set %s to a database URL (default %s) to run this test", envTestDatabase, defaultPGURL)
	}
	defer conn.Close(context.Background())
	b := &bench{opts: options{pgURL: url}, errw: &strings.Builder{}, work: t.TempDir(), started: time.Now()}
	srv, err := b.pgServer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if srv.Version == "" || len(srv.Settings) != len(pgSettings) {
		t.Errorf("server described as %q, %v", srv.Version, srv.Settings)
	}
	db, err := srv.createDB(t.Context(), "test")
	if err != nil {
		t.Fatal(err)
	}
	dropped := false
	t.Cleanup(func() {
		if !dropped {
			_ = db.drop()
		}
	})
	due := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	r, err := pgSeed(t.Context(), db, 50, func(i int, s *nudges.Subscriber) {
		subscribed(s, due.Add(-time.Hour), dmFor(s.UserID))
		s.NextDue = due
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.N != 50 || r.FileSize <= 0 {
		t.Errorf("seeded %+v", r)
	}
	s, err := openPG(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := s.Due(due, 0)
	s.Close()
	if err != nil || len(ids) != 50 {
		t.Errorf("Due after seeding = %d people, %v; want all 50", len(ids), err)
	}
	if sent, pending, err := countDeliveriesPG(t.Context(), db, due); err != nil || sent != 0 || pending != 0 {
		t.Errorf("countDeliveriesPG = %d, %d, %v; want nothing yet", sent, pending, err)
	}
	if a, err := db.activity(t.Context()); err != nil || a.DatabaseSize <= 0 {
		t.Errorf("activity = %+v, %v", a, err)
	}
	if err := db.drop(); err != nil {
		t.Fatal(err)
	}
	dropped = true
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", db.Name).Scan(&n); err != nil || n != 0 {
		t.Errorf("database %s still there after drop (%d, %v)", db.Name, n, err)
	}
}

func TestPGUseTables(t *testing.T) {
	u := pgUse{Nudges: 100,
		Before: pgActivity{Tables: map[string]tableActivity{"subscribers": {Scans: 10, Written: 100}, "seen": {}}},
		After: pgActivity{Commits: 800, Tables: map[string]tableActivity{
			"subscribers": {Scans: 210, Written: 200}, "deliveries": {Scans: 400, Written: 300}, "seen": {}, "lease": {Scans: 5},
		}},
	}
	want := "deliveries 4.00 / 3.00, subscribers 2.00 / 1.00, lease 0.05 / 0.00"
	if got := u.tables(); got != want {
		t.Errorf("tables() = %q, want %q", got, want)
	}
	if s := u.String(); !strings.Contains(s, "800 transactions (8.00 per nudge") || !strings.Contains(s, want) {
		t.Errorf("String() = %q", s)
	}
}

func TestStatCPU(t *testing.T) {
	// A backend whose command name holds spaces and a parenthesis.
	stat := "4242 (postgres: nb (x) 127.0.0.1) S 907 907 907 0 -1 4194368 1183 0 0 0 250 75 0 0 20 0 1 0 5544 220336128 3800 18446744073709551615\n"
	if got, err := statCPU([]byte(stat)); err != nil || got != 325 {
		t.Errorf("statCPU = %d, %v; want 250 + 75", got, err)
	}
	for _, bad := range []string{"", "4242 (postgres) S 1 2", "4242 (postgres) S 907 907 907 0 -1 4194368 1183 0 0 0 x 75 0"} {
		if _, err := statCPU([]byte(bad)); err == nil {
			t.Errorf("statCPU(%q) took it", bad)
		}
	}
}
