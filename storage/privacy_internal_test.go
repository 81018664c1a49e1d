package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

func privacyKeys(tb testing.TB) *Keys {
	tb.Helper()
	sum := sha256.Sum256([]byte("privacy"))
	keys, err := NewKeys(sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

// logSink collects what storage logs, for tests that expect a report.
type logSink struct{ bytes.Buffer }

func openPrivacyDB(tb testing.TB, path string, log *logSink) *DB {
	tb.Helper()
	opts := Options{Keys: privacyKeys(tb), Now: func() time.Time { return digestBase }}
	if log != nil {
		opts.Logger = slog.New(slog.NewTextHandler(log, nil))
	}
	return openTest(tb, path, opts)
}

// Ensure a person cannot vote twice in one pulse by forgetting
// themselves in between, nor reset their "hear more" allowance.
func TestVotePulse_ForgetDoesNotResetVote(t *testing.T) {
	db := openPrivacyDB(t, filepath.Join(t.TempDir(), "nudgebot.db"), nil)
	if err := db.OpenPulse("C1", "P1", digestBase); err != nil {
		t.Fatal(err)
	}
	if first, err := db.VotePulse("P1", "UATTACKER", 1); err != nil || !first {
		t.Fatalf("first vote: first=%v err=%v", first, err)
	}
	for range nudges.MaxHearMorePerPerson {
		if err := db.AddHearMore("P1", "UATTACKER", "more"); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		if err := db.Forget("UATTACKER"); err != nil {
			t.Fatal(err)
		}
		first, err := db.VotePulse("P1", "UATTACKER", 1)
		if err != nil || first {
			t.Fatalf("vote after forget %d: first=%v err=%v; want it refused as a repeat", round+1, first, err)
		}
		if err := db.AddHearMore("P1", "UATTACKER", "again"); !errors.Is(err, nudges.ErrTooManyAnswers) {
			t.Fatalf("hear more after forget %d: %v; want ErrTooManyAnswers", round+1, err)
		}
	}
	sum, err := db.ClosePulse("P1")
	if err != nil {
		t.Fatal(err)
	}
	if sum.Responses != 1 || len(sum.HearMore) != nudges.MaxHearMorePerPerson {
		t.Errorf("closed with %d responses and %d answers; want 1 and %d", sum.Responses, len(sum.HearMore), nudges.MaxHearMorePerPerson)
	}
}

// Ensure markers differ between pulses, so they cannot be linked across
// pulses, and between people.
func TestVoterMarker_Unlinkable(t *testing.T) {
	k1, k2 := newVoterKey(), newVoterKey()
	a1, a2 := voterMarker("P1", k1, "UA"), voterMarker("P2", k2, "UA")
	if bytes.Equal(a1[len("P1")+1:], a2[len("P2")+1:]) {
		t.Error("one person's markers are equal across pulses")
	}
	if bytes.Equal(a1, voterMarker("P1", k1, "UB")) {
		t.Error("two people share a marker")
	}
	if !bytes.Equal(a1, voterMarker("P1", k1, "UA")) {
		t.Error("a marker is not stable within its pulse")
	}
	if bytes.Contains(a1, []byte("UA")) {
		t.Error("the marker holds the user id")
	}
}

// Ensure no forget asks for a compaction of the main file: the key has
// left the secrets file already.
func TestForget_NoCompaction(t *testing.T) {
	db := openPrivacyDB(t, filepath.Join(t.TempDir(), "nudgebot.db"), nil)
	if err := db.Forget("UNOBODY"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveReflection(nudges.Reflection{UserID: "UREAL", Text: "something"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Forget("UREAL"); err != nil {
		t.Fatal(err)
	}
	if db.NeedsCompaction() {
		t.Error("a forget asked for a compaction of the main file")
	}
}

// rewriteReflection applies fn to the stored JSON of userID's reflection
// seq, as someone with the file but without the key could, keeping the
// shared index consistent so only the seal can tell.
func rewriteReflection(t *testing.T, db *DB, userID string, seq int, fn func(*reflectionRecord)) {
	t.Helper()
	err := db.update(func(tx *bolt.Tx) error {
		rb, err := reflectionBucketsOf(tx)
		if err != nil {
			return err
		}
		k := reflectionKey(userID, seq)
		rec, err := decodeRecord(k, rb.reflections.Get(k))
		if err != nil {
			return err
		}
		s := &session{rb: rb}
		if err := s.unindex(rec); err != nil {
			return err
		}
		fn(&rec)
		return s.put(nil, rec)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Ensure a private reflection whose share flag is flipped in the file is
// refused everywhere and reported, never shared.
func TestTamperedShare_Refused(t *testing.T) {
	tests := []struct {
		name string
		edit func(*reflectionRecord)
	}{
		{"share flipped to named", func(r *reflectionRecord) { r.Share = nudges.ShareNamed }},
		{"share flipped to anonymous", func(r *reflectionRecord) { r.Share = nudges.ShareAnonymous }},
		{"channel added", func(r *reflectionRecord) { r.Share, r.ShareChannel = nudges.ShareNamed, "CEVERYONE" }},
		{"created moved", func(r *reflectionRecord) { r.Created = r.Created.Add(time.Hour) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log logSink
			db := openPrivacyDB(t, filepath.Join(t.TempDir(), "nudgebot.db"), &log)
			secret := "PRIVATE-" + strings.ReplaceAll(tt.name, " ", "-")
			saved, err := db.SaveReflection(nudges.Reflection{UserID: "UVICTIM", Text: secret, Created: digestBase})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Check(); err != nil {
				t.Fatalf("Check before tampering: %v", err)
			}
			rewriteReflection(t, db, "UVICTIM", saved.Seq, tt.edit)

			if _, err := db.Reflection("UVICTIM", saved.Seq); !errors.Is(err, ErrTampered) || !errors.Is(err, ErrCorrupt) {
				t.Errorf("Reflection: %v; want ErrTampered and ErrCorrupt", err)
			}
			rs, err := db.SharedReflections([]string{"UVICTIM"}, digestBase.Add(-24*time.Hour), digestBase.Add(24*time.Hour))
			if err != nil {
				t.Fatalf("SharedReflections: %v", err)
			}
			if len(rs) != 0 {
				t.Errorf("SharedReflections returned %d reflections of a tampered record", len(rs))
			}
			if !strings.Contains(log.String(), "seal does not match") && rsWouldShare(tt.name) {
				t.Errorf("the refusal was not logged; log:\n%s", log.String())
			}
			if strings.Contains(log.String(), secret) {
				t.Error("the reflection's text reached the log")
			}
			if err := db.Check(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "changed without the key") {
				t.Errorf("Check after tampering: %v; want it reported", err)
			}
		})
	}
}

// rsWouldShare says whether the edit makes the record look shared, so
// the digest's reader meets it and must report it.
func rsWouldShare(name string) bool { return !strings.HasPrefix(name, "created") }

// Ensure an honest change of the share setting re-seals, so it opens.
func TestUpdateReflection_ResealsShare(t *testing.T) {
	db := openPrivacyDB(t, filepath.Join(t.TempDir(), "nudgebot.db"), nil)
	saved, err := db.SaveReflection(nudges.Reflection{UserID: "U1", Text: "hello", Created: digestBase})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.UpdateReflection("U1", saved.Seq, func(r *nudges.Reflection) error {
		r.Share, r.ShareChannel = nudges.ShareAnonymous, "C1"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := db.Reflection("U1", saved.Seq)
	if err != nil || r.Share != nudges.ShareAnonymous || r.ShareChannel != "C1" || r.Text != "hello" {
		t.Fatalf("after update: %+v, %v", r, err)
	}
	if err := db.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// Ensure a schema 1 file (reflections sealed binding only user and seq,
// pulse voters stored by user id) is migrated: its reflections re-sealed
// and readable, its voters turned into markers that still stop a second
// vote, and its file then holding no voter id.
func TestMigrateSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nudgebot.db")
	db := openPrivacyDB(t, path, nil)
	saved, err := db.SaveReflection(nudges.Reflection{UserID: "UOLD", Text: "old words", Created: digestBase, Share: nudges.ShareNamed})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.OpenPulse("C1", "P1", digestBase); err != nil {
		t.Fatal(err)
	}
	// Make it a schema 1 file: seal the old way, voters by id, no key.
	// A backup is one file holding its secrets the schema 3 way.
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
	if err := os.Remove(SecretsPath(path)); err != nil {
		t.Fatal(err)
	}
	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bolt.Tx) error {
		rb, err := reflectionBucketsOf(tx)
		if err != nil {
			return err
		}
		k := reflectionKey("UOLD", saved.Seq)
		rec, err := decodeRecord(k, rb.reflections.Get(k))
		if err != nil {
			return err
		}
		dk, err := (&DB{keys: privacyKeys(t)}).openDataKeyOf(tx.Bucket([]byte(bucketDataKeys)), "UOLD")
		if err != nil {
			return err
		}
		plain := appendPayload(nil, "old words", "")
		rec.Sealed = dk.aead.Seal(nil, nil, plain, appendReflectionAADv1(nil, "UOLD", uint64(saved.Seq)))
		if err := putJSON(rb.reflections, string(k), rec); err != nil {
			return err
		}
		pb, vb := tx.Bucket([]byte(bucketPulses)), tx.Bucket([]byte(bucketPulseVoters))
		p, err := loadPulse(pb, "P1")
		if err != nil {
			return err
		}
		p.VoterKey = nil
		p.Totals.Record(4)
		if err := putJSON(pb, "P1", p); err != nil {
			return err
		}
		if err := putJSON(vb, string(voterKey("P1", "UVOTED")), pulseVoter{Voted: true}); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchemaVersion), []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	db = openPrivacyDB(t, path, nil)
	r, err := db.Reflection("UOLD", saved.Seq)
	if err != nil || r.Text != "old words" {
		t.Fatalf("after migration: %q, %v", r.Text, err)
	}
	if err := db.Check(); err != nil {
		t.Errorf("Check after migration: %v", err)
	}
	if found := holdsAny(allStored(t, db), []string{"UVOTED"}); len(found) > 0 {
		t.Error("after migration the voter's id is still stored")
	}
	if first, err := db.VotePulse("P1", "UVOTED", 1); err != nil || first {
		t.Errorf("vote after migration: first=%v, %v; want refused as a repeat", first, err)
	}
	if first, err := db.VotePulse("P1", "UNEW", 1); err != nil || !first {
		t.Errorf("a new voter after migration: first=%v, %v", first, err)
	}
}

// Ensure the search path's additional data, built from the encoded
// record, is what the full decoder builds, or that it declines.
func TestAppendRawAAD_MatchesDecoded(t *testing.T) {
	kept := true
	for _, rec := range []reflectionRecord{
		{Sealed: []byte("x"), DataKey: "k", UserID: "U1", Seq: 1, Created: digestBase},
		{Sealed: []byte("y"), DataKey: "k", UserID: "U1", Seq: 9, Created: digestBase.Add(123456789), NudgeID: `"share":"named"`},
		{Sealed: bytes.Repeat([]byte{7}, 300), DataKey: "k", UserID: "U2", Seq: 2, Created: digestBase, Share: nudges.ShareNamed, ShareChannel: "C1", Kept: &kept},
		{Sealed: []byte("z"), DataKey: "k", UserID: "U3", Seq: 3, Created: digestBase, Share: nudges.ShareAnonymous, ShareChannel: `C"odd`},
	} {
		raw, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendRawAAD(nil, rec.UserID, rec.Seq, raw)
		want := appendReflectionAAD(nil, &rec)
		if ok && !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", raw, got, want)
		}
		if !ok && !strings.Contains(rec.ShareChannel, `"`) {
			t.Errorf("%s: declined a plain record", raw)
		}
	}
}
