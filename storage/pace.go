package storage

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// keyLearnedPace is the meta key of the Slack pace the bot learned.
const keyLearnedPace = "slack_learned_pace"

// learnedPace is the record, one small value beside the other settings.
type learnedPace struct {
	PerMinute float64 `json:"per_minute"`
}

// LearnedPace returns the chat.postMessage figure a minute the bot learned
// from Slack's 429s and saved, or 0 while it never did.
func (db *DB) LearnedPace() (float64, error) {
	var rec learnedPace
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketMeta))
		if b == nil {
			return missingBucket(bucketMeta)
		}
		if v := b.Get([]byte(keyLearnedPace)); v != nil {
			return json.Unmarshal(v, &rec)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: read learned Slack pace: %w", err)
	}
	return rec.PerMinute, nil
}

// SetLearnedPace saves the figure the bot learned, replacing the last. It
// is written during a rush of posts, so it shares a commit with them.
func (db *DB) SetLearnedPace(perMinute float64) error {
	v, err := json.Marshal(learnedPace{PerMinute: perMinute})
	if err != nil {
		return fmt.Errorf("storage: encode learned Slack pace: %w", err)
	}
	err = db.write(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketMeta))
		if b == nil {
			return missingBucket(bucketMeta)
		}
		return b.Put([]byte(keyLearnedPace), v)
	})
	if err != nil {
		return fmt.Errorf("storage: save learned Slack pace: %w", err)
	}
	return nil
}
