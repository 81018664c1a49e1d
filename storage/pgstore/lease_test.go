package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/pgstore"
)

const leaseTTL = 10 * time.Second

// replica opens a second store on the schema of opts, as another
// process sharing the database would.
func replica(t *testing.T, opts pgstore.Options) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// expireLease ends the lease now by the database's clock, as ttl passing
// without a renewal would (the leader died, or is paused).
func expireLease(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	exec(t, conn, "UPDATE leases SET expires_at = clock_timestamp() - interval '1 millisecond' WHERE name = 'scheduler'")
}

func lead(t *testing.T, s *pgstore.Store, holder string, epoch int64) (int64, time.Duration) {
	t.Helper()
	held, left, err := s.Lead(holder, epoch, leaseTTL)
	if err != nil {
		t.Fatalf("%s leads under %d: %v", holder, epoch, err)
	}
	return held, left
}

// Ensure the lease is held by one replica at a time: the first takes it,
// renews it under its epoch, the other is told how long it still runs;
// once it expires the other takes it with the next epoch, and the former
// holder can no longer renew.
func TestLeaseOneHolder(t *testing.T) {
	a, conn, opts := open(t)
	b := replica(t, opts)
	if held, left := lead(t, a, "a", 0); held != 1 || left != leaseTTL {
		t.Fatalf("a took the free lease: epoch %d, left %s; want 1, %s", held, left, leaseTTL)
	}
	if held, left := lead(t, b, "b", 0); held != 0 || left <= 0 || left > leaseTTL {
		t.Fatalf("b while a holds it: epoch %d, left %s; want 0 and the time a's lease still runs", held, left)
	}
	if held, _ := lead(t, a, "a", 1); held != 1 {
		t.Fatalf("a renewing: epoch %d, want 1", held)
	}
	expireLease(t, conn)
	if held, _ := lead(t, b, "b", 0); held != 2 {
		t.Fatalf("b after a's lease expired: epoch %d, want 2", held)
	}
	if held, left := lead(t, a, "a", 1); held != 0 || left <= 0 {
		t.Fatalf("a renewing a lease b took: epoch %d, left %s; want 0", held, left)
	}
	var holder string
	var epoch int64
	if err := conn.QueryRow(context.Background(), "SELECT holder, epoch FROM leases WHERE name = 'scheduler'").Scan(&holder, &epoch); err != nil || holder != "b" || epoch != 2 {
		t.Errorf("lease row: %s under %d (%v), want b under 2", holder, epoch, err)
	}
}

// Ensure a released lease is taken at the next try, not when it would
// have expired, and that the one who released it writes as leader no
// more.
func TestLeaseRelease(t *testing.T) {
	a, _, opts := open(t)
	b := replica(t, opts)
	lead(t, a, "a", 0)
	if err := a.Release("a", 1); err != nil {
		t.Fatal(err)
	}
	if held, _ := lead(t, b, "b", 0); held != 2 {
		t.Fatalf("b after a released: epoch %d, want 2", held)
	}
	if err := a.RecordDigest("CTEAM", nudges.PostedDigest{At: base}); !errors.Is(err, pgstore.ErrNotLeader) {
		t.Errorf("a's digest record after releasing: %v, want ErrNotLeader", err)
	}
}

// Ensure contenders racing for an expired lease, in two processes with
// several workers each, leave exactly one holder per epoch, and the
// epochs count up by one per takeover.
func TestLeaseContendersOneWinnerPerEpoch(t *testing.T) {
	a, conn, opts := open(t)
	stores := []*pgstore.Store{a, replica(t, opts)}
	const rounds, workers = 10, 6
	for round := range rounds {
		expireLease(t, conn)
		var (
			mu   sync.Mutex
			won  []string
			wg   sync.WaitGroup
			held = map[int64]int{}
		)
		start := make(chan struct{})
		for w := range workers {
			wg.Go(func() {
				<-start
				holder := fmt.Sprintf("r%d-w%d", round, w)
				epoch, _, err := stores[w%2].Lead(holder, 0, leaseTTL)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("%s: %v", holder, err)
					return
				}
				if epoch != 0 {
					won = append(won, holder)
					held[epoch]++
				}
			})
		}
		close(start)
		wg.Wait()
		if len(won) != 1 || held[int64(round+1)] != 1 {
			t.Fatalf("round %d: winners %v with epochs %v; want exactly one, under epoch %d", round, won, held, round+1)
		}
	}
}

// Ensure a former leader (paused past its lease, then resumed) writes
// nothing as leader: claiming due slots, recording missed ones, the
// digest and pulse records and retention are all refused with
// ErrNotLeader and leave the database as it was, while the new leader's
// same writes go through. A nudge a person asks for now is not the
// leader's work, and any replica records it.
func TestStaleLeaderWritesNothing(t *testing.T) {
	_, conn, opts := open(t)
	opts.Retention = nudges.MinRetention
	old, cur := replica(t, opts), replica(t, opts)
	sub := nudges.Subscriber{UserID: "U1", Subscribed: true, NextDue: base}
	if err := old.ImportSubscribers([]nudges.Subscriber{sub}); err != nil {
		t.Fatal(err)
	}
	if err := old.OpenPulse("CTEAM", "CTEAM-1", base); err != nil {
		t.Fatal(err) // no elector yet: not fenced
	}
	lead(t, old, "old", 0)
	expireLease(t, conn) // old is paused past its lease
	lead(t, cur, "cur", 0)

	start := func(userID string, manual bool) nudges.DeliveryStart {
		d := nudges.Delivery{ID: storage.DeliveryID(userID, base, manual), UserID: userID, Slot: base, Manual: manual, State: nudges.StatePending, Created: base}
		if manual {
			return nudges.DeliveryStart{Delivery: d}
		}
		return nudges.DeliveryStart{
			Delivery:      d,
			ExpectNextDue: base,
			Advance:       func(s *nudges.Subscriber) error { s.NextDue = base.Add(24 * time.Hour); return nil },
		}
	}
	stale := map[string]func(s *pgstore.Store) error{
		"StartDeliveries": func(s *pgstore.Store) error {
			_, errs := s.StartDeliveries([]nudges.DeliveryStart{start("U1", false)})
			return errs[0]
		},
		"RecordMissed": func(s *pgstore.Store) error {
			return s.RecordMissed("U1", []time.Time{base.Add(-24 * time.Hour)}, base, nil)
		},
		"RecordDigest":      func(s *pgstore.Store) error { return s.RecordDigest("CTEAM", nudges.PostedDigest{At: base}) },
		"MarkDigestBroken":  func(s *pgstore.Store) error { _, err := s.MarkDigestBroken("CTEAM", "not_in_channel"); return err },
		"ClearDigestBroken": func(s *pgstore.Store) error { return s.ClearDigestBroken("CTEAM") },
		"OpenPulse":         func(s *pgstore.Store) error { return s.OpenPulse("CTEAM", "CTEAM-2", base) },
		"ClosePulse":        func(s *pgstore.Store) error { _, err := s.ClosePulse("CTEAM-1"); return err },
		"ApplyRetention":    func(s *pgstore.Store) error { _, err := s.ApplyRetention(base); return err },
		"PruneSeen":         func(s *pgstore.Store) error { _, err := s.PruneSeen(base); return err },
	}
	snapshot := func() string {
		var dump string
		err := conn.QueryRow(context.Background(), `SELECT concat_ws(' | ',
			(SELECT string_agg(record::text, ',' ORDER BY user_id) FROM subscribers),
			(SELECT string_agg(id, ',' ORDER BY id) FROM deliveries),
			(SELECT string_agg(channel || state::text, ',') FROM digests),
			(SELECT string_agg(id || coalesce(closed::text, 'open'), ',' ORDER BY id) FROM pulses))`).Scan(&dump)
		if err != nil {
			t.Fatal(err)
		}
		return dump
	}
	before := snapshot()
	for name, write := range stale {
		if err := write(old); !errors.Is(err, pgstore.ErrNotLeader) {
			t.Errorf("%s by the former leader: %v, want ErrNotLeader", name, err)
		}
	}
	if after := snapshot(); after != before {
		t.Errorf("the former leader's refused writes changed the database:\nbefore %s\nafter  %s", before, after)
	}
	cs, errs := old.StartDeliveries([]nudges.DeliveryStart{start("U1", true)})
	if errs[0] != nil || !cs[0] {
		t.Errorf("a nudge asked for now, recorded by the former leader: created %v, %v; want it recorded", cs[0], errs[0])
	}
	for _, name := range []string{"StartDeliveries", "RecordDigest", "ClosePulse", "ApplyRetention"} {
		if err := stale[name](cur); err != nil {
			t.Errorf("%s by the leader: %v", name, err)
		}
	}
}

// Ensure a schedule changed on one replica wakes the one listening, and
// that the listener is woken once it listens (a wake sent while it was
// not is not lost).
func TestWakesReachTheOtherReplica(t *testing.T) {
	a, _, opts := open(t)
	b := replica(t, opts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wakes := a.ListenWakes(ctx)
	waitWake := func(what string) {
		t.Helper()
		select {
		case <-wakes:
		case <-time.After(10 * time.Second):
			t.Fatalf("no wake %s", what)
		}
	}
	waitWake("on listening")
	for i := range 3 {
		b.WakeLeader()
		waitWake(fmt.Sprintf("for the other replica's change %d", i+1))
	}
}

func present(t *testing.T, s *pgstore.Store, holder string, ttl time.Duration) int {
	t.Helper()
	n, err := s.Present(holder, ttl)
	if err != nil {
		t.Fatalf("%s present: %v", holder, err)
	}
	return n
}

// Ensure the replicas count one another by the rows they refresh: three
// present are three; one that stops refreshing is not counted once its
// row expires by the database's clock, and its row is gone; one that
// departs is not counted at once. The scheduler's lease is neither
// counted nor touched.
func TestPresenceCountsLiveReplicas(t *testing.T) {
	a, conn, opts := open(t)
	b, c := replica(t, opts), replica(t, opts)
	lead(t, a, "a", 0)
	if n := present(t, a, "a", leaseTTL); n != 1 {
		t.Fatalf("a alone: %d replicas, want 1", n)
	}
	if n := present(t, b, "b", leaseTTL); n != 2 {
		t.Fatalf("a and b: %d replicas, want 2", n)
	}
	// c lives 200ms unrefreshed, by the database's clock.
	if n := present(t, c, "c", 200*time.Millisecond); n != 3 {
		t.Fatalf("a, b and c: %d replicas, want 3", n)
	}
	if n := present(t, a, "a", leaseTTL); n != 3 {
		t.Fatalf("a refreshing among three: %d replicas, want 3", n)
	}
	exec(t, conn, "SELECT pg_sleep(0.3)") // c stopped refreshing
	if n := present(t, a, "a", leaseTTL); n != 2 {
		t.Fatalf("after c's row expired: %d replicas, want 2", n)
	}
	var rows int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM leases WHERE name <> 'scheduler'").Scan(&rows); err != nil || rows != 2 {
		t.Errorf("presence rows after c's expired: %d (%v), want 2: an expired one is deleted", rows, err)
	}
	if err := b.Depart("b"); err != nil {
		t.Fatal(err)
	}
	if n := present(t, a, "a", leaseTTL); n != 1 {
		t.Fatalf("after b departed: %d replicas, want 1", n)
	}
	if holder, _, err := pgstore.Leader(context.Background(), opts); err != nil || holder != "a" {
		t.Errorf("the scheduler's lease after the replicas came and went: held by %q (%v), want a", holder, err)
	}
	if held, _ := lead(t, a, "a", 1); held != 1 {
		t.Errorf("a renewing its lease: epoch %d, want 1", held)
	}
}
