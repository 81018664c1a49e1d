package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// testURL is the test database, or skips t with one line saying how to
// run these tests. With NUDGEBOT_TEST_REQUIRE_POSTGRES=1 (CI) an
// unreachable server fails instead.
func testURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(EnvTestDatabase)
	if url == "" {
		url = defaultTestDatabase
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		if os.Getenv("NUDGEBOT_TEST_REQUIRE_POSTGRES") != "" {
			t.Fatalf("PostgreSQL is required here but unreachable at %s: %v", EnvTestDatabase, err)
		}
		t.Skipf("no PostgreSQL reachable: set %s to a database URL (default %s) to run these tests", EnvTestDatabase, defaultTestDatabase)
	}
	_ = conn.Close(ctx)
	return url
}

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
