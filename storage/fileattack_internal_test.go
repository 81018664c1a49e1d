package storage

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// rawFiles copies every file in dir, as someone who took a copy of the
// data directory would hold them.
func rawFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = raw
	}
	return out
}

func countIn(files map[string][]byte, needle []byte) int {
	n := 0
	for _, raw := range files {
		n += bytes.Count(raw, needle)
	}
	return n
}

// openPulseKey is what the attacker reads out of the copy: the open
// pulse's voter key, which turns every user id into its marker.
func openPulseKey(t *testing.T, db *DB, id string) []byte {
	t.Helper()
	var key []byte
	err := db.viewPulseSecrets(func(ps pulseSecrets) error {
		sec, found, err := ps.load(id)
		if err == nil && found {
			key = bytes.Clone(sec.VoterKey)
		}
		return err
	})
	if err != nil || len(key) != voterKeyLen {
		t.Fatalf("voter key of %s: %v (len %d)", id, err, len(key))
	}
	return key
}

// Ensure someone with a copy of the files (the master key does not
// matter: voter keys and totals are not sealed) cannot pair a voter with
// a score, while the pulse is open or after it closed: no earlier running
// total is left anywhere in the files, each voter's marker appears at
// most once (so earlier versions of the voter list, which would order the
// voters, are gone), and after the close neither markers nor the voter
// key remain. Issue 19 item 9.
func TestFileAttack_NoVoterPairsWithScore(t *testing.T) {
	dir := t.TempDir()
	db := openPrivacyDB(t, filepath.Join(dir, "nudgebot.db"), nil)
	if err := db.OpenPulse("C1", "P1", digestBase); err != nil {
		t.Fatal(err)
	}
	voters := []string{"UALICE", "UBOB", "UCAROL", "UDAN", "UERIN"}
	scores := []int{1, 5, 3, 4, 2}
	type total struct{ responses, sum int }
	var totals []total
	sum := 0
	for i, u := range voters {
		if _, err := db.VotePulse("P1", u, scores[i]); err != nil {
			t.Fatal(err)
		}
		if err := db.AddHearMore("P1", u, fmt.Sprintf("topic of %d", i)); err != nil {
			t.Fatal(err)
		}
		sum += scores[i]
		totals = append(totals, total{i + 1, sum})
	}
	key := openPulseKey(t, db, "P1")

	files := rawFiles(t, dir)
	for _, tot := range totals[:len(totals)-1] {
		needle := fmt.Appendf(nil, `"responses":%d,"sum":%d`, tot.responses, tot.sum)
		if n := countIn(files, needle); n > 0 {
			t.Errorf("open pulse: an earlier running total %s is in the files %d times: the difference to the next pairs a voter with a score", needle, n)
		}
	}
	for _, u := range voters {
		if n := countIn(files, voterMarker("P1", key, u)); n > 1 {
			t.Errorf("open pulse: the marker of %s appears %d times: earlier voter lists order the voters", u, n)
		}
	}

	if _, err := db.ClosePulse("P1"); err != nil {
		t.Fatal(err)
	}
	files = rawFiles(t, dir)
	for _, tot := range totals[:len(totals)-1] {
		needle := fmt.Appendf(nil, `"responses":%d,"sum":%d`, tot.responses, tot.sum)
		if n := countIn(files, needle); n > 0 {
			t.Errorf("closed pulse: an earlier running total %s is in the files %d times", needle, n)
		}
	}
	for _, u := range voters {
		if n := countIn(files, voterMarker("P1", key, u)); n > 0 {
			t.Errorf("closed pulse: the marker of %s is still in the files (%d times)", u, n)
		}
	}
	for _, enc := range [][]byte{key, []byte(base64.StdEncoding.EncodeToString(key))} {
		if n := countIn(files, enc); n > 0 {
			t.Errorf("closed pulse: its voter key is still in the files (%d times)", n)
		}
	}
}

// Ensure a forgotten person's data key is gone from every file at once,
// so their reflections left in the main file's free pages are ciphertext
// nobody can open, master key or not, without compacting the main file.
func TestFileAttack_ForgottenDataKeyGone(t *testing.T) {
	dir := t.TempDir()
	db := openPrivacyDB(t, filepath.Join(dir, "nudgebot.db"), nil)
	if _, err := db.SaveReflection(nudges.Reflection{UserID: "UGONE", Text: "a private thought"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveReflection(nudges.Reflection{UserID: "USTAY", Text: "another thought"}); err != nil {
		t.Fatal(err)
	}
	rec, found, err := db.dataKeyRecordOf(nil, "UGONE")
	if err != nil || !found {
		t.Fatalf("data key record of UGONE: found=%v err=%v", found, err)
	}
	for i := range 200 {
		if _, err := db.SaveReflection(nudges.Reflection{UserID: fmt.Sprintf("U%04d", i), Text: "a thought"}); err != nil {
			t.Fatal(err)
		}
	}
	// A reader meanwhile (a backup, the background check) keeps bbolt
	// from reusing the pages the forget frees.
	rtx, err := db.bolt.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Forget("UGONE"); err != nil {
		t.Fatal(err)
	}
	_ = rtx.Rollback()
	files := rawFiles(t, dir)
	wrapped := []byte(base64.StdEncoding.EncodeToString(rec.Sealed))
	if n := countIn(files, wrapped); n > 0 {
		t.Errorf("the forgotten person's sealed data key is still in the files (%d times)", n)
	}
	// The other person still reads.
	if _, err := db.Reflections("USTAY", 0); err != nil {
		t.Errorf("USTAY's reflections after forgetting UGONE: %v", err)
	}
}

// Ensure a deleted reflection, whose sealed bytes may stay in the main
// file's free pages, cannot be opened from a copy of the files even with
// the master key: the key that sealed it is gone from both files, and the
// person's other reflections open under their new key.
func TestFileAttack_DeletedReflectionKeyRetired(t *testing.T) {
	dir := t.TempDir()
	db := openPrivacyDB(t, filepath.Join(dir, "nudgebot.db"), nil)
	for i := range 3 {
		if _, err := db.SaveReflection(nudges.Reflection{UserID: "U1", Text: fmt.Sprintf("thought %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	old, _, err := db.dataKeyRecordOf(nil, "U1")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteReflection("U1", 2); err != nil {
		t.Fatal(err)
	}
	now, _, err := db.dataKeyRecordOf(nil, "U1")
	if err != nil || now.ID == old.ID || now.Prev != nil {
		t.Fatalf("data key after the delete: id %s (was %s), prev %v, %v; want a new key and no previous one", now.ID, old.ID, now.Prev, err)
	}
	files := rawFiles(t, dir)
	if n := countIn(files, []byte(base64.StdEncoding.EncodeToString(old.Sealed))); n > 0 {
		t.Errorf("the retired data key is still in the files (%d times)", n)
	}
	err = db.view(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketReflections)).ForEach(func(k, v []byte) error {
			if rec, err := decodeRecord(k, v); err != nil || rec.DataKey != now.ID {
				t.Errorf("reflection %x is sealed with %s, not the new key: %v", k, rec.DataKey, err)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := db.Reflections("U1", 0)
	if err != nil || len(rs) != 2 || rs[0].Text != "thought 2" || rs[1].Text != "thought 0" {
		t.Errorf("the other reflections after the delete: %+v, %v", rs, err)
	}
	if err := db.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// Ensure a delete cut short after its main-file transaction, with both
// keys still in the secrets file, reads meanwhile and is finished by the
// next Open.
func TestOpen_FinishesInterruptedRekey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nudgebot.db")
	db := openPrivacyDB(t, path, nil)
	for i := range 3 {
		if _, err := db.SaveReflection(nudges.Reflection{UserID: "U1", Text: fmt.Sprintf("thought %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// What DeleteReflection commits before finishRekey, with one record
	// not yet re-sealed.
	if err := db.beginRekey("U1"); err != nil {
		t.Fatal(err)
	}
	err := db.update(func(tx *bolt.Tx) error {
		s, err := db.session(tx)
		if err != nil {
			return err
		}
		return s.resealAll("U1")
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveReflection(nudges.Reflection{UserID: "U1", Text: "under the new key"}); err != nil {
		t.Fatal(err)
	}
	if rs, err := db.Reflections("U1", 0); err != nil || len(rs) != 4 {
		t.Fatalf("mid re-key: %d reflections, %v; want 4", len(rs), err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openPrivacyDB(t, path, nil)
	rec, _, err := db.dataKeyRecordOf(nil, "U1")
	if err != nil || rec.Prev != nil {
		t.Errorf("after Open the previous key is still kept: %v", err)
	}
	if rs, err := db.Reflections("U1", 0); err != nil || len(rs) != 4 {
		t.Errorf("after Open: %d reflections, %v; want 4", len(rs), err)
	}
	if err := db.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}
