package storagetest

import (
	"fmt"
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
