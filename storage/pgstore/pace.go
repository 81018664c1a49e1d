package pgstore

import "fmt"

// keyLearnedPace is the meta key of the Slack pace the bot learned.
const keyLearnedPace = "slack_learned_pace"

// learnedPace is the record, one small value beside the other settings,
// as the bbolt store keeps it.
type learnedPace struct {
	PerMinute float64 `json:"per_minute"`
}

// LearnedPace returns the chat.postMessage figure a minute the bot learned
// from Slack's 429s and saved, or 0 while it never did. Processes sharing
// the database share the workspace, and so the figure.
func (s *Store) LearnedPace() (float64, error) {
	var rec learnedPace
	if _, err := s.meta(keyLearnedPace, &rec); err != nil {
		return 0, fmt.Errorf("pgstore: read learned Slack pace: %w", err)
	}
	return rec.PerMinute, nil
}

// SetLearnedPace saves the figure the bot learned, replacing the last.
func (s *Store) SetLearnedPace(perMinute float64) error {
	if err := s.setMeta(keyLearnedPace, learnedPace{PerMinute: perMinute}); err != nil {
		return fmt.Errorf("pgstore: save learned Slack pace: %w", err)
	}
	return nil
}
