package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage/pgstore"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// The same benchmarks as the bbolt engine's (storage/contract_test.go):
//
//	go test -run '^$' -bench . -benchtime 20x ./storage/pgstore/ ./storage/
func openBench(b *testing.B) storagetest.BenchStore {
	url := testURL(b)
	s, err := pgstore.Open(context.Background(), pgstore.Options{URL: url, Schema: freshSchema(b, url), Keys: testKeys(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func BenchmarkDue100k(b *testing.B)             { storagetest.BenchDue(b, openBench) }
func BenchmarkStartDeliveries1000(b *testing.B) { storagetest.BenchStartDeliveries(b, openBench) }
func BenchmarkSendWrites(b *testing.B)          { storagetest.BenchSendWrites(b, openBench) }

// BenchmarkKeptDeliverySize reports the database's bytes per delivery
// kept for retention: the table, its indexes and TOAST, after a VACUUM,
// with 20,000 sent and answered deliveries of 1,000 people.
func BenchmarkKeptDeliverySize(b *testing.B) {
	const people, days = 1_000, 20
	s := openBench(b).(*pgstore.Store)
	var ds []nudges.Delivery
	for p := range people {
		for d := range days {
			ds = append(ds, storagetest.KeptDelivery(fmt.Sprintf("U%06d", p), time.Date(2026, 3, 2+d, 9, 0, 0, 0, time.UTC)))
		}
	}
	if err := s.ImportDeliveries(ds); err != nil {
		b.Fatal(err)
	}
	var size, heap int64
	for b.Loop() {
		var err error
		size, heap, err = s.DeliverySize(context.Background())
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/float64(len(ds)), "bytes/delivery")
	b.ReportMetric(float64(heap)/float64(len(ds)), "heap-bytes/delivery")
}
