package storage_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// Shapes of the scheduler's storage work, as app.Service.Tick does it.
const (
	tickSenders   = 12  // app.Config.Senders' default
	tickPlanChunk = 128 // app's planChunk: starts per StartDeliveries
)

// BenchmarkTick is the storage side of one scheduler tick that plans and
// sends 1,000 nudges among 10,000 subscribers, as app.Service.Tick drives it:
// find who is due, load each with their history, record the planned
// deliveries in chunks, then 12 senders each load a delivery and its
// subscriber, record the attempt (which must be durable before the
// post) and record it sent without waiting for that (the sender goes on
// to its next delivery); the tick ends once every mark is durable. Slack
// is left out, so the time is storage time; every commit pays its fsyncs
// on the test's disk. Each iteration is the next day, with the same
// people due again.
//
//	go test -run '^$' -bench Tick -benchtime 10x ./storage/
func BenchmarkTick(b *testing.B) {
	const total, due = 10_000, 1_000
	db := MustOpen(b)
	subs := make([]nudges.Subscriber, total)
	for i := range subs {
		next := base.Add(time.Duration(i) * time.Second) // the first 1,000 are due
		if i >= due {
			next = base.AddDate(1, 0, 0).Add(time.Duration(i) * time.Second) // not due this year
		}
		subs[i] = nudges.Subscriber{UserID: fmt.Sprintf("U%06d", i), Subscribed: true, ProfileTZ: "UTC", DMChannel: fmt.Sprintf("D%06d", i), NextDue: next}
	}
	if err := db.ImportSubscribers(subs); err != nil {
		b.Fatal(err)
	}
	now := base.Add(due * time.Second)
	before := db.Stats()
	b.ResetTimer()
	for b.Loop() {
		if n := tickStorage(b, db, now); n != due {
			b.Fatalf("the tick sent %d, want %d", n, due)
		}
		now = now.Add(24 * time.Hour)
	}
	after := db.Stats()
	b.ReportMetric(float64(after.Commits-before.Commits)/float64(b.N), "commits/op")
	b.ReportMetric(float64(after.Writes-before.Writes)/float64(b.N), "writes/op")
	b.ReportMetric(float64(after.PagesWritten-before.PagesWritten)/float64(b.N), "pages/op")
}

// tickStorage plans and "sends" everyone due at now and returns how many
// were sent.
func tickStorage(b *testing.B, db *storage.DB, now time.Time) int {
	ids, err := db.Due(now, 0)
	if err != nil {
		b.Fatal(err)
	}
	queue := make(chan string, 256)
	var (
		wg, marks sync.WaitGroup
		sent      atomic.Int64
	)
	for range tickSenders {
		wg.Go(func() {
			for id := range queue {
				if err := sendStorage(db, id, now, &marks, &sent); err != nil {
					b.Error(err)
				}
			}
		})
	}
	var starts []nudges.DeliveryStart
	flush := func() {
		created, errs := db.StartDeliveries(starts)
		for i, st := range starts {
			if errs[i] != nil || !created[i] {
				b.Errorf("start %s: created=%v, %v", st.Delivery.ID, created[i], errs[i])
				continue
			}
			queue <- st.Delivery.ID
		}
		starts = starts[:0]
	}
	for _, id := range ids {
		s, err := db.Subscriber(id)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Deliveries(id, now.AddDate(0, 0, -60)); err != nil {
			b.Fatal(err)
		}
		slot, next := s.NextDue, s.NextDue.Add(24*time.Hour)
		d := pending(id, slot)
		starts = append(starts, nudges.DeliveryStart{Delivery: d, ExpectNextDue: slot, Advance: func(s *nudges.Subscriber) error {
			s.NextDue, s.LastSlot = next, slot
			return nil
		}})
		if len(starts) == tickPlanChunk {
			flush()
		}
	}
	flush()
	close(queue)
	wg.Wait()
	marks.Wait()
	return int(sent.Load())
}

// sendStorage is what a sender asks of storage for one delivery; the
// sent mark is left to finish under marks, counted in sent.
func sendStorage(db *storage.DB, id string, now time.Time, marks *sync.WaitGroup, sent *atomic.Int64) error {
	d, err := db.Delivery(id)
	if err != nil {
		return err
	}
	s, err := db.Subscriber(d.UserID)
	if err != nil {
		return err
	}
	if _, err := db.UpdateDelivery(id, func(d *nudges.Delivery) error {
		d.Attempts++
		d.TryAt = now
		d.Channel = s.DMChannel
		return nil
	}); err != nil {
		return err
	}
	marks.Go(func() {
		_, err := db.UpdateDelivery(id, func(d *nudges.Delivery) error {
			d.State = nudges.StateSent
			d.TS = "1.000100"
			d.SentAt = now
			return nil
		})
		if err == nil {
			sent.Add(1)
		}
	})
	return nil
}
