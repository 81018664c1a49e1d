package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// A reflection row keeps its text and commitment sealed (column sealed,
// storage.DataKey.Seal) and every other field plain in record, the
// nudges.Reflection encoding with the text and commitment empty. The
// fields bound into the seal are read from record, so changing who may
// see a reflection without the key makes it fail to open.

// session opens each person's data key once per call.
type session struct {
	s      *Store
	q      querier
	keys   map[string]storage.DataKey
	create bool // may create data keys
}

func (s *Store) session(q querier) *session {
	return &session{s: s, q: q, keys: map[string]storage.DataKey{}}
}

func (se *session) dataKey(ctx context.Context, userID string) (storage.DataKey, error) {
	if dk, ok := se.keys[userID]; ok {
		return dk, nil
	}
	var rec storage.SealedDataKey
	err := se.q.QueryRow(ctx, "SELECT key_id, master, sealed FROM data_keys WHERE user_id = $1", userID).Scan(&rec.ID, &rec.Master, &rec.Sealed)
	found := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return storage.DataKey{}, fmt.Errorf("data key of %s: %w", userID, err)
	}
	var dk storage.DataKey
	switch {
	case !found && !se.create:
		return dk, fmt.Errorf("the reflections of %s cannot be read: their data key was deleted by a Forget: call Forget for %s again", userID, userID)
	case se.s.keys == nil:
		return dk, fmt.Errorf("no key is configured to seal reflections: set %s or storage.key_file: %w", storage.EnvSecretKey, storage.ErrKeyMissing)
	case !found:
		dk, rec, err = se.s.keys.NewDataKey(userID)
		if err != nil {
			return dk, err
		}
		tx, ok := se.q.(pgx.Tx)
		if !ok {
			return dk, errors.New("a data key can only be created in a transaction")
		}
		// Two first reflections at once: one insert loses, and its
		// transaction runs again and reads the winner's key.
		if _, err := tx.Exec(ctx, "INSERT INTO data_keys (user_id, master, key_id, sealed) VALUES ($1, $2, $3, $4)", userID, rec.Master, rec.ID, rec.Sealed); err != nil {
			return dk, fmt.Errorf("write data key of %s: %w", userID, err)
		}
	default:
		if dk, err = se.s.keys.OpenDataKey(userID, rec); err != nil {
			return dk, err
		}
	}
	se.keys[userID] = dk
	return dk, nil
}

// row is a reflection as read: the plain fields and the sealed payload.
type row struct {
	r       nudges.Reflection
	dataKey string
	sealed  []byte
}

const reflectionColumns = "user_id, seq, data_key, sealed, record"

func scanRow(rows pgx.CollectableRow) (row, error) {
	var (
		rw        row
		userID    string
		seq       int
		rawRecord []byte
	)
	if err := rows.Scan(&userID, &seq, &rw.dataKey, &rw.sealed, &rawRecord); err != nil {
		return rw, err
	}
	if err := json.Unmarshal(rawRecord, &rw.r); err != nil {
		return rw, fmt.Errorf("decode reflection %d of %s: %w: %w", seq, userID, err, storage.ErrCorrupt)
	}
	if rw.r.UserID != userID || rw.r.Seq != seq {
		return rw, fmt.Errorf("reflection stored as %d of %s says it is %d of %s: %w", seq, userID, rw.r.Seq, rw.r.UserID, storage.ErrCorrupt)
	}
	return rw, nil
}

func (se *session) rows(ctx context.Context, sql string, args ...any) ([]row, error) {
	rs, err := se.q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rs, scanRow)
}

// open decrypts rw's payload into its reflection.
func (se *session) open(ctx context.Context, rw row) (nudges.Reflection, error) {
	dk, err := se.dataKey(ctx, rw.r.UserID)
	if err != nil {
		return nudges.Reflection{}, err
	}
	if rw.dataKey != dk.ID() {
		return nudges.Reflection{}, fmt.Errorf("reflection %d of %s was sealed with data key %s, but %s has data key %s: it cannot be read: %w",
			rw.r.Seq, rw.r.UserID, rw.dataKey, rw.r.UserID, dk.ID(), storage.ErrCorrupt)
	}
	r := rw.r
	r.Text, r.Commitment, err = dk.Open(r, rw.sealed)
	return r, err
}

// write inserts or replaces r, sealed under its author's data key.
func (se *session) write(ctx context.Context, tx pgx.Tx, r nudges.Reflection) error {
	dk, err := se.dataKey(ctx, r.UserID)
	if err != nil {
		return err
	}
	plain := r
	plain.Text, plain.Commitment = "", ""
	_, err = tx.Exec(ctx, `INSERT INTO reflections (`+reflectionRow+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (user_id, seq) DO UPDATE SET data_key = EXCLUDED.data_key, sealed = EXCLUDED.sealed, share = EXCLUDED.share,
			message_ts = EXCLUDED.message_ts, follow_up_due = EXCLUDED.follow_up_due, record = EXCLUDED.record`,
		reflectionArgs(plain, dk.ID(), dk.Seal(r))...)
	if err != nil {
		return fmt.Errorf("write reflection %d of %s: %w", r.Seq, r.UserID, err)
	}
	return nil
}

// reflectionRow names the columns reflectionArgs fills.
const reflectionRow = "user_id, seq, created, data_key, sealed, share, message_ts, follow_up_due, record"

// reflectionArgs are the column values of plain (a reflection with its
// text and commitment emptied) sealed as sealed under data key dataKey.
func reflectionArgs(plain nudges.Reflection, dataKey string, sealed []byte) []any {
	raw, _ := json.Marshal(plain) // plain data: cannot fail
	var msg *string
	if plain.MessageTS != "" {
		msg = &plain.MessageTS
	}
	var followUp *int64
	if !plain.FollowUpDue.IsZero() && plain.FollowedUp.IsZero() {
		followUp = nullNanos(plain.FollowUpDue)
	}
	return []any{plain.UserID, plain.Seq, nanos(plain.Created), dataKey, sealed, string(plain.Share), msg, followUp, raw}
}

// personLock is the first key of the advisory lock that orders a
// person's first reflection against their Forget.
const personLock = 0x6e70 // "np"

// lockPerson takes userID's transaction-level lock: a save that would
// create a data key, and each step of a Forget, run one at a time for a
// person, as they do on the bbolt file's single writer. Without it a save
// begun before a Forget could commit a reflection, sealed under the key
// being destroyed, after the Forget deleted the person's rows.
func lockPerson(ctx context.Context, tx pgx.Tx, userID string) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", personLock, userID); err != nil {
		return fmt.Errorf("lock %s: %w", userID, err)
	}
	return nil
}

func checkUserID(userID string) error { return storage.CheckKeyPart("user id", userID) }

// validIDs drops the ids no record can have (empty, or with a NUL byte,
// which PostgreSQL's text cannot hold), as the bbolt engine skips them.
func validIDs(ids []string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return checkUserID(id) != nil })
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// SaveReflection seals and stores r, assigning the person's next Seq
// (from 1, never reused, also after deletes) and Created if zero.
func (s *Store) SaveReflection(r nudges.Reflection) (nudges.Reflection, error) {
	if r.Created.IsZero() {
		r.Created = s.now()
	}
	r.Created = r.Created.UTC()
	r.FollowUpDue = utcOrZero(r.FollowUpDue)
	r.FollowedUp = utcOrZero(r.FollowedUp)
	r.Seq = 0
	if err := storage.ValidateReflection(r); err != nil {
		return nudges.Reflection{}, fmt.Errorf("pgstore: save reflection of %s: %w", r.UserID, err)
	}
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if err := lockPerson(ctx, tx, r.UserID); err != nil {
			return err
		}
		var forgetting bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM forgetting WHERE user_id = $1)", r.UserID).Scan(&forgetting); err != nil {
			return err
		}
		if forgetting {
			return fmt.Errorf("%s is being forgotten: call Forget for %s again to finish, then save", r.UserID, r.UserID)
		}
		// The counter row is locked by the upsert, so one person's saves
		// take seqs one after the other.
		err := tx.QueryRow(ctx, `INSERT INTO reflection_seq AS q (user_id, last)
			VALUES ($1, 1 + coalesce((SELECT max(seq) FROM reflections WHERE user_id = $1), 0))
			ON CONFLICT (user_id) DO UPDATE SET last = 1 + greatest(q.last, coalesce((SELECT max(seq) FROM reflections WHERE user_id = $1), 0))
			RETURNING last`, r.UserID).Scan(&r.Seq)
		if err != nil {
			return fmt.Errorf("seq counter: %w", err)
		}
		se := s.session(tx)
		se.create = true
		return se.write(ctx, tx, r)
	})
	if err != nil {
		return nudges.Reflection{}, fmt.Errorf("pgstore: save reflection of %s: %w", r.UserID, err)
	}
	return r, nil
}

// readOne reads and opens the one reflection the query selects, or
// nudges.ErrNotFound.
func (s *Store) readOne(sql string, args ...any) (nudges.Reflection, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	se := s.session(s.pool)
	rows, err := se.rows(ctx, sql, args...)
	if err != nil {
		return nudges.Reflection{}, err
	}
	if len(rows) == 0 {
		return nudges.Reflection{}, nudges.ErrNotFound
	}
	return se.open(ctx, rows[0])
}

// Reflection returns userID's reflection seq, decrypted, or an error
// wrapping nudges.ErrNotFound.
func (s *Store) Reflection(userID string, seq int) (nudges.Reflection, error) {
	if err := checkUserID(userID); err != nil {
		return nudges.Reflection{}, fmt.Errorf("pgstore: reflection %d: %w", seq, err)
	}
	r, err := s.readOne("SELECT "+reflectionColumns+" FROM reflections WHERE user_id = $1 AND seq = $2", userID, seq)
	if err != nil {
		return nudges.Reflection{}, fmt.Errorf("pgstore: reflection %d of %s: %w", seq, userID, err)
	}
	return r, nil
}

// newest calls fn with each of userID's reflections, newest first,
// decrypted, until fn returns false.
func (s *Store) newest(userID string, fn func(nudges.Reflection) bool) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	se := s.session(s.pool)
	rows, err := se.rows(ctx, "SELECT "+reflectionColumns+" FROM reflections WHERE user_id = $1 ORDER BY seq DESC", userID)
	if err != nil {
		return err
	}
	for _, rw := range rows {
		r, err := se.open(ctx, rw)
		if err != nil {
			return err
		}
		if !fn(r) {
			return nil
		}
	}
	return nil
}

// Reflections returns up to limit of userID's reflections (all if
// limit <= 0), decrypted, newest first.
func (s *Store) Reflections(userID string, limit int) ([]nudges.Reflection, error) {
	var rs []nudges.Reflection
	err := s.newest(userID, func(r nudges.Reflection) bool {
		rs = append(rs, r)
		return limit <= 0 || len(rs) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: reflections of %s: %w", userID, err)
	}
	return rs, nil
}

// SearchReflections returns up to limit (all if limit <= 0) of userID's
// reflections whose text or commitment contains word, ignoring case,
// newest first. The text is sealed, so the search is in this process,
// over the person's reflections only.
func (s *Store) SearchReflections(userID, word string, limit int) ([]nudges.Reflection, error) {
	word = strings.TrimSpace(word)
	if word == "" {
		return nil, fmt.Errorf("pgstore: search reflections of %s: %w: the search word is empty: give a word to look for", userID, storage.ErrInvalidReflection)
	}
	var rs []nudges.Reflection
	err := s.newest(userID, func(r nudges.Reflection) bool {
		if storage.ContainsFold(r.Text, word) || storage.ContainsFold(r.Commitment, word) {
			rs = append(rs, r)
		}
		return limit <= 0 || len(rs) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: search reflections of %s: %w", userID, err)
	}
	return rs, nil
}

// CountReflections counts userID's reflections without decrypting them.
func (s *Store) CountReflections(userID string) (int, error) {
	if err := checkUserID(userID); err != nil {
		return 0, fmt.Errorf("pgstore: count reflections: %w", err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	var n int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM reflections WHERE user_id = $1", userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("pgstore: count reflections of %s: %w", userID, err)
	}
	return n, nil
}

// UpdateReflection applies fn to userID's reflection seq, decrypted, its
// row locked, and stores the result sealed afresh. fn may not change
// UserID, Seq or Created.
func (s *Store) UpdateReflection(userID string, seq int, fn func(*nudges.Reflection) error) (nudges.Reflection, error) {
	var r nudges.Reflection
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if err := checkUserID(userID); err != nil {
			return err
		}
		se := s.session(tx)
		rows, err := se.rows(ctx, "SELECT "+reflectionColumns+" FROM reflections WHERE user_id = $1 AND seq = $2 FOR UPDATE", userID, seq)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return nudges.ErrNotFound
		}
		before, err := se.open(ctx, rows[0])
		if err != nil {
			return err
		}
		r = before
		if err := fn(&r); err != nil {
			return err
		}
		if r.UserID != before.UserID || r.Seq != before.Seq || !r.Created.Equal(before.Created) {
			return errors.New("the update changed the reflection's user, seq or creation time; they identify it and cannot change")
		}
		r.Created = before.Created
		r.FollowUpDue = utcOrZero(r.FollowUpDue)
		r.FollowedUp = utcOrZero(r.FollowedUp)
		if err := storage.ValidateReflection(r); err != nil {
			return err
		}
		return se.write(ctx, tx, r)
	})
	if err != nil {
		return nudges.Reflection{}, fmt.Errorf("pgstore: update reflection %d of %s: %w", seq, userID, err)
	}
	return r, nil
}

// DeleteReflection deletes userID's reflection seq, or returns an error
// wrapping nudges.ErrNotFound.
func (s *Store) DeleteReflection(userID string, seq int) error {
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM reflections WHERE user_id = $1 AND seq = $2", userID, seq)
		if err == nil && tag.RowsAffected() == 0 {
			err = nudges.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: delete reflection %d of %s: %w", seq, userID, err)
	}
	s.needsVacuum.Store(true)
	return nil
}

// SharedReflections returns the reflections of userIDs their authors
// chose to share, created in [from, to), decrypted, oldest first. A
// record whose seal does not match it is left out and logged.
func (s *Store) SharedReflections(userIDs []string, from, to time.Time) ([]nudges.Reflection, error) {
	userIDs = validIDs(userIDs)
	ctx, cancel := s.ctx()
	defer cancel()
	se := s.session(s.pool)
	rows, err := se.rows(ctx, "SELECT "+reflectionColumns+` FROM reflections
		WHERE user_id = ANY($1) AND share <> '' AND created >= $2 AND created < $3 ORDER BY created, user_id, seq`,
		userIDs, nanos(from), nanos(to))
	if err != nil {
		return nil, fmt.Errorf("pgstore: shared reflections: %w", err)
	}
	var rs []nudges.Reflection
	for _, rw := range rows {
		r, err := se.open(ctx, rw)
		if errors.Is(err, storage.ErrTampered) {
			s.log.Error("refused a shared reflection whose seal does not match its record: it was damaged, or who may see it was changed without the key; it is left out of the digest",
				"user_id", rw.r.UserID, "seq", rw.r.Seq)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pgstore: shared reflections: %w", err)
		}
		if r.Share == nudges.ShareNone || r.Created.Before(from) || !r.Created.Before(to) {
			continue // the columns must not share what the record does not
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// DueFollowUp is the person's oldest commitment due to be quoted back by
// now, read through reflections_follow_ups.
func (s *Store) DueFollowUp(userID string, now time.Time) (nudges.Reflection, bool, error) {
	if err := checkUserID(userID); err != nil {
		return nudges.Reflection{}, false, err
	}
	r, err := s.readOne("SELECT "+reflectionColumns+` FROM reflections
		WHERE user_id = $1 AND follow_up_due IS NOT NULL AND follow_up_due <= $2 ORDER BY follow_up_due, seq LIMIT 1`, userID, nanos(now))
	if errors.Is(err, nudges.ErrNotFound) {
		return nudges.Reflection{}, false, nil
	}
	if err != nil {
		return nudges.Reflection{}, false, fmt.Errorf("pgstore: due follow-up: %w", err)
	}
	return r, true, nil
}

// DueFollowUpsOf is DueFollowUp for each of userIDs, in one query; those
// with none due are left out.
func (s *Store) DueFollowUpsOf(userIDs []string, now time.Time) (map[string]nudges.Reflection, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	se := s.session(s.pool)
	rows, err := se.rows(ctx, "SELECT DISTINCT ON (user_id) "+reflectionColumns+` FROM reflections
		WHERE user_id = ANY($1) AND follow_up_due IS NOT NULL AND follow_up_due <= $2 ORDER BY user_id, follow_up_due, seq`, validIDs(userIDs), nanos(now))
	if err != nil {
		return nil, fmt.Errorf("pgstore: due follow-ups of %d people: %w", len(userIDs), err)
	}
	due := make(map[string]nudges.Reflection, len(rows))
	for _, rw := range rows {
		r, err := se.open(ctx, rw)
		if err != nil {
			return nil, fmt.Errorf("pgstore: due follow-ups: %w", err)
		}
		due[r.UserID] = r
	}
	return due, nil
}

// ReflectionByMessage is the reflection typed as the Slack message ts in
// the person's DM; nudges.ErrNotFound when there is none.
func (s *Store) ReflectionByMessage(userID, ts string) (nudges.Reflection, error) {
	if err := checkUserID(userID); err != nil {
		return nudges.Reflection{}, fmt.Errorf("pgstore: reflection from message %s: %w", ts, err)
	}
	r, err := s.readOne("SELECT "+reflectionColumns+" FROM reflections WHERE user_id = $1 AND message_ts = $2 ORDER BY seq DESC LIMIT 1", userID, ts)
	if err != nil {
		return nudges.Reflection{}, fmt.Errorf("pgstore: reflection of %s from message %s: %w", userID, ts, err)
	}
	return r, nil
}
