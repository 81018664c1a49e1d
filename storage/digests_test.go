package storage

// White-box: the benchmark fills a year of history in large
// transactions, and the anonymity test reads every bucket raw.

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/internal/simclock"
	"github.com/nudgebot/nudgebot/nudges"
)

// digestBase is a Monday; digest tests build every time from it.
var digestBase = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// openDigestDB opens a fresh database whose clock the test sets. At
// cleanup it runs the consistency check, then closes the database.
func openDigestDB(tb testing.TB) (*DB, *simclock.Clock) {
	tb.Helper()
	clock := simclock.New(digestBase)
	db := openTest(tb, "", Options{Now: clock.Now})
	tb.Cleanup(func() { // runs before openTest's Close
		if err := db.Check(); err != nil {
			tb.Errorf("Check at cleanup: %v", err)
		}
	})
	return db, clock
}

// putDeliveries stores ds in large transactions, which the public API
// deliberately does not offer.
func putDeliveries(tb testing.TB, db *DB, ds []nudges.Delivery) {
	tb.Helper()
	const batch = 20_000
	for start := 0; start < len(ds); start += batch {
		err := db.update(func(tx *bolt.Tx) error {
			bk, err := bucketsOf(tx)
			if err != nil {
				return err
			}
			for _, d := range ds[start:min(start+batch, len(ds))] {
				if err := saveDelivery(bk, d, false); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func sentDelivery(userID string, slot time.Time, manual bool) nudges.Delivery {
	return nudges.Delivery{
		ID: DeliveryID(userID, slot, manual), UserID: userID, Slot: slot.UTC(), Manual: manual,
		NudgeID: "lead-001", Theme: nudges.ThemeLeading, Role: nudges.RoleLead,
		State: nudges.StateSent, Created: slot, SentAt: slot,
	}
}

func deliveryIDs(ds []nudges.Delivery) []string {
	ids := []string{}
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func TestDeliveriesFor(t *testing.T) {
	db, _ := openDigestDB(t)
	day := func(n int) time.Time { return digestBase.AddDate(0, 0, n).Add(9 * time.Hour) }
	from, to := digestBase, digestBase.AddDate(0, 0, 7)
	frac := 500 * time.Millisecond
	var all []nudges.Delivery
	for _, u := range []string{"U1", "U10", "U1-3", "U2"} {
		for n := -3; n <= 10; n++ {
			all = append(all, sentDelivery(u, day(n), false))
		}
		all = append(all, sentDelivery(u, day(1), true))
	}
	all = append(all,
		sentDelivery("U2", from, false),            // the first instant counts
		sentDelivery("U2", to.Add(-frac), false),   // in the last second, before to
		sentDelivery("U2", to, false),              // to itself does not
		sentDelivery("U2", to.Add(frac), true),     // nor what follows in its second
		sentDelivery("U2", from.Add(-frac), false), // nor what precedes from in its second
	)
	putDeliveries(t, db, all)

	week := func(u string) []string {
		var ids []string
		for n := 0; n < 7; n++ {
			ids = append(ids, DeliveryID(u, day(n), false))
			if n == 1 {
				ids = append(ids, DeliveryID(u, day(n), true))
			}
		}
		return ids
	}
	tests := map[string]struct {
		users    []string
		from, to time.Time
		want     []string
	}{
		"one person":                    {[]string{"U1"}, from, to, week("U1")},
		"in the order asked, once each": {[]string{"U10", "U1", "U10"}, from, to, append(week("U10"), week("U1")...)},
		"edges of the period": {[]string{"U2"}, from, to, func() []string {
			w := week("U2")
			return slices.Concat([]string{DeliveryID("U2", from, false)}, w, []string{DeliveryID("U2", to.Add(-frac), false)})
		}()},
		"an id that starts like another": {[]string{"U1-3"}, from, to, week("U1-3")},
		"unknown and empty ids":          {[]string{"U9", ""}, from, to, []string{}},
		"nobody":                         {nil, from, to, []string{}},
		"empty period":                   {[]string{"U1"}, to, to, []string{}},
		"one day":                        {[]string{"U1", "U2"}, day(3).Add(-time.Hour), day(4).Add(-time.Hour), []string{DeliveryID("U1", day(3), false), DeliveryID("U2", day(3), false)}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ds, err := db.DeliveriesFor(tt.users, tt.from, tt.to)
			if err != nil {
				t.Fatalf("DeliveriesFor: %v", err)
			}
			got := deliveryIDs(ds)
			// Within one person, slot order; the manual delivery of a slot
			// sorts right after the scheduled one.
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DeliveriesFor(%q)=\n%q\nwant\n%q", tt.users, got, tt.want)
			}
		})
	}

	// The same answer as a scan of everything.
	var scanned []string
	err := db.DeliveriesBetween(from, to, func(d nudges.Delivery) error {
		if d.UserID == "U1" || d.UserID == "U2" {
			scanned = append(scanned, d.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := db.DeliveriesFor([]string{"U1", "U2"}, from, to)
	if err != nil {
		t.Fatal(err)
	}
	got := deliveryIDs(ds)
	slices.Sort(got)
	slices.Sort(scanned)
	if !reflect.DeepEqual(got, scanned) {
		t.Errorf("DeliveriesFor=%q\nscan=%q", got, scanned)
	}
}

// Ensure reading a week costs the same whether a month or a year of
// history is stored: DeliveriesFor seeks, it does not scan.
func TestDeliveriesFor_CostFollowsPeriod(t *testing.T) {
	const people = 50
	users := make([]string, people)
	for i := range users {
		users[i] = fmt.Sprintf("U%05d", i)
	}
	weekFrom := digestBase.AddDate(0, 0, -7)
	allocs := map[int]float64{}
	for _, days := range []int{28, 365} {
		db, _ := openDigestDB(t)
		var ds []nudges.Delivery
		for _, u := range users {
			for n := range days {
				ds = append(ds, sentDelivery(u, digestBase.AddDate(0, 0, -days+n).Add(9*time.Hour), false))
			}
		}
		putDeliveries(t, db, ds)
		var err error
		allocs[days] = testing.AllocsPerRun(10, func() {
			var got []nudges.Delivery
			got, err = db.DeliveriesFor(users, weekFrom, digestBase)
			if err == nil && len(got) != 7*people {
				err = fmt.Errorf("DeliveriesFor returned %d, want %d", len(got), 7*people)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A deeper tree may cost a few cursor frames more; a scan of the
	// year would cost thousands of decodes more.
	if allocs[365] > allocs[28]*1.05+people {
		t.Errorf("DeliveriesFor allocated %v with 28 days of history but %v with 365; want about the same", allocs[28], allocs[365])
	}
}

func TestDigestState(t *testing.T) {
	db, clock := openDigestDB(t)

	// Ensure a channel that never had a digest reports the zero time.
	last, err := db.LastDigest("C1")
	if err != nil || !last.IsZero() {
		t.Fatalf("LastDigest of a new channel=%v, %v; want zero, nil", last, err)
	}
	at := time.Date(2026, 3, 9, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	if err := db.SetLastDigest("C1", at); err != nil {
		t.Fatalf("SetLastDigest: %v", err)
	}
	if last, err = db.LastDigest("C1"); err != nil || !last.Equal(at) {
		t.Errorf("LastDigest=%v, %v; want %v", last, err, at)
	}
	if last, err = db.LastDigest("C10"); err != nil || !last.IsZero() {
		t.Errorf("LastDigest of another channel=%v, %v; want zero", last, err)
	}

	// Ensure admins hear of a broken channel once, until it is fixed.
	steps := []struct {
		do        string
		wantFirst bool
	}{
		{"mark", true},
		{"mark", false},
		{"set", false},
		{"mark", false},
		{"clear", false},
		{"clear", false},
		{"mark", true},
	}
	for i, s := range steps {
		clock.Set(digestBase.Add(time.Duration(i) * time.Hour))
		var first bool
		switch s.do {
		case "mark":
			first, err = db.MarkDigestBroken("C1", fmt.Sprintf("not_in_channel (step %d)", i))
		case "clear":
			err = db.ClearDigestBroken("C1")
		case "set":
			err = db.SetLastDigest("C1", at)
		}
		if err != nil || first != s.wantFirst {
			t.Errorf("step %d %s: first=%v, %v; want %v, nil", i, s.do, first, err, s.wantFirst)
		}
	}

	for name, err := range map[string]error{
		"empty reason":  func() error { _, err := db.MarkDigestBroken("C1", " "); return err }(),
		"empty channel": db.SetLastDigest("", at),
		"NUL channel":   func() error { _, err := db.LastDigest("C\x001"); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPulse_VotesAndAnswers(t *testing.T) {
	db, clock := openDigestDB(t)
	if err := db.OpenPulse("C1", "P1", digestBase); err != nil {
		t.Fatalf("OpenPulse: %v", err)
	}
	// Ensure opening again is harmless, and an id stays with its channel.
	if err := db.OpenPulse("C1", "P1", digestBase.Add(time.Hour)); err != nil {
		t.Errorf("OpenPulse again: %v", err)
	}
	if err := db.OpenPulse("C2", "P1", digestBase); err == nil || !strings.Contains(err.Error(), "C1") {
		t.Errorf("OpenPulse of P1 in another channel=%v, want an error naming C1", err)
	}

	votes := []struct {
		user      string
		score     int
		wantFirst bool
		wantErr   bool
	}{
		{"U1", 5, true, false},
		{"U2", 4, true, false},
		{"U1", 1, false, false}, // one vote each: the first stands
		{"U3", 4, true, false},
		{"U4", 0, false, true},
		{"U4", 6, false, true},
		{"", 3, false, true},
	}
	for _, v := range votes {
		first, err := db.VotePulse("P1", v.user, v.score)
		if (err != nil) != v.wantErr || first != v.wantFirst {
			t.Errorf("VotePulse(%q, %d)=%v, %v; want first=%v, error=%v", v.user, v.score, first, err, v.wantFirst, v.wantErr)
		}
	}

	answers := []struct {
		user, text string
		wantErr    error
		wantText   string // part of the error
	}{
		{"U1", "  the roadmap  ", nil, ""},
		{"U5", "hiring", nil, ""}, // answering without voting is fine
		{"U1", "budget", nil, ""},
		{"U1", "Budget", nil, ""},
		{"U1", "a fourth", nudges.ErrTooManyAnswers, ""},
		{"U2", strings.Repeat("x", nudges.MaxHearMoreLen+1), nil, "keep it to 500"},
		{"U2", "\n ", nil, "empty"},
	}
	for _, a := range answers {
		err := db.AddHearMore("P1", a.user, a.text)
		switch {
		case a.wantErr != nil && !errors.Is(err, a.wantErr),
			a.wantText != "" && (err == nil || !strings.Contains(err.Error(), a.wantText)),
			a.wantErr == nil && a.wantText == "" && err != nil:
			t.Errorf("AddHearMore(%q, %.20q)=%v, want %v %q", a.user, a.text, err, a.wantErr, a.wantText)
		}
	}

	clock.Set(digestBase.AddDate(0, 0, 7))
	sum, err := db.ClosePulse("P1")
	if err != nil {
		t.Fatalf("ClosePulse: %v", err)
	}
	want := nudges.PulseSummary{
		PeriodEnd: digestBase.AddDate(0, 0, 7), Responses: 3, Sum: 13, Counts: [5]int{0, 0, 0, 2, 1},
		HearMore: []string{"Budget", "budget", "hiring", "the roadmap"}, HearMoreWriters: 2,
	}
	if !reflect.DeepEqual(sum, want) {
		t.Errorf("ClosePulse=%+v\nwant %+v", sum, want)
	}

	// Ensure a closed pulse takes nothing more and closes to the same
	// summary.
	clock.Set(digestBase.AddDate(0, 0, 8))
	if _, err := db.VotePulse("P1", "U9", 3); !errors.Is(err, nudges.ErrPulseClosed) {
		t.Errorf("VotePulse after close=%v, want ErrPulseClosed", err)
	}
	if err := db.AddHearMore("P1", "U9", "late"); !errors.Is(err, nudges.ErrPulseClosed) {
		t.Errorf("AddHearMore after close=%v, want ErrPulseClosed", err)
	}
	again, err := db.ClosePulse("P1")
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("ClosePulse again=%+v, %v; want %+v", again, err, want)
	}
	if h, err := db.PulseHistory("C1", 0); err != nil || len(h) != 1 {
		t.Errorf("PulseHistory after closing twice=%v, %v; want one summary", h, err)
	}

	// Ensure a pulse nobody opened is not found.
	if _, err := db.VotePulse("P9", "U1", 3); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("VotePulse on P9=%v, want ErrNotFound", err)
	}
	if err := db.AddHearMore("P9", "U1", "x"); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("AddHearMore on P9=%v, want ErrNotFound", err)
	}
	if _, err := db.ClosePulse("P9"); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("ClosePulse of P9=%v, want ErrNotFound", err)
	}
}

// allStored returns every key and value in every bucket, raw.
func allStored(tb testing.TB, db *DB) [][]byte {
	tb.Helper()
	var out [][]byte
	each := func(tx *bolt.Tx) error {
		var walk func(b *bolt.Bucket) error
		walk = func(b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				out = append(out, bytes.Clone(k))
				if v == nil {
					return walk(b.Bucket(k))
				}
				out = append(out, bytes.Clone(v))
				return nil
			})
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(b) })
	}
	err := db.view(each)
	if err == nil && db.secrets != nil {
		err = db.secrets.view(each) // the secrets file is stored too
	}
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func holdsAny(stored [][]byte, needles []string) []string {
	var found []string
	for _, n := range needles {
		for _, s := range stored {
			if bytes.Contains(s, []byte(n)) {
				found = append(found, n)
				break
			}
		}
	}
	return found
}

// Ensure that no voter's id is ever stored with a pulse, and that once a
// pulse closes its markers and their key are gone too.
func TestClosePulse_ForgetsWhoAnswered(t *testing.T) {
	db, clock := openDigestDB(t)
	for _, ch := range []string{"C1", "C2"} {
		if err := db.OpenPulse(ch, "P-"+ch, digestBase); err != nil {
			t.Fatal(err)
		}
	}
	voters := []string{"UVOTERAAA1", "UVOTERBBB2", "UVOTERCCC3", "UVOTERDDD4"}
	for i, u := range voters {
		if _, err := db.VotePulse("P-C1", u, i%5+1); err != nil {
			t.Fatal(err)
		}
		if err := db.AddHearMore("P-C1", u, fmt.Sprintf("topic %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.VotePulse("P-C2", "UOTHERPULSE", 3); err != nil {
		t.Fatal(err)
	}
	if found := holdsAny(allStored(t, db), append(voters, "UOTHERPULSE")); len(found) > 0 {
		t.Fatalf("while open, %q stored in the clear; want only keyed markers", found)
	}
	if n := countVoterMarkers(t, db, "P-C1"); n != len(voters) {
		t.Fatalf("while open, %d markers for P-C1, want %d (the test must see them to mean anything)", n, len(voters))
	}
	clock.Set(digestBase.AddDate(0, 0, 7))
	if _, err := db.ClosePulse("P-C1"); err != nil {
		t.Fatal(err)
	}
	if n := countVoterMarkers(t, db, "P-C1"); n != 0 {
		t.Errorf("after close, %d markers of P-C1 remain", n)
	}
	if n := countVoterMarkers(t, db, "P-C2"); n != 1 {
		t.Errorf("closing P-C1 dropped the marker of the open P-C2 (%d left)", n)
	}
	if found := holdsAny(allStored(t, db), []string{`"voter_key"`}); len(found) != 1 {
		t.Errorf("want exactly the open pulse to keep a voter key, found %q", found)
	}
}

func countVoterMarkers(t *testing.T, db *DB, pulseID string) int {
	t.Helper()
	n := 0
	err := db.secrets.view(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("pulse_voters")).ForEach(func(k, _ []byte) error {
			if bytes.HasPrefix(k, append([]byte(pulseID), 0)) {
				n++
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Ensure concurrent votes each count once.
func TestVotePulse_Concurrent(t *testing.T) {
	db, _ := openDigestDB(t)
	if err := db.OpenPulse("C1", "P1", digestBase); err != nil {
		t.Fatal(err)
	}
	const people, tries = 20, 3
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		firsts int
	)
	for i := range people * tries {
		wg.Go(func() {
			first, err := db.VotePulse("P1", fmt.Sprintf("U%d", i%people), 2)
			if err != nil {
				t.Error(err)
			}
			if first {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sum, err := db.ClosePulse("P1")
	if err != nil {
		t.Fatal(err)
	}
	if firsts != people || sum.Responses != people || sum.Sum != 2*people {
		t.Errorf("%d first votes, summary %+v; want %d votes of 2", firsts, sum, people)
	}
}

func TestPulseHistory(t *testing.T) {
	db, clock := openDigestDB(t)
	// C1 and C10 share a prefix; their histories must not mix.
	for week := range 5 {
		for _, ch := range []string{"C1", "C10"} {
			id := fmt.Sprintf("%s-w%d", ch, week)
			if err := db.OpenPulse(ch, id, digestBase.AddDate(0, 0, 7*week)); err != nil {
				t.Fatal(err)
			}
			if _, err := db.VotePulse(id, "U1", week%5+1); err != nil {
				t.Fatal(err)
			}
		}
		// Close out of id order, to show history follows closing time.
		for _, ch := range []string{"C10", "C1"} {
			clock.Set(digestBase.AddDate(0, 0, 7*week+6))
			if _, err := db.ClosePulse(fmt.Sprintf("%s-w%d", ch, week)); err != nil {
				t.Fatal(err)
			}
		}
	}
	sums := func(hs []nudges.PulseSummary) []int {
		out := []int{}
		for _, h := range hs {
			out = append(out, h.Sum)
		}
		return out
	}
	tests := map[string]struct {
		channel string
		n       int
		want    []int
	}{
		"last three":       {"C1", 3, []int{3, 4, 5}},
		"all":              {"C10", 0, []int{1, 2, 3, 4, 5}},
		"more than stored": {"C1", 12, []int{1, 2, 3, 4, 5}},
		"one":              {"C10", 1, []int{5}},
		"before C1":        {"C0", 0, []int{}},
		"after C10":        {"C2", 5, []int{}},
		"prefix of both":   {"C", 5, []int{}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			hs, err := db.PulseHistory(tt.channel, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if got := sums(hs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PulseHistory(%s, %d) sums=%v, want %v", tt.channel, tt.n, got, tt.want)
			}
			for i := 1; i < len(hs); i++ {
				if !hs[i-1].PeriodEnd.Before(hs[i].PeriodEnd) {
					t.Errorf("history not oldest first: %v then %v", hs[i-1].PeriodEnd, hs[i].PeriodEnd)
				}
			}
		})
	}
}

// BenchmarkBuildDigest times what the bot does for one channel's weekly
// digest: read a week of 1,000 members' deliveries out of a year of
// history, then build the digest.
func BenchmarkBuildDigest(b *testing.B) {
	const members = 1_000
	db, _ := openDigestDB(b)
	users := make([]string, members)
	for i := range users {
		users[i] = fmt.Sprintf("U%08d", i)
	}
	weekTo := digestBase
	weekFrom := weekTo.AddDate(0, 0, -7)
	outcomes := []nudges.Outcome{nudges.OutcomeDone, nudges.OutcomeNone, nudges.OutcomeSkipped, nudges.OutcomeReflected, nudges.OutcomeSnoozed}
	var ds []nudges.Delivery
	for i, u := range users {
		for n := 0; n < 365; n++ {
			slot := weekTo.AddDate(0, 0, -365+n).Add(9 * time.Hour)
			if wd := slot.Weekday(); wd == time.Saturday || wd == time.Sunday {
				continue
			}
			d := sentDelivery(u, slot, false)
			th := nudges.Themes[(i+n)%len(nudges.Themes)]
			d.Theme, d.NudgeID = th.ID, fmt.Sprintf("%s-%03d", th.ID, n%40)
			d.Reason = "you found " + th.Title + " helpful lately"
			d.Channel, d.TS = "D"+u, fmt.Sprintf("%d.000100", slot.Unix())
			if o := outcomes[(i*7+n)%len(outcomes)]; o != nudges.OutcomeNone {
				d.Outcome, d.ActedAt = o, slot.Add(2*time.Hour)
			}
			ds = append(ds, d)
		}
	}
	putDeliveries(b, db, ds)
	b.Logf("%d deliveries stored", len(ds))
	// The year in memory is the test's, not the bot's: left alive, every
	// garbage collection in the timed loop would scan it.
	ds = nil
	runtime.GC()

	b.Run("seek", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			week, err := db.DeliveriesFor(users, weekFrom, weekTo)
			if err != nil {
				b.Fatal(err)
			}
			d := nudges.BuildDigest(nudges.DigestInput{
				Channel: "C1", From: weekFrom, To: weekTo, Members: users,
				Deliveries: week, Now: weekTo,
			})
			if !d.ActedOnShown || d.ActedOn == 0 {
				b.Fatalf("digest of %d deliveries shows no acted-on count: %+v", len(week), d)
			}
		}
	})
	// For comparison: what a scan of the whole year costs.
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			var week []nudges.Delivery
			err := db.DeliveriesBetween(weekFrom, weekTo, func(d nudges.Delivery) error {
				week = append(week, d)
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			nudges.BuildDigest(nudges.DigestInput{From: weekFrom, To: weekTo, Members: users, Deliveries: week, Now: weekTo})
		}
	})
}

// Ensure a pulse keeps who may answer it (its channel's members when it
// was posted) while open, says when it kept nobody (a pulse from before
// the snapshot), and lets the snapshot go when it closes.
func TestPulse_Voters(t *testing.T) {
	db, _ := openDigestDB(t)
	if err := db.OpenPulse("C1", "P1", digestBase, "U1", "U2"); err != nil {
		t.Fatal(err)
	}
	if err := db.OpenPulse("C1", "P0", digestBase); err != nil {
		t.Fatal(err)
	}
	if v, snap, err := db.PulseVoters("P1"); err != nil || !snap || !slices.Equal(v, []string{"U1", "U2"}) {
		t.Errorf("PulseVoters(P1)=%v, %v, %v; want [U1 U2], a snapshot", v, snap, err)
	}
	if v, snap, err := db.PulseVoters("P0"); err != nil || snap || v != nil {
		t.Errorf("PulseVoters(P0)=%v, %v, %v; want none, no snapshot", v, snap, err)
	}
	if _, _, err := db.PulseVoters("nope"); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("PulseVoters of a missing pulse: %v, want ErrNotFound", err)
	}
	if _, err := db.ClosePulse("P1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PulseVoters("P1"); !errors.Is(err, nudges.ErrPulseClosed) {
		t.Errorf("PulseVoters of a closed pulse: %v, want ErrPulseClosed", err)
	}
}
