package storage

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// keyPausedAll is the meta key of the company-wide pause.
const keyPausedAll = "paused_all_until"

// PausedAll returns until when nudges are paused for everyone (a company
// holiday set by an admin); the zero time means they are not.
func (db *DB) PausedAll() (time.Time, error) {
	var until time.Time
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketMeta))
		if b == nil {
			return missingBucket(bucketMeta)
		}
		if v := b.Get([]byte(keyPausedAll)); v != nil {
			return json.Unmarshal(v, &until)
		}
		return nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("storage: read company-wide pause: %w", err)
	}
	return until, nil
}

// SetPausedAll pauses everyone's nudges until the given time; the zero
// time lifts the pause.
func (db *DB) SetPausedAll(until time.Time) error {
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketMeta))
		if b == nil {
			return missingBucket(bucketMeta)
		}
		if until.IsZero() {
			return b.Delete([]byte(keyPausedAll))
		}
		v, err := json.Marshal(until.UTC())
		if err != nil {
			return err
		}
		return b.Put([]byte(keyPausedAll), v)
	})
	if err != nil {
		return fmt.Errorf("storage: set company-wide pause: %w", err)
	}
	return nil
}

// keyStrategy is the meta key of the strategy lines admins set in Slack.
const keyStrategy = "strategy_lines"

// StrategyLines returns the strategy lines admins set with /nudge admin
// strategy; set is false while they never did, so the config's lines
// apply.
func (db *DB) StrategyLines() (lines []string, set bool, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketMeta))
		if b == nil {
			return missingBucket(bucketMeta)
		}
		v := b.Get([]byte(keyStrategy))
		if v == nil {
			return nil
		}
		set = true
		return json.Unmarshal(v, &lines)
	})
	if err != nil {
		return nil, false, fmt.Errorf("storage: read strategy lines: %w", err)
	}
	return lines, set, nil
}

// SetStrategyLines stores the strategy lines; an empty list is kept as
// "admins cleared them", which also overrides the config.
func (db *DB) SetStrategyLines(lines []string) error {
	if lines == nil {
		lines = []string{}
	}
	v, err := json.Marshal(lines)
	if err != nil {
		return fmt.Errorf("storage: encode strategy lines: %w", err)
	}
	err = db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketMeta))
		if b == nil {
			return missingBucket(bucketMeta)
		}
		return b.Put([]byte(keyStrategy), v)
	})
	if err != nil {
		return fmt.Errorf("storage: set strategy lines: %w", err)
	}
	return nil
}
