package storage

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// pulseSecrets are the pulse buckets of one secrets file transaction.
type pulseSecrets struct{ open, voters *bolt.Bucket }

func pulseSecretsOf(stx *bolt.Tx) (pulseSecrets, error) {
	ps := pulseSecrets{open: stx.Bucket([]byte(secretPulses)), voters: stx.Bucket([]byte(secretVoters))}
	if ps.open == nil || ps.voters == nil {
		return ps, missingBucket(secretPulses + " or " + secretVoters)
	}
	return ps, nil
}

func (ps pulseSecrets) load(id string) (pulseSecret, bool, error) {
	var p pulseSecret
	found, err := getJSON(ps.open, id, &p)
	if err != nil {
		return p, found, fmt.Errorf("pulse secret: %w", err)
	}
	return p, found, nil
}

func (db *DB) viewPulseSecrets(fn func(pulseSecrets) error) error {
	if db.secrets == nil {
		return fmt.Errorf("the database is not migrated to its secrets file: open it read-write")
	}
	return db.secrets.view(func(stx *bolt.Tx) error {
		ps, err := pulseSecretsOf(stx)
		if err != nil {
			return err
		}
		return fn(ps)
	})
}

func (db *DB) updatePulseSecrets(fn func(pulseSecrets) error) error {
	if db.secrets == nil {
		return fmt.Errorf("the database is not migrated to its secrets file: open it read-write")
	}
	return db.updateSecrets(func(stx *bolt.Tx) error {
		ps, err := pulseSecretsOf(stx)
		if err != nil {
			return err
		}
		return fn(ps)
	})
}

// deletePulseSecrets deletes pulse id's totals, voter key and markers.
func deletePulseSecrets(stx *bolt.Tx, id string) error {
	ps, err := pulseSecretsOf(stx)
	if err != nil {
		return err
	}
	if err := ps.open.Delete([]byte(id)); err != nil {
		return fmt.Errorf("delete the secrets of pulse %q: %w", id, err)
	}
	if err := deletePrefix(ps.voters, voterKey(id, "")); err != nil {
		return fmt.Errorf("delete who answered pulse %q: %w", id, err)
	}
	return nil
}

// closedPulseSecrets lists the pulses with secrets that are not open in
// the main file: closed (or pruned) by a close cut short before it
// erased them, or opened by an open cut short before it wrote the pulse.
func (db *DB) closedPulseSecrets() ([]string, error) {
	var ids []string
	err := db.viewPulseSecrets(func(ps pulseSecrets) error {
		return ps.open.ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	var closed []string
	err = db.view(func(tx *bolt.Tx) error {
		pb := tx.Bucket([]byte(bucketPulses))
		if pb == nil {
			return missingBucket(bucketPulses)
		}
		for _, id := range ids {
			var p pulseRecord
			found, err := getJSON(pb, id, &p)
			if err != nil {
				return err
			}
			if !found || !p.Closed.IsZero() {
				closed = append(closed, id)
			}
		}
		return nil
	})
	return closed, err
}
