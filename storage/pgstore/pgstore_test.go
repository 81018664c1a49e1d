package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/pgstore"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

var base = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func testKeys(t testing.TB) *storage.Keys {
	t.Helper()
	k, err := storage.NewKeys(storagetest.Key("master-1"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// open opens a store in a fresh schema, and a plain connection into the
// same schema to look at and damage rows as an attacker with database
// access (and no key) would.
func open(t *testing.T) (*pgstore.Store, *pgx.Conn, pgstore.Options) {
	t.Helper()
	url := testURL(t)
	opts := pgstore.Options{URL: url, Schema: freshSchema(t, url), Keys: testKeys(t), Now: func() time.Time { return base }, MaxConns: 4}
	s, err := pgstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(context.Background(), "SET search_path TO "+opts.Schema); err != nil {
		t.Fatal(err)
	}
	return s, conn, opts
}

func exec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// No row holds a reflection's text or commitment in the clear.
func TestReflectionsSealedAtRest(t *testing.T) {
	s, conn, _ := open(t)
	if _, err := s.SaveReflection(nudges.Reflection{UserID: "U1", Text: "zebra-secret-text", Commitment: "okapi-plan"}); err != nil {
		t.Fatal(err)
	}
	var dump string
	err := conn.QueryRow(context.Background(), `SELECT string_agg(r::text, ' ') FROM (
		SELECT row_to_json(x)::text AS r FROM reflections x UNION ALL SELECT row_to_json(k)::text FROM data_keys k) t`).Scan(&dump)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"zebra-secret-text", "okapi-plan", hexOf("zebra-secret-text")} {
		if strings.Contains(dump, secret) {
			t.Errorf("the database holds %q in the clear", secret)
		}
	}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := range len(s) {
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

// Someone who can write the database but has no key flips a private
// reflection to shared: it fails to open, and no digest shows it.
func TestTamperedShareRefused(t *testing.T) {
	s, conn, _ := open(t)
	if _, err := s.SaveReflection(nudges.Reflection{UserID: "U1", Text: "private thoughts", Created: base}); err != nil {
		t.Fatal(err)
	}
	exec(t, conn, `UPDATE reflections SET share = 'named', record = jsonb_set(record, '{share}', '"named"')`)
	shared, err := s.SharedReflections([]string{"U1"}, base.Add(-time.Hour), base.Add(time.Hour))
	if err != nil || len(shared) != 0 {
		t.Errorf("SharedReflections=%v,%v: a tampered reflection was shared", shared, err)
	}
	if _, err := s.Reflection("U1", 1); !errors.Is(err, storage.ErrTampered) {
		t.Errorf("Reflection: err=%v, want ErrTampered", err)
	}
	var recs []nudges.PersonRecord
	if err := s.ExportPerson("U1", func(r nudges.PersonRecord) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Unreadable == nil || recs[0].Unreadable.Seq != 1 {
		t.Errorf("export=%+v: want the reflection named as unreadable", recs)
	}
}

// A Forget cut short after its first step (the data key gone) is
// finished by the next Open; the reflections were unreadable meanwhile.
func TestUnfinishedForgetFinishedAtOpen(t *testing.T) {
	s, conn, opts := open(t)
	if _, err := s.UpdateSubscriber("U1", func(sub *nudges.Subscriber) error { sub.Subscribed = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveReflection(nudges.Reflection{UserID: "U1", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	exec(t, conn, "DELETE FROM data_keys WHERE user_id = 'U1'")
	exec(t, conn, "INSERT INTO forgetting (user_id, since) VALUES ('U1', 0)")
	if _, err := s.Reflection("U1", 1); err == nil {
		t.Error("a reflection opened without its data key")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := pgstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var left int
	err = conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM subscribers) + (SELECT count(*) FROM reflections) + (SELECT count(*) FROM forgetting)`).Scan(&left)
	if err != nil || left != 0 {
		t.Errorf("%d rows left after Open (%v), want 0", left, err)
	}
}

// Replicas starting together migrate once; a database from a newer
// nudgebot is refused, never written.
func TestMigrations(t *testing.T) {
	_, conn, opts := open(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := pgstore.Open(context.Background(), opts)
			if err == nil {
				_ = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
	var n, v int
	if err := conn.QueryRow(context.Background(), "SELECT count(*), max(version) FROM schema_migrations").Scan(&n, &v); err != nil || n != pgstore.SchemaVersion() || v != pgstore.SchemaVersion() {
		t.Errorf("schema_migrations: %d rows, version %d, %v", n, v, err)
	}
	exec(t, conn, "INSERT INTO schema_migrations (version, name) VALUES (999, '0999_future.sql')")
	if _, err := pgstore.Open(context.Background(), opts); !errors.Is(err, storage.ErrNewerSchema) {
		t.Errorf("open of a newer schema: %v, want ErrNewerSchema", err)
	}
}

func TestOpenRefusesClearly(t *testing.T) {
	for name, tt := range map[string]struct {
		url  string
		want string
	}{
		"no url":      {"", "storage.url"},
		"not a url":   {"postgres://a:b@[bad", "not a PostgreSQL connection string"},
		"nobody home": {"postgres://postgres:hunter2@127.0.0.1:1/test?connect_timeout=2", "cannot reach PostgreSQL"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := pgstore.Open(context.Background(), pgstore.Options{URL: tt.url, Timeout: 5 * time.Second})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open(%q)=%v, want it to say %q", tt.url, err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// Due reads the due index from its start to now, not the table: the
// plan PostgreSQL picks among 20,000 people with 10 due.
func TestDueReadsTheIndex(t *testing.T) {
	s, conn, _ := open(t)
	subs := make([]nudges.Subscriber, 20_000)
	for i := range subs {
		next := base.Add(time.Duration(i) * time.Second)
		if i >= 10 {
			next = next.AddDate(1, 0, 0)
		}
		subs[i] = nudges.Subscriber{UserID: fmt.Sprintf("U%06d", i), Subscribed: true, NextDue: next}
	}
	if err := s.ImportSubscribers(subs); err != nil {
		t.Fatal(err)
	}
	due, err := s.Due(base.Add(time.Hour), 0)
	if err != nil || len(due) != 10 {
		t.Fatalf("Due: %d, %v", len(due), err)
	}
	var plan string
	err = conn.QueryRow(context.Background(), "EXPLAIN (FORMAT JSON) "+pgstore.DueQuery, base.Add(time.Hour).UnixNano(), nil).Scan(&plan)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, `"Index Name": "subscribers_due"`) || strings.Contains(plan, "Seq Scan") {
		t.Errorf("the due query does not read subscribers_due: %s", plan)
	}
}

// The admin endpoints' view: a check that passes, a size, no backup of
// the file kind, and a write fault while the server is gone that a probe
// clears once it is back.
func TestAdminView(t *testing.T) {
	s, conn, opts := open(t)
	<-s.StartCheck()
	if done, err := s.CheckResult(); !done || err != nil {
		t.Errorf("CheckResult=%v,%v", done, err)
	}
	if n, err := s.Size(); err != nil || n <= 0 {
		t.Errorf("Size=%d,%v", n, err)
	}
	if _, err := s.WriteTo(nil); !errors.Is(err, pgstore.ErrFileOnly) || !strings.Contains(err.Error(), "pg_dump") {
		t.Errorf("WriteTo=%v, want ErrFileOnly naming pg_dump", err)
	}
	// Terminate every connection of the store's pool, as a server restart
	// or a failover does: the next write fails on a dead connection.
	exec(t, conn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", "nudgebot/"+opts.Schema)
	_, err := s.UpdateSubscriber("U1", func(sub *nudges.Subscriber) error { sub.Subscribed = true; return nil })
	if err == nil {
		t.Skip("the pool reconnected before the write failed; no fault to observe")
	}
	if _, ferr := s.WriteFault(); ferr == nil {
		t.Fatalf("a write failed (%v) but WriteFault reports none", err)
	}
	if err := s.ProbeWrite(); err != nil {
		t.Errorf("ProbeWrite with the server back: %v", err)
	}
	if _, ferr := s.WriteFault(); ferr != nil {
		t.Errorf("the fault stands after a successful probe: %v", ferr)
	}
}

// Saves racing a Forget: whatever order they commit in, no reflection is
// left behind sealed under the destroyed key; one saved after the Forget
// belongs to the person's fresh start, and opens.
func TestForgetRacingSaves(t *testing.T) {
	s, conn, _ := open(t)
	if _, err := s.SaveReflection(nudges.Reflection{UserID: "U1", Text: "first"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { _, _ = s.SaveReflection(nudges.Reflection{UserID: "U1", Text: fmt.Sprintf("racing %d", i)}) })
	}
	wg.Go(func() {
		if err := s.Forget("U1"); err != nil {
			t.Errorf("Forget: %v", err)
		}
	})
	wg.Wait()
	var orphans int
	err := conn.QueryRow(context.Background(), `SELECT count(*) FROM reflections r
		WHERE NOT EXISTS (SELECT 1 FROM data_keys k WHERE k.user_id = r.user_id AND k.key_id = r.data_key)`).Scan(&orphans)
	if err != nil || orphans != 0 {
		t.Errorf("%d reflections left sealed under a destroyed key (%v)", orphans, err)
	}
	rs, err := s.Reflections("U1", 0)
	if err != nil {
		t.Fatalf("the reflections saved after the forget do not open: %v", err)
	}
	for _, r := range rs {
		if r.Text == "first" {
			t.Error("the reflection from before the forget survived it")
		}
	}
}

// Changes to a record that does not exist yet, at once: none is lost.
func TestConcurrentFirstWrites(t *testing.T) {
	s, _, _ := open(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.UpdateSubscriber("U1", func(sub *nudges.Subscriber) error { sub.Streak++; return nil }); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := s.MarkDigestBroken("C1", "gone"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if sub, _ := s.Subscriber("U1"); sub.Streak != 8 {
		t.Errorf("streak %d after 8 increments", sub.Streak)
	}
	if first, _ := s.MarkDigestBroken("C1", "again"); first {
		t.Error("the channel lost its mark")
	}
}

// Two processes sharing the database (two replicas, or an old and a new
// one during a deploy) plan the same 50 people at once, each with
// several workers: every slot is recorded once, every due time advanced
// once.
func TestTwoStoresClaimOnce(t *testing.T) {
	a, _, opts := open(t)
	b, err := pgstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const people = 50
	subs := make([]nudges.Subscriber, people)
	for i := range subs {
		subs[i] = nudges.Subscriber{UserID: fmt.Sprintf("U%03d", i), Subscribed: true, NextDue: base}
	}
	if err := a.ImportSubscribers(subs); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		created = map[string]int{}
		wg      sync.WaitGroup
	)
	for w := range 8 {
		store := a
		if w%2 == 1 {
			store = b
		}
		wg.Go(func() {
			starts := make([]nudges.DeliveryStart, people)
			for i := range starts {
				// Each worker walks the people in another order.
				id := fmt.Sprintf("U%03d", (i+w*7)%people)
				starts[i] = nudges.DeliveryStart{
					Delivery:      nudges.Delivery{ID: storage.DeliveryID(id, base, false), UserID: id, Slot: base, State: nudges.StatePending, Created: base},
					ExpectNextDue: base,
					Advance:       func(s *nudges.Subscriber) error { s.NextDue = base.Add(24 * time.Hour); return nil },
				}
			}
			cs, errs := store.StartDeliveries(starts)
			mu.Lock()
			defer mu.Unlock()
			for i := range starts {
				if cs[i] {
					created[starts[i].Delivery.UserID]++
				}
				if errs[i] != nil && !errors.Is(errs[i], storage.ErrConflict) {
					t.Errorf("%s: %v", starts[i].Delivery.ID, errs[i])
				}
			}
		})
	}
	wg.Wait()
	for _, sub := range subs {
		if created[sub.UserID] != 1 {
			t.Errorf("%s recorded %d times", sub.UserID, created[sub.UserID])
		}
	}
	if due, _ := a.Due(base.Add(time.Hour), 0); len(due) != 0 {
		t.Errorf("still due: %v", due)
	}
	if p, _ := b.Pending(); len(p) != people {
		t.Errorf("outbox holds %d, want %d", len(p), people)
	}
}

// Ensure a delivery held as it was written, or as it was read back,
// matches its row, so that a nudge's attempt and sent mark each take the
// one-statement path; and that a stale copy never overwrites the row.
func TestSwapFromHeldDelivery(t *testing.T) {
	s, _, _ := open(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ImportSubscribers([]nudges.Subscriber{{UserID: "U1", Subscribed: true, NextDue: base}}); err != nil {
		t.Fatal(err)
	}
	// As planning makes one: local times, and a creation time that
	// carries the monotonic clock.
	slot := base.In(berlin)
	d := nudges.Delivery{ID: storage.DeliveryID("U1", slot, false), UserID: "U1", NudgeID: "lead-001", Slot: slot, State: nudges.StatePending,
		Created: time.Now(), Reason: "a reason with \"quotes\" & <marks> and ünïcode"}
	if _, err := s.StartDelivery(d, base, func(sub *nudges.Subscriber) error { sub.NextDue = base.Add(time.Hour); return nil }); err != nil {
		t.Fatal(err)
	}
	attempted := d
	attempted.Attempt(time.Now().In(berlin), "D1")
	if ok, err := s.SwapDelivery(d, attempted); !ok || err != nil {
		t.Fatalf("from the delivery as written: swapped=%v, %v", ok, err)
	}
	read, err := s.Delivery(d.ID)
	if err != nil {
		t.Fatal(err)
	}
	sent := read
	sent.Sent(time.Now(), "D1", "1.2")
	if ok, err := s.SwapDelivery(read, sent); !ok || err != nil {
		t.Fatalf("from the delivery as read back: swapped=%v, %v", ok, err)
	}
	if ok, err := s.SwapDelivery(attempted, attempted); ok || err != nil {
		t.Errorf("from a stale copy: swapped=%v, %v; want refused", ok, err)
	}
	if got, _ := s.Delivery(d.ID); got.State != nudges.StateSent || got.TS != "1.2" {
		t.Errorf("stored %+v, want the sent mark", got)
	}
}

// Ensure a database being copied by migrate refuses a bot's Open and a
// second copy, and opens again once the copy lets go.
func TestOpenRefusedWhileCopying(t *testing.T) {
	_, _, opts := open(t)
	release, err := pgstore.HoldForCopy(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pgstore.Open(context.Background(), opts)
	if !errors.Is(err, storage.ErrInUse) || !strings.Contains(err.Error(), "nudgebot migrate is copying this database") {
		t.Errorf("Open mid-copy: %v; want it refused, in use", err)
	}
	if _, err := pgstore.HoldForCopy(context.Background(), opts); !errors.Is(err, storage.ErrInUse) {
		t.Errorf("a second copy: %v; want it refused, in use", err)
	}
	release()
	again, err := pgstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open after the copy: %v", err)
	}
	_ = again.Close()
}
