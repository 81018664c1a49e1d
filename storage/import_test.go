package storage_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// Ensure ImportSubscribers leaves the database exactly as the same
// records written one by one with UpdateSubscriber would: the records,
// the due index and the order Due returns, over existing records,
// duplicates within the import, and people taken off the schedule.
func TestImportSubscribers_SameAsUpdateSubscriber(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	randomSub := func(i int) nudges.Subscriber {
		s := nudges.Subscriber{
			UserID:     fmt.Sprintf("U%05d", i),
			Subscribed: r.IntN(4) != 0,
			ProfileTZ:  "Europe/Berlin",
			DMChannel:  fmt.Sprintf("D%05d", i),
			Streak:     r.IntN(9),
		}
		if r.IntN(5) != 0 { // some unscheduled
			s.NextDue = base.Add(time.Duration(r.IntN(30)) * time.Minute) // ties are common
		}
		return s
	}
	tests := map[string]struct {
		existing int // stored first, one by one
		imported int // then imported; ids overlap the existing ones
		dups     int // entries repeated with new values at the end
	}{
		"OK empty database, several batches": {imported: 11_003},
		"OK replaces existing records":       {existing: 300, imported: 500},
		"OK later duplicate wins":            {existing: 50, imported: 200, dups: 60},
		"OK nothing to import":               {existing: 10},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			viaImport, viaUpdate := MustOpen(t), MustOpen(t)
			for i := range tt.existing {
				s := randomSub(i)
				for _, db := range []*storage.DB{viaImport, viaUpdate} {
					if _, err := db.UpdateSubscriber(s.UserID, func(p *nudges.Subscriber) error { *p = s; return nil }); err != nil {
						t.Fatalf("seed %s: %v", s.UserID, err)
					}
				}
			}
			var subs []nudges.Subscriber
			for i := range tt.imported {
				subs = append(subs, randomSub(i))
			}
			for i := range tt.dups {
				subs = append(subs, randomSub(i*3))
			}
			if err := viaImport.ImportSubscribers(subs); err != nil {
				t.Fatalf("ImportSubscribers: %v", err)
			}
			for _, s := range subs {
				if _, err := viaUpdate.UpdateSubscriber(s.UserID, func(p *nudges.Subscriber) error { *p = s; return nil }); err != nil {
					t.Fatalf("UpdateSubscriber(%s): %v", s.UserID, err)
				}
			}
			if got, want := allSubscribers(t, viaImport), allSubscribers(t, viaUpdate); !equalJSON(t, got, want) {
				t.Errorf("records differ: imported %d, one by one %d", len(got), len(want))
			}
			for _, at := range []time.Time{base.Add(-time.Minute), base.Add(10 * time.Minute), base.Add(time.Hour)} {
				if got, want := mustDue(t, viaImport, at), mustDue(t, viaUpdate, at); !slices.Equal(got, want) {
					t.Errorf("Due(%s): imported %d ids, one by one %d; first difference in %v vs %v", at.Format(time.TimeOnly), len(got), len(want), head(got), head(want))
				}
			}
			// MustOpen's cleanup runs Check, which also checks that the
			// due index agrees with the records.
		})
	}
}

func TestImportSubscribers_Errors(t *testing.T) {
	good := func(i int) nudges.Subscriber {
		return nudges.Subscriber{UserID: fmt.Sprintf("U%05d", i), Subscribed: true, NextDue: base}
	}
	many := func(n int, bad int, badSub nudges.Subscriber) []nudges.Subscriber {
		out := make([]nudges.Subscriber, n)
		for i := range out {
			out[i] = good(i)
		}
		out[bad] = badSub
		return out
	}
	unindexable := good(7_000)
	unindexable.NextDue = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		subs      []nudges.Subscriber
		wantErr   string
		wantSaved int // records written despite the error
	}{
		"ErrEmptyUserID writes nothing": {
			subs: many(6_000, 5_500, nudges.Subscriber{Subscribed: true}), wantErr: "entry 5501 of 6000 has an empty user id", wantSaved: 0,
		},
		// The second batch fails whole; the first stays written.
		"ErrUnindexableNextDue keeps the batches before": {
			subs: many(8_000, 7_000, unindexable), wantErr: "import subscribers 5001 to 8000 of 8000 (the 5000 before them are written)", wantSaved: 5_000,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			db := MustOpen(t)
			err := db.ImportSubscribers(tt.subs)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ImportSubscribers err = %v, want one containing %q", err, tt.wantErr)
			}
			total, _, err := db.CountSubscribers()
			if err != nil {
				t.Fatal(err)
			}
			if total != tt.wantSaved {
				t.Errorf("%d records after the failed import, want %d", total, tt.wantSaved)
			}
			if ids := mustDue(t, db, base); len(ids) != tt.wantSaved {
				t.Errorf("%d due after the failed import, want %d", len(ids), tt.wantSaved)
			}
		})
	}
}

// Ensure a read-only database refuses the import with an error rather
// than pretending.
func TestImportSubscribers_ReadOnly(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", base)
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := storage.Open(path, storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, ro)
	err = ro.ImportSubscribers([]nudges.Subscriber{{UserID: "U2", Subscribed: true}})
	if err == nil || !strings.Contains(err.Error(), "import subscribers 1 to 1 of 1") {
		t.Errorf("ImportSubscribers on a read-only database: err = %v, want an import error", err)
	}
	if _, err := ro.Subscriber("U2"); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("U2 after the refused import: err = %v, want ErrNotFound", err)
	}
}

func BenchmarkImportSubscribers(b *testing.B) {
	const n = 20_000
	subs := make([]nudges.Subscriber, n)
	for i := range subs {
		subs[i] = nudges.Subscriber{UserID: fmt.Sprintf("U%07d", i), Subscribed: true, ProfileTZ: "Europe/Berlin",
			DMChannel: fmt.Sprintf("D%07d", i), NextDue: base}
	}
	for b.Loop() {
		b.StopTimer()
		db := MustOpen(b)
		b.StartTimer()
		if err := db.ImportSubscribers(subs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "subscribers/s")
}

func allSubscribers(t *testing.T, db *storage.DB) []nudges.Subscriber {
	t.Helper()
	var out []nudges.Subscriber
	if err := db.ForEachSubscriber(func(s nudges.Subscriber) error { out = append(out, s); return nil }); err != nil {
		t.Fatalf("ForEachSubscriber: %v", err)
	}
	return out
}

// head is the start of a list of ids, for a readable failure.
func head(ids []string) []string { return ids[:min(len(ids), 5)] }
