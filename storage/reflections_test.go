package storage_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// openSealed opens a fresh database sealing with a fixed key.
func openSealed(tb testing.TB) (*storage.DB, *storage.Keys) {
	tb.Helper()
	keys := mustKeys(tb, testKey("master-1"))
	return MustOpenAt(tb, filepath.Join(tb.TempDir(), "nudgebot.db"), storage.Options{Keys: keys}), keys
}

// reopenWith closes db and opens its file again with keys.
func reopenWith(tb testing.TB, db *storage.DB, keys *storage.Keys) *storage.DB {
	tb.Helper()
	if err := db.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
	return MustOpenAt(tb, db.Path(), storage.Options{Keys: keys})
}

func mustSave(tb testing.TB, db *storage.DB, r nudges.Reflection) nudges.Reflection {
	tb.Helper()
	got, err := db.SaveReflection(r)
	if err != nil {
		tb.Fatalf("SaveReflection(%s): %v", r.UserID, err)
	}
	return got
}

func seqs(rs []nudges.Reflection) []int {
	out := []int{}
	for _, r := range rs {
		out = append(out, r.Seq)
	}
	return out
}

// Ensure every field of a reflection survives a round trip, also across
// a restart.
func TestSaveReflection_RoundTrip(t *testing.T) {
	db, keys := openSealed(t)
	kept := true
	want := nudges.Reflection{
		UserID: "U1", Created: base.Add(time.Minute), Text: "Asked the team what blocks them; «two» said the release train.",
		Commitment: "Move the retro to Thursday", DeliveryID: storage.DeliveryID("U1", base, false), NudgeID: "lead-001",
		Share: nudges.ShareAnonymous, FollowUpDue: base.Add(72 * time.Hour), FollowedUp: base.Add(80 * time.Hour), Kept: &kept,
	}
	got := mustSave(t, db, want)
	want.Seq = 1
	if !equalJSON(t, got, want) {
		t.Errorf("SaveReflection returned\n%s\nwant\n%s", mustJSON(t, got), mustJSON(t, want))
	}
	for restarted := range 2 {
		if restarted == 1 {
			db = reopenWith(t, db, keys)
		}
		r, err := db.Reflection("U1", 1)
		if err != nil {
			t.Fatalf("Reflection: %v", err)
		}
		if !equalJSON(t, r, want) {
			t.Errorf("Reflection returned\n%s\nwant\n%s", mustJSON(t, r), mustJSON(t, want))
		}
	}
}

// Ensure seqs count from 1 per person and are never reused, not after a
// delete of the latest and not after a restart.
func TestSaveReflection_AssignsSeq(t *testing.T) {
	db, keys := openSealed(t)
	for _, user := range []string{"U1", "U2", "U1", "U1", "U2"} {
		mustSave(t, db, nudges.Reflection{UserID: user, Text: "noticed something", Seq: 99})
	}
	for user, want := range map[string][]int{"U1": {3, 2, 1}, "U2": {2, 1}} {
		rs, err := db.Reflections(user, 0)
		if err != nil || !slices.Equal(seqs(rs), want) {
			t.Errorf("Reflections(%s) seqs=%v, %v; want %v", user, seqs(rs), err, want)
		}
	}
	if err := db.DeleteReflection("U1", 3); err != nil {
		t.Fatal(err)
	}
	db = reopenWith(t, db, keys)
	if got := mustSave(t, db, nudges.Reflection{UserID: "U1", Text: "again"}); got.Seq != 4 {
		t.Errorf("seq after deleting 3 and restarting=%d, want 4", got.Seq)
	}
	if got := mustSave(t, db, nudges.Reflection{UserID: "U1", Text: "and again"}); got.Created != base {
		t.Errorf("Created=%v, want the clock's %v", got.Created, base)
	}
}

// Ensure what cannot be stored is refused with ErrInvalidReflection and
// a message that says what to do but never quotes the reflection.
func TestSaveReflection_Validates(t *testing.T) {
	db, _ := openSealed(t)
	const marker = "QUOKKA"
	long := strings.Repeat("é", nudges.MaxReflectionLen-len(marker)) + marker // 3000 runes, 6000+ bytes
	tests := []struct {
		name string
		r    nudges.Reflection
		want string // "" means valid
	}{
		{"ok at the limit", nudges.Reflection{UserID: "U1", Text: long}, ""},
		{"no user", nudges.Reflection{Text: marker}, "no user id"},
		{"NUL in user id", nudges.Reflection{UserID: "U1\x00", Text: marker}, "NUL"},
		{"empty", nudges.Reflection{UserID: "U1"}, "needs some text"},
		{"blank", nudges.Reflection{UserID: "U1", Text: " \n\t "}, "needs some text"},
		{"too long", nudges.Reflection{UserID: "U1", Text: long + "!"}, "That is 3001 characters; a reflection can be at most 3000"},
		{"commitment too long", nudges.Reflection{UserID: "U1", Text: marker, Commitment: strings.Repeat("c", nudges.MaxCommitmentLen+1)}, "at most 300 characters"},
		{"unknown share", nudges.Reflection{UserID: "U1", Text: marker, Share: "public"}, `"public"`},
		{"created before 1970", nudges.Reflection{UserID: "U1", Text: marker, Created: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)}, "1970"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.SaveReflection(tt.r)
			if tt.want == "" {
				if err != nil {
					t.Errorf("SaveReflection: %v", err)
				}
				return
			}
			if !errors.Is(err, storage.ErrInvalidReflection) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err=%v, want ErrInvalidReflection saying %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), marker) {
				t.Errorf("error quotes the reflection: %v", err)
			}
		})
	}
	if n, err := db.CountReflections("U1"); err != nil || n != 1 {
		t.Errorf("CountReflections=%d, %v; want only the valid one", n, err)
	}
}

// Ensure listing is newest first, limited, per person, and that people
// whose ids start alike do not see each other's.
func TestReflections(t *testing.T) {
	db, _ := openSealed(t)
	for i := range 5 {
		for _, user := range []string{"U1", "U10", "U"} {
			mustSave(t, db, nudges.Reflection{UserID: user, Text: fmt.Sprintf("%s note %d", user, i+1)})
		}
	}
	tests := []struct {
		user  string
		limit int
		want  []int
	}{
		{"U1", 0, []int{5, 4, 3, 2, 1}},
		{"U1", 2, []int{5, 4}},
		{"U1", -1, []int{5, 4, 3, 2, 1}},
		{"U10", 10, []int{5, 4, 3, 2, 1}},
		{"U", 1, []int{5}},
		{"U2", 0, []int{}},
	}
	for _, tt := range tests {
		rs, err := db.Reflections(tt.user, tt.limit)
		if err != nil {
			t.Fatalf("Reflections(%s, %d): %v", tt.user, tt.limit, err)
		}
		if !slices.Equal(seqs(rs), tt.want) {
			t.Errorf("Reflections(%s, %d) seqs=%v, want %v", tt.user, tt.limit, seqs(rs), tt.want)
		}
		for _, r := range rs {
			if r.UserID != tt.user || r.Text != fmt.Sprintf("%s note %d", tt.user, r.Seq) {
				t.Errorf("Reflections(%s) returned %s/%d %q", tt.user, r.UserID, r.Seq, r.Text)
			}
		}
	}
	for user, want := range map[string]int{"U1": 5, "U10": 5, "U": 5, "U2": 0} {
		if n, err := db.CountReflections(user); err != nil || n != want {
			t.Errorf("CountReflections(%s)=%d, %v; want %d", user, n, err, want)
		}
	}
	if _, err := db.Reflection("U1", 6); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("Reflection(U1, 6): err=%v, want ErrNotFound", err)
	}
	if _, err := db.Reflection("U1", 0); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("Reflection(U1, 0): err=%v, want ErrNotFound", err)
	}
}

// Ensure search ignores case (also beyond ASCII), looks in text and
// commitment, stays with the person, and is newest first and limited.
func TestSearchReflections(t *testing.T) {
	db, _ := openSealed(t)
	for _, r := range []nudges.Reflection{
		{UserID: "U1", Text: "The Roadmap review went well"},                           // 1
		{UserID: "U1", Text: "Nothing special", Commitment: "share the ROADMAP draft"}, // 2
		{UserID: "U1", Text: "Ärger im Team, wegen der Straße"},                        // 3
		{UserID: "U1", Text: "road map? no"},                                           // 4
		{UserID: "U2", Text: "my roadmap"},                                             // someone else's
		{UserID: "U1", Text: "roadmaps everywhere"},                                    // 5
	} {
		mustSave(t, db, r)
	}
	tests := []struct {
		word  string
		limit int
		want  []int
	}{
		{"roadmap", 0, []int{5, 2, 1}},
		{"RoAdMaP", 0, []int{5, 2, 1}},
		{"  roadmap ", 2, []int{5, 2}},
		{"ärger", 0, []int{3}},
		{"ÄRGER", 0, []int{3}},
		{"straße", 0, []int{3}},
		{"draft", 0, []int{2}},
		{"absent", 0, []int{}},
	}
	for _, tt := range tests {
		rs, err := db.SearchReflections("U1", tt.word, tt.limit)
		if err != nil {
			t.Fatalf("SearchReflections(%q): %v", tt.word, err)
		}
		if !slices.Equal(seqs(rs), tt.want) {
			t.Errorf("SearchReflections(%q, %d) seqs=%v, want %v", tt.word, tt.limit, seqs(rs), tt.want)
		}
		for _, r := range rs {
			if want, err := db.Reflection("U1", r.Seq); err != nil || !equalJSON(t, r, want) {
				t.Errorf("SearchReflections(%q) returned %s, want %s", tt.word, mustJSON(t, r), mustJSON(t, want))
			}
		}
	}
	if _, err := db.SearchReflections("U1", " ", 0); !errors.Is(err, storage.ErrInvalidReflection) {
		t.Errorf("SearchReflections with a blank word: err=%v, want ErrInvalidReflection", err)
	}
}

// Ensure an update changes what fn changes, re-seals edited text, keeps
// the indexes in step, and writes nothing when refused.
func TestUpdateReflection(t *testing.T) {
	db, _ := openSealed(t)
	mustSave(t, db, nudges.Reflection{UserID: "U1", Created: base, Text: "first draft", Commitment: "call Ana", FollowUpDue: base.Add(48 * time.Hour)})
	errNo := errors.New("changed my mind")
	tests := []struct {
		name    string
		fn      func(*nudges.Reflection) error
		wantErr error  // nil: success
		wantMsg string // part of the error
	}{
		{"fn error", func(r *nudges.Reflection) error { r.Text = "lost"; return errNo }, errNo, ""},
		{"changes seq", func(r *nudges.Reflection) error { r.Seq = 2; return nil }, nil, "cannot change"},
		{"changes user", func(r *nudges.Reflection) error { r.UserID = "U2"; return nil }, nil, "cannot change"},
		{"changes created", func(r *nudges.Reflection) error { r.Created = base.Add(time.Hour); return nil }, nil, "cannot change"},
		{"empties text", func(r *nudges.Reflection) error { r.Text = ""; return nil }, storage.ErrInvalidReflection, "needs some text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := db.Reflection("U1", 1)
			if err != nil {
				t.Fatal(err)
			}
			_, err = db.UpdateReflection("U1", 1, tt.fn)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err=%v, want %v saying %q", err, tt.wantErr, tt.wantMsg)
			}
			if after, err := db.Reflection("U1", 1); err != nil || !equalJSON(t, after, before) {
				t.Errorf("a refused update changed the reflection to %s", mustJSON(t, after))
			}
		})
	}

	kept := true
	got, err := db.UpdateReflection("U1", 1, func(r *nudges.Reflection) error {
		r.Text = "second draft"
		r.Share = nudges.ShareNamed
		r.FollowedUp = base.Add(50 * time.Hour)
		r.Kept = &kept
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateReflection: %v", err)
	}
	stored, err := db.Reflection("U1", 1)
	if err != nil || !equalJSON(t, got, stored) || stored.Text != "second draft" || stored.Commitment != "call Ana" || stored.Share != nudges.ShareNamed {
		t.Errorf("after update: %s, %v", mustJSON(t, stored), err)
	}
	if due, err := db.DueFollowUps(base.Add(100*time.Hour), 0); err != nil || len(due) != 0 {
		t.Errorf("DueFollowUps after follow-up=%v, %v; want none", seqs(due), err)
	}
	if shared, err := db.SharedReflections([]string{"U1"}, base, base.Add(time.Hour)); err != nil || !slices.Equal(seqs(shared), []int{1}) {
		t.Errorf("SharedReflections after sharing=%v, %v; want [1]", seqs(shared), err)
	}
	if _, err := db.UpdateReflection("U1", 2, func(*nudges.Reflection) error { return nil }); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("UpdateReflection of a missing one: err=%v, want ErrNotFound", err)
	}
}

// Ensure a deleted reflection is gone from every read, without asking
// for a compaction.
func TestDeleteReflection(t *testing.T) {
	db, keys := openSealed(t)
	for i := range 3 {
		mustSave(t, db, nudges.Reflection{UserID: "U1", Created: base, Text: fmt.Sprint("note ", i), Share: nudges.ShareNamed, FollowUpDue: base})
	}
	if db.NeedsCompaction() {
		t.Error("NeedsCompaction before any delete")
	}
	if err := db.DeleteReflection("U1", 2); err != nil {
		t.Fatalf("DeleteReflection: %v", err)
	}
	if err := db.DeleteReflection("U1", 2); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("second DeleteReflection: err=%v, want ErrNotFound", err)
	}
	if _, err := db.Reflection("U1", 2); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("Reflection after delete: err=%v, want ErrNotFound", err)
	}
	for name, read := range map[string]func() ([]nudges.Reflection, error){
		"Reflections":       func() ([]nudges.Reflection, error) { return db.Reflections("U1", 0) },
		"SearchReflections": func() ([]nudges.Reflection, error) { return db.SearchReflections("U1", "note", 0) },
		"SharedReflections": func() ([]nudges.Reflection, error) {
			return db.SharedReflections([]string{"U1"}, base, base.Add(time.Hour))
		},
		"DueFollowUps": func() ([]nudges.Reflection, error) { return db.DueFollowUps(base, 0) },
	} {
		rs, err := read()
		if want := []int{3, 1}; name == "SharedReflections" || name == "DueFollowUps" {
			slices.Reverse(want)
			if err != nil || !slices.Equal(seqs(rs), want) {
				t.Errorf("%s=%v, %v; want %v", name, seqs(rs), err, want)
			}
		} else if err != nil || !slices.Equal(seqs(rs), want) {
			t.Errorf("%s=%v, %v; want %v", name, seqs(rs), err, want)
		}
	}
	if db.NeedsCompaction() {
		t.Error("a delete asked for a compaction of the main file; its key is retired instead")
	}
	if db = reopenWith(t, db, keys); db.NeedsCompaction() {
		t.Error("NeedsCompaction after a delete and a restart")
	}
	if rs, err := db.Reflections("U1", 0); err != nil || !slices.Equal(seqs(rs), []int{3, 1}) {
		t.Errorf("after the restart: %v, %v; want [3 1]", seqs(rs), err)
	}
}

// Ensure only shared reflections of the given people created in
// [from, to) come back, oldest first, decrypted.
func TestSharedReflections(t *testing.T) {
	db, _ := openSealed(t)
	day := 24 * time.Hour
	for _, r := range []nudges.Reflection{
		{UserID: "U1", Created: base.Add(-time.Nanosecond), Share: nudges.ShareNamed},            // 1: before the week
		{UserID: "U1", Created: base, Share: nudges.ShareNamed},                                  // 2
		{UserID: "U1", Created: base.Add(day)},                                                   // 3: private
		{UserID: "U2", Created: base.Add(2 * day), Share: nudges.ShareAnonymous},                 // 1
		{UserID: "U2", Created: base.Add(day), Share: nudges.ShareNamed},                         // 2: created earlier than 1
		{UserID: "U1", Created: base.Add(7*day - time.Nanosecond), Share: nudges.ShareAnonymous}, // 4
		{UserID: "U1", Created: base.Add(7 * day), Share: nudges.ShareNamed},                     // 5: after the week
		{UserID: "U3", Created: base.Add(day), Share: nudges.ShareNamed},                         // not a member
	} {
		r.Text = fmt.Sprintf("%s at %s", r.UserID, r.Created.Format(time.RFC3339Nano))
		mustSave(t, db, r)
	}
	type id struct {
		user string
		seq  int
	}
	tests := []struct {
		name     string
		users    []string
		from, to time.Time
		want     []id
	}{
		{"the week", []string{"U2", "U1", "U2"}, base, base.Add(7 * day), []id{{"U1", 2}, {"U2", 2}, {"U2", 1}, {"U1", 4}}},
		{"one person", []string{"U1"}, base, base.Add(7 * day), []id{{"U1", 2}, {"U1", 4}}},
		{"no one", nil, base, base.Add(7 * day), nil},
		{"empty period", []string{"U1", "U2"}, base, base, nil},
		{"all time", []string{"U1"}, time.Time{}, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), []id{{"U1", 1}, {"U1", 2}, {"U1", 4}, {"U1", 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := db.SharedReflections(tt.users, tt.from, tt.to)
			if err != nil {
				t.Fatalf("SharedReflections: %v", err)
			}
			var got []id
			for _, r := range rs {
				got = append(got, id{r.UserID, r.Seq})
				if want := fmt.Sprintf("%s at %s", r.UserID, r.Created.Format(time.RFC3339Nano)); r.Text != want || r.Share == nudges.ShareNone {
					t.Errorf("%s/%d: text %q share %q, want %q shared", r.UserID, r.Seq, r.Text, r.Share, want)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// Ensure follow-ups come due at FollowUpDue, oldest first, until
// answered.
func TestDueFollowUps(t *testing.T) {
	db, _ := openSealed(t)
	for _, r := range []nudges.Reflection{
		{UserID: "U1", Text: "a", Commitment: "c1", FollowUpDue: base.Add(3 * time.Hour)},
		{UserID: "U2", Text: "b", Commitment: "c2", FollowUpDue: base.Add(time.Hour)},
		{UserID: "U1", Text: "c"}, // no commitment
		{UserID: "U3", Text: "d", Commitment: "c4", FollowUpDue: base.Add(2 * time.Hour), FollowedUp: base},
		{UserID: "U3", Text: "e", Commitment: "c5", FollowUpDue: base.Add(2 * time.Hour)},
	} {
		mustSave(t, db, r)
	}
	tests := []struct {
		now   time.Time
		limit int
		want  []string // commitments
	}{
		{base, 0, nil},
		{base.Add(time.Hour), 0, []string{"c2"}},
		{base.Add(2 * time.Hour), 0, []string{"c2", "c5"}},
		{base.Add(10 * time.Hour), 0, []string{"c2", "c5", "c1"}},
		{base.Add(10 * time.Hour), 2, []string{"c2", "c5"}},
	}
	for _, tt := range tests {
		rs, err := db.DueFollowUps(tt.now, tt.limit)
		if err != nil {
			t.Fatalf("DueFollowUps: %v", err)
		}
		var got []string
		for _, r := range rs {
			got = append(got, r.Commitment)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("DueFollowUps(%v, %d)=%v, want %v", tt.now, tt.limit, got, tt.want)
		}
	}
	if _, err := db.UpdateReflection("U2", 1, func(r *nudges.Reflection) error { r.FollowedUp = base.Add(time.Hour); return nil }); err != nil {
		t.Fatal(err)
	}
	if rs, _ := db.DueFollowUps(base.Add(10*time.Hour), 0); len(rs) != 2 || rs[0].Commitment != "c5" {
		t.Errorf("after answering c2: %v, want c5 and c1", seqs(rs))
	}
}

// Ensure a database whose reflections were sealed with a key that is not
// configured refuses to open, naming the key and what to do, whether the
// key is absent, wrong or none is given; and opens again with it.
func TestOpen_KeyMissing(t *testing.T) {
	db, keys := openSealed(t)
	mustSave(t, db, nudges.Reflection{UserID: "U1", Text: "private"})
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	id := keys.CurrentID()
	tests := []struct {
		name string
		keys *storage.Keys
	}{
		{"no keys", nil},
		{"wrong key", mustKeys(t, testKey("intruder"))},
		{"key absent from a ring", mustKeys(t, testKey("new"), testKey("older"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := storage.Open(path, storage.Options{Keys: tt.keys})
			if err == nil {
				closeOK(t, db)
				t.Fatal("Open succeeded")
			}
			want := fmt.Sprintf("reflections in %s were sealed with key %s, which is not configured: set NUDGEBOT_SECRET_KEY (or storage.key_file) to that key; to rotate, list the new key first and the old one after it", path, id)
			if !errors.Is(err, storage.ErrKeyMissing) || err.Error() != want {
				t.Errorf("err=%v\nwant ErrKeyMissing: %s", err, want)
			}
		})
	}
	// Tools that read no reflection may open without keys, read-only.
	ro, err := storage.Open(path, storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open without keys: %v", err)
	}
	if _, err := ro.Reflections("U1", 0); !errors.Is(err, storage.ErrKeyMissing) {
		t.Errorf("Reflections without keys: err=%v, want ErrKeyMissing", err)
	}
	if n, err := ro.CountReflections("U1"); err != nil || n != 1 {
		t.Errorf("CountReflections without keys=%d, %v; want 1", n, err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	db = MustOpenAt(t, path, storage.Options{Keys: mustKeys(t, testKey("new"), testKey("master-1"))})
	if r, err := db.Reflection("U1", 1); err != nil || r.Text != "private" {
		t.Errorf("Reflection with the key second in the ring=%q, %v", r.Text, err)
	}
}

// Ensure saving needs a key, while a database without reflections opens
// and works without one.
func TestReflections_WithoutKeys(t *testing.T) {
	db := MustOpen(t)
	if _, err := db.SaveReflection(nudges.Reflection{UserID: "U1", Text: "x"}); !errors.Is(err, storage.ErrKeyMissing) || !strings.Contains(err.Error(), "Options.Keys") {
		t.Errorf("SaveReflection without keys: err=%v, want ErrKeyMissing naming Options.Keys", err)
	}
	if rs, err := db.Reflections("U1", 0); err != nil || len(rs) != 0 {
		t.Errorf("Reflections without keys=%v, %v; want none", rs, err)
	}
	if _, err := db.RotateKeys(); !errors.Is(err, storage.ErrKeyMissing) {
		t.Errorf("RotateKeys without keys: err=%v, want ErrKeyMissing", err)
	}
}

// Ensure rotation re-seals every data key under the new key, so the old
// key can be dropped, without touching the reflections.
func TestRotateKeys(t *testing.T) {
	oldKey, newKey := testKey("old"), testKey("new")
	db := MustOpenAt(t, filepath.Join(t.TempDir(), "nudgebot.db"), storage.Options{Keys: mustKeys(t, oldKey)})
	users := []string{"U1", "U2", "U3"}
	for _, user := range users {
		for i := range 3 {
			mustSave(t, db, nudges.Reflection{UserID: user, Text: fmt.Sprintf("%s %d", user, i), FollowUpDue: base, Commitment: "c"})
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := rawContents(t, db.Path())
	before["datakeys"] = rawContents(t, storage.SecretsPath(db.Path()))["datakeys"]

	db = MustOpenAt(t, db.Path(), storage.Options{Keys: mustKeys(t, newKey, oldKey)})
	mustSave(t, db, nudges.Reflection{UserID: "U4", Text: "sealed under the new key already"})
	if n, err := db.RotateKeys(); err != nil || n != len(users) {
		t.Fatalf("RotateKeys=%d, %v; want %d", n, err, len(users))
	}
	if n, err := db.RotateKeys(); err != nil || n != 0 {
		t.Errorf("second RotateKeys=%d, %v; want 0", n, err)
	}

	db = reopenWith(t, db, mustKeys(t, newKey))
	for _, user := range append(users, "U4") {
		rs, err := db.Reflections(user, 0)
		if err != nil || len(rs) == 0 {
			t.Errorf("Reflections(%s) with only the new key: %d, %v", user, len(rs), err)
		}
	}
	if due, err := db.DueFollowUps(base, 0); err != nil || len(due) != 9 {
		t.Errorf("DueFollowUps with only the new key: %d, %v; want 9", len(due), err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	after := rawContents(t, db.Path())
	after["datakeys"] = rawContents(t, storage.SecretsPath(db.Path()))["datakeys"]
	if !slices.EqualFunc(before["reflections"], after["reflections"][:len(before["reflections"])], equalKV) {
		t.Error("rotation rewrote sealed reflections; only the data keys should change")
	}
	if slices.EqualFunc(before["datakeys"], after["datakeys"][:len(before["datakeys"])], equalKV) {
		t.Error("rotation left the data keys as they were")
	}
	if _, err := storage.Open(db.Path(), storage.Options{Keys: mustKeys(t, oldKey)}); !errors.Is(err, storage.ErrKeyMissing) {
		t.Errorf("Open with only the old key after rotation: err=%v, want ErrKeyMissing", err)
	}
}

// Ensure the file never holds a reflection's text or commitment: not
// with many reflections, not after a restart, not after edits.
func TestPrivacy_FileNeverHoldsText(t *testing.T) {
	db, keys := openSealed(t)
	const marker, promise = "Zanzibar7", "Quetzal9"
	for i := range 200 {
		mustSave(t, db, nudges.Reflection{
			UserID:     fmt.Sprintf("U%d", i%7),
			Text:       fmt.Sprintf("reflection %d mentions %s in passing; %s", i, marker, strings.Repeat("padding ", 30)),
			Commitment: promise + " by Friday",
			Share:      []nudges.Share{nudges.ShareNone, nudges.ShareNamed}[i%2],
		})
	}
	if _, err := db.UpdateReflection("U0", 1, func(r *nudges.Reflection) error { r.Text += " edited " + marker; return nil }); err != nil {
		t.Fatal(err)
	}
	db = reopenWith(t, db, keys)
	raw, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{marker, strings.ToLower(marker), promise, "padding padding"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the database file contains %q", secret)
		}
	}
	if rs, err := db.SearchReflections("U3", strings.ToUpper(marker), 0); err != nil || len(rs) != 29 {
		t.Errorf("SearchReflections after reopening: %d, %v; want 29", len(rs), err)
	}
}

// Ensure errors about damaged reflections name the person and seq, and
// never quote the reflection.
func TestPrivacy_ErrorsNeverQuoteText(t *testing.T) {
	db, keys := openSealed(t)
	const marker = "Axolotl3"
	for range 2 {
		mustSave(t, db, nudges.Reflection{UserID: "U1", Text: "about " + marker, Commitment: marker})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Flip a byte of the first reflection's ciphertext.
	rawUpdate(t, db.Path(), func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("reflections"))
		k, v := b.Cursor().First()
		var rec map[string]any
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		var sealed []byte
		if err := json.Unmarshal(mustJSON(t, rec["sealed"]), &sealed); err != nil {
			return err
		}
		sealed[len(sealed)/2] ^= 1
		rec["sealed"] = sealed
		return b.Put(bytes.Clone(k), mustJSON(t, rec))
	})
	db = MustOpenAt(t, db.Path(), storage.Options{Keys: keys})
	_, err1 := db.Reflection("U1", 1)
	_, err2 := db.Reflections("U1", 0)
	_, err3 := db.SearchReflections("U1", "zzz", 0)
	_, err4 := db.UpdateReflection("U1", 1, func(*nudges.Reflection) error { return nil })
	for i, err := range []error{err1, err2, err3, err4} {
		if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "reflection 1 of U1") {
			t.Errorf("read %d: err=%v, want ErrCorrupt naming reflection 1 of U1", i+1, err)
		}
		if err != nil && strings.Contains(err.Error(), marker) {
			t.Errorf("read %d: error quotes the reflection: %v", i+1, err)
		}
	}
	if r, err := db.Reflection("U1", 2); err != nil || r.Commitment != marker {
		t.Errorf("the undamaged reflection: %q, %v", r.Commitment, err)
	}
	err := db.Check()
	if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "reflection 1 of U1") {
		t.Errorf("Check: %v, want the damaged reflection reported", err)
	}
	if err != nil && strings.Contains(err.Error(), marker) {
		t.Errorf("Check quotes the reflection: %v", err)
	}
	// Deleting the damaged record needs no key and lets the cleanup
	// check pass.
	if err := db.DeleteReflection("U1", 1); err != nil {
		t.Fatal(err)
	}
}

// rawContents returns every key and value of every bucket of the closed
// database at path, nested buckets included.
func rawContents(t *testing.T, path string) map[string][][2][]byte {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, bdb)
	out := map[string][][2][]byte{}
	var walk func(name string, b *bolt.Bucket) error
	walk = func(name string, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(name+"/"+string(k), b.Bucket(k))
			}
			out[name] = append(out[name], [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			return nil
		})
	}
	err = bdb.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			out[string(name)] = nil
			return walk(string(name), b)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// seedPerson stores a bit of everything about user: a subscription, a
// pending and a sent delivery, an envelope, a vote in an open pulse, and
// reflections that are shared and due for follow-up.
func seedPerson(t *testing.T, db *storage.DB, user, text string) {
	t.Helper()
	subscribe(t, db, user, base)
	if _, err := db.StartDelivery(pending(user, base), base, setNextDue(base.Add(24*time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordMissed(user, []time.Time{base.Add(-24 * time.Hour)}, base.Add(24*time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		mustSave(t, db, nudges.Reflection{
			UserID: user, Text: fmt.Sprintf("%s number %d", text, i), Commitment: text + " promise",
			DeliveryID: storage.DeliveryID(user, base, false), NudgeID: "lead-001",
			Share: nudges.ShareNamed, FollowUpDue: base.Add(time.Duration(i) * time.Hour),
		})
	}
	if err := db.DeleteReflection(user, 2); err != nil {
		t.Fatal(err)
	}
	// Envelope keys are Slack's, not derived from the person.
	if _, err := db.MarkSeen(fmt.Sprintf("Ev%x", sha256.Sum256([]byte(user)))[:12], base); err != nil {
		t.Fatal(err)
	}
}

// Ensure Forget leaves nothing about the person in any bucket, key or
// value, and everything about everyone else, including people whose ids
// start like theirs.
func TestForget(t *testing.T) {
	db, keys := openSealed(t)
	const gone, goneText = "UFORGOTTEN", "Pangolin5"
	seedPerson(t, db, gone, goneText)
	for _, other := range []string{"UFORGOTTEN1", "UFORGOT"} {
		seedPerson(t, db, other, "Narwhal8")
	}
	if err := db.OpenPulse("C1", "P1", base); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{gone, "UFORGOT"} {
		if _, err := db.VotePulse("P1", user, 4); err != nil {
			t.Fatal(err)
		}
	}

	if err := db.Forget(gone); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	if err := db.Forget(gone); err != nil {
		t.Errorf("second Forget: %v", err)
	}
	if err := db.Forget("UNEVERSEEN"); err != nil {
		t.Errorf("Forget of someone unknown: %v", err)
	}
	if _, err := db.Subscriber(gone); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("Subscriber after Forget: err=%v, want ErrNotFound", err)
	}
	if rs, err := db.Reflections(gone, 0); err != nil || len(rs) != 0 {
		t.Errorf("Reflections after Forget=%v, %v; want none", seqs(rs), err)
	}
	// They may come back as someone new.
	if r := mustSave(t, db, nudges.Reflection{UserID: gone, Text: "hello again"}); r.Seq != 1 {
		t.Errorf("first seq after Forget=%d, want 1", r.Seq)
	}
	if err := db.Forget(gone); err != nil {
		t.Fatal(err)
	}

	db = reopenWith(t, db, keys)
	for _, other := range []string{"UFORGOTTEN1", "UFORGOT"} {
		if rs, err := db.Reflections(other, 0); err != nil || len(rs) != 2 {
			t.Errorf("Reflections(%s)=%d, %v; want 2", other, len(rs), err)
		}
		if ds, err := db.Deliveries(other, time.Time{}); err != nil || len(ds) != 2 {
			t.Errorf("Deliveries(%s)=%d, %v; want 2", other, len(ds), err)
		}
		if _, err := db.Subscriber(other); err != nil {
			t.Errorf("Subscriber(%s): %v", other, err)
		}
	}
	if err := db.Check(); err != nil {
		t.Errorf("Check after Forget: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	contents := rawContents(t, db.Path())
	for bucket, kvs := range contents {
		for _, kv := range kvs {
			for i, b := range kv {
				what := [2]string{"key", "value"}[i]
				// Others' ids contain this one, so look for it as a whole
				// id: before a separator, quoted, or at the end.
				if bytes.Contains(b, []byte(gone+"\x00")) || bytes.Contains(b, []byte(gone+"-")) || bytes.Contains(b, []byte(`"`+gone+`"`)) || bytes.HasSuffix(b, []byte(gone)) {
					t.Errorf("bucket %s: a %s still holds %s: %q", bucket, what, gone, b)
				}
				if bytes.Contains(b, []byte(goneText)) {
					t.Errorf("bucket %s: a %s holds the forgotten text", bucket, what)
				}
			}
		}
	}
	if len(contents["seen"]) != 3 {
		t.Errorf("seen holds %d envelopes, want 3: envelopes are not per person", len(contents["seen"]))
	}
}

// Ensure a Forget cut short after its first transaction leaves the
// reflections unreadable, and that the next Open finishes it.
func TestOpen_FinishesInterruptedForget(t *testing.T) {
	db, keys := openSealed(t)
	seedPerson(t, db, "U1", "Okapi4")
	seedPerson(t, db, "U2", "Okapi4")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// What Forget's first two steps commit.
	rawUpdate(t, db.Path(), func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("forgetting")).Put([]byte("U1"), mustJSON(t, base))
	})
	rawUpdate(t, storage.SecretsPath(db.Path()), func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("datakeys")).Delete([]byte("U1"))
	})
	ro, err := storage.Open(db.Path(), storage.Options{ReadOnly: true, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Reflections("U1", 0); err == nil || !strings.Contains(err.Error(), "call Forget for U1 again") {
		t.Errorf("Reflections mid-Forget: err=%v, want one saying to call Forget again", err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}

	db = MustOpenAt(t, db.Path(), storage.Options{Keys: keys})
	if n, err := db.CountReflections("U1"); err != nil || n != 0 {
		t.Errorf("CountReflections(U1) after Open=%d, %v; want 0", n, err)
	}
	if _, err := db.Subscriber("U1"); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("Subscriber(U1) after Open: err=%v, want ErrNotFound", err)
	}
	if n, err := db.CountReflections("U2"); err != nil || n != 2 {
		t.Errorf("CountReflections(U2)=%d, %v; want 2", n, err)
	}
}

// Ensure Compact leaves no trace of a forgotten person in the file, not
// even the sealed bytes, and the database goes on working.
func TestCompact_RemovesForgottenBytes(t *testing.T) {
	db, keys := openSealed(t)
	const gone, goneText = "UCOMPACTED", "Capybara2"
	seedPerson(t, db, gone, goneText)
	seedPerson(t, db, "U2", "Ibex6")
	for i := range 50 { // enough that the file has pages to free
		mustSave(t, db, nudges.Reflection{UserID: "U2", Text: strings.Repeat(fmt.Sprint(i), 200)})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var sealed [][]byte
	for _, kv := range rawContents(t, db.Path())["reflections"] {
		if bytes.HasPrefix(kv[0], []byte(gone+"\x00")) {
			var rec struct{ Sealed []byte }
			if err := json.Unmarshal(kv[1], &rec); err != nil {
				t.Fatal(err)
			}
			sealed = append(sealed, rec.Sealed)
		}
	}
	if len(sealed) != 2 {
		t.Fatalf("found %d sealed reflections of %s, want 2", len(sealed), gone)
	}

	db = MustOpenAt(t, db.Path(), storage.Options{Keys: keys})
	if err := db.Forget(gone); err != nil {
		t.Fatal(err)
	}
	sizeBefore, err := db.Size()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if db.NeedsCompaction() {
		t.Error("NeedsCompaction after Compact")
	}
	raw, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(gone)) {
		t.Errorf("the compacted file still holds the user id %s", gone)
	}
	if bytes.Contains(raw, []byte(goneText)) {
		t.Error("the compacted file holds the plaintext")
	}
	for i, s := range sealed {
		if bytes.Contains(raw, s[len(s)-32:]) || bytes.Contains(raw, s[12:44]) {
			t.Errorf("the compacted file still holds sealed reflection %d", i)
		}
	}
	if sizeAfter, err := db.Size(); err != nil || sizeAfter > sizeBefore {
		t.Errorf("Compact grew the file from %d to %d bytes", sizeBefore, sizeAfter)
	}
	if left, _ := filepath.Glob(db.Path() + ".compact*"); len(left) > 0 {
		t.Errorf("the compaction copy is left behind: %v", left)
	}

	// The same handle keeps working, and the state survives a restart.
	mustSave(t, db, nudges.Reflection{UserID: "U2", Text: "after compaction"})
	for restarted := range 2 {
		if restarted == 1 {
			db = reopenWith(t, db, keys)
		}
		if n, err := db.CountReflections("U2"); err != nil || n != 53 {
			t.Errorf("CountReflections(U2)=%d, %v; want 53", n, err)
		}
		if db.NeedsCompaction() {
			t.Error("NeedsCompaction after Compact and restart")
		}
		if err := db.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
	}
}

// Ensure callers working during Compact never see a closed handle and
// lose nothing.
func TestCompact_Concurrent(t *testing.T) {
	db, _ := openSealed(t)
	subscribe(t, db, "U0", base)
	const workers, rounds = 4, 30
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*3)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("U%d", w)
			for i := range rounds {
				if _, err := db.SaveReflection(nudges.Reflection{UserID: user, Text: fmt.Sprint("note ", i)}); err != nil {
					errs <- err
				}
				if _, err := db.Reflections(user, 3); err != nil {
					errs <- err
				}
				if _, err := db.Subscriber("U0"); err != nil {
					errs <- err
				}
			}
		}()
	}
	for range 5 {
		if err := db.Compact(); err != nil {
			t.Errorf("Compact: %v", err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("during Compact: %v", err)
	}
	for w := range workers {
		if n, err := db.CountReflections(fmt.Sprintf("U%d", w)); err != nil || n != rounds {
			t.Errorf("CountReflections(U%d)=%d, %v; want %d", w, n, err, rounds)
		}
	}
}

// Ensure Compact refuses what it cannot do and leaves no copy behind.
func TestCompact_Refuses(t *testing.T) {
	db, keys := openSealed(t)
	mustSave(t, db, nudges.Reflection{UserID: "U1", Text: "x"})
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(); !errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		t.Errorf("Compact after Close: err=%v, want ErrDatabaseNotOpen", err)
	}
	ro, err := storage.Open(path, storage.Options{ReadOnly: true, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, ro)
	if err := ro.Compact(); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Compact of a read-only database: err=%v", err)
	}
	if left, _ := filepath.Glob(path + ".compact*"); len(left) > 0 {
		t.Errorf("a compaction copy is left behind: %v", left)
	}
}

// Ensure Check notices reflection indexes that disagree with their
// records.
func TestCheck_FindsReflectionDrift(t *testing.T) {
	db, _ := openSealed(t)
	mustSave(t, db, nudges.Reflection{UserID: "U1", Text: "x", Commitment: "y", FollowUpDue: base})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, db.Path(), func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("follow_ups"))
		k, _ := b.Cursor().First()
		return b.Delete(bytes.Clone(k))
	})
	ro, err := storage.Open(db.Path(), storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, ro)
	if err := ro.Check(); !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "follow_ups index lacks reflection 1 of U1") {
		t.Errorf("Check: err=%v, want ErrCorrupt naming the missing follow-up", err)
	}
}

// Ensure a Compact that fails before the swap leaves the database as it
// was, and working.
func TestCompact_FailureLeavesDatabase(t *testing.T) {
	db, _ := openSealed(t)
	mustSave(t, db, nudges.Reflection{UserID: "U1", Text: "kept"})
	// The database's directory moves away, so no copy can be made beside
	// the file; the open handle goes on working.
	dir := filepath.Dir(db.Path())
	if err := os.Rename(dir, dir+"-moved"); err != nil {
		t.Fatal(err)
	}
	err := db.Compact()
	if rerr := os.Rename(dir+"-moved", dir); rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil || !strings.Contains(err.Error(), "unchanged") {
		t.Errorf("Compact: err=%v, want one saying the database is unchanged", err)
	}
	mustSave(t, db, nudges.Reflection{UserID: "U1", Text: "after"})
	if rs, err := db.Reflections("U1", 0); err != nil || len(rs) != 2 || rs[1].Text != "kept" {
		t.Errorf("Reflections after a failed Compact=%v, %v", seqs(rs), err)
	}
}

// Ensure an id that could reach into another person's key range is
// refused rather than read as theirs.
func TestReflections_RefusesNULInUserID(t *testing.T) {
	db, _ := openSealed(t)
	mustSave(t, db, nudges.Reflection{UserID: "U1", Text: "mine"})
	evil := "U1\x00"
	if rs, err := db.Reflections(evil, 0); err == nil || len(rs) != 0 {
		t.Errorf("Reflections(%q)=%d, %v; want an error", evil, len(rs), err)
	}
	if rs, err := db.SearchReflections(evil, "mine", 0); err == nil || len(rs) != 0 {
		t.Errorf("SearchReflections(%q)=%d, %v; want an error", evil, len(rs), err)
	}
	if n, err := db.CountReflections(evil); err == nil || n != 0 {
		t.Errorf("CountReflections(%q)=%d, %v; want an error", evil, n, err)
	}
	if err := db.Forget(evil); err == nil {
		t.Errorf("Forget(%q) succeeded", evil)
	}
	if n, _ := db.CountReflections("U1"); n != 1 {
		t.Errorf("U1 has %d reflections, want 1", n)
	}
}

// Ensure a read-write open with the wrong key is refused before anything
// is written: the file is byte for byte what it was.
func TestOpenWithWrongKeyWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nudgebot.db")
	right := mustKeys(t, bytes.Repeat([]byte{1}, 32))
	wrong := mustKeys(t, bytes.Repeat([]byte{2}, 32))
	db, err := storage.Open(path, storage.Options{Keys: right})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveReflection(nudges.Reflection{UserID: "U1", Created: time.Now(), Text: "sealed"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, path)
	if _, err := storage.Open(path, storage.Options{Keys: wrong}); !errors.Is(err, storage.ErrKeyMissing) {
		t.Fatalf("open with the wrong key: %v, want ErrKeyMissing", err)
	}
	if after := readFile(t, path); !bytes.Equal(before, after) {
		t.Fatal("the refused open changed the file")
	}
}
