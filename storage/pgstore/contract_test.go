package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudgebot/nudgebot/storage/pgstore"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// EnvTestDatabase names the PostgreSQL database the tests use; each test
// works in a schema of its own, dropped when it ends.
const EnvTestDatabase = "NUDGEBOT_TEST_DATABASE_URL"

const defaultTestDatabase = "postgres://postgres@127.0.0.1:5432/test"

// testDatabase is the reachable test database, found by TestMain.
var testDatabase string

// TestMain finds the test database once. Without a reachable server the
// package's tests do not run, and say so in one line; with
// NUDGEBOT_TEST_REQUIRE_POSTGRES=1 (CI) that is a failure instead.
func TestMain(m *testing.M) {
	url := os.Getenv(EnvTestDatabase)
	if url == "" {
		url = defaultTestDatabase
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	conn, err := pgx.Connect(ctx, url)
	cancel()
	if err != nil {
		if os.Getenv("NUDGEBOT_TEST_REQUIRE_POSTGRES") != "" {
			fmt.Fprintf(os.Stderr, "FAIL: PostgreSQL is required (NUDGEBOT_TEST_REQUIRE_POSTGRES) but unreachable at %s: %v\n", EnvTestDatabase, err)
			os.Exit(1)
		}
		fmt.Printf("skipping the PostgreSQL tests: no server reachable; set %s to a database URL (default %s) to run them\n", EnvTestDatabase, defaultTestDatabase)
		os.Exit(0)
	}
	_ = conn.Close(context.Background())
	testDatabase = url
	os.Exit(m.Run())
}

// testURL is the test database TestMain found.
func testURL(testing.TB) string { return testDatabase }

// freshSchema names a new schema for t and drops it when t ends.
func freshSchema(t testing.TB, url string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "nbtest_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

func TestContract(t *testing.T) {
	url := testURL(t)
	storagetest.Run(t, func(t *testing.T) storagetest.Opener {
		schema := freshSchema(t, url)
		return func(o storagetest.Options) (storagetest.Store, error) {
			return pgstore.Open(context.Background(), pgstore.Options{URL: url, Schema: schema, Keys: o.Keys, Now: o.Now, Retention: o.Retention, MaxConns: 4})
		}
	})
}
