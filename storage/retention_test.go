package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

const day = 24 * time.Hour

// answered is a sent scheduled delivery with an outcome.
func answered(userID string, slot time.Time, outcome nudges.Outcome, role nudges.Role) nudges.Delivery {
	d := pending(userID, slot)
	d.State = nudges.StateSent
	d.Outcome = outcome
	d.Role = role
	return d
}

func mustImport(tb testing.TB, db *storage.DB, ds ...nudges.Delivery) {
	tb.Helper()
	if err := db.ImportDeliveries(ds); err != nil {
		tb.Fatalf("ImportDeliveries: %v", err)
	}
}

// allDeliveryIDs lists every stored delivery id, in id order.
func allDeliveryIDs(tb testing.TB, db *storage.DB) []string {
	tb.Helper()
	var ids []string
	err := db.DeliveriesBetween(time.Unix(0, 0), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), func(d nudges.Delivery) error {
		ids = append(ids, d.ID)
		return nil
	})
	if err != nil {
		tb.Fatalf("DeliveriesBetween: %v", err)
	}
	return ids
}

// Ensure Prune removes exactly the deliveries whose slot is strictly
// before the cutoff, whatever the batch size, keeps pending ones for the
// outbox, and leaves every index consistent.
func TestPrune_Deliveries(t *testing.T) {
	cutoff := base
	tests := []struct {
		name    string
		slots   []time.Duration // from the cutoff, one delivery each for U1
		pending []int           // indexes of slots left pending
		batch   int
		want    []time.Duration // slots kept
		kept    int             // PendingKept
	}{
		{name: "a nanosecond before goes", slots: []time.Duration{-time.Nanosecond}, batch: 10},
		{name: "at the cutoff stays", slots: []time.Duration{0}, batch: 10, want: []time.Duration{0}},
		{name: "after the cutoff stays", slots: []time.Duration{time.Second, day}, batch: 10, want: []time.Duration{time.Second, day}},
		{name: "years before go", slots: []time.Duration{-1000 * day, -400 * day, -day}, batch: 10},
		{name: "mixed, batch 1", slots: []time.Duration{-3 * day, -2 * day, -day, 0, day}, batch: 1, want: []time.Duration{0, day}},
		{name: "mixed, batch 2", slots: []time.Duration{-3 * day, -2 * day, -day, 0, day}, batch: 2, want: []time.Duration{0, day}},
		{name: "mixed, batch equal to the old ones", slots: []time.Duration{-3 * day, -2 * day, -day, 0}, batch: 3, want: []time.Duration{0}},
		{name: "default batch", slots: []time.Duration{-3 * day, -2 * day, -day, 0}, batch: 0, want: []time.Duration{0}},
		{name: "pending is kept for the outbox", slots: []time.Duration{-3 * day, -2 * day, -day}, pending: []int{1}, batch: 1,
			want: []time.Duration{-2 * day}, kept: 1},
		// Nothing to delete: found in a read transaction, so no write
		// transaction runs and counts them.
		{name: "only pending ones, batch 1", slots: []time.Duration{-3 * day, -2 * day}, pending: []int{0, 1}, batch: 1,
			want: []time.Duration{-3 * day, -2 * day}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpen(t)
			subscribe(t, db, "U1", time.Time{})
			var ds []nudges.Delivery
			for i, off := range tt.slots {
				d := answered("U1", cutoff.Add(off), nudges.OutcomeDone, nudges.RoleLead)
				if slices.Contains(tt.pending, i) {
					d.State, d.Outcome = nudges.StatePending, nudges.OutcomeNone
				}
				ds = append(ds, d)
			}
			mustImport(t, db, ds...)

			st, err := db.Prune(cutoff, tt.batch)
			if err != nil {
				t.Fatalf("Prune: %v", err)
			}
			var want []string
			for _, off := range tt.want {
				want = append(want, storage.DeliveryID("U1", cutoff.Add(off), false))
			}
			if got := allDeliveryIDs(t, db); !slices.Equal(got, want) {
				t.Errorf("kept %v, want %v", got, want)
			}
			if removed := len(tt.slots) - len(tt.want); st.Deliveries != removed || st.PendingKept != tt.kept {
				t.Errorf("stats %+v, want %d deliveries removed and %d pending kept", st, removed, tt.kept)
			}
			if err := db.Check(); err != nil {
				t.Errorf("Check: %v", err)
			}
			if got := len(mustPendingIDs(t, db)); got != len(tt.pending) {
				t.Errorf("outbox holds %d, want %d", got, len(tt.pending))
			}
		})
	}
}

// Ensure no transaction examines more than the batch: the number of
// transactions grows as the batch shrinks, and the result is the same.
func TestPrune_BatchBoundsTransactions(t *testing.T) {
	for _, batch := range []int{1, 3, 7, 40, 500} {
		t.Run(fmt.Sprint(batch), func(t *testing.T) {
			db := MustOpen(t)
			var ds []nudges.Delivery
			for u := range 3 {
				user := fmt.Sprintf("U%d", u)
				subscribe(t, db, user, time.Time{})
				for i := range 20 {
					ds = append(ds, answered(user, base.Add(time.Duration(i-10)*day), nudges.OutcomeDone, nudges.RoleLead))
				}
			}
			mustImport(t, db, ds...)
			st, err := db.Prune(base, batch)
			if err != nil {
				t.Fatalf("Prune: %v", err)
			}
			if st.Deliveries != 30 {
				t.Errorf("removed %d deliveries, want 30", st.Deliveries)
			}
			// One write transaction per batch of deliveries; the other
			// kinds, with nothing to prune, take none.
			if want := (30 + batch - 1) / batch; st.Transactions != want {
				t.Errorf("took %d transactions, want %d", st.Transactions, want)
			}
			if got := len(allDeliveryIDs(t, db)); got != 30 {
				t.Errorf("%d deliveries left, want 30", got)
			}
		})
	}
}

// Ensure closed pulses' records go after the cutoff, open ones stay,
// and each channel keeps the summaries its trend shows.
func TestPrune_Pulses(t *testing.T) {
	now := base
	clock := now
	db := MustOpenAt(t, filepath.Join(t.TempDir(), "nudgebot.db"), storage.Options{Now: func() time.Time { return clock }})
	// C1: 30 weekly pulses, the last closing now; C2: 3, the last closing
	// 40 weeks ago.
	for _, ch := range []struct {
		id   string
		n    int
		last time.Time
	}{{"C1", 30, now}, {"C2", 3, now.Add(-40 * 7 * day)}} {
		for i := range ch.n {
			opened := ch.last.Add(time.Duration(i-ch.n) * 7 * day)
			id := fmt.Sprintf("%s-%d", ch.id, i)
			if err := db.OpenPulse(ch.id, id, opened); err != nil {
				t.Fatal(err)
			}
			if _, err := db.VotePulse(id, "U1", 4); err != nil {
				t.Fatal(err)
			}
			clock = opened.Add(7 * day)
			if _, err := db.ClosePulse(id); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.OpenPulse("C3", "C3-open", now.Add(-200*day)); err != nil {
		t.Fatal(err)
	}
	trend := func(ch string) []nudges.PulseSummary {
		h, err := db.PulseHistory(ch, nudges.TrendPeriods+1)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	before1, before2 := trend("C1"), trend("C2")

	cutoff := now.Add(-10 * 7 * day)
	st, err := db.Prune(cutoff, 4)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	// C1's closed at now-29w … now: 19 are before the cutoff (the one
	// closed at it stays); C2's all are.
	if st.Pulses != 19+3 {
		t.Errorf("removed %d pulse records, want 22", st.Pulses)
	}
	// C1 keeps its newest 13 summaries (17 are older), C2 keeps all 3.
	if st.PulseSummaries != 30-(nudges.TrendPeriods+1) {
		t.Errorf("removed %d summaries, want %d", st.PulseSummaries, 30-(nudges.TrendPeriods+1))
	}
	if !equalJSON(t, trend("C1"), before1) || !equalJSON(t, trend("C2"), before2) {
		t.Error("the trend a digest shows changed")
	}
	if all, _ := db.PulseHistory("C1", 0); len(all) != nudges.TrendPeriods+1 {
		t.Errorf("C1 holds %d summaries, want %d", len(all), nudges.TrendPeriods+1)
	}
	if _, err := db.ClosePulse("C1-0"); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("ClosePulse of a pruned pulse: err=%v, want ErrNotFound", err)
	}
	if _, err := db.ClosePulse("C1-29"); err != nil {
		t.Errorf("ClosePulse of a kept pulse: %v", err)
	}
	if first, err := db.VotePulse("C3-open", "U1", 3); err != nil || !first {
		t.Errorf("VotePulse on the old open pulse = %v, %v; want it kept open", first, err)
	}
}

// Ensure handled envelopes before the cutoff are forgotten and a later
// one stays, and that pruning never asks for compaction (a compaction
// holds every write for the length of a copy of the file), across a
// restart too.
func TestPrune_EnvelopesAndCompactionFlag(t *testing.T) {
	clock := base
	path := filepath.Join(t.TempDir(), "nudgebot.db")
	opts := storage.Options{Now: func() time.Time { return clock }}
	db := MustOpenAt(t, path, opts)
	for i := range 5 {
		if _, err := db.MarkSeen(fmt.Sprintf("env-%d", i), base.Add(time.Duration(i-3)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := db.Prune(base, 2)
	if err != nil || st.Envelopes != 3 {
		t.Fatalf("Prune = %+v, %v; want 3 envelopes", st, err)
	}
	if db.NeedsCompaction() {
		t.Error("pruning envelopes alone asks for compaction")
	}
	if first, err := db.MarkSeen("env-0", base); err != nil || !first {
		t.Errorf("MarkSeen of a pruned envelope = %v, %v; want first again", first, err)
	}
	if first, err := db.MarkSeen("env-4", base); err != nil || first {
		t.Errorf("MarkSeen of a kept envelope = %v, %v; want already seen", first, err)
	}

	subscribe(t, db, "U1", time.Time{})
	prune := func(slot time.Time) {
		t.Helper()
		mustImport(t, db, answered("U1", slot, nudges.OutcomeDone, nudges.RoleLead))
		if st, err := db.Prune(clock, 0); err != nil || st.Deliveries != 1 {
			t.Fatalf("Prune = %+v, %v; want 1 delivery", st, err)
		}
	}
	prune(base.Add(-day))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = MustOpenAt(t, path, opts)
	clock = clock.Add(8 * 24 * time.Hour)
	prune(clock.Add(-time.Hour))
	if db.NeedsCompaction() {
		t.Error("pruning deliveries asks for a compaction; bbolt reuses the pages instead")
	}
}

// Ensure a file whose deliveries come and go under retention levels off
// without compaction, bbolt reusing the pages pruning frees: two more
// retention periods of the same load do not grow it by more than a
// quarter.
func TestPrune_FileLevelsOffWithoutCompaction(t *testing.T) {
	db := MustOpen(t)
	const people, days, keep = 300, 90, 30
	for i := range people {
		subscribe(t, db, fmt.Sprintf("U%04d", i), time.Time{})
	}
	var settled int64
	for d := range days {
		slot := base.Add(time.Duration(d) * day)
		var ds []nudges.Delivery
		for i := range people {
			ds = append(ds, answered(fmt.Sprintf("U%04d", i), slot, nudges.OutcomeDone, nudges.RoleLead))
		}
		mustImport(t, db, ds...)
		if _, err := db.Prune(slot.Add(-keep*day), 0); err != nil {
			t.Fatal(err)
		}
		if d == days/3 {
			settled, _ = db.Size()
		}
	}
	if db.NeedsCompaction() {
		t.Error("retention asked for a compaction")
	}
	size, _ := db.Size()
	if size > settled*5/4 {
		t.Errorf("the file grew from %d KB after one retention period to %d KB after three: bbolt is not reusing the pruned pages", settled>>10, size>>10)
	}
}

// Ensure what a person's status, App Home and the digests compute from
// delivery history (streak and balance over the readers' windows) is the
// same after pruning at the shortest retention allowed, and that a
// shorter one would change it: the check can fail.
func TestPrune_StreakAndBalanceUnchanged(t *testing.T) {
	now := base.Add(500 * day)
	type entry struct {
		outcome nudges.Outcome
		role    nudges.Role
		manual  bool
		failed  bool
	}
	roles := []nudges.Role{nudges.RoleLead, nudges.RoleManage, nudges.RoleBoth}
	histories := map[string]func(i int) entry{
		// Daily for 200 days, every one done: a streak longer than the
		// window.
		"all done": func(i int) entry { return entry{outcome: nudges.OutcomeDone, role: roles[i%3]} },
		// Broken 40 days ago, then reflected on every day.
		"broken 40 days ago": func(i int) entry {
			if i == 160 {
				return entry{outcome: nudges.OutcomeSkipped, role: nudges.RoleLead}
			}
			return entry{outcome: nudges.OutcomeReflected, role: roles[i%2]}
		},
		// Manual and failed ones, which streaks skip, and snoozes.
		"mixed": func(i int) entry {
			switch i % 7 {
			case 0:
				return entry{outcome: nudges.OutcomeDone, manual: true, role: nudges.RoleManage}
			case 1:
				return entry{failed: true, role: nudges.RoleLead}
			case 6:
				return entry{outcome: nudges.OutcomeSnoozed, role: nudges.RoleBoth}
			}
			return entry{outcome: nudges.OutcomeDone, role: roles[i%3]}
		},
		"nothing answered": func(i int) entry { return entry{role: nudges.RoleLead} },
	}
	type view struct{ streak, lead, manage int }
	read := func(db *storage.DB, user string) view {
		// As bot reads them: the history window, the 4-week balance.
		h, err := db.Deliveries(user, now.Add(-nudges.HistoryWindow))
		if err != nil {
			t.Fatal(err)
		}
		lead, manage := nudges.Balance(h, now.AddDate(0, 0, -28))
		return view{nudges.Streak(h, now), lead, manage}
	}
	for name, gen := range histories {
		t.Run(name, func(t *testing.T) {
			db := MustOpen(t)
			subscribe(t, db, "U1", time.Time{})
			var ds []nudges.Delivery
			for i := range 200 {
				g := gen(i)
				slot := now.Add(time.Duration(i-200)*24*time.Hour + 2*time.Hour)
				d := answered("U1", slot, g.outcome, g.role)
				d.Manual = g.manual
				d.ID = storage.DeliveryID("U1", slot, g.manual)
				if g.failed {
					d.State = nudges.StateFailed
				}
				ds = append(ds, d)
			}
			mustImport(t, db, ds...)
			want := read(db, "U1")

			st, err := db.Prune(now.Add(-nudges.MinRetention), 0)
			if err != nil {
				t.Fatal(err)
			}
			if st.Deliveries == 0 {
				t.Fatal("nothing was pruned, so the comparison proves nothing")
			}
			if got := read(db, "U1"); got != want {
				t.Errorf("after pruning at the minimum retention: %+v, want %+v", got, want)
			}
		})
	}
	t.Run("a retention shorter than the window would change the streak", func(t *testing.T) {
		db := MustOpen(t)
		subscribe(t, db, "U1", time.Time{})
		var ds []nudges.Delivery
		for i := range 100 {
			ds = append(ds, answered("U1", now.Add(time.Duration(i-100)*24*time.Hour), nudges.OutcomeDone, nudges.RoleLead))
		}
		mustImport(t, db, ds...)
		want := read(db, "U1")
		if _, err := db.Prune(now.Add(-30*24*time.Hour), 0); err != nil {
			t.Fatal(err)
		}
		if got := read(db, "U1"); got.streak == want.streak {
			t.Errorf("streak %d unchanged after pruning inside the window; the comparison above could not fail", got.streak)
		}
	})
}

// Ensure ApplyRetention prunes at now minus the configured retention,
// does nothing without one, and that Open refuses a retention shorter
// than the readers' window.
func TestApplyRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nudgebot.db")
	db := MustOpenAt(t, path, storage.Options{Retention: 100 * day})
	subscribe(t, db, "U1", time.Time{})
	mustImport(t, db,
		answered("U1", base.Add(-101*day), nudges.OutcomeDone, nudges.RoleLead),
		answered("U1", base.Add(-99*day), nudges.OutcomeDone, nudges.RoleLead))
	n, err := db.ApplyRetention(base)
	if err != nil || n != 1 {
		t.Errorf("ApplyRetention = %d, %v; want 1", n, err)
	}
	if got := allDeliveryIDs(t, db); len(got) != 1 {
		t.Errorf("kept %v, want only the one from 99 days ago", got)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	forever := MustOpenAt(t, path, storage.Options{})
	if n, err := forever.ApplyRetention(base.Add(10000 * day)); err != nil || n != 0 {
		t.Errorf("ApplyRetention without a retention = %d, %v; want 0", n, err)
	}
	if err := forever.Close(); err != nil {
		t.Fatal(err)
	}

	_, err = storage.Open(path, storage.Options{Retention: 30 * day})
	if err == nil || !strings.Contains(err.Error(), "storage.retention") {
		t.Errorf("Open with a 30-day retention: err=%v, want one naming storage.retention", err)
	}
}

// Ensure Check finds a person index that disagrees with the deliveries,
// both ways.
func TestCheck_FindsPersonIndexDrift(t *testing.T) {
	tests := map[string]struct {
		edit func(tx *bolt.Tx) error
		want string
	}{
		"entry missing": {
			edit: func(tx *bolt.Tx) error {
				return tx.Bucket([]byte(storage.RawByPersonBucket)).Delete(storage.RawPersonKey(t, "U1-20260302T090000Z"))
			},
			want: "person index lacks U1-20260302T090000Z",
		},
		"entry extra": {
			edit: func(tx *bolt.Tx) error {
				// The same entry under another person: a delivery of U9 that is not stored.
				b := tx.Bucket([]byte(storage.RawByPersonBucket))
				v := b.Get(storage.RawPersonKey(t, "U1-20260302T090000Z"))
				return b.Put(storage.RawPersonKey(t, "U9-20260302T090000Z"), bytes.Clone(v))
			},
			want: "person index lists U9-20260302T090000Z, which is not stored",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			db := MustOpen(t)
			subscribe(t, db, "U1", time.Time{})
			mustImport(t, db, answered("U1", base, nudges.OutcomeDone, nudges.RoleLead))
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			rawUpdate(t, db.Path(), tt.edit)
			db, err := storage.Open(db.Path(), storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Check(); !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check: err=%v, want ErrCorrupt saying %q", err, tt.want)
			}
		})
	}
}
