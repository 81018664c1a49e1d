package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	keyPausedAll = "paused_all_until"
	keyStrategy  = "strategy_lines"
)

// meta reads the meta value at key into v, reporting whether there was
// one.
func (s *Store) meta(key string, v any) (bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var raw []byte
	err := s.pool.QueryRow(ctx, "SELECT value FROM meta WHERE key = $1", key).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(raw, v)
}

func (s *Store) setMeta(key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.tx(func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", key, raw)
		return err
	})
}

// PausedAll returns until when nudges are paused for everyone; the zero
// time means they are not.
func (s *Store) PausedAll() (time.Time, error) {
	var until time.Time
	if _, err := s.meta(keyPausedAll, &until); err != nil {
		return time.Time{}, fmt.Errorf("pgstore: read company-wide pause: %w", err)
	}
	return until, nil
}

// SetPausedAll pauses everyone's nudges until the given time; the zero
// time lifts the pause.
func (s *Store) SetPausedAll(until time.Time) error {
	var err error
	if until.IsZero() {
		err = s.tx(func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "DELETE FROM meta WHERE key = $1", keyPausedAll)
			return err
		})
	} else {
		err = s.setMeta(keyPausedAll, until.UTC())
	}
	if err != nil {
		return fmt.Errorf("pgstore: set company-wide pause: %w", err)
	}
	return nil
}

// StrategyLines returns the strategy lines admins set; set is false while
// they never did.
func (s *Store) StrategyLines() (lines []string, set bool, err error) {
	set, err = s.meta(keyStrategy, &lines)
	if err != nil {
		return nil, false, fmt.Errorf("pgstore: read strategy lines: %w", err)
	}
	return lines, set, nil
}

// SetStrategyLines stores the strategy lines; an empty list is kept as
// "admins cleared them", which also overrides the config.
func (s *Store) SetStrategyLines(lines []string) error {
	if lines == nil {
		lines = []string{}
	}
	if err := s.setMeta(keyStrategy, lines); err != nil {
		return fmt.Errorf("pgstore: set strategy lines: %w", err)
	}
	return nil
}

// MarkSeen remembers that the envelope with key was handled at at, and
// reports whether this is the first time, across every process sharing
// the database: the insert is the test.
func (s *Store) MarkSeen(key string, at time.Time) (first bool, err error) {
	if key == "" {
		return false, errors.New("pgstore: mark envelope seen: empty key")
	}
	err = s.tx(func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO seen (key, seen_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", key, nanos(at))
		first = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("pgstore: mark envelope %s seen: %w", key, err)
	}
	return first, nil
}

// PruneSeen forgets envelopes seen before before and returns how many.
func (s *Store) PruneSeen(before time.Time) (int, error) {
	n, err := s.deleteInBatches("DELETE FROM seen WHERE key IN (SELECT key FROM seen WHERE seen_at < $1 LIMIT $2)", nanos(before))
	if err != nil {
		return n, fmt.Errorf("pgstore: prune envelopes seen before %s: %w", fmtTime(before), err)
	}
	return n, nil
}

// pruneBatch bounds the rows one retention transaction deletes, so it
// never holds locks or bloats one transaction for long.
const pruneBatch = 500

// deleteInBatches runs sql (with $1 = arg and $2 = the batch size) until
// it deletes fewer than a batch.
func (s *Store) deleteInBatches(sql string, arg any) (int, error) {
	total := 0
	for {
		var n int64
		err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
			// Only the leader cleans up, and a former leader not at all.
			if err := s.fence(ctx, tx); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, sql, arg, pruneBatch)
			n = tag.RowsAffected()
			return err
		})
		total += int(n)
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}
