package storage_test

import (
	"cmp"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

func TestDeliveryID(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user   string
		slot   time.Time
		manual bool
		want   string
	}{
		{"U1", base, false, "U1-20260302T090000Z"},
		{"U1", base, true, "U1-20260302T090000Z-now"},
		{"U1", time.Date(2026, 3, 2, 10, 0, 0, 0, berlin), false, "U1-20260302T090000Z"},
		{"U1", base.Add(1500 * time.Millisecond), false, "U1-20260302T090001Z"},
	}
	for _, tt := range tests {
		if got := storage.DeliveryID(tt.user, tt.slot, tt.manual); got != tt.want {
			t.Errorf("DeliveryID(%s, %v, %v)=%s, want %s", tt.user, tt.slot, tt.manual, got, tt.want)
		}
	}
	// Ids sort by slot within a person.
	a := storage.DeliveryID("U1", base.Add(-time.Hour*24*400), false)
	b := storage.DeliveryID("U1", base, false)
	if a >= b {
		t.Errorf("%s sorts after %s", a, b)
	}
}

// Ensure every field of a delivery survives a round trip.
func TestDelivery_RoundTrip(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", base)
	want := nudges.Delivery{
		ID: storage.DeliveryID("U1", base, false), UserID: "U1", NudgeID: "lead-001",
		Theme: nudges.ThemeLeading, Role: nudges.RoleLead, Slot: base, Reason: "you liked leading",
		State: nudges.StateSent, Attempts: 2, Channel: "D1", TS: "1700000000.000100",
		Created: base, SentAt: base.Add(time.Second), Outcome: nudges.OutcomeSnoozed,
		ActedAt: base.Add(time.Hour), SnoozeTo: base.Add(3 * time.Hour),
	}
	if _, err := db.StartDelivery(want, base, nil); err != nil {
		t.Fatalf("StartDelivery: %v", err)
	}
	got, err := db.Delivery(want.ID)
	if err != nil {
		t.Fatalf("Delivery: %v", err)
	}
	if !equalJSON(t, got, want) {
		t.Errorf("Delivery=%+v, want %+v", got, want)
	}
	if _, err := db.Delivery("U1-nope"); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("Delivery(missing): err=%v, want ErrNotFound", err)
	}
}

func TestStartDelivery(t *testing.T) {
	next := base.Add(24 * time.Hour)
	errBoom := errors.New("boom")
	manual := pending("U1", base.Add(30*time.Minute))
	manual.Manual = true
	manual.ID = storage.DeliveryID("U1", manual.Slot, true)
	badID := pending("U1", base)
	badID.ID = "U1-today"

	tests := map[string]struct {
		d           nudges.Delivery
		expect      time.Time
		advance     func(*nudges.Subscriber) error
		wantCreated bool
		wantErr     error
	}{
		"OK":                        {d: pending("U1", base), expect: base, advance: setNextDue(next), wantCreated: true},
		"OK manual skips the check": {d: manual, expect: time.Time{}, advance: nil, wantCreated: true},
		"ErrConflict":               {d: pending("U1", base), expect: base.Add(-time.Hour), advance: setNextDue(next), wantErr: storage.ErrConflict},
		"ErrAdvance":                {d: pending("U1", base), expect: base, advance: func(*nudges.Subscriber) error { return errBoom }, wantErr: errBoom},
		"ErrNotFound":               {d: pending("U2", base), expect: base, advance: setNextDue(next), wantErr: nudges.ErrNotFound},
		"ErrBadID":                  {d: badID, expect: base, advance: setNextDue(next), wantErr: errAny},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			db := MustOpen(t)
			before := subscribe(t, db, "U1", base)

			created, err := db.StartDelivery(tt.d, tt.expect, tt.advance)

			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("StartDelivery: %v", err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("err=%v, want %v", err, tt.wantErr)
			}
			if created != tt.wantCreated {
				t.Errorf("created=%v, want %v", created, tt.wantCreated)
			}
			after, err := db.Subscriber("U1")
			if err != nil {
				t.Fatal(err)
			}
			_, derr := db.Delivery(tt.d.ID)
			if !tt.wantCreated {
				// Nothing written.
				if !errors.Is(derr, nudges.ErrNotFound) {
					t.Errorf("Delivery after a refused start: err=%v, want ErrNotFound", derr)
				}
				if !equalJSON(t, after, before) {
					t.Errorf("subscriber=%+v, want the untouched %+v", after, before)
				}
				if ids := mustPendingIDs(t, db); len(ids) != 0 {
					t.Errorf("Pending=%v, want none", ids)
				}
				return
			}
			if derr != nil {
				t.Errorf("Delivery: %v", derr)
			}
			if ids := mustPendingIDs(t, db); !slices.Equal(ids, []string{tt.d.ID}) {
				t.Errorf("Pending=%v, want [%s]", ids, tt.d.ID)
			}
			wantNext := base
			if !tt.d.Manual {
				wantNext = next
			}
			if !after.NextDue.Equal(wantNext) {
				t.Errorf("NextDue=%v, want %v", after.NextDue, wantNext)
			}
			if ids := mustDue(t, db, wantNext); !slices.Equal(ids, []string{"U1"}) {
				t.Errorf("Due(%v)=%v, want [U1]", wantNext, ids)
			}
			if ids := mustDue(t, db, wantNext.Add(-time.Nanosecond)); len(ids) != 0 {
				t.Errorf("Due just before NextDue=%v, want none", ids)
			}
		})
	}
}

// Ensure starting the same slot again changes nothing, even when the
// caller still expects the old NextDue.
func TestStartDelivery_Idempotent(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", base)
	advances := 0
	advance := func(s *nudges.Subscriber) error {
		advances++
		s.NextDue = s.NextDue.Add(24 * time.Hour)
		return nil
	}
	for i, wantCreated := range []bool{true, false, false} {
		d := pending("U1", base)
		d.Attempts = i // a retry must not overwrite the first record
		created, err := db.StartDelivery(d, base, advance)
		if err != nil || created != wantCreated {
			t.Fatalf("call %d: created=%v, err=%v; want %v, nil", i, created, err, wantCreated)
		}
	}
	if advances != 1 {
		t.Errorf("advance ran %d times, want 1", advances)
	}
	d, err := db.Delivery(storage.DeliveryID("U1", base, false))
	if err != nil || d.Attempts != 0 {
		t.Errorf("Delivery Attempts=%d (%v), want the first record's 0", d.Attempts, err)
	}
	s, err := db.Subscriber("U1")
	if err != nil || !s.NextDue.Equal(base.Add(24*time.Hour)) {
		t.Errorf("NextDue=%v (%v), want advanced once", s.NextDue, err)
	}
}

// Ensure concurrent workers claiming the same person's slot produce one
// delivery: the others see it exists or that NextDue moved.
func TestStartDelivery_Concurrent(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", base)
	const workers = 8
	var (
		wg                          sync.WaitGroup
		mu                          sync.Mutex
		created, existed, conflicts int
	)
	for i := range workers {
		wg.Go(func() {
			// Half claim the same slot; half think a different slot is due.
			slot := base
			if i%2 == 1 {
				slot = base.Add(time.Duration(i) * time.Minute)
			}
			ok, err := db.StartDelivery(pending("U1", slot), base, setNextDue(base.Add(24*time.Hour)))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, storage.ErrConflict):
				conflicts++
			case err != nil:
				t.Errorf("worker %d: %v", i, err)
			case ok:
				created++
			default:
				existed++
			}
		})
	}
	wg.Wait()
	if created != 1 || created+existed+conflicts != workers {
		t.Errorf("created=%d existed=%d conflicts=%d, want exactly one created", created, existed, conflicts)
	}
	if ids := mustPendingIDs(t, db); len(ids) != 1 {
		t.Errorf("Pending=%v, want one", ids)
	}
}

// Ensure the outbox lists exactly the pending deliveries, oldest first,
// through every way a delivery changes state.
func TestOutbox(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", base)
	subscribe(t, db, "U2", base.Add(-time.Hour))
	d1 := pending("U1", base)
	d2 := pending("U2", base.Add(-time.Hour))
	if _, err := db.StartDelivery(d1, base, setNextDue(base.Add(24*time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := db.StartDelivery(d2, base.Add(-time.Hour), setNextDue(base.Add(23*time.Hour))); err != nil {
		t.Fatal(err)
	}
	want := func(ids ...string) {
		t.Helper()
		if got := mustPendingIDs(t, db); !slices.Equal(got, ids) {
			t.Errorf("Pending=%v, want %v", got, ids)
		}
	}
	setState := func(id string, state nudges.DeliveryState) {
		t.Helper()
		if _, err := db.UpdateDelivery(id, func(d *nudges.Delivery) error { d.State = state; return nil }); err != nil {
			t.Fatalf("UpdateDelivery(%s, %s): %v", id, state, err)
		}
	}

	want(d2.ID, d1.ID) // oldest slot first, not id order
	setState(d2.ID, nudges.StateSent)
	want(d1.ID)
	setState(d1.ID, nudges.StateFailed)
	want()
	setState(d1.ID, nudges.StatePending)
	want(d1.ID)
	_, _, err := db.RecordOutcome(d1.ID, func(d *nudges.Delivery, _ *nudges.Subscriber) error {
		d.State = nudges.StateSent
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want()
	if err := db.RecordMissed("U1", []time.Time{base.Add(time.Hour)}, base.Add(24*time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	want() // missed deliveries are never sent
}

func TestUpdateDelivery(t *testing.T) {
	errBoom := errors.New("boom")
	tests := map[string]struct {
		id      string
		fn      func(*nudges.Delivery) error
		wantErr error
	}{
		"OK":          {fn: func(d *nudges.Delivery) error { d.State, d.TS, d.Attempts = nudges.StateSent, "1.2", 1; return nil }},
		"ErrFn":       {fn: func(d *nudges.Delivery) error { d.State = nudges.StateSent; return errBoom }, wantErr: errBoom},
		"ErrNotFound": {id: "U1-nope", fn: func(*nudges.Delivery) error { return nil }, wantErr: nudges.ErrNotFound},
		"ErrSlot":     {fn: func(d *nudges.Delivery) error { d.Slot = d.Slot.Add(time.Hour); return nil }, wantErr: errAny},
		"ErrUserID":   {fn: func(d *nudges.Delivery) error { d.UserID = "U2"; return nil }, wantErr: errAny},
		"ErrManual":   {fn: func(d *nudges.Delivery) error { d.Manual = true; return nil }, wantErr: errAny},
		"ErrState":    {fn: func(d *nudges.Delivery) error { d.State = "sending"; return nil }, wantErr: errAny},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			db := MustOpen(t)
			subscribe(t, db, "U1", base)
			orig := pending("U1", base)
			if _, err := db.StartDelivery(orig, base, nil); err != nil {
				t.Fatal(err)
			}
			id := cmp.Or(tt.id, orig.ID)
			got, err := db.UpdateDelivery(id, tt.fn)
			stored, serr := db.Delivery(orig.ID)
			if serr != nil {
				t.Fatal(serr)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("UpdateDelivery: %v", err)
				}
				if got.State != nudges.StateSent || !equalJSON(t, stored, got) {
					t.Errorf("stored=%+v, returned %+v, want both sent", stored, got)
				}
				if ids := mustPendingIDs(t, db); len(ids) != 0 {
					t.Errorf("Pending=%v, want none", ids)
				}
				return
			}
			if err == nil || (tt.wantErr != errAny && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err=%v, want %v", err, tt.wantErr)
			}
			if !equalJSON(t, stored, orig) {
				t.Errorf("stored=%+v, want the untouched %+v", stored, orig)
			}
			if ids := mustPendingIDs(t, db); !slices.Equal(ids, []string{orig.ID}) {
				t.Errorf("Pending=%v, want [%s]", ids, orig.ID)
			}
		})
	}
}

// Ensure an outcome updates delivery and subscriber together, or neither.
func TestRecordOutcome(t *testing.T) {
	snoozeTo := base.Add(3 * time.Hour)
	snooze := func(d *nudges.Delivery, s *nudges.Subscriber) error {
		d.Outcome, d.SnoozeTo = nudges.OutcomeSnoozed, snoozeTo
		s.NextDue = snoozeTo
		s.Streak++
		return nil
	}
	t.Run("OK", func(t *testing.T) {
		db := MustOpen(t)
		subscribe(t, db, "U1", base)
		d := pending("U1", base)
		if _, err := db.StartDelivery(d, base, setNextDue(base.Add(24*time.Hour))); err != nil {
			t.Fatal(err)
		}
		gotD, gotS, err := db.RecordOutcome(d.ID, snooze)
		if err != nil {
			t.Fatalf("RecordOutcome: %v", err)
		}
		storedD, _ := db.Delivery(d.ID)
		storedS, _ := db.Subscriber("U1")
		if storedD.Outcome != nudges.OutcomeSnoozed || !equalJSON(t, storedD, gotD) {
			t.Errorf("delivery=%+v, want snoozed and as returned", storedD)
		}
		if storedS.Streak != 1 || !storedS.NextDue.Equal(snoozeTo) || !equalJSON(t, storedS, gotS) {
			t.Errorf("subscriber=%+v, want streak 1, due at %v, as returned", storedS, snoozeTo)
		}
		if ids := mustDue(t, db, snoozeTo); !slices.Equal(ids, []string{"U1"}) {
			t.Errorf("Due(snoozeTo)=%v, want [U1]", ids)
		}
		if ids := mustDue(t, db, snoozeTo.Add(-time.Second)); len(ids) != 0 {
			t.Errorf("Due before snoozeTo=%v, want none (old index entry removed)", ids)
		}
	})
	t.Run("ErrFn", func(t *testing.T) {
		db := MustOpen(t)
		subscribe(t, db, "U1", base)
		d := pending("U1", base)
		if _, err := db.StartDelivery(d, base, nil); err != nil {
			t.Fatal(err)
		}
		errBoom := errors.New("boom")
		_, _, err := db.RecordOutcome(d.ID, func(d *nudges.Delivery, s *nudges.Subscriber) error {
			// Change both, then fail: nothing of the change may be stored.
			if err := snooze(d, s); err != nil {
				t.Errorf("snooze: %v", err)
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("err=%v, want errBoom", err)
		}
		storedD, _ := db.Delivery(d.ID)
		storedS, _ := db.Subscriber("U1")
		if storedD.Outcome != nudges.OutcomeNone || storedS.Streak != 0 || !storedS.NextDue.Equal(base) {
			t.Errorf("after a failed outcome: delivery %+v, subscriber %+v; want both untouched", storedD, storedS)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db := MustOpen(t)
		_, _, err := db.RecordOutcome("U1-nope", snooze)
		if !errors.Is(err, nudges.ErrNotFound) {
			t.Errorf("err=%v, want ErrNotFound", err)
		}
	})
}

func TestRecordMissed(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", base)
	// One of the slots was already delivered; it must stay as it is.
	delivered := pending("U1", base)
	if _, err := db.StartDelivery(delivered, base, nil); err != nil {
		t.Fatal(err)
	}
	slots := []time.Time{base, base.Add(24 * time.Hour), base.Add(48 * time.Hour)}
	next := base.Add(72 * time.Hour)

	if err := db.RecordMissed("U1", slots, base.Add(time.Hour), setNextDue(next)); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("RecordMissed with a stale NextDue: err=%v, want ErrConflict", err)
	}
	if ds, _ := db.Deliveries("U1", time.Time{}); len(ds) != 1 {
		t.Fatalf("after a conflict: %d deliveries, want the 1 delivered", len(ds))
	}

	if err := db.RecordMissed("U1", slots, base, setNextDue(next)); err != nil {
		t.Fatalf("RecordMissed: %v", err)
	}
	ds, err := db.Deliveries("U1", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var states []nudges.DeliveryState
	for _, d := range ds {
		states = append(states, d.State)
		if d.State == nudges.StateMissed && !d.Created.Equal(base) {
			t.Errorf("missed %s Created=%v, want the clock's %v", d.ID, d.Created, base)
		}
	}
	if want := []nudges.DeliveryState{nudges.StatePending, nudges.StateMissed, nudges.StateMissed}; !slices.Equal(states, want) {
		t.Errorf("states=%v, want %v", states, want)
	}
	s, _ := db.Subscriber("U1")
	if !s.NextDue.Equal(next) {
		t.Errorf("NextDue=%v, want %v", s.NextDue, next)
	}
	if ids := mustDue(t, db, next.Add(-time.Second)); len(ids) != 0 {
		t.Errorf("Due before the new NextDue=%v, want none", ids)
	}
	if err := db.RecordMissed("U404", slots, time.Time{}, nil); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("RecordMissed for a stranger: err=%v, want ErrNotFound", err)
	}
}

// Ensure a person's history comes back in slot order from since on, and
// DeliveriesBetween sees everyone in a half-open range.
func TestDeliveries(t *testing.T) {
	db := MustOpen(t)
	day := 24 * time.Hour
	for _, user := range []string{"U1", "U2"} {
		subscribe(t, db, user, base)
		var slots []time.Time
		for i := range 5 {
			slots = append(slots, base.Add(time.Duration(i-5)*day))
		}
		if err := db.RecordMissed(user, slots, base, nil); err != nil {
			t.Fatal(err)
		}
	}
	manual := pending("U1", base.Add(-3*day))
	manual.Manual, manual.ID = true, storage.DeliveryID("U1", manual.Slot, true)
	if _, err := db.StartDelivery(manual, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}

	t.Run("Deliveries", func(t *testing.T) {
		tests := []struct {
			since time.Time
			want  []string
		}{
			{time.Time{}, []string{"20260225T090000Z", "20260226T090000Z", "20260227T090000Z", "20260227T090000Z-now", "20260228T090000Z", "20260301T090000Z"}},
			{base.Add(-3 * day), []string{"20260227T090000Z", "20260227T090000Z-now", "20260228T090000Z", "20260301T090000Z"}},
			{base.Add(-3*day + time.Nanosecond), []string{"20260228T090000Z", "20260301T090000Z"}},
			{base, nil},
		}
		for _, tt := range tests {
			ds, err := db.Deliveries("U1", tt.since)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range ds {
				if d.UserID != "U1" {
					t.Errorf("Deliveries(U1) returned %s of %s", d.ID, d.UserID)
				}
				got = append(got, d.ID[len("U1-"):])
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Deliveries(U1, %v)=%v, want %v", tt.since, got, tt.want)
			}
		}
	})
	t.Run("DeliveriesBetween", func(t *testing.T) {
		var got []string
		err := db.DeliveriesBetween(base.Add(-3*day), base.Add(-day), func(d nudges.Delivery) error {
			got = append(got, d.ID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// In slot order: the records are kept by slot.
		want := []string{"U1-20260227T090000Z", "U2-20260227T090000Z", "U1-20260227T090000Z-now", "U1-20260228T090000Z", "U2-20260228T090000Z"}
		if !slices.Equal(got, want) {
			t.Errorf("DeliveriesBetween=%v, want %v (in slot order)", got, want)
		}
		errStop := errors.New("stop")
		if err := db.DeliveriesBetween(time.Time{}, base, func(nudges.Delivery) error { return errStop }); !errors.Is(err, errStop) {
			t.Errorf("err=%v, want fn's error", err)
		}
	})
}

// Ensure a bad id is refused before anything is written.
func TestStartDelivery_ValidatesID(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", base)
	for _, mutate := range []func(*nudges.Delivery){
		func(d *nudges.Delivery) { d.ID = "x" },
		func(d *nudges.Delivery) { d.UserID = "" },
		func(d *nudges.Delivery) { d.Manual = true },
		func(d *nudges.Delivery) { d.State = "" },
	} {
		d := pending("U1", base)
		mutate(&d)
		if _, err := db.StartDelivery(d, base, nil); err == nil {
			t.Errorf("StartDelivery(%+v) succeeded, want an error", d)
		}
	}
	if ids := mustPendingIDs(t, db); len(ids) != 0 {
		t.Errorf("Pending=%v, want none", ids)
	}
}

// Ensure StartDeliveries records each start as StartDelivery would, in
// one transaction, and that one start refused leaves the others recorded.
func TestStartDeliveries(t *testing.T) {
	db := MustOpen(t)
	next := base.Add(24 * time.Hour)
	for _, id := range []string{"U1", "U2", "U3", "U4", "U5", "U6", "U7"} {
		subscribe(t, db, id, base)
	}
	if _, err := db.StartDelivery(pending("U5", base), base, setNextDue(base)); err != nil {
		t.Fatal(err)
	}
	errBoom := errors.New("boom")
	badID := pending("U7", base)
	badID.ID = "U7-today"
	tests := []struct {
		name        string
		start       nudges.DeliveryStart
		wantCreated bool
		wantErr     error
	}{
		{"OK", nudges.DeliveryStart{Delivery: pending("U1", base), ExpectNextDue: base, Advance: setNextDue(next)}, true, nil},
		{"ErrConflict", nudges.DeliveryStart{Delivery: pending("U2", base), ExpectNextDue: base.Add(-time.Hour), Advance: setNextDue(next)}, false, storage.ErrConflict},
		{"ErrAdvance", nudges.DeliveryStart{Delivery: pending("U3", base), ExpectNextDue: base, Advance: func(*nudges.Subscriber) error { return errBoom }}, false, errBoom},
		{"ErrNotFound", nudges.DeliveryStart{Delivery: pending("U9", base), ExpectNextDue: base, Advance: setNextDue(next)}, false, nudges.ErrNotFound},
		{"ErrBadID", nudges.DeliveryStart{Delivery: badID, ExpectNextDue: base, Advance: setNextDue(next)}, false, errAny},
		{"an unindexable due time", nudges.DeliveryStart{Delivery: pending("U4", base), ExpectNextDue: base, Advance: setNextDue(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC))}, false, errAny},
		{"exists already", nudges.DeliveryStart{Delivery: pending("U5", base), ExpectNextDue: base, Advance: setNextDue(next)}, false, nil},
		{"OK after the refusals", nudges.DeliveryStart{Delivery: pending("U6", base), ExpectNextDue: base, Advance: setNextDue(next)}, true, nil},
	}
	starts := make([]nudges.DeliveryStart, len(tests))
	for i, tt := range tests {
		starts[i] = tt.start
	}
	before := db.Stats()
	created, errs := db.StartDeliveries(starts)
	if c := db.Stats().Commits - before.Commits; c != 1 {
		t.Errorf("%d commits for %d starts, want 1", c, len(starts))
	}
	wantPending := []string{pending("U1", base).ID, pending("U5", base).ID, pending("U6", base).ID}
	for i, tt := range tests {
		err := errs[i]
		switch {
		case tt.wantErr == nil && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
			t.Errorf("%s: err=%v, want %v", tt.name, err, tt.wantErr)
		}
		if created[i] != tt.wantCreated {
			t.Errorf("%s: created=%v, want %v", tt.name, created[i], tt.wantCreated)
		}
		s, err := db.Subscriber(tt.start.Delivery.UserID)
		if err != nil {
			continue // the missing one
		}
		wantNext := base
		if tt.wantCreated {
			wantNext = next
		}
		if !s.NextDue.Equal(wantNext) {
			t.Errorf("%s: NextDue=%v, want %v", tt.name, s.NextDue, wantNext)
		}
	}
	slices.Sort(wantPending)
	if ids := mustPendingIDs(t, db); !slices.Equal(ids, wantPending) {
		t.Errorf("Pending=%v, want %v", ids, wantPending)
	}
	if ids := mustDue(t, db, base); !slices.Equal(ids, []string{"U2", "U3", "U4", "U5", "U7"}) {
		t.Errorf("Due(base)=%v, want the refused and the existing", ids)
	}
}

// Ensure a delivery's attempts and its sending keep the outbox exact,
// whatever state it moves through.
func TestUpdateDelivery_OutboxFollowsState(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", base)
	d := pending("U1", base)
	if _, err := db.StartDelivery(d, base, setNextDue(base.Add(24*time.Hour))); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name        string
		fn          func(*nudges.Delivery)
		wantPending bool
	}{
		{"attempt", func(d *nudges.Delivery) { d.Attempts++ }, true},
		{"another attempt", func(d *nudges.Delivery) { d.Attempts++ }, true},
		{"sent", func(d *nudges.Delivery) { d.State = nudges.StateSent }, false},
		{"sent again", func(d *nudges.Delivery) { d.TS = "1.2" }, false},
		{"snoozed: pending again", func(d *nudges.Delivery) { d.State, d.Round, d.Attempts = nudges.StatePending, 1, 0 }, true},
		{"failed", func(d *nudges.Delivery) { d.State = nudges.StateFailed }, false},
	}
	for _, st := range steps {
		if _, err := db.UpdateDelivery(d.ID, func(d *nudges.Delivery) error { st.fn(d); return nil }); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		ids := mustPendingIDs(t, db)
		if got := slices.Contains(ids, d.ID); got != st.wantPending {
			t.Errorf("after %s: in the outbox %v, want %v", st.name, got, st.wantPending)
		}
		if err := db.Check(); err != nil {
			t.Errorf("after %s: Check: %v", st.name, err)
		}
	}
}

// Ensure starts that are all refused before the transaction cost no
// commit, and an empty list none either.
func TestStartDeliveries_NothingToWrite(t *testing.T) {
	db := MustOpen(t)
	bad := pending("U1", base)
	bad.ID = "U1-today"
	before := db.Stats()
	created, errs := db.StartDeliveries([]nudges.DeliveryStart{{Delivery: bad, ExpectNextDue: base}})
	if created[0] || errs[0] == nil {
		t.Errorf("a bad id: created=%v, err=%v; want refused", created[0], errs[0])
	}
	if created, errs := db.StartDeliveries(nil); len(created) != 0 || len(errs) != 0 {
		t.Errorf("no starts: %v, %v", created, errs)
	}
	if after := db.Stats(); after != before {
		t.Errorf("Stats went from %+v to %+v, want no write", before, after)
	}
}
