package storage

import (
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure every schema version below the current one has a migration.
func TestMigrationsCoverEveryVersion(t *testing.T) {
	// The last, 4 → 5, runs in batches of its own (moveDeliveries).
	if got := len((&DB{}).migrations()); got != SchemaVersion-1 {
		t.Errorf("%d migrations in one transaction, want %d (one per version below SchemaVersion, but the last)", got, SchemaVersion-1)
	}
}

var dueBase = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// openWithSubscribers opens a database holding total subscribers, of whom
// due are due at dueBase and the rest an hour or more later. It writes in
// large transactions, which the public API deliberately does not offer.
func openWithSubscribers(tb testing.TB, total, due int) *DB {
	tb.Helper()
	db := openTest(tb, "", Options{})
	const batch = 10_000
	for start := 0; start < total; start += batch {
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			bk, err := bucketsOf(tx)
			if err != nil {
				return err
			}
			for i := start; i < min(start+batch, total); i++ {
				next := dueBase.Add(-time.Duration(i) * time.Second) // the due ones
				if i >= due {
					next = dueBase.Add(time.Hour + time.Duration(i)*time.Second)
				}
				s := nudges.Subscriber{UserID: fmt.Sprintf("U%07d", i), Subscribed: true, NextDue: next}
				if err := saveSubscriber(bk, nudges.Subscriber{}, s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

// Ensure Due's work depends on how many are due, not on how many there
// are: the same due set costs about the same allocations among 2,000 or
// 20,000.
func TestDue_CostIndependentOfTotal(t *testing.T) {
	const due = 100
	allocs := map[int]float64{}
	for _, total := range []int{2_000, 20_000} {
		db := openWithSubscribers(t, total, due)
		var err error
		allocs[total] = testing.AllocsPerRun(20, func() {
			var ids []string
			ids, err = db.Due(dueBase, 0)
			if err == nil && len(ids) != due {
				err = fmt.Errorf("Due returned %d ids, want %d", len(ids), due)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A deeper B+tree may cost a cursor frame more; a scan would cost
	// thousands more.
	if allocs[20_000] > allocs[2_000]+2 {
		t.Errorf("Due allocated %v among 2,000 subscribers but %v among 20,000; want about the same", allocs[2_000], allocs[20_000])
	}
}

// BenchmarkDue measures one scheduler tick: 1,000 due among many.
func BenchmarkDue(b *testing.B) {
	for _, total := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("subscribers=%d/due=1000", total), func(b *testing.B) {
			db := openWithSubscribers(b, total, 1_000)
			b.ReportAllocs()
			for b.Loop() {
				ids, err := db.Due(dueBase, 0)
				if err != nil || len(ids) != 1_000 {
					b.Fatalf("Due: %d ids, %v", len(ids), err)
				}
			}
		})
	}
}
