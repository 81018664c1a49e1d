package storage_test

import (
	"cmp"
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

// Ensure every field of a subscriber survives a round trip.
func TestSubscriber_RoundTrip(t *testing.T) {
	db := MustOpen(t)
	want := nudges.Subscriber{
		UserID:         "U1",
		Subscribed:     true,
		SubscribedAt:   base.Add(-48 * time.Hour),
		ProfileTZ:      "Europe/Berlin",
		TZOverride:     "Asia/Tokyo",
		Time:           "08:30",
		Days:           nudges.Weekdays(0).With(time.Monday).With(time.Thursday),
		Focus:          string(nudges.ThemeDiplomat),
		PausedUntil:    base.Add(72 * time.Hour),
		Inactive:       true,
		InactiveReason: "user_not_found",
		NextDue:        base.Add(time.Hour),
		LastSlot:       base.Add(-23 * time.Hour),
		Streak:         4,
		Seen:           []string{"lead-001", "manage-002"},
		LastRole:       nudges.RoleManage,
		Stats:          map[nudges.Theme]nudges.BetaStat{nudges.ThemeLeading: {Up: 2, Down: 0.5}},
	}
	_, err := db.UpdateSubscriber("U1", func(s *nudges.Subscriber) error {
		*s = want
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateSubscriber: %v", err)
	}
	got, err := db.Subscriber("U1")
	if err != nil {
		t.Fatalf("Subscriber: %v", err)
	}
	if !equalJSON(t, got, want) || !got.NextDue.Equal(want.NextDue) {
		t.Errorf("Subscriber=%+v, want %+v", got, want)
	}
}

// Ensure a missing subscriber is nudges.ErrNotFound.
func TestSubscriber_ErrNotFound(t *testing.T) {
	db := MustOpen(t)
	_, err := db.Subscriber("U404")
	if !errors.Is(err, nudges.ErrNotFound) || !strings.Contains(err.Error(), "U404") {
		t.Errorf("err=%v, want ErrNotFound naming U404", err)
	}
}

func TestUpdateSubscriber(t *testing.T) {
	errBoom := errors.New("boom")
	tests := map[string]struct {
		existing bool
		fn       func(*nudges.Subscriber) error
		wantErr  error // nil: succeeds; errAny: any error
	}{
		"OK creates a zero subscriber": {
			fn: func(s *nudges.Subscriber) error {
				if s.UserID != "U1" || s.Subscribed || !s.NextDue.IsZero() {
					return fmt.Errorf("fn got %+v, want the zero subscriber U1", *s)
				}
				return nil
			},
		},
		"OK updates an existing one": {
			existing: true,
			fn: func(s *nudges.Subscriber) error {
				if !s.Subscribed {
					return errors.New("fn did not get the stored record")
				}
				s.Streak = 9
				return nil
			},
		},
		"ErrFn on a new subscriber writes nothing":       {fn: func(*nudges.Subscriber) error { return errBoom }, wantErr: errBoom},
		"ErrFn on an existing subscriber writes nothing": {existing: true, fn: func(s *nudges.Subscriber) error { s.Streak = 9; s.NextDue = base; return errBoom }, wantErr: errBoom},
		"ErrUserIDChanged":                               {existing: true, fn: func(s *nudges.Subscriber) error { s.UserID = "U2"; return nil }, wantErr: errAny},
		"ErrNextDueUnindexable":                          {existing: true, fn: func(s *nudges.Subscriber) error { s.NextDue = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC); return nil }, wantErr: errAny},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			db := MustOpen(t)
			var before nudges.Subscriber
			if tt.existing {
				before = subscribe(t, db, "U1", base.Add(time.Hour))
			}
			got, err := db.UpdateSubscriber("U1", tt.fn)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("UpdateSubscriber: %v", err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("err=%v, want %v", err, tt.wantErr)
			}
			stored, serr := db.Subscriber("U1")
			if tt.wantErr == nil {
				if serr != nil || !equalJSON(t, stored, got) {
					t.Errorf("stored=%+v (%v), want the returned %+v", stored, serr, got)
				}
				return
			}
			// Nothing written: the record and the due index are as before.
			if !tt.existing {
				if !errors.Is(serr, nudges.ErrNotFound) {
					t.Errorf("Subscriber after a failed create: err=%v, want ErrNotFound", serr)
				}
				return
			}
			if !equalJSON(t, stored, before) {
				t.Errorf("stored=%+v, want the untouched %+v", stored, before)
			}
			if ids := mustDue(t, db, base.Add(time.Hour)); !slices.Equal(ids, []string{"U1"}) {
				t.Errorf("Due=%v, want [U1]", ids)
			}
			if ids := mustDue(t, db, base); len(ids) != 0 {
				t.Errorf("Due(base)=%v, want none", ids)
			}
		})
	}
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")

// Ensure the due index always agrees with a brute-force scan of the
// records, through random schedule changes and deletions.
func TestDue_MatchesBruteForce(t *testing.T) {
	db := MustOpen(t)
	r := rand.New(rand.NewPCG(7, 11))
	users := make([]string, 40)
	for i := range users {
		users[i] = fmt.Sprintf("U%02d", i)
	}
	randomTime := func() time.Time {
		if r.IntN(5) == 0 {
			return time.Time{}
		}
		// Few distinct instants, so ties between users are common.
		return base.Add(time.Duration(r.IntN(20)) * time.Hour)
	}
	for step := range 400 {
		user := users[r.IntN(len(users))]
		switch r.IntN(10) {
		case 0:
			err := db.DeleteSubscriber(user)
			if err != nil && !errors.Is(err, nudges.ErrNotFound) {
				t.Fatalf("step %d: DeleteSubscriber: %v", step, err)
			}
		default:
			next := randomTime()
			if _, err := db.UpdateSubscriber(user, func(s *nudges.Subscriber) error { s.NextDue = next; return nil }); err != nil {
				t.Fatalf("step %d: UpdateSubscriber: %v", step, err)
			}
		}

		now := base.Add(time.Duration(r.IntN(24))*time.Hour - time.Minute)
		limit := r.IntN(6) // 0 means no limit
		want, oldest := bruteForceDue(t, db, now, limit)
		got, err := db.Due(now, limit)
		if err != nil {
			t.Fatalf("step %d: Due: %v", step, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: Due(%v, %d)=%v, want %v", step, now, limit, got, want)
		}
		gotOldest, ok, err := db.OldestDue()
		if err != nil || ok != !oldest.IsZero() || !gotOldest.Equal(oldest) {
			t.Fatalf("step %d: OldestDue=%v, %v, %v; want %v", step, gotOldest, ok, err, oldest)
		}
	}
}

// bruteForceDue reads every subscriber to find who is due, and the
// earliest NextDue of all.
func bruteForceDue(t *testing.T, db *storage.DB, now time.Time, limit int) ([]string, time.Time) {
	t.Helper()
	var (
		due    []nudges.Subscriber
		oldest time.Time
	)
	err := db.ForEachSubscriber(func(s nudges.Subscriber) error {
		if s.NextDue.IsZero() {
			return nil
		}
		if oldest.IsZero() || s.NextDue.Before(oldest) {
			oldest = s.NextDue
		}
		if !s.NextDue.After(now) {
			due = append(due, s)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ForEachSubscriber: %v", err)
	}
	slices.SortFunc(due, func(a, b nudges.Subscriber) int {
		return cmp.Or(a.NextDue.Compare(b.NextDue), strings.Compare(a.UserID, b.UserID))
	})
	var ids []string
	for _, s := range due {
		if limit > 0 && len(ids) == limit {
			break
		}
		ids = append(ids, s.UserID)
	}
	return ids, oldest
}

// Ensure Due and OldestDue on an empty schedule say so.
func TestDue_Empty(t *testing.T) {
	db := MustOpen(t)
	subscribe(t, db, "U1", time.Time{}) // subscribed but unscheduled
	if ids := mustDue(t, db, base.Add(1000*time.Hour)); len(ids) != 0 {
		t.Errorf("Due=%v, want none", ids)
	}
	if _, ok, err := db.OldestDue(); ok || err != nil {
		t.Errorf("OldestDue ok=%v, err=%v; want false, nil", ok, err)
	}
}

func TestCountSubscribers(t *testing.T) {
	db := MustOpen(t)
	for _, p := range []struct {
		user                 string
		subscribed, inactive bool
	}{
		{"U1", true, false},
		{"U2", true, false},
		{"U3", false, false},
		{"U4", true, true},
	} {
		_, err := db.UpdateSubscriber(p.user, func(s *nudges.Subscriber) error {
			s.Subscribed, s.Inactive = p.subscribed, p.inactive
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	total, active, err := db.CountSubscribers()
	if err != nil || total != 4 || active != 2 {
		t.Errorf("CountSubscribers=%d, %d, %v; want 4, 2, nil", total, active, err)
	}
}

// Ensure ForEachSubscriber visits everyone once, in order, across its
// pages, lets fn write, and stops at fn's error.
func TestForEachSubscriber(t *testing.T) {
	db := MustOpen(t)
	var want []string
	for i := range 300 { // more than one read page
		user := fmt.Sprintf("U%04d", i)
		subscribe(t, db, user, base)
		want = append(want, user)
	}

	t.Run("OK", func(t *testing.T) {
		var got []string
		err := db.ForEachSubscriber(func(s nudges.Subscriber) error {
			got = append(got, s.UserID)
			if len(got)%50 != 0 {
				return nil
			}
			// A write from inside the walk must not deadlock, nor make
			// the walk visit anyone twice.
			_, err := db.UpdateSubscriber(s.UserID, func(s *nudges.Subscriber) error { s.Streak++; return nil })
			return err
		})
		if err != nil {
			t.Fatalf("ForEachSubscriber: %v", err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("visited %d subscribers, want %d in order", len(got), len(want))
		}
		s, err := db.Subscriber("U0299")
		if err != nil || s.Streak != 1 {
			t.Errorf("Streak=%d (%v), want 1: each visited once", s.Streak, err)
		}
	})
	t.Run("ErrFn", func(t *testing.T) {
		errStop := errors.New("stop")
		n := 0
		err := db.ForEachSubscriber(func(nudges.Subscriber) error {
			n++
			if n == 260 {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) || n != 260 {
			t.Errorf("err=%v after %d calls, want errStop after 260", err, n)
		}
	})
}

// Ensure deleting a person removes everything about them and nothing
// about anyone else, including people whose id starts like theirs.
func TestDeleteSubscriber(t *testing.T) {
	db := MustOpen(t)
	for _, user := range []string{"U1", "U10", "U1-X"} {
		subscribe(t, db, user, base)
		if _, err := db.StartDelivery(pending(user, base), base, setNextDue(base.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordMissed(user, []time.Time{base.Add(-24 * time.Hour)}, base.Add(time.Hour), nil); err != nil {
			t.Fatal(err)
		}
	}

	if err := db.DeleteSubscriber("U1"); err != nil {
		t.Fatalf("DeleteSubscriber: %v", err)
	}

	if _, err := db.Subscriber("U1"); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("Subscriber(U1): err=%v, want ErrNotFound", err)
	}
	if ds, err := db.Deliveries("U1", time.Time{}); err != nil || len(ds) != 0 {
		t.Errorf("Deliveries(U1)=%v, %v; want none", ds, err)
	}
	if ids := mustDue(t, db, base.Add(time.Hour)); !slices.Equal(ids, []string{"U1-X", "U10"}) {
		t.Errorf("Due=%v, want [U1-X U10]", ids)
	}
	wantPending := []string{storage.DeliveryID("U1-X", base, false), storage.DeliveryID("U10", base, false)}
	if ids := mustPendingIDs(t, db); !slices.Equal(ids, wantPending) {
		t.Errorf("Pending=%v, want %v", ids, wantPending)
	}
	for _, user := range []string{"U10", "U1-X"} {
		if ds, err := db.Deliveries(user, time.Time{}); err != nil || len(ds) != 2 {
			t.Errorf("Deliveries(%s): %d, %v; want 2", user, len(ds), err)
		}
	}
	if err := db.DeleteSubscriber("U1"); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("second DeleteSubscriber: err=%v, want ErrNotFound", err)
	}
}
