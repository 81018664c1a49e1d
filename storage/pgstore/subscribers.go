package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// Subscriber returns what is stored about userID, or an error wrapping
// nudges.ErrNotFound.
func (s *Store) Subscriber(userID string) (nudges.Subscriber, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	sub, found, err := loadSubscriber(ctx, s.pool, userID, false)
	if err == nil && !found {
		err = nudges.ErrNotFound
	}
	if err != nil {
		return nudges.Subscriber{}, fmt.Errorf("pgstore: subscriber %s: %w", userID, err)
	}
	return sub, nil
}

// SubscribersByID reads the records of userIDs in one query; those
// with no record are left out.
func (s *Store) SubscribersByID(userIDs []string) (map[string]nudges.Subscriber, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	subs, err := readSubscribers(ctx, s.pool, "SELECT user_id, record FROM subscribers WHERE user_id = ANY($1)", validIDs(userIDs))
	if err != nil {
		return nil, fmt.Errorf("pgstore: %d subscribers: %w", len(userIDs), err)
	}
	return subs, nil
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadSubscriber reads userID's record, locking its row when forUpdate.
func loadSubscriber(ctx context.Context, q querier, userID string, forUpdate bool) (nudges.Subscriber, bool, error) {
	sql := "SELECT record FROM subscribers WHERE user_id = $1"
	if forUpdate {
		sql += " FOR UPDATE"
	}
	var raw []byte
	err := q.QueryRow(ctx, sql, userID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nudges.Subscriber{}, false, nil
	}
	if err != nil {
		return nudges.Subscriber{}, false, err
	}
	var sub nudges.Subscriber
	if err := json.Unmarshal(raw, &sub); err != nil {
		return sub, true, fmt.Errorf("decode subscriber %s: %w", userID, err)
	}
	if sub.UserID == "" {
		sub.UserID = userID // the key is the authority
	}
	return sub, true, nil
}

func mustLoadSubscriber(ctx context.Context, tx pgx.Tx, userID string) (nudges.Subscriber, error) {
	sub, found, err := loadSubscriber(ctx, tx, userID, true)
	if err == nil && !found {
		err = fmt.Errorf("subscriber %s: %w", userID, nudges.ErrNotFound)
	}
	return sub, err
}

const insertSubscriber = `INSERT INTO subscribers (user_id, next_due, active, record) VALUES ($1, $2, $3, $4)`

const upsertSubscriber = `INSERT INTO subscribers (user_id, next_due, active, record) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id) DO UPDATE SET next_due = EXCLUDED.next_due, active = EXCLUDED.active, record = EXCLUDED.record`

// saveSubscriber writes sub over old (the stored record, or zero). A new
// record is a plain insert: of two transactions creating the same person
// at once, the second fails on the key and runs again over the first's
// record, rather than overwriting it.
func saveSubscriber(ctx context.Context, tx pgx.Tx, old, sub nudges.Subscriber) error {
	if err := storage.CheckSubscriber(old, sub); err != nil {
		return err
	}
	sql := upsertSubscriber
	if old.UserID == "" {
		sql = insertSubscriber
	}
	_, err := tx.Exec(ctx, sql, subscriberArgs(sub)...)
	if err != nil {
		return fmt.Errorf("write subscriber %s: %w", sub.UserID, err)
	}
	return nil
}

func subscriberArgs(sub nudges.Subscriber) []any {
	raw, _ := json.Marshal(sub) // plain data: cannot fail
	return []any{sub.UserID, nullNanos(sub.NextDue), sub.Subscribed && !sub.Inactive, raw}
}

// UpdateSubscriber applies fn to userID's record, starting from
// Subscriber{UserID: userID} if there is none, and saves the result in
// the same transaction, the row locked. If fn returns an error nothing is
// written. fn may run more than once.
func (s *Store) UpdateSubscriber(userID string, fn func(*nudges.Subscriber) error) (nudges.Subscriber, error) {
	if userID == "" {
		return nudges.Subscriber{}, errors.New("pgstore: update subscriber: empty user id")
	}
	var sub nudges.Subscriber
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		old, _, err := loadSubscriber(ctx, tx, userID, true)
		if err != nil {
			return err
		}
		sub = old
		if sub.UserID == "" {
			sub.UserID = userID
		}
		if err := fn(&sub); err != nil {
			return err
		}
		if sub.UserID != userID {
			return fmt.Errorf("the update changed the user id to %q; it cannot", sub.UserID)
		}
		return saveSubscriber(ctx, tx, old, sub)
	})
	if err != nil {
		return nudges.Subscriber{}, fmt.Errorf("pgstore: update subscriber %s: %w", userID, err)
	}
	return sub, nil
}

// pageSize bounds how many records a walk reads per query, so a walk
// over many people holds no long transaction.
const pageSize = 256

// ForEachSubscriber calls fn for every subscriber in user id order until
// fn returns an error, which it returns unwrapped. It reads in pages and
// calls fn between them, so fn may call other methods; the walk is not a
// snapshot, but no subscriber is seen twice.
func (s *Store) ForEachSubscriber(fn func(nudges.Subscriber) error) error {
	after := ""
	for {
		subs, err := s.subscriberPage(after)
		if err != nil {
			return fmt.Errorf("pgstore: walk subscribers: %w", err)
		}
		for _, sub := range subs {
			if err := fn(sub); err != nil {
				return err
			}
		}
		if len(subs) < pageSize {
			return nil
		}
		after = subs[len(subs)-1].UserID
	}
}

func (s *Store) subscriberPage(after string) ([]nudges.Subscriber, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, "SELECT user_id, record FROM subscribers WHERE user_id > $1 ORDER BY user_id LIMIT $2", after, pageSize)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (nudges.Subscriber, error) {
		var (
			id  string
			raw []byte
			sub nudges.Subscriber
		)
		if err := row.Scan(&id, &raw); err != nil {
			return sub, err
		}
		if err := json.Unmarshal(raw, &sub); err != nil {
			return sub, fmt.Errorf("decode subscriber %s: %w", id, err)
		}
		if sub.UserID == "" {
			sub.UserID = id
		}
		return sub, nil
	})
}

// CountSubscribers counts everyone stored (total) and those subscribed
// and not marked inactive (active).
func (s *Store) CountSubscribers() (total, active int, err error) {
	ctx, cancel := s.ctx()
	defer cancel()
	err = s.pool.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE active) FROM subscribers").Scan(&total, &active)
	if err != nil {
		return 0, 0, fmt.Errorf("pgstore: count subscribers: %w", err)
	}
	return total, active, nil
}

// Due returns the ids of up to limit subscribers (all if limit <= 0)
// whose NextDue is at or before now, earliest first. It reads the due
// index (subscribers_due) from its start to now, so its cost follows the
// number due, not the number of subscribers.
func (s *Store) Due(now time.Time, limit int) ([]string, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.pool.Query(ctx, DueQuery, nanos(now), lim)
	if err != nil {
		return nil, fmt.Errorf("pgstore: due subscribers: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgstore: due subscribers: %w", err)
	}
	return ids, nil
}

// DueQuery is how Due reads the due index ($1 now, $2 the limit or
// NULL); exported so a test can ask PostgreSQL for its plan.
const DueQuery = `SELECT user_id FROM subscribers WHERE next_due IS NOT NULL AND next_due <= $1 ORDER BY next_due, user_id LIMIT $2`

// OldestDue returns the earliest NextDue of anyone scheduled, and false
// if no one is.
func (s *Store) OldestDue() (time.Time, bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var n *int64
	err := s.pool.QueryRow(ctx, "SELECT min(next_due) FROM subscribers WHERE next_due IS NOT NULL").Scan(&n)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("pgstore: oldest due: %w", err)
	}
	if n == nil {
		return time.Time{}, false, nil
	}
	return time.Unix(0, *n).UTC(), true, nil
}

// ImportSubscribers writes subs as they are, replacing stored records
// with the same user id, in one transaction: COPY into a temporary table,
// then one upsert. It is for seeding and restoring many people at once.
func (s *Store) ImportSubscribers(subs []nudges.Subscriber) error {
	rows := make([][]any, 0, len(subs))
	seen := make(map[string]int, len(subs))
	for i, sub := range subs {
		if sub.UserID == "" {
			return fmt.Errorf("pgstore: import subscribers: entry %d of %d has an empty user id; nothing was written", i+1, len(subs))
		}
		if err := storage.CheckSubscriber(nudges.Subscriber{}, sub); err != nil {
			return fmt.Errorf("pgstore: import subscribers: %s: %w; nothing was written", sub.UserID, err)
		}
		if j, ok := seen[sub.UserID]; ok { // a later entry wins
			rows[j] = subscriberArgs(sub)
			continue
		}
		seen[sub.UserID] = len(rows)
		rows = append(rows, subscriberArgs(sub))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*s.timeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "CREATE TEMPORARY TABLE import_subscribers (LIKE subscribers) ON COMMIT DROP"); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"import_subscribers"}, []string{"user_id", "next_due", "active", "record"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO subscribers SELECT * FROM import_subscribers
			ON CONFLICT (user_id) DO UPDATE SET next_due = EXCLUDED.next_due, active = EXCLUDED.active, record = EXCLUDED.record`)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: import %d subscribers: %w", len(subs), err)
	}
	// Statistics now, not when autovacuum comes round: without them the
	// planner may scan every subscriber to find the few due.
	if _, err := s.pool.Exec(ctx, "ANALYZE subscribers"); err != nil {
		return fmt.Errorf("pgstore: analyze after import: %w", err)
	}
	return nil
}
