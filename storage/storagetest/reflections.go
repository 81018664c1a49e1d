package storagetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

func (e *env) save(r nudges.Reflection) nudges.Reflection {
	e.t.Helper()
	got, err := e.db.SaveReflection(r)
	if err != nil {
		e.t.Fatalf("SaveReflection(%s): %v", r.UserID, err)
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

var _ = contract(
	testCase{"ReflectionRoundTripAcrossRestart", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		kept := true
		want := nudges.Reflection{
			UserID: "U1", Created: base, Text: "I explained the why <!channel> & ünïcode", Commitment: "Ask Ana about the plan",
			DeliveryID: "U1-20260302T090000Z", NudgeID: "lead-001", Share: nudges.ShareNamed, ShareChannel: "C1", MessageTS: "1.5",
			FollowUpDue: base.Add(72 * time.Hour), FollowedUp: base.Add(80 * time.Hour), Kept: &kept,
		}
		got := e.save(want)
		want.Seq = 1
		if !sameJSON(t, got, want) {
			t.Fatalf("SaveReflection=%+v, want %+v", got, want)
		}
		db, err := e.reopen(e.keys)
		if err != nil {
			t.Fatal(err)
		}
		read, err := db.Reflection("U1", 1)
		if err != nil || !sameJSON(t, read, want) {
			t.Errorf("after restart Reflection=%+v,%v", read, err)
		}
		for _, seq := range []int{0, 2, -1} {
			if _, err := db.Reflection("U1", seq); !errors.Is(err, nudges.ErrNotFound) {
				t.Errorf("Reflection(%d): %v, want ErrNotFound", seq, err)
			}
		}
	}},
	testCase{"SaveReflectionRefusesInvalid", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		for name, r := range map[string]nudges.Reflection{
			"empty":         {UserID: "U1", Text: "  "},
			"no user":       {Text: "x"},
			"too long":      {UserID: "U1", Text: strings.Repeat("a", nudges.MaxReflectionLen+1)},
			"unknown share": {UserID: "U1", Text: "x", Share: "everyone"},
			"private+chan":  {UserID: "U1", Text: "x", ShareChannel: "C1"},
		} {
			if _, err := e.db.SaveReflection(r); !errors.Is(err, storage.ErrInvalidReflection) {
				t.Errorf("%s: err=%v, want ErrInvalidReflection", name, err)
			}
		}
		if n, _ := e.db.CountReflections("U1"); n != 0 {
			t.Errorf("%d stored", n)
		}
	}},
	testCase{"ReflectionListsSearchCountDelete", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		e.clock.Set(base)
		for _, text := range []string{"Vision day", "one-to-ones", "the VISION again", "budget"} {
			e.save(nudges.Reflection{UserID: "U1", Text: text})
		}
		e.save(nudges.Reflection{UserID: "U1", Text: "quiet", Commitment: "share the vision"})
		e.save(nudges.Reflection{UserID: "U2", Text: "vision of someone else"})
		all, err := e.db.Reflections("U1", 0)
		if err != nil || !slices.Equal(seqs(all), []int{5, 4, 3, 2, 1}) {
			t.Fatalf("Reflections=%v,%v", seqs(all), err)
		}
		if !all[4].Created.Equal(base) {
			t.Errorf("Created=%v, want the store's clock", all[4].Created)
		}
		if two, _ := e.db.Reflections("U1", 2); !slices.Equal(seqs(two), []int{5, 4}) {
			t.Errorf("Reflections(2)=%v", seqs(two))
		}
		found, err := e.db.SearchReflections("U1", "vision", 0)
		if err != nil || !slices.Equal(seqs(found), []int{5, 3, 1}) {
			t.Errorf("Search(vision)=%v,%v, want [5 3 1]", seqs(found), err)
		}
		if found, _ := e.db.SearchReflections("U1", "vision", 2); !slices.Equal(seqs(found), []int{5, 3}) {
			t.Errorf("Search(vision, 2)=%v", seqs(found))
		}
		if _, err := e.db.SearchReflections("U1", " ", 0); err == nil {
			t.Error("an empty search word was accepted")
		}
		if n, _ := e.db.CountReflections("U1"); n != 5 {
			t.Errorf("Count=%d", n)
		}
		if err := e.db.DeleteReflection("U1", 5); err != nil {
			t.Fatal(err)
		}
		if err := e.db.DeleteReflection("U1", 5); !errors.Is(err, nudges.ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
		// A seq is never given twice, also after the newest is deleted.
		if r := e.save(nudges.Reflection{UserID: "U1", Text: "after"}); r.Seq != 6 {
			t.Errorf("seq after delete=%d, want 6", r.Seq)
		}
		// Whether that asks for a compaction is the engine's: bbolt
		// retires the key instead, PostgreSQL vacuums.
		if err := e.db.Compact(); err != nil {
			t.Errorf("Compact: %v", err)
		}
	}},
	testCase{"UpdateReflectionReseals", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		r := e.save(nudges.Reflection{UserID: "U1", Text: "draft", Created: base})
		got, err := e.db.UpdateReflection("U1", r.Seq, func(r *nudges.Reflection) error {
			r.Text, r.Share, r.ShareChannel = "final", nudges.ShareAnonymous, "C1"
			return nil
		})
		if err != nil || got.Text != "final" {
			t.Fatalf("UpdateReflection=%+v,%v", got, err)
		}
		if read, _ := e.db.Reflection("U1", r.Seq); read.Text != "final" || read.Share != nudges.ShareAnonymous || read.ShareChannel != "C1" {
			t.Errorf("read back %+v", read)
		}
		if _, err := e.db.UpdateReflection("U1", r.Seq, func(r *nudges.Reflection) error { r.Created = base.Add(time.Hour); return nil }); err == nil {
			t.Error("changing Created was accepted")
		}
		if _, err := e.db.UpdateReflection("U1", r.Seq, func(r *nudges.Reflection) error { r.Text = ""; return nil }); !errors.Is(err, storage.ErrInvalidReflection) {
			t.Errorf("emptying: %v", err)
		}
		if _, err := e.db.UpdateReflection("U1", 9, func(*nudges.Reflection) error { return nil }); !errors.Is(err, nudges.ErrNotFound) {
			t.Errorf("missing: %v", err)
		}
		if read, _ := e.db.Reflection("U1", r.Seq); read.Text != "final" {
			t.Errorf("a refused update changed the text to %q", read.Text)
		}
	}},
	testCase{"SharedReflectionsFollowUpsAndMessages", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		day := 24 * time.Hour
		e.save(nudges.Reflection{UserID: "U2", Text: "shared late", Created: base.Add(2 * day), Share: nudges.ShareNamed})
		e.save(nudges.Reflection{UserID: "U1", Text: "private", Created: base})
		e.save(nudges.Reflection{UserID: "U1", Text: "shared", Created: base.Add(day), Share: nudges.ShareAnonymous, MessageTS: "10.1"})
		e.save(nudges.Reflection{UserID: "U1", Text: "too old", Created: base.Add(-day), Share: nudges.ShareNamed})
		e.save(nudges.Reflection{UserID: "U3", Text: "not asked", Created: base.Add(day), Share: nudges.ShareNamed})
		got, err := e.db.SharedReflections([]string{"U2", "U1", "U1", "", "U1\x00"}, base, base.Add(3*day))
		var texts []string
		for _, r := range got {
			texts = append(texts, r.Text)
		}
		if err != nil || !slices.Equal(texts, []string{"shared", "shared late"}) {
			t.Errorf("SharedReflections=%q,%v", texts, err)
		}
		if r, err := e.db.ReflectionByMessage("U1", "10.1"); err != nil || r.Text != "shared" {
			t.Errorf("ReflectionByMessage=%+v,%v", r, err)
		}
		for _, ts := range []string{"", "99.9"} {
			if _, err := e.db.ReflectionByMessage("U1", ts); !errors.Is(err, nudges.ErrNotFound) {
				t.Errorf("ReflectionByMessage(%q): %v", ts, err)
			}
		}
		if _, err := e.db.ReflectionByMessage("U2", "10.1"); !errors.Is(err, nudges.ErrNotFound) {
			t.Errorf("another person's message: %v", err)
		}
		// Follow-ups: the oldest due, not yet answered, this person's.
		e.save(nudges.Reflection{UserID: "U1", Text: "a", Commitment: "later", FollowUpDue: base.Add(5 * day)})
		mid := e.save(nudges.Reflection{UserID: "U1", Text: "b", Commitment: "first", FollowUpDue: base.Add(3 * day)})
		e.save(nudges.Reflection{UserID: "U1", Text: "c", Commitment: "answered", FollowUpDue: base.Add(day), FollowedUp: base.Add(2 * day)})
		e.save(nudges.Reflection{UserID: "U2", Text: "d", Commitment: "theirs", FollowUpDue: base})
		if _, found, err := e.db.DueFollowUp("U1", base.Add(2*day)); found || err != nil {
			t.Errorf("DueFollowUp before due: found=%v err=%v", found, err)
		}
		r, found, err := e.db.DueFollowUp("U1", base.Add(6*day))
		if err != nil || !found || r.Commitment != "first" {
			t.Fatalf("DueFollowUp=%+v,%v,%v", r, found, err)
		}
		if _, err := e.db.UpdateReflection("U1", mid.Seq, func(r *nudges.Reflection) error { r.FollowedUp = base.Add(6 * day); return nil }); err != nil {
			t.Fatal(err)
		}
		if r, _, _ := e.db.DueFollowUp("U1", base.Add(6*day)); r.Commitment != "later" {
			t.Errorf("after answering, DueFollowUp=%q, want later", r.Commitment)
		}
		// Many people at once: each one's oldest due, those with none
		// (not yet due, not asked, no such person) left out.
		e.save(nudges.Reflection{UserID: "U3", Text: "e", Commitment: "not yet", FollowUpDue: base.Add(9 * day)})
		due, err := e.db.DueFollowUpsOf([]string{"U1", "U2", "U3", "U9", "", "U1"}, base.Add(6*day))
		if err != nil || len(due) != 2 || due["U1"].Commitment != "later" || due["U2"].Commitment != "theirs" {
			t.Errorf("DueFollowUpsOf=%+v,%v, want U1 later and U2 theirs", due, err)
		}
		if due, err := e.db.DueFollowUpsOf([]string{"U1", "U2"}, base.Add(-day)); err != nil || len(due) != 0 {
			t.Errorf("DueFollowUpsOf before any is due=%+v,%v", due, err)
		}
	}},
	testCase{"SealedReflectionsNeedTheKey", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		e.save(nudges.Reflection{UserID: "U1", Text: "sealed text"})
		// Another key alone opens nothing: the store refuses to start.
		if _, err := e.reopen(keys(t, "master-2")); !errors.Is(err, storage.ErrKeyMissing) {
			t.Fatalf("open with another key: %v, want ErrKeyMissing", err)
		}
		// Rotation: the new key first, the old one after it.
		db, err := e.open(Options{Keys: keys(t, "master-2", "master-1"), Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if r, err := db.Reflection("U1", 1); err != nil || r.Text != "sealed text" {
			t.Fatalf("during rotation: %+v,%v", r, err)
		}
		type rotator interface{ RotateKeys() (int, error) }
		if rot, ok := db.(rotator); ok {
			if n, err := rot.RotateKeys(); err != nil || n != 1 {
				t.Fatalf("RotateKeys=%d,%v", n, err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db2, err := e.open(Options{Keys: keys(t, "master-2"), Now: e.clock.Now})
			if err != nil {
				t.Fatalf("after rotation, the new key alone: %v", err)
			}
			t.Cleanup(func() { _ = db2.Close() })
			if r, err := db2.Reflection("U1", 1); err != nil || r.Text != "sealed text" {
				t.Errorf("after rotation: %+v,%v", r, err)
			}
		}
	}},
	testCase{"ForgetShredsThenErases", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		e.subscribe("U1", base)
		e.subscribe("U2", base)
		if _, err := e.db.StartDelivery(pending("U1", base), base, nil); err != nil {
			t.Fatal(err)
		}
		e.save(nudges.Reflection{UserID: "U1", Text: "mine", Share: nudges.ShareNamed, Commitment: "c", FollowUpDue: base})
		e.save(nudges.Reflection{UserID: "U2", Text: "theirs"})
		if err := e.db.Forget("U1"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Subscriber("U1"); !errors.Is(err, nudges.ErrNotFound) {
			t.Errorf("subscriber kept: %v", err)
		}
		if ds, _ := e.db.Deliveries("U1", time.Time{}); len(ds) != 0 {
			t.Errorf("deliveries kept: %v", ids(ds))
		}
		if p, _ := e.db.Pending(); len(p) != 0 {
			t.Errorf("outbox kept %v", ids(p))
		}
		if due, _ := e.db.Due(base, 0); !slices.Equal(due, []string{"U2"}) {
			t.Errorf("Due=%v", due)
		}
		if n, _ := e.db.CountReflections("U1"); n != 0 {
			t.Errorf("%d reflections kept", n)
		}
		if rs, _ := e.db.SharedReflections([]string{"U1"}, base.Add(-time.Hour), base.Add(time.Hour)); len(rs) != 0 {
			t.Errorf("shared reflections kept")
		}
		if _, found, _ := e.db.DueFollowUp("U1", base.Add(time.Hour)); found {
			t.Error("follow-up kept")
		}
		var recs []nudges.PersonRecord
		if err := e.db.ExportPerson("U1", func(r nudges.PersonRecord) error { recs = append(recs, r); return nil }); err != nil || len(recs) != 0 {
			t.Errorf("export after forget: %d records, %v", len(recs), err)
		}
		if r, err := e.db.Reflection("U2", 1); err != nil || r.Text != "theirs" {
			t.Errorf("someone else's reflection: %+v,%v", r, err)
		}
		// Whether that asks for a compaction is the engine's (see above).
		if err := e.db.Compact(); err != nil {
			t.Error(err)
		}
		if err := e.db.Forget("U9"); err != nil {
			t.Errorf("forgetting someone unknown: %v", err)
		}
		// A person who comes back starts afresh, under a new data key.
		if r := e.save(nudges.Reflection{UserID: "U1", Text: "again"}); r.Seq != 1 {
			t.Errorf("seq after forget=%d, want 1", r.Seq)
		}
	}},
	testCase{"ExportPersonWalksEverything", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		e.subscribe("U1", base)
		e.subscribe("U10", base)
		for _, u := range []string{"U1", "U10"} {
			if _, err := e.db.StartDelivery(pending(u, base), base, advanceTo(base.Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
			if _, err := e.db.StartDelivery(pending(u, base.Add(time.Hour)), base.Add(time.Hour), nil); err != nil {
				t.Fatal(err)
			}
		}
		e.save(nudges.Reflection{UserID: "U1", Text: "one"})
		e.save(nudges.Reflection{UserID: "U1", Text: "two"})
		var kinds []string
		var texts []string
		err := e.db.ExportPerson("U1", func(r nudges.PersonRecord) error {
			kinds = append(kinds, r.Kind())
			if r.Reflection != nil {
				texts = append(texts, r.Reflection.Text)
			}
			if r.Delivery != nil && r.Delivery.UserID != "U1" {
				t.Errorf("exported %s's delivery", r.Delivery.UserID)
			}
			return nil
		})
		want := []string{nudges.KindSubscriber, nudges.KindDelivery, nudges.KindDelivery, nudges.KindReflection, nudges.KindReflection}
		if err != nil || !slices.Equal(kinds, want) || !slices.Equal(texts, []string{"one", "two"}) {
			t.Errorf("ExportPerson kinds=%v texts=%v err=%v", kinds, texts, err)
		}
		stop := errors.New("stop")
		if err := e.db.ExportPerson("U1", func(nudges.PersonRecord) error { return stop }); err != stop {
			t.Errorf("fn's error: %v, want it unwrapped", err)
		}
	}},
)
