package storage

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// importBatch is how many subscribers ImportSubscribers writes per
// transaction. One transaction per person pays an fsync each (about
// 2,000 a second); thousands per transaction amortise it, while staying
// far below the size at which bbolt's page splitting in a single
// transaction gets slow.
const importBatch = 5000

// ImportSubscribers writes subs as they are, replacing any stored record
// with the same user id, in transactions of about 5,000. Each record's
// place in the due index moves exactly as UpdateSubscriber would move it.
// A later entry for the same user id wins over an earlier one.
//
// It is for seeding and restoring many people at once. The import is not
// atomic as a whole: if a transaction fails, the batches before it stay
// written and the error says how many; importing the same slice again is
// harmless. Every user id is checked before anything is written.
func (db *DB) ImportSubscribers(subs []nudges.Subscriber) error {
	for i, s := range subs {
		if s.UserID == "" {
			return fmt.Errorf("storage: import subscribers: entry %d of %d has an empty user id; nothing was written", i+1, len(subs))
		}
	}
	for start := 0; start < len(subs); start += importBatch {
		batch := subs[start:min(start+importBatch, len(subs))]
		err := db.update(func(tx *bolt.Tx) error {
			bk, err := bucketsOf(tx)
			if err != nil {
				return err
			}
			for _, s := range batch {
				var old nudges.Subscriber
				if _, err := loadSubscriber(bk, s.UserID, &old); err != nil {
					return fmt.Errorf("%s: %w", s.UserID, err)
				}
				if err := saveSubscriber(bk, old, s); err != nil {
					return fmt.Errorf("%s: %w", s.UserID, err)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("storage: import subscribers %d to %d of %d (the %d before them are written): %w",
				start+1, start+len(batch), len(subs), start, err)
		}
	}
	return nil
}
