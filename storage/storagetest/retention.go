package storagetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

var _ = contract(
	testCase{"RetentionRemovesOnlyWhatAged", func(t *testing.T, newDB NewDB) {
		e := &env{t: t, open: newDB(t), clock: &clock{t: base}, keys: keys(t, "master-1")}
		db, err := e.open(Options{Keys: e.keys, Now: e.clock.Now, Retention: nudges.MinRetention})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		e.db = db
		e.subscribe("U1", base)
		day := 24 * time.Hour
		manual := func(slot time.Time, state nudges.DeliveryState) nudges.Delivery {
			d := pending("U1", slot)
			d.Manual, d.ID, d.State = true, storage.DeliveryID("U1", slot, true), state
			if _, err := db.StartDelivery(d, time.Time{}, nil); err != nil {
				t.Fatal(err)
			}
			return d
		}
		old := manual(base, nudges.StateSent)
		stuck := manual(base.Add(time.Hour), nudges.StatePending) // the outbox still owns it
		recent := manual(base.Add(50*day), nudges.StateSent)
		for i := range nudges.TrendPeriods + 3 {
			id := fmt.Sprintf("p%02d", i)
			if err := db.OpenPulse("C1", id, base.Add(time.Duration(i)*time.Hour)); err != nil {
				t.Fatal(err)
			}
			e.clock.Set(base.Add(time.Duration(i)*time.Hour + time.Minute))
			if _, err := db.ClosePulse(id); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.OpenPulse("C1", "open", base); err != nil {
			t.Fatal(err)
		}
		if _, err := db.MarkSeen("env-old", base); err != nil {
			t.Fatal(err)
		}
		if _, err := db.MarkSeen("env-new", base.Add(50*day)); err != nil {
			t.Fatal(err)
		}

		now := base.Add(100 * day) // the cutoff is 39 days after base
		e.clock.Set(now)
		removed, err := db.ApplyRetention(now)
		// One delivery, 15 closed pulses, 2 summaries beyond the newest 13,
		// one envelope.
		if want := 1 + (nudges.TrendPeriods + 3) + 2 + 1; err != nil || removed != want {
			t.Errorf("ApplyRetention=%d,%v, want %d", removed, err, want)
		}
		ds, _ := db.Deliveries("U1", time.Time{})
		if got, want := ids(ds), []string{stuck.ID, recent.ID}; !slices.Equal(got, want) {
			t.Errorf("deliveries kept %v, want %v (not %s)", got, want, old.ID)
		}
		if hist, _ := db.PulseHistory("C1", 0); len(hist) != nudges.TrendPeriods+1 {
			t.Errorf("%d summaries kept, want the newest %d", len(hist), nudges.TrendPeriods+1)
		}
		if _, err := db.VotePulse("open", "U1", 3); err != nil {
			t.Errorf("the open pulse was pruned: %v", err)
		}
		if first, _ := db.MarkSeen("env-old", now); !first {
			t.Error("an old envelope was kept")
		}
		if first, _ := db.MarkSeen("env-new", now); first {
			t.Error("a recent envelope was pruned")
		}
		if again, err := db.ApplyRetention(now); err != nil || again != 0 {
			t.Errorf("a second pass removed %d (%v), want nothing", again, err)
		}
	}},
)
