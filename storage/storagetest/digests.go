package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

var _ = contract(
	testCase{"DigestState", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		if p, err := e.db.PostedDigest("C1"); err != nil || !p.At.IsZero() || p.Shown != nil {
			t.Fatalf("PostedDigest before any=%+v,%v", p, err)
		}
		shown := &nudges.Digest{Channel: "C1", Members: 7, Received: 30, SharedReflections: []nudges.SharedLine{{AuthorID: "U1", Text: "secret"}}}
		if err := e.db.RecordDigest("C1", nudges.PostedDigest{At: base, Shown: shown, Members: []string{"U1", "U2"}}); err != nil {
			t.Fatal(err)
		}
		p, err := e.db.PostedDigest("C1")
		if err != nil || !p.At.Equal(base) || p.Shown == nil || p.Shown.Received != 30 || !slices.Equal(p.Members, []string{"U1", "U2"}) {
			t.Fatalf("PostedDigest=%+v,%v", p, err)
		}
		if len(p.Shown.SharedReflections) != 0 {
			t.Error("a shared reflection's text was kept unsealed with the digest")
		}
		if len(shown.SharedReflections) != 1 {
			t.Error("RecordDigest changed the caller's digest")
		}
		if _, err := e.db.PostedDigest(""); err == nil {
			t.Error("an empty channel was accepted")
		}
		for i, want := range []bool{true, false} {
			first, err := e.db.MarkDigestBroken("C1", fmt.Sprintf("reason %d", i))
			if err != nil || first != want {
				t.Errorf("MarkDigestBroken #%d=%v,%v, want %v", i+1, first, err, want)
			}
		}
		if _, err := e.db.MarkDigestBroken("C1", " "); err == nil {
			t.Error("no reason was accepted")
		}
		if err := e.db.ClearDigestBroken("C1"); err != nil {
			t.Fatal(err)
		}
		if err := e.db.ClearDigestBroken("C2"); err != nil {
			t.Errorf("clearing an unmarked channel: %v", err)
		}
		if first, _ := e.db.MarkDigestBroken("C1", "again"); !first {
			t.Error("after clearing, a failure is not reported afresh")
		}
		if p, _ := e.db.PostedDigest("C1"); !p.At.Equal(base) {
			t.Errorf("marking broken lost the last digest: %v", p.At)
		}
	}},
	testCase{"PulseVotesOnceAnonymously", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		if err := e.db.OpenPulse("C1", "p1", base); err != nil {
			t.Fatal(err)
		}
		if err := e.db.OpenPulse("C1", "p1", base); err != nil {
			t.Errorf("opening again: %v", err)
		}
		if err := e.db.OpenPulse("C2", "p1", base); err == nil {
			t.Error("the id was reused in another channel")
		}
		votes := map[string]int{"U1": 5, "U2": 3, "U3": 3}
		for u, score := range votes {
			if first, err := e.db.VotePulse("p1", u, score); !first || err != nil {
				t.Errorf("vote %s=%v,%v", u, first, err)
			}
		}
		if first, err := e.db.VotePulse("p1", "U1", 1); first || err != nil {
			t.Errorf("second vote=%v,%v, want false,nil", first, err)
		}
		// Forgetting the voter does not let them vote again.
		if err := e.db.Forget("U1"); err != nil {
			t.Fatal(err)
		}
		if first, _ := e.db.VotePulse("p1", "U1", 1); first {
			t.Error("a forgotten voter voted twice")
		}
		if _, err := e.db.VotePulse("p1", "U4", 9); err == nil {
			t.Error("score 9 accepted")
		}
		if _, err := e.db.VotePulse("nope", "U4", 3); !errors.Is(err, nudges.ErrNotFound) {
			t.Errorf("missing pulse: %v", err)
		}
		for i := range nudges.MaxHearMorePerPerson {
			if err := e.db.AddHearMore("p1", "U2", fmt.Sprintf("topic %c", 'z'-i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.db.AddHearMore("p1", "U2", "one more"); !errors.Is(err, nudges.ErrTooManyAnswers) {
			t.Errorf("too many answers: %v", err)
		}
		if err := e.db.AddHearMore("p1", "U3", "roadmap"); err != nil {
			t.Fatal(err)
		}
		e.clock.Set(base.Add(time.Hour))
		sum, err := e.db.ClosePulse("p1")
		if err != nil {
			t.Fatal(err)
		}
		if sum.Responses != 3 || sum.Sum != 11 || sum.Counts != [nudges.PulseMaxScore]int{0, 0, 2, 0, 1} || sum.HearMoreWriters != 2 || !sum.PeriodEnd.Equal(base.Add(time.Hour)) {
			t.Errorf("summary=%+v", sum)
		}
		if !slices.IsSorted(sum.HearMore) || len(sum.HearMore) != 4 {
			t.Errorf("answers %q: want 4, sorted so their order names nobody", sum.HearMore)
		}
		again, err := e.db.ClosePulse("p1")
		if err != nil || !sameJSON(t, again, sum) {
			t.Errorf("closing again=%+v,%v", again, err)
		}
		if _, err := e.db.VotePulse("p1", "U5", 4); !errors.Is(err, nudges.ErrPulseClosed) {
			t.Errorf("vote after close: %v", err)
		}
		if err := e.db.AddHearMore("p1", "U5", "x"); !errors.Is(err, nudges.ErrPulseClosed) {
			t.Errorf("answer after close: %v", err)
		}
		if _, err := e.db.ClosePulse("nope"); !errors.Is(err, nudges.ErrNotFound) {
			t.Errorf("closing a missing pulse: %v", err)
		}
	}},
	testCase{"PulseVotersSnapshot", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		if err := e.db.OpenPulse("C1", "with", base, "U2", "U1"); err != nil {
			t.Fatal(err)
		}
		if err := e.db.OpenPulse("C1", "without", base); err != nil {
			t.Fatal(err)
		}
		voters, snapshot, err := e.db.PulseVoters("with")
		if err != nil || !snapshot || !slices.Equal(voters, []string{"U2", "U1"}) {
			t.Errorf("PulseVoters(with)=%v,%v,%v", voters, snapshot, err)
		}
		if voters, snapshot, err := e.db.PulseVoters("without"); err != nil || snapshot || len(voters) != 0 {
			t.Errorf("PulseVoters(without)=%v,%v,%v, want no snapshot", voters, snapshot, err)
		}
		if _, _, err := e.db.PulseVoters("nope"); !errors.Is(err, nudges.ErrNotFound) {
			t.Errorf("missing: %v", err)
		}
		if _, err := e.db.ClosePulse("with"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.db.PulseVoters("with"); !errors.Is(err, nudges.ErrPulseClosed) {
			t.Errorf("closed: %v", err)
		}
	}},
	testCase{"PulseHistory", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		for i := range 5 {
			id := fmt.Sprintf("p%d", i)
			at := base.Add(time.Duration(i) * 24 * time.Hour)
			if err := e.db.OpenPulse("C1", id, at); err != nil {
				t.Fatal(err)
			}
			if _, err := e.db.VotePulse(id, "U1", 1+i); err != nil {
				t.Fatal(err)
			}
			e.clock.Set(at.Add(time.Hour))
			if _, err := e.db.ClosePulse(id); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.db.OpenPulse("C2", "other", base); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.ClosePulse("other"); err != nil {
			t.Fatal(err)
		}
		all, err := e.db.PulseHistory("C1", 0)
		if err != nil || len(all) != 5 {
			t.Fatalf("PulseHistory=%d,%v", len(all), err)
		}
		last3, _ := e.db.PulseHistory("C1", 3)
		var got []int
		for _, s := range last3 {
			got = append(got, s.Sum)
		}
		if !slices.Equal(got, []int{3, 4, 5}) {
			t.Errorf("last 3 sums=%v, want the newest three, oldest first", got)
		}
		if none, _ := e.db.PulseHistory("C3", 0); len(none) != 0 {
			t.Errorf("an unknown channel has %d", len(none))
		}
	}},
)
