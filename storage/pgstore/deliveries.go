package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// StartDelivery records d as pending and, in the same transaction,
// advances its subscriber if their NextDue still equals expectNextDue
// (storage.ErrConflict otherwise, unless d.Manual); created is false when
// the slot was recorded before. See storage.DB.StartDelivery.
func (s *Store) StartDelivery(d nudges.Delivery, expectNextDue time.Time, advance func(*nudges.Subscriber) error) (created bool, err error) {
	cs, errs := s.StartDeliveries([]nudges.DeliveryStart{{Delivery: d, ExpectNextDue: expectNextDue, Advance: advance}})
	return cs[0], errs[0]
}

// StartDeliveries records many starts in one transaction: it locks the
// subscribers' rows (in user id order, so two replicas cannot deadlock),
// decides each start against what is stored, then writes every delivery
// and advanced subscriber in one round trip. A start refused (a
// conflict, no subscriber, Advance failing) writes nothing of its own;
// only a failure of the transaction fails them all.
func (s *Store) StartDeliveries(starts []nudges.DeliveryStart) (created []bool, errs []error) {
	return storage.StartFrame("pgstore", starts, func(starts []nudges.DeliveryStart, skip []error, created []bool, refused []error) error {
		scheduled := false
		for i, st := range starts {
			scheduled = scheduled || (skip[i] == nil && !st.Delivery.Manual)
		}
		return s.tx(func(ctx context.Context, tx pgx.Tx) error {
			// Claiming a scheduled slot is the leader's; a nudge asked
			// for now is whichever replica the person reached.
			if scheduled {
				if err := s.fence(ctx, tx); err != nil {
					return err
				}
			}
			return startAll(ctx, tx, starts, skip, created, refused)
		})
	})
}

// startAll decides and writes the starts not already refused (skip).
func startAll(ctx context.Context, tx pgx.Tx, starts []nudges.DeliveryStart, skip []error, created []bool, refused []error) error {
	var users, ids []string
	for i, st := range starts {
		if skip[i] == nil {
			users = append(users, st.Delivery.UserID)
			ids = append(ids, st.Delivery.ID)
		}
	}
	slices.Sort(users)
	subs, err := lockSubscribers(ctx, tx, slices.Compact(users))
	if err != nil {
		return err
	}
	exists, err := existingDeliveries(ctx, tx, ids)
	if err != nil {
		return err
	}
	olds := make(map[string]nudges.Subscriber, len(subs))
	for id, sub := range subs {
		olds[id] = sub
	}
	var batch pgx.Batch
	for i, st := range starts {
		created[i], refused[i] = false, nil // the transaction may run again
		if skip[i] != nil || exists[st.Delivery.ID] {
			continue
		}
		next, why := decideStart(subs, st)
		if why != nil {
			refused[i] = why
			continue
		}
		exists[st.Delivery.ID] = true
		subs[st.Delivery.UserID] = next
		queueDelivery(&batch, st.Delivery)
		created[i] = true
	}
	for id, sub := range subs {
		if old := olds[id]; !sameSubscriber(old, sub) {
			batch.Queue(upsertSubscriber, subscriberArgs(sub)...)
		}
	}
	if batch.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, &batch).Close()
}

// decideStart applies st to the person's current record, or says why it
// is refused, before anything of it is written.
func decideStart(subs map[string]nudges.Subscriber, st nudges.DeliveryStart) (nudges.Subscriber, error) {
	d := st.Delivery
	old, ok := subs[d.UserID]
	if !ok {
		return old, fmt.Errorf("subscriber %s: %w", d.UserID, nudges.ErrNotFound)
	}
	return storage.DecideStart(old, st)
}

func sameSubscriber(a, b nudges.Subscriber) bool {
	ra, _ := json.Marshal(a)
	rb, _ := json.Marshal(b)
	return string(ra) == string(rb)
}

// lockSubscribers reads and locks the records of users (sorted).
func lockSubscribers(ctx context.Context, tx pgx.Tx, users []string) (map[string]nudges.Subscriber, error) {
	subs, err := readSubscribers(ctx, tx, "SELECT user_id, record FROM subscribers WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE", users)
	if err != nil {
		return nil, fmt.Errorf("lock subscribers: %w", err)
	}
	return subs, nil
}

// readSubscribers runs a query returning (user_id, record) rows for
// users, by user id.
func readSubscribers(ctx context.Context, q querier, sql string, users []string) (map[string]nudges.Subscriber, error) {
	rows, err := q.Query(ctx, sql, users)
	if err != nil {
		return nil, err
	}
	subs := make(map[string]nudges.Subscriber, len(users))
	var (
		id  string
		raw []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &raw}, func() error {
		var sub nudges.Subscriber
		if err := json.Unmarshal(raw, &sub); err != nil {
			return fmt.Errorf("decode subscriber %s: %w", id, err)
		}
		if sub.UserID == "" {
			sub.UserID = id
		}
		subs[id] = sub
		return nil
	})
	if err != nil {
		return nil, err
	}
	return subs, nil
}

func existingDeliveries(ctx context.Context, tx pgx.Tx, ids []string) (map[string]bool, error) {
	rows, err := tx.Query(ctx, "SELECT id FROM deliveries WHERE id = ANY($1)", ids)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	exists := make(map[string]bool, len(ids))
	for _, id := range found {
		exists[id] = true
	}
	return exists, nil
}

const insertDelivery = `INSERT INTO deliveries (id, user_id, slot, pending, record) VALUES ($1, $2, $3, $4, $5)`

func queueDelivery(b *pgx.Batch, d nudges.Delivery) {
	b.Queue(insertDelivery, deliveryArgs(d)...)
}

// deliveryColumns are the columns deliveryArgs fills.
var deliveryColumns = []string{"id", "user_id", "slot", "pending", "record"}

// deliveryArgs are d's column values: the outbox flag is its state.
func deliveryArgs(d nudges.Delivery) []any {
	raw, _ := json.Marshal(d) // plain data: cannot fail
	return []any{d.ID, d.UserID, nanos(d.Slot), d.State == nudges.StatePending, raw}
}

// RecordMissed records each slot as a missed delivery (never pending)
// and advances the subscriber, in one transaction; slots that already
// have a delivery keep it. storage.ErrConflict if NextDue is not
// expectNextDue.
func (s *Store) RecordMissed(userID string, slots []time.Time, expectNextDue time.Time, advance func(*nudges.Subscriber) error) error {
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if err := s.fence(ctx, tx); err != nil {
			return err
		}
		old, err := mustLoadSubscriber(ctx, tx, userID)
		if err != nil {
			return err
		}
		if err := storage.CheckNextDue(old, expectNextDue); err != nil {
			return err
		}
		sub := old
		if advance != nil {
			if err := advance(&sub); err != nil {
				return err
			}
		}
		created := s.now().UTC()
		var batch pgx.Batch
		for _, slot := range slots {
			d, err := storage.MissedDelivery(userID, slot, created)
			if err != nil {
				return err
			}
			batch.Queue(insertDelivery+" ON CONFLICT (id) DO NOTHING", deliveryArgs(d)...)
		}
		if err := storage.CheckSubscriber(old, sub); err != nil {
			return err
		}
		batch.Queue(upsertSubscriber, subscriberArgs(sub)...)
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return fmt.Errorf("pgstore: record missed slots of %s: %w", userID, err)
	}
	return nil
}

// Delivery returns the delivery with id, or an error wrapping
// nudges.ErrNotFound.
func (s *Store) Delivery(id string) (nudges.Delivery, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	d, err := loadDelivery(ctx, s.pool, id, false)
	if err != nil {
		return nudges.Delivery{}, fmt.Errorf("pgstore: delivery %s: %w", id, err)
	}
	return d, nil
}

func loadDelivery(ctx context.Context, q querier, id string, forUpdate bool) (nudges.Delivery, error) {
	sql := "SELECT record FROM deliveries WHERE id = $1"
	if forUpdate {
		sql += " FOR UPDATE"
	}
	var (
		raw []byte
		d   nudges.Delivery
	)
	err := q.QueryRow(ctx, sql, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, nudges.ErrNotFound
	}
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, fmt.Errorf("decode delivery %s: %w", id, err)
	}
	return d, nil
}

// saveDelivery writes d over a stored delivery, the outbox flag with it.
func saveDelivery(ctx context.Context, tx pgx.Tx, old, d nudges.Delivery) error {
	if err := storage.CheckDeliveryUpdate(old, d); err != nil {
		return err
	}
	raw, _ := json.Marshal(d)
	_, err := tx.Exec(ctx, "UPDATE deliveries SET pending = $2, record = $3 WHERE id = $1", d.ID, d.State == nudges.StatePending, raw)
	return err
}

// UpdateDelivery applies fn to the delivery with id, its row locked, and
// saves it. fn may not change ID, UserID, Slot or Manual, and may run
// more than once.
func (s *Store) UpdateDelivery(id string, fn func(*nudges.Delivery) error) (nudges.Delivery, error) {
	var d nudges.Delivery
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		old, err := loadDelivery(ctx, tx, id, true)
		if err != nil {
			return err
		}
		d = old
		if err := fn(&d); err != nil {
			return err
		}
		return saveDelivery(ctx, tx, old, d)
	})
	if err != nil {
		return nudges.Delivery{}, fmt.Errorf("pgstore: update delivery %s: %w", id, err)
	}
	return d, nil
}

// UpdateDeliveryFrom is UpdateDelivery for a caller that holds the
// delivery as stored (known): fn runs on known, and the result replaces
// the row in one statement if the row still equals known, so the
// commonest writes of a nudge (its attempt, then its sent mark) take one
// round trip instead of a transaction's four. A row that changed since,
// or fn refusing known, takes UpdateDelivery's locked path, fn then
// running on what is stored.
func (s *Store) UpdateDeliveryFrom(known nudges.Delivery, fn func(*nudges.Delivery) error) (nudges.Delivery, error) {
	d := known
	if fn(&d) == nil && storage.CheckDeliveryUpdate(known, d) == nil {
		if swapped, err := s.swapDelivery(known, d); err == nil && swapped {
			return d, nil
		}
	}
	// Any other outcome, a failed statement included, is decided again
	// under the row's lock: the swap either happened, and fn sees its
	// result, or it did not.
	return s.UpdateDelivery(known.ID, fn)
}

// swapDelivery writes d over the stored delivery if that still equals
// old; jsonb compares by value, so a record read back and encoded again
// matches the row it came from.
func (s *Store) swapDelivery(old, d nudges.Delivery) (bool, error) {
	// A slot is stored in UTC (storage.StartFrame), whatever zone the
	// planner's copy is in.
	old.Slot, d.Slot = old.Slot.UTC(), d.Slot.UTC()
	oldRaw, err := json.Marshal(old)
	if err != nil {
		return false, err
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return false, err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, "UPDATE deliveries SET pending = $2, record = $3 WHERE id = $1 AND record = $4",
		d.ID, d.State == nudges.StatePending, raw, oldRaw)
	if err != nil {
		return false, err
	}
	s.observe(nil)
	return tag.RowsAffected() == 1, nil
}

// RecordOutcome applies fn to a delivery and its subscriber and saves
// both in one transaction, both rows locked.
func (s *Store) RecordOutcome(deliveryID string, fn func(*nudges.Delivery, *nudges.Subscriber) error) (nudges.Delivery, nudges.Subscriber, error) {
	var (
		d   nudges.Delivery
		sub nudges.Subscriber
	)
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		oldD, err := loadDelivery(ctx, tx, deliveryID, true)
		if err != nil {
			return err
		}
		oldS, err := mustLoadSubscriber(ctx, tx, oldD.UserID)
		if err != nil {
			return err
		}
		d, sub = oldD, oldS
		if err := fn(&d, &sub); err != nil {
			return err
		}
		if err := saveDelivery(ctx, tx, oldD, d); err != nil {
			return err
		}
		return saveSubscriber(ctx, tx, oldS, sub)
	})
	if err != nil {
		return nudges.Delivery{}, nudges.Subscriber{}, fmt.Errorf("pgstore: record outcome of %s: %w", deliveryID, err)
	}
	return d, sub, nil
}

// Pending returns the outbox: every pending delivery, oldest slot first.
func (s *Store) Pending() ([]nudges.Delivery, error) {
	ds, err := s.deliveries("SELECT id, record FROM deliveries WHERE pending ORDER BY slot, id")
	if err != nil {
		return nil, fmt.Errorf("pgstore: pending deliveries: %w", err)
	}
	return ds, nil
}

// Deliveries returns userID's deliveries whose slot is at or after since,
// oldest first.
func (s *Store) Deliveries(userID string, since time.Time) ([]nudges.Delivery, error) {
	ds, err := s.deliveries("SELECT id, record FROM deliveries WHERE user_id = $1 AND slot >= $2 ORDER BY slot, id", userID, nanos(since))
	if err != nil {
		return nil, fmt.Errorf("pgstore: deliveries of %s: %w", userID, err)
	}
	return ds, nil
}

// DeliveriesBetween calls fn for every delivery whose slot is in
// [from, to), in delivery id order, reading in pages and calling fn
// between them; an error from fn is returned unwrapped.
func (s *Store) DeliveriesBetween(from, to time.Time, fn func(nudges.Delivery) error) error {
	after := ""
	for {
		ds, err := s.deliveries("SELECT id, record FROM deliveries WHERE id > $1 AND slot >= $2 AND slot < $3 ORDER BY id LIMIT $4",
			after, nanos(from), nanos(to), pageSize)
		if err != nil {
			return fmt.Errorf("pgstore: deliveries from %s to %s: %w", fmtTime(from), fmtTime(to), err)
		}
		for _, d := range ds {
			if err := fn(d); err != nil {
				return err
			}
		}
		if len(ds) < pageSize {
			return nil
		}
		after = ds[len(ds)-1].ID
	}
}

// DeliveriesFor returns the deliveries of userIDs whose slot is in
// [from, to), grouped by person in the order given (duplicates once),
// each person's oldest first, in one query over deliveries_person.
func (s *Store) DeliveriesFor(userIDs []string, from, to time.Time) ([]nudges.Delivery, error) {
	if !from.Before(to) || len(userIDs) == 0 {
		return nil, nil
	}
	all, err := s.deliveries("SELECT id, record FROM deliveries WHERE user_id = ANY($1) AND slot >= $2 AND slot < $3 ORDER BY user_id, slot, id",
		validIDs(userIDs), nanos(from), nanos(to))
	if err != nil {
		return nil, fmt.Errorf("pgstore: deliveries of %d people from %s to %s: %w", len(userIDs), fmtTime(from), fmtTime(to), err)
	}
	byPerson := map[string][]nudges.Delivery{}
	for _, d := range all {
		byPerson[d.UserID] = append(byPerson[d.UserID], d)
	}
	var ds []nudges.Delivery
	seen := map[string]bool{}
	for _, id := range userIDs {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		ds = append(ds, byPerson[id]...)
	}
	return ds, nil
}

// deliveries runs a query returning (id, record) rows.
func (s *Store) deliveries(sql string, args ...any) ([]nudges.Delivery, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (nudges.Delivery, error) {
		var (
			id  string
			raw []byte
			d   nudges.Delivery
		)
		if err := row.Scan(&id, &raw); err != nil {
			return d, err
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			return d, fmt.Errorf("decode delivery %s: %w", id, err)
		}
		return d, nil
	})
}

// ImportDeliveries writes ds as they are, replacing any stored delivery
// with the same id, in one transaction (COPY, then one upsert).
// Subscribers are not touched. It is for seeding and restoring.
func (s *Store) ImportDeliveries(ds []nudges.Delivery) error {
	rows := make([][]any, 0, len(ds))
	for i, d := range ds {
		d.Slot = d.Slot.UTC()
		if err := storage.ValidateDelivery(d); err != nil {
			return fmt.Errorf("pgstore: import deliveries: entry %d of %d: %w; nothing was written", i+1, len(ds), err)
		}
		rows = append(rows, deliveryArgs(d))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*s.timeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "CREATE TEMPORARY TABLE import_deliveries (LIKE deliveries) ON COMMIT DROP"); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"import_deliveries"}, deliveryColumns, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO deliveries SELECT DISTINCT ON (id) * FROM import_deliveries
			ON CONFLICT (id) DO UPDATE SET pending = EXCLUDED.pending, record = EXCLUDED.record`)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: import %d deliveries: %w", len(ds), err)
	}
	if _, err := s.pool.Exec(ctx, "ANALYZE deliveries"); err != nil {
		return fmt.Errorf("pgstore: analyze after import: %w", err)
	}
	return nil
}
