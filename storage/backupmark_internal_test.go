package storage

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// backupSource is a database holding something in every bucket that
// matters to a backup: subscribers, the schema 4 fixture's 128
// deliveries of every state, reflections (one shared), an open pulse
// with a vote and a "hear more" answer, a closed pulse, a digest, a seen
// envelope and the settings.
type backupSource struct {
	path     string
	main     map[string]map[string][]byte // the main file's buckets, raw
	secrets  map[string]map[string][]byte // the secrets file's, raw
	export   []string                     // ExportAll, each record as JSON
	dataKeys [][]byte                     // each sealed data key, as stored (base64)
}

func newBackupSource(t *testing.T) (*DB, *backupSource) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nudgebot.db")
	db := openPrivacyDB(t, path, nil)
	for _, u := range []string{"U1", "U2", "U10"} {
		_, err := db.UpdateSubscriber(u, func(s *nudges.Subscriber) error {
			s.Subscribed, s.SubscribedAt, s.NextDue = true, digestBase.Add(-24*time.Hour), digestBase.Add(time.Hour)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "schema4-deliveries.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ds []nudges.Delivery
	if err := json.Unmarshal(raw, &ds); err != nil {
		t.Fatal(err)
	}
	if err := db.ImportDeliveries(ds); err != nil {
		t.Fatal(err)
	}
	for _, r := range []nudges.Reflection{
		{UserID: "U1", Text: "kept words", Created: digestBase},
		{UserID: "U1", Text: "shared words", Created: digestBase.Add(time.Minute), Share: nudges.ShareNamed, ShareChannel: "C1"},
		{UserID: "U2", Text: "other words", Created: digestBase},
	} {
		if _, err := db.SaveReflection(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.OpenPulse("C1", "P1", digestBase, "U1", "U2", "U10"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.VotePulse("P1", "U1", 2); err != nil {
		t.Fatal(err)
	}
	if err := db.AddHearMore("P1", "U1", "more please"); err != nil {
		t.Fatal(err)
	}
	if err := db.OpenPulse("C1", "P0", digestBase.Add(-7*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.VotePulse("P0", "U2", 5); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClosePulse("P0"); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordDigest("C1", nudges.PostedDigest{At: digestBase, Members: []string{"U1", "U2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.MarkSeen("Ev1", digestBase); err != nil {
		t.Fatal(err)
	}
	if err := db.SetStrategyLines([]string{"ship less, better"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetLearnedPace(42); err != nil {
		t.Fatal(err)
	}
	src := &backupSource{path: path, export: exportAll(t, db)}
	if err := db.eachDataKey(func(_, v []byte) error {
		var rec dataKeyRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		src.dataKeys = append(src.dataKeys, []byte(base64.StdEncoding.EncodeToString(rec.Sealed)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(src.dataKeys) != 2 {
		t.Fatalf("%d data keys, want U1's and U2's", len(src.dataKeys))
	}
	return db, src
}

// snapshot reads the source's two files raw, once db is closed.
func (src *backupSource) snapshot(t *testing.T) {
	t.Helper()
	src.main, src.secrets = rawBuckets(t, src.path), rawBuckets(t, SecretsPath(src.path))
}

// exportAll is every record ExportAll hands out, each as its JSON.
func exportAll(t *testing.T, db *DB) []string {
	t.Helper()
	var out []string
	err := db.ExportAll(func(r nudges.PersonRecord) error {
		raw, err := json.Marshal(r)
		out = append(out, string(raw))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeBackupAt writes db's backup into a new file at path, as `nudgebot
// backup` does.
func writeBackupAt(t *testing.T, db *DB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// backupMarks reads what an older nudgebot judges a file by: its schema
// mark, and whether it says its secrets are embedded.
func backupMarks(t *testing.T, path string) (version int, embedded string) {
	t.Helper()
	b := rawBuckets(t, path)
	v, err := strconv.Atoi(string(b[bucketMeta][keySchemaVersion]))
	if err != nil {
		t.Fatalf("schema_version %q: %v", b[bucketMeta][keySchemaVersion], err)
	}
	return v, string(b[bucketMeta][keySecretsEmbedded])
}

// checkRestored checks that the database at path, once opened read-write
// (twice: the second open must change nothing), holds exactly what the
// source held in both files, behaves as it did, and that its main file
// holds no secret any more.
func checkRestored(t *testing.T, path string, src *backupSource) {
	t.Helper()
	for round := range 2 {
		db, err := Open(path, Options{Keys: privacyKeys(t), Now: func() time.Time { return digestBase }})
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		if err := db.Check(); err != nil {
			t.Errorf("round %d: Check: %v", round, err)
		}
		if got := exportAll(t, db); !slices.Equal(got, src.export) {
			t.Errorf("round %d: ExportAll differs from the source's: %d records, want %d", round, len(got), len(src.export))
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		main, secrets := rawBuckets(t, path), rawBuckets(t, SecretsPath(path))
		if !bucketsEqual(t, "main file", main, src.main) || !bucketsEqual(t, "secrets file", secrets, src.secrets) {
			t.Fatalf("round %d: the restored files differ from the source's", round)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, dk := range src.dataKeys {
			if bytes.Contains(raw, dk) {
				t.Errorf("round %d: the main file still holds a data key, in a page or a free one", round)
			}
		}
		if bytes.Contains(raw, []byte(`"voter_key"`)) {
			t.Errorf("round %d: the main file still holds a voter key, in a page or a free one", round)
		}
	}
	// It behaves as the source did: the vote counted, the voter known.
	db := openPrivacyDB(t, path, nil)
	if first, err := db.VotePulse("P1", "U1", 5); err != nil || first {
		t.Errorf("U1 votes again after the restore: first=%v, %v; want a repeat", first, err)
	}
	if sum, err := db.ClosePulse("P1"); err != nil || sum.Responses != 1 || sum.Sum != 2 {
		t.Errorf("close after the restore: %+v, %v; want the one vote of 2", sum, err)
	}
}

// bucketsEqual compares two files' buckets, record by record, leaving
// out the meta keys a compaction writes, and reports each difference.
func bucketsEqual(t *testing.T, what string, got, want map[string]map[string][]byte) bool {
	t.Helper()
	volatile := map[string]bool{keyCompactedAt: true}
	ok := true
	names := slices.Sorted(maps.Keys(want))
	for name := range got {
		if _, found := want[name]; !found {
			names = append(names, name)
		}
	}
	for _, name := range names {
		g, w := got[name], want[name]
		if (g == nil) != (w == nil) {
			t.Errorf("%s: bucket %s is there: %v, want %v", what, name, g != nil, w != nil)
			ok = false
			continue
		}
		keys := slices.Sorted(maps.Keys(w))
		for k := range g {
			if _, found := w[k]; !found {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			if name == bucketMeta && volatile[k] {
				continue
			}
			if gv, wv := g[k], w[k]; !bytes.Equal(gv, wv) {
				t.Errorf("%s: %s[%q] is %q, want %q", what, name, k, gv, wv)
				ok = false
			}
		}
	}
	return ok
}

// Ensure a backup carries the schema mark of the file it copies (5), so
// that a nudgebot of schema 4, which refuses any mark above its own,
// refuses it instead of taking it for a schema 3 file and missing every
// delivery; and that it says its secrets are embedded.
func TestBackup_MarkedNewerThanSchema4(t *testing.T) {
	db, _ := newBackupSource(t)
	out := filepath.Join(t.TempDir(), "backup.db")
	writeBackupAt(t, db, out)
	var buf bytes.Buffer // any other writer: through a temporary file
	if _, err := db.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	viaBuffer := filepath.Join(t.TempDir(), "buffered.db")
	if err := os.WriteFile(viaBuffer, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{out, viaBuffer} {
		version, embedded := backupMarks(t, path)
		if version <= schemaSecretsFile || version != SchemaVersion || embedded != "true" {
			t.Errorf("%s: schema mark %d, secrets_embedded %q; want %d (a schema 4 nudgebot refuses any mark above 4) and true",
				filepath.Base(path), version, embedded, SchemaVersion)
		}
		if b := rawBuckets(t, path); len(b[bucketDataKeys]) != 2 {
			t.Errorf("%s: %d data keys embedded, want 2", filepath.Base(path), len(b[bucketDataKeys]))
		}
	}
}

// Ensure backup → restore gives back every record of both files, equal
// to the byte: straight from the backup file, and through a read-only
// open of it copying it again (what `nudgebot restore` does), each with
// a stale secrets file beside it, which the backup's own secrets
// replace. Read-only opens of the backup (check, export) read it whole,
// with its embedded data keys, and ignore the stale file.
func TestBackup_RoundTrip(t *testing.T) {
	db, src := newBackupSource(t)
	backup := filepath.Join(t.TempDir(), "backup.db")
	writeBackupAt(t, db, backup)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	src.snapshot(t)
	if version, embedded := backupMarks(t, backup); version <= schemaSecretsFile || embedded != "true" {
		t.Fatalf("backup marked %d, secrets_embedded %q; want above %d, and true", version, embedded, schemaSecretsFile)
	}
	if err := os.WriteFile(SecretsPath(backup), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}

	ro, err := Open(backup, Options{ReadOnly: true, Keys: privacyKeys(t)})
	if err != nil {
		t.Fatalf("read-only Open of the backup: %v", err)
	}
	if err := ro.Check(); err != nil {
		t.Errorf("Check of the backup, read-only: %v", err)
	}
	if got := exportAll(t, ro); !slices.Equal(got, src.export) {
		t.Errorf("ExportAll of the backup, read-only: %d records, want the source's %d:\n%q\nwant\n%q", len(got), len(src.export), got, src.export)
	}
	if r, err := ro.Reflection("U1", 1); err != nil || r.Text != "kept words" {
		t.Errorf("reflection from the backup, read-only: %q, %v", r.Text, err)
	}
	restored := filepath.Join(t.TempDir(), "nudgebot.db")
	writeBackupAt(t, ro, restored) // as ops.Restore copies it
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(SecretsPath(restored), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}

	for name, path := range map[string]string{"the backup": backup, "its copy": restored} {
		t.Run(name, func(t *testing.T) {
			if version, embedded := backupMarks(t, path); version != SchemaVersion || embedded != "true" {
				t.Fatalf("marked %d, secrets_embedded %q before the restore; want %d, true", version, embedded, SchemaVersion)
			}
			checkRestored(t, path, src)
		})
	}
}

// Ensure a backup written from a schema 4 file (opened read-only, as
// restore and backup do before the bot migrates it) is the schema 3
// file it was before schema 5, and migrates to schema 5 with every
// delivery; and that a backup written by the nudgebot of schema 4 (the
// previous release, from the fixture) restores and migrates as it did.
func TestBackup_FromSchema4(t *testing.T) {
	t.Run("written by this nudgebot", func(t *testing.T) {
		fixture := copyFixture(t)
		ro, err := Open(fixture, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		backup := filepath.Join(t.TempDir(), "backup.db")
		writeBackupAt(t, ro, backup)
		if err := ro.Close(); err != nil {
			t.Fatal(err)
		}
		if version, embedded := backupMarks(t, backup); version != 3 || embedded != "" {
			t.Fatalf("marked %d, secrets_embedded %q; want 3, none", version, embedded)
		}
		checkMigrated(t, backup)
	})
	t.Run("written by the nudgebot of schema 4", func(t *testing.T) {
		// `nudgebot backup` of the fixture by that nudgebot (3cd41df).
		raw, err := os.ReadFile(filepath.Join("testdata", "schema4-backup.db"))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "nudgebot.db")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if version, embedded := backupMarks(t, path); version != 3 || embedded != "" {
			t.Fatalf("marked %d, secrets_embedded %q; want 3, none", version, embedded)
		}
		checkMigrated(t, path)
	})
}

// Ensure a mark that is neither absent nor "true" is refused as damage
// before anything is written, rather than guessed at.
func TestBackup_DamagedEmbeddedMark(t *testing.T) {
	db, _ := newBackupSource(t)
	backup := filepath.Join(t.TempDir(), "backup.db")
	writeBackupAt(t, db, backup)
	rawUpdateInternal(t, backup, bucketMeta, keySecretsEmbedded, []byte("yes"))
	before, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{true, false} {
		db, err := Open(backup, Options{ReadOnly: ro, Keys: privacyKeys(t)})
		if err == nil {
			_ = db.Close()
		}
		if !errors.Is(err, ErrDamaged) || !bytes.Contains([]byte(err.Error()), []byte(keySecretsEmbedded)) {
			t.Errorf("Open (read-only %v): %v; want ErrDamaged naming %s", ro, err, keySecretsEmbedded)
		}
	}
	if after, err := os.ReadFile(backup); err != nil || !bytes.Equal(after, before) {
		t.Errorf("the refused file changed (%v)", err)
	}
	if _, err := os.Stat(SecretsPath(backup)); err == nil {
		t.Error("the refused Open wrote a secrets file")
	}
}

func rawUpdateInternal(t *testing.T, path, bucket, key string, value []byte) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).Put([]byte(key), value) })
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Ensure a process killed while moving a restored backup's secrets out
// loses nothing, and that the next Open finishes the move: killed with
// the new secrets file in place but the main file not yet committed (the
// backup is as it was, and the move starts again), or with the main
// file committed but not yet compacted (the data keys are only in its
// free pages, and the next Open compacts it).
func TestBackup_RestoreKilledMidMove(t *testing.T) {
	if os.Getenv(secretsKillEnv) != "" {
		t.Skip("the child runs TestBackup_RestoreKillChild")
	}
	for _, step := range []string{secretsWritten, secretsCommitted} {
		t.Run(step, func(t *testing.T) {
			db, src := newBackupSource(t)
			path := filepath.Join(t.TempDir(), "nudgebot.db")
			writeBackupAt(t, db, path)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			src.snapshot(t)

			cmd := exec.Command(os.Args[0], "-test.run=^TestBackup_RestoreKillChild$")
			cmd.Env = append(os.Environ(), secretsKillEnv+"="+path, secretsKillStepEnv+"="+step)
			out, err := cmd.CombinedOutput()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the child was not killed at %q (%v):\n%s", step, err, out)
			}

			// What the kill left.
			main := rawBuckets(t, path)
			version, _ := strconv.Atoi(string(main[bucketMeta][keySchemaVersion]))
			embedded, flagged := string(main[bucketMeta][keySecretsEmbedded]), string(main[bucketMeta][keyNeedsCompaction])
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			switch step {
			case secretsWritten:
				if version != SchemaVersion || embedded != "true" || len(main[bucketDataKeys]) != 2 {
					t.Fatalf("after the kill: schema %d, secrets_embedded %q, %d data keys; want the backup as it was",
						version, embedded, len(main[bucketDataKeys]))
				}
			case secretsCommitted:
				if version != SchemaVersion || embedded != "" || flagged != "true" || main[bucketDataKeys] != nil {
					t.Fatalf("after the kill: schema %d, secrets_embedded %q, needs_compaction %q, data keys bucket %v; want moved, flagged for compaction",
						version, embedded, flagged, main[bucketDataKeys] != nil)
				}
				if !bytes.Contains(raw, src.dataKeys[0]) {
					t.Fatal("after the kill the main file's free pages hold no data key: the kill came too late to tell")
				}
			}
			checkRestored(t, path, src)
		})
	}
}

const (
	secretsKillEnv     = "NUDGEBOT_TEST_SECRETS_KILL"
	secretsKillStepEnv = "NUDGEBOT_TEST_SECRETS_KILL_STEP"
)

// TestBackup_RestoreKillChild opens the backup named by secretsKillEnv
// read-write and kills its own process with SIGKILL when moving its
// secrets out reaches the step named by secretsKillStepEnv, as a crash
// or an operator's kill -9 would.
func TestBackup_RestoreKillChild(t *testing.T) {
	path, step := os.Getenv(secretsKillEnv), os.Getenv(secretsKillStepEnv)
	if path == "" {
		t.Skip("run by TestBackup_RestoreKilledMidMove")
	}
	_, err := Open(path, Options{Keys: privacyKeys(t), afterSecretsStep: func(at string) {
		if at == step {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute) // the signal ends the process first
		}
	}})
	t.Fatalf("the move finished without being killed at %q: %v", step, err)
}
