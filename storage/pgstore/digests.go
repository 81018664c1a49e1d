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

// digestState is what the digests table keeps per channel: the bbolt
// engine's record and its rules, shared through storage.
type digestState = storage.DigestRecord

// PostedDigest returns the channel's last digest; the zero value if it
// never had one.
func (s *Store) PostedDigest(channel string) (nudges.PostedDigest, error) {
	if err := storage.CheckKeyPart("channel", channel); err != nil {
		return nudges.PostedDigest{}, fmt.Errorf("pgstore: posted digest: %w", err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	st, err := loadDigestState(ctx, s.pool, channel, false)
	if err != nil {
		return nudges.PostedDigest{}, fmt.Errorf("pgstore: posted digest of %s: %w", channel, err)
	}
	return nudges.PostedDigest{At: st.Last, Shown: st.Shown, Members: st.Members}, nil
}

func loadDigestState(ctx context.Context, q querier, channel string, forUpdate bool) (digestState, error) {
	sql := "SELECT state FROM digests WHERE channel = $1"
	if forUpdate {
		sql += " FOR UPDATE"
	}
	var (
		raw []byte
		st  digestState
	)
	err := q.QueryRow(ctx, sql, channel).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(raw, &st)
}

// RecordDigest records a digest posted: what it showed (without the
// shared reflections' text, which is never kept unsealed) and the
// members the next period counts.
func (s *Store) RecordDigest(channel string, p nudges.PostedDigest) error {
	if p.Shown != nil {
		shown := *p.Shown
		shown.SharedReflections = nil
		p.Shown = &shown
	}
	err := s.updateDigestState(channel, func(st *digestState) bool {
		st.Last = p.At.UTC()
		st.Shown = p.Shown
		st.Members = slices.Clone(p.Members)
		return true
	})
	if err != nil {
		return fmt.Errorf("pgstore: record digest of %s: %w", channel, err)
	}
	return nil
}

// MarkDigestBroken records that channel cannot take its digest, and why;
// first is true only if it was not marked already.
func (s *Store) MarkDigestBroken(channel, reason string) (first bool, err error) {
	if strings.TrimSpace(reason) == "" {
		return false, fmt.Errorf("pgstore: mark digest of %s broken: no reason given", channel)
	}
	now := s.now().UTC()
	err = s.updateDigestState(channel, func(st *digestState) bool {
		first = st.MarkBroken(reason, now)
		return first
	})
	if err != nil {
		return false, fmt.Errorf("pgstore: mark digest of %s broken: %w", channel, err)
	}
	return first, nil
}

// ClearDigestBroken forgets that channel could not take its digest.
func (s *Store) ClearDigestBroken(channel string) error {
	err := s.updateDigestState(channel, (*digestState).ClearBroken)
	if err != nil {
		return fmt.Errorf("pgstore: clear broken digest of %s: %w", channel, err)
	}
	return nil
}

func (s *Store) updateDigestState(channel string, fn func(*digestState) bool) error {
	if err := storage.CheckKeyPart("channel", channel); err != nil {
		return err
	}
	return s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if err := s.fence(ctx, tx); err != nil {
			return err
		}
		// A row to lock even for a channel's first state, so two
		// changes at once queue rather than overwrite each other.
		if _, err := tx.Exec(ctx, "INSERT INTO digests (channel, state) VALUES ($1, '{}') ON CONFLICT (channel) DO NOTHING", channel); err != nil {
			return err
		}
		st, err := loadDigestState(ctx, tx, channel, true)
		if err != nil {
			return err
		}
		if !fn(&st) {
			return nil
		}
		raw, err := json.Marshal(st)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO digests (channel, state) VALUES ($1, $2) ON CONFLICT (channel) DO UPDATE SET state = EXCLUDED.state", channel, raw)
		return err
	})
}

// OpenPulse starts a pulse with id in channel, which voters (the
// channel's members as it is posted) may answer. Opening it again in the
// same channel does nothing; an id in use by another channel is an
// error.
func (s *Store) OpenPulse(channel, id string, opened time.Time, voters ...string) error {
	if err := errors.Join(storage.CheckKeyPart("channel", channel), storage.CheckKeyPart("pulse id", id)); err != nil {
		return fmt.Errorf("pgstore: open pulse %q: %w", id, err)
	}
	var snapshot []byte // NULL: no voters kept, as the bbolt engine reads an empty list
	if len(voters) > 0 {
		snapshot, _ = json.Marshal(voters)
	}
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if err := s.fence(ctx, tx); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO pulses (id, channel, opened, totals, voter_key, voters) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (id) DO NOTHING`, id, channel, nanos(opened), []byte(`{}`), storage.NewVoterKey(), snapshot)
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		var was string
		if err := tx.QueryRow(ctx, "SELECT channel FROM pulses WHERE id = $1", id).Scan(&was); err != nil {
			return err
		}
		if was != channel {
			return fmt.Errorf("the id is already used by a pulse in %s: pick another id", was)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: open pulse %q in %s: %w", id, channel, err)
	}
	return nil
}

// PulseVoters are the people who may answer pulse id: its channel's
// members when it was posted. A pulse opened without them has none
// (snapshot false); a missing pulse wraps nudges.ErrNotFound, a closed
// one nudges.ErrPulseClosed.
func (s *Store) PulseVoters(id string) (voters []string, snapshot bool, err error) {
	if err := storage.CheckKeyPart("pulse id", id); err != nil {
		return nil, false, fmt.Errorf("pgstore: pulse voters: %w", err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	var (
		closed *int64
		raw    []byte
	)
	err = s.pool.QueryRow(ctx, "SELECT closed, voters FROM pulses WHERE id = $1", id).Scan(&closed, &raw)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = fmt.Errorf("pulse %q: %w", id, nudges.ErrNotFound)
	case err == nil && closed != nil:
		err = nudges.ErrPulseClosed
	case err == nil && raw != nil:
		snapshot, err = true, json.Unmarshal(raw, &voters)
	}
	if err != nil {
		return nil, false, fmt.Errorf("pgstore: voters of pulse %q: %w", id, err)
	}
	return voters, snapshot, nil
}

// openPulse is an open pulse's row, locked.
type openPulse struct {
	totals nudges.PulseSummary
	key    []byte
}

// pulseVoter is what is known of one marker: whether it voted and how
// many answers it added, never what it said.
type pulseVoter struct {
	Voted    bool
	HearMore int
}

// updateOpenPulse applies fn to an open pulse and one person's marker in
// it, saving both unless fn fails or changes nothing.
func (s *Store) updateOpenPulse(id, userID string, fn func(*nudges.PulseSummary, *pulseVoter) error) error {
	if err := errors.Join(storage.CheckKeyPart("pulse id", id), storage.CheckKeyPart("user id", userID)); err != nil {
		return err
	}
	return s.tx(func(ctx context.Context, tx pgx.Tx) error {
		p, err := lockOpenPulse(ctx, tx, id)
		if err != nil {
			return err
		}
		marker := storage.VoterMarker(id, p.key, userID)
		var v pulseVoter
		err = tx.QueryRow(ctx, "SELECT voted, hear_more FROM pulse_voters WHERE pulse_id = $1 AND marker = $2", id, marker).Scan(&v.Voted, &v.HearMore)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		before := v
		if err := fn(&p.totals, &v); err != nil {
			return err
		}
		if v == before {
			return nil
		}
		totals, _ := json.Marshal(p.totals)
		var batch pgx.Batch
		batch.Queue(`INSERT INTO pulse_voters (pulse_id, marker, voted, hear_more) VALUES ($1, $2, $3, $4)
			ON CONFLICT (pulse_id, marker) DO UPDATE SET voted = EXCLUDED.voted, hear_more = EXCLUDED.hear_more`, id, marker, v.Voted, v.HearMore)
		batch.Queue("UPDATE pulses SET totals = $2 WHERE id = $1", id, totals)
		return tx.SendBatch(ctx, &batch).Close()
	})
}

func lockOpenPulse(ctx context.Context, tx pgx.Tx, id string) (openPulse, error) {
	var (
		p      openPulse
		closed *int64
		raw    []byte
	)
	err := tx.QueryRow(ctx, "SELECT closed, totals, voter_key FROM pulses WHERE id = $1 FOR UPDATE", id).Scan(&closed, &raw, &p.key)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return p, fmt.Errorf("pulse %q: %w", id, nudges.ErrNotFound)
	case err != nil:
		return p, err
	case closed != nil:
		return p, nudges.ErrPulseClosed
	case len(p.key) != storage.VoterKeyLen:
		return p, errors.New("the pulse has no voter key")
	}
	return p, json.Unmarshal(raw, &p.totals)
}

// VotePulse records userID's score in pulse id, once per person: a
// second vote changes nothing and returns first=false. The score goes
// straight into the totals, so no row pairs a person with a score.
func (s *Store) VotePulse(id, userID string, score int) (first bool, err error) {
	if err := nudges.ValidPulseScore(score); err != nil {
		return false, fmt.Errorf("pgstore: vote in pulse %q: %w", id, err)
	}
	err = s.updateOpenPulse(id, userID, func(t *nudges.PulseSummary, v *pulseVoter) error {
		first = false
		if v.Voted {
			return nil
		}
		if err := t.Record(score); err != nil {
			return err
		}
		v.Voted, first = true, true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("pgstore: vote of %s in pulse %q: %w", userID, id, err)
	}
	return first, nil
}

// AddHearMore adds userID's answer to "what would you like to hear more
// about" to pulse id, at most nudges.MaxHearMorePerPerson per person.
func (s *Store) AddHearMore(id, userID, text string) error {
	text, err := nudges.CleanHearMore(text)
	if err != nil {
		return fmt.Errorf("pgstore: add to pulse %q: %w", id, err)
	}
	err = s.updateOpenPulse(id, userID, func(t *nudges.PulseSummary, v *pulseVoter) error {
		if v.HearMore >= nudges.MaxHearMorePerPerson {
			return fmt.Errorf("%d answers already: %w", v.HearMore, nudges.ErrTooManyAnswers)
		}
		if v.HearMore == 0 {
			t.HearMoreWriters++
		}
		v.HearMore++
		t.HearMore = append(t.HearMore, text)
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: answer of %s to pulse %q: %w", userID, id, err)
	}
	return nil
}

// ClosePulse ends pulse id: it files the totals in the channel's
// history, deletes every voter marker and destroys the voter key in one
// transaction. Closing a closed pulse returns the summary filed then.
func (s *Store) ClosePulse(id string) (nudges.PulseSummary, error) {
	var sum nudges.PulseSummary
	now := s.now().UTC()
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		if err := s.fence(ctx, tx); err != nil {
			return err
		}
		var (
			channel string
			closed  *int64
			raw     []byte
		)
		err := tx.QueryRow(ctx, "SELECT channel, closed, totals FROM pulses WHERE id = $1 FOR UPDATE", id).Scan(&channel, &closed, &raw)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("pulse %q: %w", id, nudges.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if closed != nil {
			err := tx.QueryRow(ctx, "SELECT summary FROM pulse_history WHERE channel = $1 AND closed = $2 AND pulse_id = $3", channel, *closed, id).Scan(&raw)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("the pulse closed but its summary is missing from the history")
			}
			if err != nil {
				return err
			}
			return json.Unmarshal(raw, &sum)
		}
		if err := json.Unmarshal(raw, &sum); err != nil {
			return fmt.Errorf("decode pulse totals: %w", err)
		}
		sum.PeriodEnd = now
		sum.HearMore = slices.Clone(sum.HearMore)
		slices.Sort(sum.HearMore)
		summary, _ := json.Marshal(sum)
		var batch pgx.Batch
		batch.Queue("INSERT INTO pulse_history (channel, closed, pulse_id, summary) VALUES ($1, $2, $3, $4)", channel, nanos(now), id, summary)
		batch.Queue("DELETE FROM pulse_voters WHERE pulse_id = $1", id)
		batch.Queue("UPDATE pulses SET closed = $2, totals = '{}', voter_key = NULL, voters = NULL WHERE id = $1", id, nanos(now))
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return nudges.PulseSummary{}, fmt.Errorf("pgstore: close pulse %q: %w", id, err)
	}
	return sum, nil
}

// PulseHistory returns the summaries of channel's last n closed pulses,
// oldest first; n <= 0 means all of them.
func (s *Store) PulseHistory(channel string, n int) ([]nudges.PulseSummary, error) {
	if err := storage.CheckKeyPart("channel", channel); err != nil {
		return nil, fmt.Errorf("pgstore: pulse history: %w", err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	var lim *int
	if n > 0 {
		lim = &n
	}
	rows, err := s.pool.Query(ctx, "SELECT summary FROM pulse_history WHERE channel = $1 ORDER BY closed DESC, pulse_id DESC LIMIT $2", channel, lim)
	if err != nil {
		return nil, fmt.Errorf("pgstore: pulse history of %s: %w", channel, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (nudges.PulseSummary, error) {
		var (
			raw []byte
			sum nudges.PulseSummary
		)
		if err := row.Scan(&raw); err != nil {
			return sum, err
		}
		return sum, json.Unmarshal(raw, &sum)
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: pulse history of %s: %w", channel, err)
	}
	slices.Reverse(out)
	return out, nil
}
