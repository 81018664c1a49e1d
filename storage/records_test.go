package storage_test

import (
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// Ensure records holding the same instants in different zones tally
// alike, whatever kind, and records that differ do not.
func TestCanonicalComparesInstants(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 123, time.UTC)
	cet := time.FixedZone("CET", 3600)
	delivery := func(acted time.Time) storage.Record {
		return storage.Record{Delivery: &nudges.Delivery{ID: storage.DeliveryID("U1", at, false), UserID: "U1", Slot: at,
			State: nudges.StateSent, Created: at, ActedAt: acted}}
	}
	subscriber := func(next time.Time) storage.Record {
		return storage.Record{Subscriber: &nudges.Subscriber{UserID: "U1", NextDue: next}}
	}
	summary := func(end time.Time) storage.Record {
		return storage.Record{PulseSummary: &storage.FiledSummary{Channel: "C1", PulseID: "p", Closed: at, Summary: nudges.PulseSummary{PeriodEnd: end}}}
	}
	tests := []struct {
		name string
		a, b storage.Record
		same bool
	}{
		{"delivery, another zone", delivery(at), delivery(at.In(cet)), true},
		{"delivery, another instant", delivery(at), delivery(at.Add(time.Nanosecond)), false},
		{"subscriber, another zone", subscriber(at), subscriber(at.In(cet)), true},
		{"a nested time, another zone", summary(at), summary(at.In(cet)), true},
		{"a nested time, another instant", summary(at), summary(at.Add(time.Second)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, err := storage.Canonical(tt.a)
			if err != nil {
				t.Fatal(err)
			}
			cb, err := storage.Canonical(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			var ta, tb storage.Tally
			_, _ = ta.Add(tt.a), tb.Add(tt.b)
			if same := string(ca) == string(cb); same != tt.same || ta.Same(&tb, tt.a.Kind()) != tt.same {
				t.Errorf("same = %v, want %v:\n%s\n%s", same, tt.same, ca, cb)
			}
		})
	}
	// The caller's record is left as it was.
	r := delivery(at.In(cet))
	if _, err := storage.Canonical(r); err != nil || r.Delivery.ActedAt.Location() != cet {
		t.Errorf("Canonical changed the record it was given: %v", r.Delivery.ActedAt)
	}
}
