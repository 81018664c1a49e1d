package storage

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// The fixture in testdata was written by the nudgebot of schema 4
// (cmd/fixture4 at the commit before schema 5, kept out of the tree):
// subscribers, and 128 deliveries of every state, manual ones, pending
// ones with a slot off the second, and a message timestamp of an odd
// shape; schema4-deliveries.json is what that nudgebot's ExportAll gave
// for them.

// copyFixture copies the schema 4 fixture into a new directory and
// returns the main file's path.
func copyFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"schema4.db", "schema4.keys.db"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "schema4.db")
}

// fixtureDeliveries is the fixture's deliveries as schema 4 exported
// them, each as its JSON.
func fixtureDeliveries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "schema4-deliveries.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ds []nudges.Delivery
	if err := json.Unmarshal(raw, &ds); err != nil {
		t.Fatal(err)
	}
	return deliveriesJSON(t, ds)
}

func deliveriesJSON(t *testing.T, ds []nudges.Delivery) []string {
	t.Helper()
	out := make([]string, len(ds))
	for i, d := range ds {
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(raw)
	}
	return out
}

// exportedDeliveries is every delivery ExportAll hands out, in its order.
func exportedDeliveries(t *testing.T, db *DB) []string {
	t.Helper()
	var ds []nudges.Delivery
	err := db.ExportAll(func(r nudges.PersonRecord) error {
		if r.Unreadable != nil {
			t.Errorf("unreadable: %+v", *r.Unreadable)
		}
		if r.Delivery != nil {
			ds = append(ds, *r.Delivery)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return deliveriesJSON(t, ds)
}

// checkMigrated checks that the file at path is a sound schema 5 file
// holding exactly the fixture's deliveries, in the same order, each
// equal to what schema 4 exported.
func checkMigrated(t *testing.T, path string) {
	t.Helper()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Errorf("Check after migrating: %v", err)
	}
	want, got := fixtureDeliveries(t), exportedDeliveries(t, db)
	if len(got) != len(want) {
		t.Errorf("%d deliveries after migrating, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("delivery %d is\n%s\nwant\n%s", i, got[i], want[i])
		}
	}
	pend, err := db.Pending()
	if err != nil || len(pend) != 4 {
		t.Errorf("Pending = %d, %v; want the fixture's 4", len(pend), err)
	}
	err = db.view(func(tx *bolt.Tx) error {
		v, err := readSchemaVersion(tx)
		if v != SchemaVersion {
			t.Errorf("schema version %d, want %d", v, SchemaVersion)
		}
		for _, name := range []string{bucketDeliveriesV4, bucketOutboxV4, bucketBySlotV4} {
			if tx.Bucket([]byte(name)) != nil {
				t.Errorf("bucket %s is still there", name)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Ensure a file written by the nudgebot of schema 4 migrates to schema
// 5 with every delivery equal to what it was, the outbox and the
// person index right, and nothing of the old layout left.
func TestMigrate4To5_Fixture(t *testing.T) {
	path := copyFixture(t)
	// In batches smaller than the file, as a large file is moved.
	db, err := Open(path, Options{migrateBatch: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checkMigrated(t, path)
}

// Ensure a migration killed half-way loses nothing and doubles nothing:
// the next Open carries on from the last committed batch.
func TestMigrate4To5_KilledHalfWay(t *testing.T) {
	if os.Getenv(killChildEnv) != "" {
		t.Skip("the child runs TestMigrate4To5_KillChild")
	}
	path := copyFixture(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMigrate4To5_KillChild$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed mid-migration (%v):\n%s", err, out)
	}

	// The kill left both layouts in the file: some moved, some not.
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var left, moved int
	var version int
	err = bdb.View(func(tx *bolt.Tx) error {
		left = tx.Bucket([]byte(bucketDeliveriesV4)).Stats().KeyN
		moved = tx.Bucket([]byte(bucketRecords)).Stats().KeyN
		var err error
		version, err = readSchemaVersion(tx)
		return err
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if version != 4 || left == 0 || moved == 0 || left+moved != 128 {
		t.Fatalf("after the kill: schema %d, %d left and %d moved; want schema 4 with both, 128 in all", version, left, moved)
	}
	t.Logf("killed with %d moved and %d left", moved, left)
	checkMigrated(t, path)
}

const killChildEnv = "NUDGEBOT_TEST_MIGRATE_KILL"

// TestMigrate4To5_KillChild migrates the file named by killChildEnv in
// batches of 10 and kills its own process with SIGKILL once 50 are
// moved, as a crash or an operator's kill -9 would.
func TestMigrate4To5_KillChild(t *testing.T) {
	path := os.Getenv(killChildEnv)
	if path == "" {
		t.Skip("run by TestMigrate4To5_KilledHalfWay")
	}
	_, err := Open(path, Options{migrateBatch: 10, afterMigrateBatch: func(moved int) {
		if moved >= 50 {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute) // the signal ends the process first
		}
	}})
	t.Fatalf("the migration finished without being killed: %v", err)
}

// Ensure a record that does not decode stops the migration with an
// error naming it, and the file stays at schema 4 with every delivery
// in one layout or the other.
func TestMigrate4To5_RefusesDamagedRecord(t *testing.T) {
	path := copyFixture(t)
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketDeliveriesV4)).Put([]byte("U2-20260210T090200Z"), []byte("{damaged"))
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{migrateBatch: 1000})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(`delivery "U2-20260210T090200Z" does not decode`)) {
		t.Fatalf("Open: err = %v, want one naming the damaged record", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if version := rawVersion(t, after); version != "4" {
		t.Errorf("schema_version %s after the refused migration, want 4", version)
	}
}

func rawVersion(t *testing.T, file []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var v int
	err = bdb.View(func(tx *bolt.Tx) error {
		var err error
		v, err = readSchemaVersion(tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(v)
}
