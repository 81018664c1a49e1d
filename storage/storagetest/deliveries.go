package storagetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

var _ = contract(
	testCase{"StartDeliveryRules", func(t *testing.T, newDB NewDB) {
		boom := errors.New("boom")
		manual := pending("U1", base.Add(30*time.Minute))
		manual.Manual = true
		manual.ID = storage.DeliveryID("U1", manual.Slot, true)
		badID := pending("U1", base)
		badID.ID = "U1-today"
		tests := map[string]struct {
			d       nudges.Delivery
			expect  time.Time
			advance func(*nudges.Subscriber) error
			created bool
			err     error // nil: none; errAny: some
			nextDue time.Time
		}{
			"starts and advances": {d: pending("U1", base), expect: base, advance: advanceTo(base.Add(24 * time.Hour)), created: true, nextDue: base.Add(24 * time.Hour)},
			"stale expectation":   {d: pending("U1", base), expect: base.Add(-time.Hour), advance: advanceTo(base.Add(24 * time.Hour)), err: storage.ErrConflict, nextDue: base},
			"advance fails":       {d: pending("U1", base), expect: base, advance: func(*nudges.Subscriber) error { return boom }, err: boom, nextDue: base},
			"manual ignores due":  {d: manual, expect: time.Time{}, created: true, nextDue: base},
			"unknown person":      {d: pending("U7", base), expect: base, err: nudges.ErrNotFound, nextDue: base},
			"id not derived":      {d: badID, expect: base, err: errAny, nextDue: base},
		}
		for name, tt := range tests {
			t.Run(name, func(t *testing.T) {
				e := setup(t, newDB)
				e.subscribe("U1", base)
				created, err := e.db.StartDelivery(tt.d, tt.expect, tt.advance)
				if created != tt.created || !matches(err, tt.err) {
					t.Fatalf("StartDelivery=%v,%v; want %v,%v", created, err, tt.created, tt.err)
				}
				sub, _ := e.db.Subscriber("U1")
				if !sub.NextDue.Equal(tt.nextDue) {
					t.Errorf("NextDue=%v, want %v", sub.NextDue, tt.nextDue)
				}
				_, gerr := e.db.Delivery(tt.d.ID)
				if stored := gerr == nil; stored != tt.created {
					t.Errorf("delivery stored=%v (%v), want %v", stored, gerr, tt.created)
				}
				p, _ := e.db.Pending()
				if want := map[bool]int{true: 1}[tt.created]; len(p) != want {
					t.Errorf("outbox holds %d, want %d", len(p), want)
				}
			})
		}
	}},
	testCase{"StartDeliveryTwiceIsOnce", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		e.subscribe("U1", base)
		d := pending("U1", base)
		if created, err := e.db.StartDelivery(d, base, advanceTo(base.Add(24*time.Hour))); !created || err != nil {
			t.Fatalf("first start=%v,%v", created, err)
		}
		// A replay of the same slot (a crash between commit and answer):
		// recorded once, nothing moves.
		again := d
		again.NudgeID = "other"
		created, err := e.db.StartDelivery(again, base, advanceTo(base.Add(48*time.Hour)))
		if created || err != nil {
			t.Fatalf("second start=%v,%v, want false,nil", created, err)
		}
		got, _ := e.db.Delivery(d.ID)
		sub, _ := e.db.Subscriber("U1")
		if got.NudgeID != "lead-001" || !sub.NextDue.Equal(base.Add(24*time.Hour)) {
			t.Errorf("after replay: nudge %s, next due %v", got.NudgeID, sub.NextDue)
		}
	}},
	testCase{"ConcurrentStartsClaimASlotOnce", func(t *testing.T, newDB NewDB) {
		// Two schedulers (two replicas, or a tick racing a catch-up) plan
		// the same person at once: one start wins, the others see it.
		e := setup(t, newDB)
		const people, workers = 20, 6
		for p := range people {
			e.subscribe(person(p), base)
		}
		var (
			mu      sync.Mutex
			created = map[string]int{}
			wg      sync.WaitGroup
		)
		for range workers {
			wg.Go(func() {
				var starts []nudges.DeliveryStart
				for p := range people {
					id := person(p)
					starts = append(starts, nudges.DeliveryStart{Delivery: pending(id, base), ExpectNextDue: base, Advance: func(s *nudges.Subscriber) error {
						s.NextDue = base.Add(24 * time.Hour)
						return nil
					}})
				}
				cs, errs := e.db.StartDeliveries(starts)
				mu.Lock()
				defer mu.Unlock()
				for i, c := range cs {
					if c {
						created[starts[i].Delivery.UserID]++
					}
					if errs[i] != nil && !errors.Is(errs[i], storage.ErrConflict) {
						t.Errorf("start %s: %v", starts[i].Delivery.ID, errs[i])
					}
				}
			})
		}
		wg.Wait()
		for p := range people {
			id := person(p)
			if created[id] != 1 {
				t.Errorf("%s: created %d times, want once", id, created[id])
			}
			sub, _ := e.db.Subscriber(id)
			if !sub.NextDue.Equal(base.Add(24 * time.Hour)) {
				t.Errorf("%s: next due %v", id, sub.NextDue)
			}
		}
		if p, _ := e.db.Pending(); len(p) != people {
			t.Errorf("outbox holds %d, want %d", len(p), people)
		}
	}},
	testCase{"StartDeliveriesDecidesEachAlone", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		e.subscribe("U1", base)
		e.subscribe("U2", base)
		e.subscribe("U3", base.Add(time.Hour))
		if _, err := e.db.StartDelivery(pending("U2", base), base, advanceTo(base.Add(time.Minute))); err != nil {
			t.Fatal(err)
		}
		bad := pending("U1", base.Add(time.Second))
		bad.State = "bogus"
		starts := []nudges.DeliveryStart{
			{Delivery: pending("U1", base), ExpectNextDue: base, Advance: advanceTo(base.Add(time.Hour))},
			{Delivery: pending("U2", base), ExpectNextDue: base, Advance: advanceTo(base.Add(time.Hour))}, // recorded before
			{Delivery: pending("U3", base), ExpectNextDue: base, Advance: advanceTo(base.Add(time.Hour))}, // stale
			{Delivery: pending("U9", base), ExpectNextDue: base},                                          // nobody
			{Delivery: bad, ExpectNextDue: base},
			// The same person again in one batch sees the first advance.
			{Delivery: pending("U1", base.Add(time.Hour)), ExpectNextDue: base.Add(time.Hour), Advance: advanceTo(base.Add(2 * time.Hour))},
		}
		cs, errs := e.db.StartDeliveries(starts)
		wantCreated := []bool{true, false, false, false, false, true}
		wantErr := []error{nil, nil, storage.ErrConflict, nudges.ErrNotFound, errAny, nil}
		for i := range starts {
			if cs[i] != wantCreated[i] || !matches(errs[i], wantErr[i]) {
				t.Errorf("start %d (%s)=%v,%v; want %v,%v", i, starts[i].Delivery.ID, cs[i], errs[i], wantCreated[i], wantErr[i])
			}
		}
		for id, want := range map[string]time.Time{"U1": base.Add(2 * time.Hour), "U2": base.Add(time.Minute), "U3": base.Add(time.Hour)} {
			if sub, _ := e.db.Subscriber(id); !sub.NextDue.Equal(want) {
				t.Errorf("%s next due %v, want %v", id, sub.NextDue, want)
			}
		}
		if got, _ := e.db.Due(base.Add(90*time.Minute), 0); !slices.Equal(got, []string{"U2", "U3"}) {
			t.Errorf("Due=%v, want [U2 U3]", got)
		}
	}},
	testCase{"RecordMissed", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		e.subscribe("U1", base)
		if _, err := e.db.StartDelivery(pending("U1", base), base, nil); err != nil {
			t.Fatal(err)
		}
		e.clock.Set(base.Add(5 * time.Hour))
		slots := []time.Time{base, base.Add(time.Hour), base.Add(2 * time.Hour)}
		if err := e.db.RecordMissed("U1", slots, base.Add(time.Hour), nil); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("RecordMissed with a stale due: %v, want ErrConflict", err)
		}
		if err := e.db.RecordMissed("U1", slots, base, advanceTo(base.Add(24*time.Hour))); err != nil {
			t.Fatal(err)
		}
		ds, _ := e.db.Deliveries("U1", time.Time{})
		states := []nudges.DeliveryState{}
		for _, d := range ds {
			states = append(states, d.State)
		}
		if want := []nudges.DeliveryState{nudges.StatePending, nudges.StateMissed, nudges.StateMissed}; !slices.Equal(states, want) {
			t.Errorf("states=%v, want %v (an existing delivery is kept)", states, want)
		}
		if len(ds) == 3 && !ds[1].Created.Equal(base.Add(5*time.Hour)) {
			t.Errorf("missed delivery created %v, want the store's clock", ds[1].Created)
		}
		if p, _ := e.db.Pending(); len(p) != 1 {
			t.Errorf("outbox holds %d, want the one pending", len(p))
		}
		if sub, _ := e.db.Subscriber("U1"); !sub.NextDue.Equal(base.Add(24 * time.Hour)) {
			t.Errorf("next due %v", sub.NextDue)
		}
	}},
	testCase{"UpdateDeliveryAndOutbox", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		e.subscribe("U1", base)
		d := pending("U1", base)
		if _, err := e.db.StartDelivery(d, base, nil); err != nil {
			t.Fatal(err)
		}
		got, err := e.db.UpdateDelivery(d.ID, func(d *nudges.Delivery) error { d.Attempts++; return nil })
		if err != nil || got.Attempts != 1 {
			t.Fatalf("UpdateDelivery=%+v,%v", got, err)
		}
		if _, err := e.db.UpdateDelivery(d.ID, func(d *nudges.Delivery) error { d.Slot = base.Add(time.Hour); return nil }); err == nil {
			t.Error("changing the slot was accepted")
		}
		if _, err := e.db.UpdateDelivery("U1-nope", func(*nudges.Delivery) error { return nil }); !errors.Is(err, nudges.ErrNotFound) {
			t.Errorf("missing delivery: %v", err)
		}
		if _, err := e.db.UpdateDelivery(d.ID, func(d *nudges.Delivery) error { d.State = nudges.StateSent; d.TS = "1.2"; return nil }); err != nil {
			t.Fatal(err)
		}
		if p, _ := e.db.Pending(); len(p) != 0 {
			t.Errorf("a sent delivery is still in the outbox: %v", ids(p))
		}
		if _, err := e.db.UpdateDelivery(d.ID, func(d *nudges.Delivery) error { d.State = nudges.StatePending; return nil }); err != nil {
			t.Fatal(err)
		}
		if p, _ := e.db.Pending(); len(p) != 1 || p[0].Attempts != 1 || p[0].TS != "1.2" {
			t.Errorf("Pending=%+v, want the delivery back", p)
		}
	}},
	testCase{"UpdateDeliveryFromWhatIsHeld", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		e.subscribe("U1", base)
		d := pending("U1", base)
		if _, err := e.db.StartDelivery(d, base, nil); err != nil {
			t.Fatal(err)
		}
		held, err := e.db.Delivery(d.ID)
		if err != nil {
			t.Fatal(err)
		}
		attempt := func(cur *nudges.Delivery) error { cur.Attempts++; return nil }
		got, err := e.db.UpdateDeliveryFrom(held, attempt)
		if err != nil || got.Attempts != 1 {
			t.Fatalf("from the stored delivery: %+v,%v", got, err)
		}
		// held is stale now: fn runs on what is stored, not on held.
		got, err = e.db.UpdateDeliveryFrom(held, attempt)
		if err != nil || got.Attempts != 2 {
			t.Fatalf("from a stale copy: Attempts=%d,%v, want 2", got.Attempts, err)
		}
		// A check that held passes but the stored delivery fails refuses.
		errStale := errors.New("changed since")
		_, err = e.db.UpdateDeliveryFrom(held, func(cur *nudges.Delivery) error {
			if cur.Attempts != held.Attempts {
				return errStale
			}
			cur.Attempts = 10
			return nil
		})
		if !errors.Is(err, errStale) {
			t.Errorf("a check against a stale copy: %v, want it refused", err)
		}
		// A sent mark from the delivery just written leaves the outbox.
		got, err = e.db.UpdateDeliveryFrom(got, func(cur *nudges.Delivery) error { cur.State, cur.TS = nudges.StateSent, "1.2"; return nil })
		if err != nil || got.State != nudges.StateSent {
			t.Fatalf("sent mark: %+v,%v", got, err)
		}
		if stored, _ := e.db.Delivery(d.ID); stored.Attempts != 2 || stored.TS != "1.2" {
			t.Errorf("stored %+v, want 2 attempts and the ts", stored)
		}
		if p, _ := e.db.Pending(); len(p) != 0 {
			t.Errorf("a sent delivery is still in the outbox: %v", ids(p))
		}
		if _, err := e.db.UpdateDeliveryFrom(got, func(cur *nudges.Delivery) error { cur.Slot = base.Add(time.Hour); return nil }); err == nil {
			t.Error("changing the slot was accepted")
		}
		gone := pending("U1", base.Add(time.Hour))
		if _, err := e.db.UpdateDeliveryFrom(gone, attempt); !errors.Is(err, nudges.ErrNotFound) {
			t.Errorf("a delivery never stored: %v, want not found", err)
		}
	}},
	testCase{"SubscribersByID", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		e.subscribe("U1", base)
		e.subscribe("U2", base.Add(time.Hour))
		subs, err := e.db.SubscribersByID([]string{"U2", "U1", "U9", "", "U1"})
		if err != nil || len(subs) != 2 || !subs["U2"].NextDue.Equal(base.Add(time.Hour)) || subs["U1"].UserID != "U1" {
			t.Errorf("SubscribersByID=%+v,%v", subs, err)
		}
		if subs, err := e.db.SubscribersByID(nil); err != nil || len(subs) != 0 {
			t.Errorf("SubscribersByID(nil)=%+v,%v", subs, err)
		}
	}},
	testCase{"RecordOutcomeChangesBoth", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		e.subscribe("U1", base)
		d := pending("U1", base)
		if _, err := e.db.StartDelivery(d, base, nil); err != nil {
			t.Fatal(err)
		}
		gd, gs, err := e.db.RecordOutcome(d.ID, func(d *nudges.Delivery, s *nudges.Subscriber) error {
			d.State, d.Outcome = nudges.StateSent, nudges.OutcomeDone
			s.Streak = 5
			s.NextDue = base.Add(time.Hour)
			return nil
		})
		if err != nil || gd.Outcome != nudges.OutcomeDone || gs.Streak != 5 {
			t.Fatalf("RecordOutcome=%+v,%+v,%v", gd, gs, err)
		}
		boom := errors.New("boom")
		if _, _, err := e.db.RecordOutcome(d.ID, func(d *nudges.Delivery, s *nudges.Subscriber) error { s.Streak = 9; return boom }); !errors.Is(err, boom) {
			t.Errorf("err=%v", err)
		}
		sub, _ := e.db.Subscriber("U1")
		stored, _ := e.db.Delivery(d.ID)
		if sub.Streak != 5 || stored.Outcome != nudges.OutcomeDone {
			t.Errorf("stored streak %d outcome %s", sub.Streak, stored.Outcome)
		}
		if got, _ := e.db.Due(base.Add(time.Hour), 0); !slices.Equal(got, []string{"U1"}) {
			t.Errorf("Due=%v: the outcome's due time is not indexed", got)
		}
		if _, _, err := e.db.RecordOutcome("U1-nope", func(*nudges.Delivery, *nudges.Subscriber) error { return nil }); !errors.Is(err, nudges.ErrNotFound) {
			t.Errorf("missing: %v", err)
		}
	}},
	testCase{"DeliveryReads", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		for _, u := range []string{"U1", "U10", "U2"} {
			e.subscribe(u, base)
		}
		day := 24 * time.Hour
		for i := range 4 {
			for _, u := range []string{"U1", "U10", "U2"} {
				d := pending(u, base.Add(time.Duration(3-i)*day))
				d.Manual = true
				d.ID = storage.DeliveryID(u, d.Slot, true)
				if _, err := e.db.StartDelivery(d, time.Time{}, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		mine, err := e.db.Deliveries("U1", base.Add(day))
		if want := []string{storage.DeliveryID("U1", base.Add(day), true), storage.DeliveryID("U1", base.Add(2*day), true), storage.DeliveryID("U1", base.Add(3*day), true)}; err != nil || !slices.Equal(ids(mine), want) {
			t.Errorf("Deliveries(U1, +1d)=%v,%v; want %v (only U1's, oldest first)", ids(mine), err, want)
		}
		pend, _ := e.db.Pending()
		if len(pend) != 12 || !slices.IsSortedFunc(pend, func(a, b nudges.Delivery) int { return a.Slot.Compare(b.Slot) }) {
			t.Errorf("Pending: %d, sorted by slot: %v", len(pend), ids(pend))
		}
		var between []string
		if err := e.db.DeliveriesBetween(base.Add(day), base.Add(3*day), func(d nudges.Delivery) error {
			between = append(between, d.ID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// The order is each engine's own (bbolt keeps records by slot,
		// PostgreSQL pages by id); each delivery comes once.
		slices.Sort(between)
		if len(between) != 6 || len(slices.Compact(slices.Clone(between))) != 6 {
			t.Errorf("DeliveriesBetween=%v, want 6, each once", between)
		}
		got, err := e.db.DeliveriesFor([]string{"U2", "U1", "U2", "", "U\x00"}, base.Add(2*day), base.Add(4*day))
		var who []string
		for _, d := range got {
			who = append(who, d.UserID)
		}
		if err != nil || !slices.Equal(who, []string{"U2", "U2", "U1", "U1"}) || got[0].Slot.After(got[1].Slot) {
			t.Errorf("DeliveriesFor=%v,%v: want U2's then U1's, each oldest first, duplicates once", ids(got), err)
		}
		if got, _ := e.db.DeliveriesFor([]string{"U1"}, base.Add(day), base.Add(day)); len(got) != 0 {
			t.Errorf("an empty period gave %v", ids(got))
		}
	}},
)

// errAny matches any error.
var errAny = errors.New("any error")

func matches(err, want error) bool {
	switch want {
	case nil:
		return err == nil
	case errAny:
		return err != nil
	}
	return errors.Is(err, want)
}

func person(i int) string { return "U" + string(rune('A'+i%26)) + string(rune('a'+i/26)) }
