package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// migrateBatch is how many deliveries one transaction of the 4 → 5
// migration moves: a crash loses at most one batch's work, never a
// record, and no transaction grows with the file.
const migrateBatch = 5000

// migrateLogEvery is how often the migration logs its progress.
const migrateLogEvery = 10 * time.Second

// moveDeliveries is the 4 → 5 migration: it moves every delivery from
// the JSON records of schema 4 (deliveries, outbox, deliveries_by_slot)
// to the binary records and their indexes (doc.go), migrateBatch at a
// time. Each transaction writes the new records and deletes the old
// ones with their index entries, so a crash between two leaves every
// delivery in exactly one layout, and the next Open carries on where it
// stopped; the schema version says 4 until the old buckets are gone.
//
// It moves in slot order, through the old slot index, so the new
// records are appended as the bot appends them and their pages end up
// as full; records the index lacks (damage) are moved after, in id
// order. A record that does not decode stops the migration with an
// error naming it, and the file stays at schema 4 as it was.
func (db *DB) moveDeliveries() error {
	began, lastLog := time.Now(), time.Now()
	moved, batch := 0, migrateBatch
	if db.migrateBatch > 0 {
		batch = db.migrateBatch
	}
	for {
		var n int
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			var err error
			n, err = moveDeliveryBatch(tx, batch)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate schema 4 to 5: move deliveries (%d moved before this batch; the next open carries on): %w", moved, err)
		}
		moved += n
		if db.afterMigrateBatch != nil {
			db.afterMigrateBatch(moved)
		}
		if n == 0 {
			break
		}
		if time.Since(lastLog) >= migrateLogEvery {
			lastLog = time.Now()
			db.log.Info("migrating deliveries to the compact records of schema 5; writes wait until it is done",
				"path", db.path, "moved", moved, "elapsed", time.Since(began).Round(time.Second).String())
		}
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{bucketDeliveriesV4, bucketOutboxV4, bucketBySlotV4} {
			if tx.Bucket([]byte(name)) == nil {
				continue
			}
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return fmt.Errorf("drop bucket %s: %w", name, err)
			}
		}
		return putSchemaVersion(tx, schemaCompactDeliveries)
	})
	if err != nil {
		return fmt.Errorf("migrate schema 4 to 5: %w", err)
	}
	if moved > 0 {
		db.movedDeliveries = true
		took := time.Since(began)
		db.log.Info("moved deliveries to the compact records of schema 5", "path", db.path, "moved", moved,
			"took", took.Round(time.Millisecond).String(), "per_million", (took * time.Duration(1e6) / time.Duration(moved)).Round(time.Millisecond).String())
	}
	return nil
}

// moveDeliveryBatch moves up to limit deliveries and returns how many;
// 0 means none is left.
func moveDeliveryBatch(tx *bolt.Tx, limit int) (int, error) {
	old := tx.Bucket([]byte(bucketDeliveriesV4))
	if old == nil {
		return 0, nil
	}
	bk, err := bucketsOf(tx)
	if err == nil {
		bk, err = bk.dels()
	}
	if err != nil {
		return 0, err
	}
	oldOutbox, bySlot := tx.Bucket([]byte(bucketOutboxV4)), tx.Bucket([]byte(bucketBySlotV4))

	// The ids to move, copied first: deleting while a cursor walks can
	// skip keys.
	var ids [][]byte
	if bySlot != nil {
		c := bySlot.Cursor()
		for k, _ := c.First(); k != nil && len(ids) < limit; k, _ = c.Next() {
			if len(k) <= timeKeyLen {
				return 0, fmt.Errorf("slot index key %x is too short", k)
			}
			ids = append(ids, bytes.Clone(k))
		}
	}
	fromIndex := len(ids) > 0
	if !fromIndex {
		c := old.Cursor()
		for k, _ := c.First(); k != nil && len(ids) < limit; k, _ = c.Next() {
			ids = append(ids, bytes.Clone(k))
		}
	}
	for _, ik := range ids {
		id := ik
		if fromIndex {
			id = ik[timeKeyLen:]
			if err := bySlot.Delete(ik); err != nil {
				return 0, fmt.Errorf("delete slot index entry %x: %w", ik, err)
			}
		}
		raw := old.Get(id)
		if raw == nil {
			continue // a stale index entry: nothing to move
		}
		var d nudges.Delivery
		if err := json.Unmarshal(raw, &d); err != nil {
			return 0, fmt.Errorf("delivery %q does not decode (%w): run `nudgebot check` with the nudgebot that wrote it, and restore a backup", id, err)
		}
		if d.ID != string(id) {
			return 0, fmt.Errorf("delivery stored under %q has id %q: run `nudgebot check` with the nudgebot that wrote it, and restore a backup", id, d.ID)
		}
		d.Slot = d.Slot.UTC()
		if err := saveDelivery(bk, d, false); err != nil {
			return 0, err
		}
		if err := old.Delete(id); err != nil {
			return 0, fmt.Errorf("delete old record %q: %w", id, err)
		}
		if oldOutbox != nil {
			if err := oldOutbox.Delete(id); err != nil {
				return 0, fmt.Errorf("delete old outbox entry %q: %w", id, err)
			}
		}
		if !fromIndex && bySlot != nil {
			if tk, err := timeKey(d.Slot, d.ID); err == nil {
				if err := bySlot.Delete(tk); err != nil {
					return 0, fmt.Errorf("delete slot index entry of %q: %w", id, err)
				}
			}
		}
	}
	return len(ids), nil
}

// putSchemaVersion writes the schema version the file now has.
func putSchemaVersion(tx *bolt.Tx, v int) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", keySchemaVersion, err)
	}
	if err := tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchemaVersion), raw); err != nil {
		return fmt.Errorf("write %s: %w", keySchemaVersion, err)
	}
	return nil
}
