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

// Forget destroys userID's data key first, in a transaction of its own
// that also marks them as being forgotten, so from that commit on their
// reflections cannot be opened from this database or any later copy of
// it; then it deletes every row about them. If the second step fails,
// Forget again (or the next Open) finishes it. What lingers in dead row
// versions, the WAL and backups is in the package doc.
func (s *Store) Forget(userID string) error {
	if err := checkUserID(userID); err != nil {
		return fmt.Errorf("pgstore: forget: %w", err)
	}
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if err := lockPerson(ctx, tx, userID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM data_keys WHERE user_id = $1", userID)
		if err != nil || tag.RowsAffected() == 0 {
			return err // no sealed reflection to make unreadable first
		}
		_, err = tx.Exec(ctx, "INSERT INTO forgetting (user_id, since) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING", userID, nanos(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: forget %s: %w", userID, err)
	}
	deleted, err := s.erase(userID)
	if err != nil {
		return fmt.Errorf("pgstore: forget %s: their reflections are unreadable, but deleting their rows failed: call Forget again: %w", userID, err)
	}
	if deleted {
		s.needsVacuum.Store(true)
	}
	return nil
}

// personTables are the tables with rows a person owns, each keyed by a
// user_id column. A table added that holds a person's rows must be
// listed here, and walked by ExportPerson. Open pulses' voter markers
// name nobody without the pulse's key and stay, as in the bbolt engine:
// deleting one would let its person vote again.
var personTables = []string{"subscribers", "deliveries", "reflections", "reflection_seq", "data_keys", "forgetting"}

// erase deletes every row of userID in one transaction.
func (s *Store) erase(userID string) (deleted bool, err error) {
	err = s.tx(func(ctx context.Context, tx pgx.Tx) error {
		deleted = false
		if err := lockPerson(ctx, tx, userID); err != nil {
			return err
		}
		for _, table := range personTables {
			tag, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE user_id = $1", userID)
			if err != nil {
				return fmt.Errorf("delete from %s: %w", table, err)
			}
			deleted = deleted || tag.RowsAffected() > 0
		}
		return nil
	})
	return deleted, err
}

// finishForgets erases the people whose Forget was cut short.
func (s *Store) finishForgets(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, "SELECT user_id FROM forgetting")
	if err != nil {
		return fmt.Errorf("pgstore: read unfinished forgets: %w", err)
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("pgstore: read unfinished forgets: %w", err)
	}
	for _, u := range users {
		if _, err := s.erase(u); err != nil {
			return fmt.Errorf("pgstore: finish forgetting %s: %w", u, err)
		}
		s.needsVacuum.Store(true)
		s.log.Info("finished a forget that was cut short", "user_id", u)
	}
	return nil
}

// NeedsCompaction says whether a Forget or a deleted reflection left
// dead row versions that Compact should vacuum now rather than when
// autovacuum comes round.
func (s *Store) NeedsCompaction() bool { return s.needsVacuum.Load() }

// Compact vacuums the tables that hold people's rows, so the dead
// versions a Forget left become free space now. It does not zero that
// space, and does not reach the WAL or backups: see the package doc.
func (s *Store) Compact() error {
	if !s.needsVacuum.Swap(false) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*s.timeout)
	defer cancel()
	for _, table := range personTables {
		// VACUUM cannot run in a transaction: the pool runs it alone.
		if _, err := s.pool.Exec(ctx, "VACUUM "+table); err != nil {
			s.needsVacuum.Store(true)
			return fmt.Errorf("pgstore: vacuum %s: %w", table, err)
		}
	}
	return nil
}

// ExportPerson calls fn with every record userID owns: their subscriber,
// their deliveries by id, their reflections oldest first, decrypted; a
// reflection that cannot be opened comes as a nudges.Unreadable naming
// it. Someone whose Forget is unfinished has nothing to export.
func (s *Store) ExportPerson(userID string, fn func(nudges.PersonRecord) error) error {
	if err := checkUserID(userID); err != nil {
		return fmt.Errorf("pgstore: export %s: %w", userID, err)
	}
	recs, err := s.personRecords(userID)
	if err != nil {
		return fmt.Errorf("pgstore: export %s: %w", userID, err)
	}
	for _, rec := range recs {
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// personRecords reads everything userID owns in one snapshot (a
// repeatable-read transaction), so the export is consistent.
func (s *Store) personRecords(userID string) ([]nudges.PersonRecord, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var recs []nudges.PersonRecord
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var gone bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM forgetting WHERE user_id = $1)", userID).Scan(&gone); err != nil || gone {
			return err
		}
		sub, found, err := loadSubscriber(ctx, tx, userID, false)
		if err != nil {
			recs = append(recs, damaged(nudges.Unreadable{Kind: nudges.KindSubscriber, UserID: userID}, err))
		} else if found {
			recs = append(recs, nudges.PersonRecord{Subscriber: &sub})
		}
		if recs, err = appendDeliveries(ctx, tx, userID, recs); err != nil {
			return err
		}
		return s.appendReflections(ctx, tx, userID, &recs)
	})
	return recs, err
}

func appendDeliveries(ctx context.Context, tx pgx.Tx, userID string, recs []nudges.PersonRecord) ([]nudges.PersonRecord, error) {
	rows, err := tx.Query(ctx, "SELECT id, record FROM deliveries WHERE user_id = $1 ORDER BY id", userID)
	if err != nil {
		return recs, err
	}
	var (
		id  string
		raw []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &raw}, func() error {
		var d nudges.Delivery
		if err := json.Unmarshal(raw, &d); err != nil {
			recs = append(recs, damaged(nudges.Unreadable{Kind: nudges.KindDelivery, UserID: userID, ID: id}, fmt.Errorf("decode delivery %q: %w", id, err)))
			return nil
		}
		recs = append(recs, nudges.PersonRecord{Delivery: &d})
		return nil
	})
	return recs, err
}

func (s *Store) appendReflections(ctx context.Context, tx pgx.Tx, userID string, recs *[]nudges.PersonRecord) error {
	rows, err := tx.Query(ctx, "SELECT "+reflectionColumns+" FROM reflections WHERE user_id = $1 ORDER BY seq", userID)
	if err != nil {
		return err
	}
	se := s.session(tx)
	for _, rw := range collectLenient(rows) {
		if rw.err != nil {
			*recs = append(*recs, damaged(nudges.Unreadable{Kind: nudges.KindReflection, UserID: userID, Seq: rw.seq}, rw.err))
			continue
		}
		r, err := se.open(ctx, rw.row)
		if err != nil {
			u := nudges.Unreadable{Kind: nudges.KindReflection, UserID: userID, Seq: rw.row.r.Seq, Reason: nudges.UnreadableDamaged, Detail: err.Error()}
			if errors.Is(err, storage.ErrKeyMissing) {
				u.Reason = nudges.UnreadableNoKey
			}
			*recs = append(*recs, nudges.PersonRecord{Unreadable: &u})
			continue
		}
		*recs = append(*recs, nudges.PersonRecord{Reflection: &r})
	}
	return rows.Err()
}

// lenientRow is a row that may not have decoded.
type lenientRow struct {
	row row
	seq int
	err error
}

// collectLenient reads every row, keeping those that do not decode as
// errors rather than stopping: an export names what it cannot open.
func collectLenient(rows pgx.Rows) []lenientRow {
	defer rows.Close()
	var out []lenientRow
	for rows.Next() {
		rw, err := scanRow(rows)
		out = append(out, lenientRow{row: rw, seq: rw.r.Seq, err: err})
	}
	return out
}

func damaged(u nudges.Unreadable, err error) nudges.PersonRecord {
	u.Reason, u.Detail = nudges.UnreadableDamaged, err.Error()
	return nudges.PersonRecord{Unreadable: &u}
}

// ApplyRetention removes deliveries older than the retention (not the
// pending ones: the outbox still owns them), pulses
// closed before it, pulse summaries older than it beyond each channel's
// newest nudges.TrendPeriods+1, and envelopes handled before it, in
// transactions of at most pruneBatch rows. Zero retention keeps all.
func (s *Store) ApplyRetention(now time.Time) (int, error) {
	if s.retention <= 0 {
		return 0, nil
	}
	cutoff := nanos(now.Add(-s.retention))
	total := 0
	for _, step := range []struct{ what, sql string }{
		{"deliveries", "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE slot < $1 AND NOT pending LIMIT $2)"},
		{"closed pulses", "DELETE FROM pulses WHERE id IN (SELECT id FROM pulses WHERE closed < $1 LIMIT $2)"},
		{"pulse summaries", `DELETE FROM pulse_history WHERE (channel, closed, pulse_id) IN (
			SELECT channel, closed, pulse_id FROM (
				SELECT channel, closed, pulse_id, row_number() OVER (PARTITION BY channel ORDER BY closed DESC, pulse_id DESC) AS newest
				FROM pulse_history) h
			WHERE closed < $1 AND newest > ` + fmt.Sprint(nudges.TrendPeriods+1) + ` LIMIT $2)`},
		{"envelopes", "DELETE FROM seen WHERE key IN (SELECT key FROM seen WHERE seen_at < $1 LIMIT $2)"},
	} {
		n, err := s.deleteInBatches(step.sql, cutoff)
		total += n
		if err != nil {
			return total, fmt.Errorf("pgstore: retention: %s: %w", step.what, err)
		}
		if n > 0 {
			s.log.Info("retention removed old records", "what", step.what, "count", n)
		}
	}
	return total, nil
}

// RotateKeys re-seals every data key not sealed under the current master
// key and returns how many; reflections are untouched.
func (s *Store) RotateKeys() (int, error) {
	if s.keys == nil {
		return 0, fmt.Errorf("pgstore: rotate keys: no key configured: %w", storage.ErrKeyMissing)
	}
	n := 0
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		n = 0
		rows, err := tx.Query(ctx, "SELECT user_id, key_id, master, sealed FROM data_keys WHERE master <> $1 FOR UPDATE", s.keys.CurrentID())
		if err != nil {
			return err
		}
		type keyRow struct {
			user string
			rec  storage.SealedDataKey
		}
		old, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keyRow, error) {
			var k keyRow
			return k, r.Scan(&k.user, &k.rec.ID, &k.rec.Master, &k.rec.Sealed)
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			rec, err := s.keys.ResealDataKey(k.user, k.rec)
			if err != nil {
				return fmt.Errorf("data key of %s: %w", k.user, err)
			}
			if _, err := tx.Exec(ctx, "UPDATE data_keys SET master = $2, sealed = $3 WHERE user_id = $1", k.user, rec.Master, rec.Sealed); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: rotate keys: %w", err)
	}
	return n, nil
}

// DeliverySize vacuums the deliveries table and returns its size with
// indexes and TOAST, and its heap alone, in bytes: what kept history
// costs.
func (s *Store) DeliverySize(ctx context.Context) (total, heap int64, err error) {
	if _, err := s.pool.Exec(ctx, "VACUUM ANALYZE deliveries"); err != nil {
		return 0, 0, err
	}
	err = s.pool.QueryRow(ctx, "SELECT pg_total_relation_size('deliveries'), pg_relation_size('deliveries')").Scan(&total, &heap)
	return total, heap, err
}
