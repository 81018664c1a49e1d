package storage

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

func TestSecretsPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/var/lib/nudgebot/nudgebot.db", "/var/lib/nudgebot/nudgebot.keys.db"},
		{"state", "state.keys"},
		{"/d/.hidden", "/d/.hidden.keys"},
		{"a.b/c.bolt", "a.b/c.keys.bolt"},
	}
	for _, tt := range tests {
		if got := SecretsPath(tt.in); got != tt.want {
			t.Errorf("SecretsPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// rawBuckets reads every bucket of the bbolt file at path, raw.
func rawBuckets(t *testing.T, path string) map[string]map[string][]byte {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	out := map[string]map[string][]byte{}
	err = bdb.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			m := map[string][]byte{}
			out[string(name)] = m
			return b.ForEach(func(k, v []byte) error {
				m[string(k)] = bytes.Clone(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Ensure the secrets file's layout and encodings are the pinned ones,
// and that the main file holds none of it: a change here is a change
// to the file format, which needs a schema version and a migration.
func TestSecretsFormatPinned(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nudgebot.db")
	db := openPrivacyDB(t, path, nil)
	if _, err := db.SaveReflection(nudges.Reflection{UserID: "U1", Text: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := db.OpenPulse("C1", "P1", digestBase); err != nil {
		t.Fatal(err)
	}
	if _, err := db.VotePulse("P1", "U1", 4); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	secrets := rawBuckets(t, SecretsPath(path))
	var names []string
	for name := range secrets {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"datakeys", "open_pulses", "pulse_voters"}; !slices.Equal(names, want) {
		t.Fatalf("secrets file buckets %q, want %q", names, want)
	}

	var dk dataKeyRecord
	if err := json.Unmarshal(secrets["datakeys"]["U1"], &dk); err != nil {
		t.Fatal(err)
	}
	wantDK := `{"id":"` + dk.ID + `","master":"` + privacyKeys(t).CurrentID() + `","sealed":"` + base64.StdEncoding.EncodeToString(dk.Sealed) + `"}`
	if got := string(secrets["datakeys"]["U1"]); got != wantDK || len(dk.Sealed) == 0 {
		t.Errorf("data key record\n got %s\nwant %s", got, wantDK)
	}

	var sec pulseSecret
	if err := json.Unmarshal(secrets["open_pulses"]["P1"], &sec); err != nil {
		t.Fatal(err)
	}
	wantSec := `{"voter_key":"` + base64.StdEncoding.EncodeToString(sec.VoterKey) + `","totals":{"period_end":"0001-01-01T00:00:00Z",` +
		`"responses":1,"sum":4,"counts":[0,0,0,1,0]}}`
	if got := string(secrets["open_pulses"]["P1"]); got != wantSec || len(sec.VoterKey) != voterKeyLen {
		t.Errorf("open pulse secret\n got %s\nwant %s", got, wantSec)
	}
	if got := string(secrets["pulse_voters"][string(voterMarker("P1", sec.VoterKey, "U1"))]); got != `{"voted":true}` || len(secrets["pulse_voters"]) != 1 {
		t.Errorf("voter markers %q; want one, %q", secrets["pulse_voters"], `{"voted":true}`)
	}

	main := rawBuckets(t, path)
	for _, gone := range []string{bucketDataKeys, bucketPulseVoters} {
		if _, ok := main[gone]; ok {
			t.Errorf("the main file still has bucket %s", gone)
		}
	}
	if got, want := string(main[bucketPulses]["P1"]), `{"channel":"C1","opened":"2026-03-02T00:00:00Z"}`; got != want {
		t.Errorf("main pulse record\n got %s\nwant %s", got, want)
	}
	if got := string(main[bucketMeta][keySchemaVersion]); got != "5" {
		t.Errorf("schema_version %s, want 5", got)
	}
}

// Ensure a backup's secrets move out at Open, whether it is marked the
// way this nudgebot writes it (schema 5, secrets embedded) or the way
// the nudgebot of schema 4 did (schema 3): the secrets file is
// (re)written from the main file's secrets, replacing one left beside it
// by a move cut short, the main file is compacted so they leave its free
// pages too, and opening again changes nothing.
func TestMoveSecrets_FromBackup(t *testing.T) {
	for _, mark := range []string{"5", "3"} {
		t.Run("schema "+mark, func(t *testing.T) { testMoveSecretsFrom(t, mark) })
	}
}

func testMoveSecretsFrom(t *testing.T, mark string) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nudgebot.db")
	db := openPrivacyDB(t, path, nil)
	if _, err := db.SaveReflection(nudges.Reflection{UserID: "U1", Text: "kept words"}); err != nil {
		t.Fatal(err)
	}
	if err := db.OpenPulse("C1", "P1", digestBase); err != nil {
		t.Fatal(err)
	}
	if _, err := db.VotePulse("P1", "U1", 2); err != nil {
		t.Fatal(err)
	}
	dk, _, err := db.dataKeyRecordOf(nil, "U1")
	if err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	if _, err := db.WriteTo(&backup); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, backup.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if mark == "3" {
		raw, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = raw.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket([]byte(bucketMeta))
			return errors.Join(meta.Delete([]byte(keySecretsEmbedded)), meta.Put([]byte(keySchemaVersion), []byte("3")))
		})
		if cerr := raw.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// What a move cut short before the main file's commit leaves: a
	// secrets file beside the backup. Make it wrong to see it go.
	if err := os.WriteFile(SecretsPath(path), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := rawBuckets(t, path)
	if string(old[bucketMeta][keySchemaVersion]) != mark || old[bucketDataKeys]["U1"] == nil {
		t.Fatalf("the backup is not a schema %s file with its data keys: version %s", mark, old[bucketMeta][keySchemaVersion])
	}

	for round := range 2 {
		db = openPrivacyDB(t, path, nil)
		if r, err := db.Reflection("U1", 1); err != nil || r.Text != "kept words" {
			t.Fatalf("round %d: reflection after the move: %q, %v", round, r.Text, err)
		}
		if first, err := db.VotePulse("P1", "U1", 5); err != nil || first {
			t.Errorf("round %d: U1 votes again after the move: first=%v, %v; want a repeat", round, first, err)
		}
		if err := db.Check(); err != nil {
			t.Errorf("round %d: Check: %v", round, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(dk.Sealed))) {
			t.Errorf("round %d: the main file still holds a data key after the move", round)
		}
		if bytes.Contains(raw, []byte(`"voter_key"`)) {
			t.Errorf("round %d: the main file still holds a voter key after the move", round)
		}
		meta := rawBuckets(t, path)[bucketMeta]
		if v, e, c := string(meta[keySchemaVersion]), meta[keySecretsEmbedded], meta[keyNeedsCompaction]; v != "5" || e != nil || c != nil {
			t.Errorf("round %d: meta after the move: schema %s, secrets_embedded %q, needs_compaction %q; want 5 and neither", round, v, e, c)
		}
	}
	db = openPrivacyDB(t, path, nil)
	sum, err := db.ClosePulse("P1")
	if err != nil || sum.Responses != 1 || sum.Sum != 2 {
		t.Errorf("close after the move: %+v, %v; want the one vote of 2", sum, err)
	}
}

// Ensure a read-write Open refuses to replace a lost secrets file with an
// empty one when the main file needs it, and says what to do.
func TestOpen_SecretsFileLost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nudgebot.db")
	db := openPrivacyDB(t, path, nil)
	if _, err := db.SaveReflection(nudges.Reflection{UserID: "U1", Text: "words"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(SecretsPath(path)); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{Keys: privacyKeys(t)})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("restore both files")) {
		t.Errorf("Open without the secrets file: %v; want a refusal saying to restore both files", err)
	}
	if _, err := os.Stat(SecretsPath(path)); err == nil {
		t.Error("the refused Open created an empty secrets file")
	}
}
