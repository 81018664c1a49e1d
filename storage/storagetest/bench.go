package storagetest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// BenchStore is a Store that can be seeded with many people at once.
type BenchStore interface {
	Store
	ImportSubscribers([]nudges.Subscriber) error
}

// OpenBench opens a fresh, empty database for a benchmark.
type OpenBench func(b *testing.B) BenchStore

// seed stores total subscribers, the first due of them due one second
// apart from base, the rest a year later.
func seed(b *testing.B, db BenchStore, total, due int) time.Time {
	b.Helper()
	subs := make([]nudges.Subscriber, total)
	for i := range subs {
		next := base.Add(time.Duration(i) * time.Second)
		if i >= due {
			next = base.AddDate(1, 0, 0).Add(time.Duration(i) * time.Second)
		}
		subs[i] = nudges.Subscriber{UserID: fmt.Sprintf("U%06d", i), Subscribed: true, ProfileTZ: "UTC", DMChannel: fmt.Sprintf("D%06d", i), NextDue: next}
	}
	if err := db.ImportSubscribers(subs); err != nil {
		b.Fatal(err)
	}
	return base.Add(time.Duration(due-1) * time.Second)
}

// BenchDue is one scheduler look at the due index: 1,000 due among
// 100,000 subscribers.
func BenchDue(b *testing.B, open OpenBench) {
	const total, due = 100_000, 1_000
	db := open(b)
	now := seed(b, db, total, due)
	b.ResetTimer()
	for b.Loop() {
		ids, err := db.Due(now, 0)
		if err != nil || len(ids) != due {
			b.Fatalf("Due: %d ids, %v", len(ids), err)
		}
	}
}

// BenchStartDeliveries records 1,000 planned deliveries, each advancing
// its person's due time by a day, in one StartDeliveries call; each
// iteration is the next day, the same people due again.
func BenchStartDeliveries(b *testing.B, open OpenBench) {
	const people = 1_000
	db := open(b)
	seed(b, db, people, people)
	day := 0
	b.ResetTimer()
	for b.Loop() {
		starts := make([]nudges.DeliveryStart, people)
		for i := range starts {
			slot := base.Add(time.Duration(i)*time.Second).AddDate(0, 0, day)
			id := fmt.Sprintf("U%06d", i)
			starts[i] = nudges.DeliveryStart{
				Delivery:      nudges.Delivery{ID: storage.DeliveryID(id, slot, false), UserID: id, NudgeID: "lead-001", Slot: slot, State: nudges.StatePending, Created: slot},
				ExpectNextDue: slot, Advance: advanceTo(slot.AddDate(0, 0, 1)),
			}
		}
		created, errs := db.StartDeliveries(starts)
		for i := range starts {
			if !created[i] || errs[i] != nil {
				b.Fatalf("start %d: %v, %v", i, created[i], errs[i])
			}
		}
		day++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*people), "µs/delivery")
}

// KeptDelivery is a delivery as kept for its retention: sent, answered.
func KeptDelivery(userID string, slot time.Time) nudges.Delivery {
	return nudges.Delivery{
		ID: storage.DeliveryID(userID, slot, false), UserID: userID, NudgeID: "lead-014", Theme: nudges.ThemeLeading, Role: nudges.RoleLead,
		Slot: slot, Reason: "you liked leading", State: nudges.StateSent, Attempts: 1, Channel: "D0123456789", TS: "1772442000.000100",
		Created: slot, SentAt: slot.Add(time.Second), Outcome: nudges.OutcomeDone, ActedAt: slot.Add(2 * time.Hour),
	}
}

// BenchSendWrites is the two writes a sender makes for each nudge, its
// attempt right before the post and its sent mark after it, from 12
// senders at once as a tick's: by id (UpdateDelivery, the row read and
// locked first) or from the delivery the sender holds
// (UpdateDeliveryFrom). Each iteration is one nudge; the deliveries are
// recorded before the timer starts.
func BenchSendWrites(b *testing.B, open OpenBench) {
	for _, from := range []bool{false, true} {
		name := "by-id"
		if from {
			name = "from-held"
		}
		b.Run(name, func(b *testing.B) {
			db := open(b)
			const people = 1_000
			seed(b, db, people, people)
			ds := make([]nudges.Delivery, b.N)
			for i := range ds {
				id, slot := fmt.Sprintf("U%06d", i%people), base.Add(time.Duration(i)*time.Minute)
				ds[i] = nudges.Delivery{ID: storage.DeliveryID(id, slot, true), UserID: id, NudgeID: "lead-001", Slot: slot, State: nudges.StatePending, Manual: true, Created: slot}
			}
			for start := 0; start < len(ds); start += 1_000 {
				var starts []nudges.DeliveryStart
				for _, d := range ds[start:min(start+1_000, len(ds))] {
					starts = append(starts, nudges.DeliveryStart{Delivery: d})
				}
				if _, errs := db.StartDeliveries(starts); errors.Join(errs...) != nil {
					b.Fatal(errors.Join(errs...))
				}
			}
			var next atomic.Int64
			b.SetParallelism(6) // 12 senders on 2 cores, as the bot's default
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					d := ds[next.Add(1)-1]
					attempt := func(cur *nudges.Delivery) error { cur.Attempt(d.Slot, "D1"); return nil }
					sent := func(cur *nudges.Delivery) error { cur.Sent(d.Slot, "D1", "1.2"); return nil }
					var err error
					if from {
						if d, err = db.UpdateDeliveryFrom(d, attempt); err == nil {
							_, err = db.UpdateDeliveryFrom(d, sent)
						}
					} else if _, err = db.UpdateDelivery(d.ID, attempt); err == nil {
						_, err = db.UpdateDelivery(d.ID, sent)
					}
					if err != nil {
						b.Error(err) // not Fatal: this is not the benchmark's goroutine
						return
					}
				}
			})
		})
	}
}
