package storage

import (
	"testing"

	"github.com/nudgebot/nudgebot/nudges"
)

// RawDeliveryKey is the key the delivery with id is stored under, for
// tests that write the file by hand.
func RawDeliveryKey(t testing.TB, id string) []byte {
	t.Helper()
	k, ok := keyOfID(id)
	if !ok {
		t.Fatalf("%q is not a delivery id", id)
	}
	return k
}

// RawDeliveryRecord is d as the file stores it.
func RawDeliveryRecord(t testing.TB, d nudges.Delivery) []byte {
	t.Helper()
	v, err := encodeDelivery(d)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// RawPersonKey is the person index key listing the delivery with id.
func RawPersonKey(t testing.TB, id string) []byte {
	t.Helper()
	userID, sec, _, err := splitRecordKey(RawDeliveryKey(t, id))
	if err != nil {
		t.Fatal(err)
	}
	return personKey(userID, sec)
}

// Bucket names for tests that write the file by hand.
const (
	RawRecordsBucket  = bucketRecords
	RawByPersonBucket = bucketByPerson
	RawOutboxBucket   = bucketOutbox
)
