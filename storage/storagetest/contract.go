package storagetest

// The contract of the storage ports (app/ports.go): one suite of
// behaviour tests that every engine runs, so the bbolt file and
// PostgreSQL keep the same promises (exactly-once starts, the due order,
// sealed reflections, forget, retention) by the same tests, not two
// copies. An engine calls Run from its own test with a function that
// makes a fresh, empty database for one test and returns how to open it
// (again, for the tests that restart).

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// Store is every storage port the core and the bot use.
type Store interface {
	app.Subscribers
	app.Settings
	app.Deliveries
	app.Reflections
	app.Exporter
	app.Digests
	app.Eraser
	MarkSeen(key string, at time.Time) (first bool, err error)
	// The Slack pace the bot learned (bot.PaceMemory).
	LearnedPace() (float64, error)
	SetLearnedPace(perMinute float64) error
	PruneSeen(before time.Time) (int, error)
	ApplyRetention(now time.Time) (removed int, err error)
	Close() error
}

// Options are what a test opens a database with.
type Options struct {
	Keys *storage.Keys
	// Now stamps what the store creates itself (missed deliveries,
	// closed pulses).
	Now func() time.Time
	// Retention is what ApplyRetention keeps; zero keeps everything.
	Retention time.Duration
}

// Opener opens the test's database; it may be called again after the
// store it returned was closed.
type Opener func(Options) (Store, error)

// NewDB makes a fresh, empty database for t, removed when t ends.
type NewDB func(t *testing.T) Opener

// Run runs the contract against the engine newDB makes.
func Run(t *testing.T, newDB NewDB) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, newDB)
		})
	}
}

type testCase struct {
	name string
	test func(*testing.T, NewDB)
}

var cases []testCase

// contract adds tests to the suite; each file of the package adds its own.
func contract(tests ...testCase) bool {
	cases = append(cases, tests...)
	return true
}

var base = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Key makes a 32-byte master key from a name.
func Key(name string) []byte {
	sum := sha256.Sum256([]byte(name))
	return sum[:]
}

func keys(t *testing.T, names ...string) *storage.Keys {
	t.Helper()
	var raw [][]byte
	for _, n := range names {
		raw = append(raw, Key(n))
	}
	k, err := storage.NewKeys(raw...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// clock is the fixed time the store stamps with.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// env is one test's open store and how to reopen it.
type env struct {
	t     *testing.T
	open  Opener
	db    Store
	clock *clock
	keys  *storage.Keys
}

func setup(t *testing.T, newDB NewDB) *env {
	t.Helper()
	e := &env{t: t, open: newDB(t), clock: &clock{t: base}, keys: keys(t, "master-1")}
	e.db = e.mustOpen(e.keys)
	return e
}

func (e *env) mustOpen(k *storage.Keys) Store {
	e.t.Helper()
	db, err := e.open(Options{Keys: k, Now: e.clock.Now})
	if err != nil {
		e.t.Fatalf("open: %v", err)
	}
	e.t.Cleanup(func() { _ = db.Close() })
	return db
}

// reopen closes the store and opens the same database with k.
func (e *env) reopen(k *storage.Keys) (Store, error) {
	e.t.Helper()
	if err := e.db.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	db, err := e.open(Options{Keys: k, Now: e.clock.Now})
	if err == nil {
		e.t.Cleanup(func() { _ = db.Close() })
	}
	return db, err
}

func (e *env) subscribe(userID string, nextDue time.Time) nudges.Subscriber {
	e.t.Helper()
	s, err := e.db.UpdateSubscriber(userID, func(s *nudges.Subscriber) error {
		s.Subscribed = true
		s.NextDue = nextDue
		return nil
	})
	if err != nil {
		e.t.Fatalf("UpdateSubscriber(%s): %v", userID, err)
	}
	return s
}

func pending(userID string, slot time.Time) nudges.Delivery {
	return nudges.Delivery{ID: storage.DeliveryID(userID, slot, false), UserID: userID, NudgeID: "lead-001", Slot: slot, State: nudges.StatePending, Created: slot}
}

func advanceTo(t time.Time) func(*nudges.Subscriber) error {
	return func(s *nudges.Subscriber) error { s.NextDue = t; return nil }
}

func sameJSON(t *testing.T, got, want any) bool {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	return string(g) == string(w)
}

func ids(ds []nudges.Delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

var _ = contract(
	testCase{"SubscriberRoundTripAndNotFound", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		if _, err := e.db.Subscriber("U1"); !errors.Is(err, nudges.ErrNotFound) {
			t.Fatalf("Subscriber(unknown): err=%v, want ErrNotFound", err)
		}
		want := nudges.Subscriber{UserID: "U1", Subscribed: true, SubscribedAt: base, ProfileTZ: "Europe/Berlin", NextDue: base.Add(time.Hour), Streak: 3}
		if _, err := e.db.UpdateSubscriber("U1", func(s *nudges.Subscriber) error { *s = want; return nil }); err != nil {
			t.Fatal(err)
		}
		got, err := e.db.Subscriber("U1")
		if err != nil || !sameJSON(t, got, want) {
			t.Fatalf("Subscriber=%+v, %v; want %+v", got, err, want)
		}
	}},
	testCase{"UpdateSubscriberWritesNothingOnError", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		e.subscribe("U1", base)
		boom := errors.New("boom")
		_, err := e.db.UpdateSubscriber("U1", func(s *nudges.Subscriber) error { s.NextDue = base.Add(time.Hour); return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("err=%v, want boom", err)
		}
		if _, err := e.db.UpdateSubscriber("U1", func(s *nudges.Subscriber) error { s.UserID = "U2"; return nil }); err == nil {
			t.Error("changing the user id was accepted")
		}
		if _, err := e.db.UpdateSubscriber("", func(*nudges.Subscriber) error { return nil }); err == nil {
			t.Error("an empty user id was accepted")
		}
		got, _ := e.db.Subscriber("U1")
		if !got.NextDue.Equal(base) {
			t.Errorf("NextDue=%v after failed updates, want %v", got.NextDue, base)
		}
		if due, _ := e.db.Due(base, 0); !slices.Equal(due, []string{"U1"}) {
			t.Errorf("Due=%v, want [U1]", due)
		}
	}},
	testCase{"ForEachAndCountSubscribers", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		var want []string
		for i := range 600 { // more than a page of any engine
			id := fmt.Sprintf("U%04d", i)
			want = append(want, id)
			if _, err := e.db.UpdateSubscriber(id, func(s *nudges.Subscriber) error {
				s.Subscribed = i%3 != 0
				s.Inactive = i%5 == 0
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		err := e.db.ForEachSubscriber(func(s nudges.Subscriber) error {
			got = append(got, s.UserID)
			return nil
		})
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("ForEachSubscriber saw %d (err %v), want all %d in id order", len(got), err, len(want))
		}
		stop := errors.New("stop")
		n := 0
		if err := e.db.ForEachSubscriber(func(nudges.Subscriber) error { n++; return stop }); err != stop || n != 1 {
			t.Errorf("ForEachSubscriber after stop: n=%d err=%v, want 1, stop unwrapped", n, err)
		}
		active := 0
		for i := range 600 {
			if i%3 != 0 && i%5 != 0 {
				active++
			}
		}
		total, act, err := e.db.CountSubscribers()
		if err != nil || total != 600 || act != active {
			t.Errorf("CountSubscribers=%d,%d,%v, want 600,%d", total, act, err, active)
		}
	}},
	testCase{"DueOrderLimitAndIndex", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		if _, ok, err := e.db.OldestDue(); ok || err != nil {
			t.Fatalf("OldestDue on empty: ok=%v err=%v", ok, err)
		}
		e.subscribe("U3", base.Add(time.Nanosecond))
		e.subscribe("U2", base)
		e.subscribe("U1", base)
		e.subscribe("U0", base.Add(time.Hour))
		e.subscribe("U9", time.Time{}) // not scheduled
		tests := []struct {
			now   time.Time
			limit int
			want  []string
		}{
			{base.Add(-time.Nanosecond), 0, nil},
			{base, 0, []string{"U1", "U2"}},
			{base.Add(time.Nanosecond), 0, []string{"U1", "U2", "U3"}},
			{base.Add(time.Hour), 2, []string{"U1", "U2"}},
			{base.Add(48 * time.Hour), 0, []string{"U1", "U2", "U3", "U0"}},
		}
		for _, tt := range tests {
			got, err := e.db.Due(tt.now, tt.limit)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Due(%v, %d)=%v, %v; want %v", tt.now, tt.limit, got, err, tt.want)
			}
		}
		// Moving a due time moves its index entry.
		e.subscribe("U1", base.Add(2*time.Hour))
		e.subscribe("U2", time.Time{})
		if got, _ := e.db.Due(base.Add(time.Hour), 0); !slices.Equal(got, []string{"U3", "U0"}) {
			t.Errorf("Due after moves=%v, want [U3 U0]", got)
		}
		oldest, ok, err := e.db.OldestDue()
		if err != nil || !ok || !oldest.Equal(base.Add(time.Nanosecond)) {
			t.Errorf("OldestDue=%v,%v,%v, want %v", oldest, ok, err, base.Add(time.Nanosecond))
		}
	}},
	testCase{"Settings", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		if until, err := e.db.PausedAll(); err != nil || !until.IsZero() {
			t.Fatalf("PausedAll=%v,%v, want zero", until, err)
		}
		if err := e.db.SetPausedAll(base.Add(72 * time.Hour)); err != nil {
			t.Fatal(err)
		}
		if until, _ := e.db.PausedAll(); !until.Equal(base.Add(72 * time.Hour)) {
			t.Errorf("PausedAll=%v", until)
		}
		if err := e.db.SetPausedAll(time.Time{}); err != nil {
			t.Fatal(err)
		}
		if until, _ := e.db.PausedAll(); !until.IsZero() {
			t.Errorf("PausedAll after lifting=%v", until)
		}
		if lines, set, err := e.db.StrategyLines(); set || err != nil || lines != nil {
			t.Fatalf("StrategyLines before any=%v,%v,%v", lines, set, err)
		}
		if err := e.db.SetStrategyLines([]string{"We grow in Europe.", "Quality first."}); err != nil {
			t.Fatal(err)
		}
		if lines, set, _ := e.db.StrategyLines(); !set || !slices.Equal(lines, []string{"We grow in Europe.", "Quality first."}) {
			t.Errorf("StrategyLines=%v,%v", lines, set)
		}
		if err := e.db.SetStrategyLines(nil); err != nil {
			t.Fatal(err)
		}
		if lines, set, _ := e.db.StrategyLines(); !set || len(lines) != 0 {
			t.Errorf("StrategyLines after clearing=%v,%v, want set and empty", lines, set)
		}
	}},
	testCase{"LearnedPace", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		if v, err := e.db.LearnedPace(); err != nil || v != 0 {
			t.Fatalf("LearnedPace before any=%v,%v, want 0", v, err)
		}
		for _, want := range []float64{287.5, 932} {
			if err := e.db.SetLearnedPace(want); err != nil {
				t.Fatal(err)
			}
			if v, err := e.db.LearnedPace(); err != nil || v != want {
				t.Errorf("LearnedPace=%v,%v, want %v", v, err, want)
			}
		}
	}},
	testCase{"MarkSeenOnceAndPrune", func(t *testing.T, newDB NewDB) {
		e := setup(t, newDB)
		for i, want := range []bool{true, false} {
			first, err := e.db.MarkSeen("env-1", base)
			if err != nil || first != want {
				t.Errorf("MarkSeen #%d=%v,%v, want %v", i+1, first, err, want)
			}
		}
		if _, err := e.db.MarkSeen("env-2", base.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.MarkSeen("", base); err == nil {
			t.Error("an empty key was accepted")
		}
		n, err := e.db.PruneSeen(base.Add(time.Minute))
		if err != nil || n != 1 {
			t.Errorf("PruneSeen=%d,%v, want 1", n, err)
		}
		if first, _ := e.db.MarkSeen("env-1", base); !first {
			t.Error("a pruned envelope is still seen")
		}
		if first, _ := e.db.MarkSeen("env-2", base); first {
			t.Error("a kept envelope was forgotten")
		}
	}},
)
