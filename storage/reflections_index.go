package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// SharedReflections returns the reflections of userIDs whose authors
// chose to share them (Share is not ShareNone) and that were created in
// [from, to), decrypted, oldest first. It reads only those reflections.
// A record whose seal does not match it (ErrTampered) is left out and
// logged as an error.
func (db *DB) SharedReflections(userIDs []string, from, to time.Time) ([]nudges.Reflection, error) {
	users := slices.DeleteFunc(slices.Clone(userIDs), func(u string) bool { return checkUserID(u) != nil })
	slices.Sort(users)
	users = slices.Compact(users)
	var rs []nudges.Reflection
	err := db.view(func(tx *bolt.Tx) error {
		s, err := db.session(tx)
		if err != nil {
			return err
		}
		c := s.rb.shared.Cursor()
		for _, userID := range users {
			prefix := personPrefix(userID)
			start := prefix
			if lo, _ := keyTimeRange(); from.After(lo) {
				if start, err = sharedKey(userID, from, 0); err != nil {
					start = prefixEnd(userID) // from is past every indexable time
				}
			}
			for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				rest := k[len(prefix):]
				if len(rest) != timeKeyLen+seqLen {
					return fmt.Errorf("shared index key %x is malformed", k)
				}
				if !keyTime(rest).Before(to) {
					break
				}
				seq := int(binary.BigEndian.Uint64(rest[timeKeyLen:]))
				rk := reflectionKey(userID, seq)
				v := s.rb.reflections.Get(rk)
				if v == nil {
					db.log.Warn("shared index lists a reflection that does not exist; ignoring it", "user_id", userID, "seq", seq)
					continue
				}
				r, err := s.read(rk, v)
				if errors.Is(err, ErrTampered) {
					// Refused, not fatal: one altered record must not stop
					// the digest, and must never be shown.
					db.log.Error("refused a shared reflection whose seal does not match its record: it was damaged, or who may see it was changed without the key; it is left out of the digest",
						"user_id", userID, "seq", seq)
					continue
				}
				if err != nil {
					return err
				}
				if r.Share == nudges.ShareNone || r.Created.Before(from) || !r.Created.Before(to) {
					continue // a stale index entry must not share what was not
				}
				rs = append(rs, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: shared reflections: %w", err)
	}
	slices.SortStableFunc(rs, func(a, b nudges.Reflection) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		if c := strings.Compare(a.UserID, b.UserID); c != 0 {
			return c
		}
		return a.Seq - b.Seq
	})
	return rs, nil
}

// DueFollowUps returns up to limit (all if limit <= 0) reflections,
// decrypted, whose commitment is due to be quoted back (FollowUpDue at or
// before now) and was not yet (FollowedUp zero), oldest due first. It
// reads only the entries it returns. A reflection that cannot be read
// is logged and skipped, so one person's damage does not stop everyone's
// follow-ups.
func (db *DB) DueFollowUps(now time.Time, limit int) ([]nudges.Reflection, error) {
	var rs []nudges.Reflection
	err := db.view(func(tx *bolt.Tx) error {
		s, err := db.session(tx)
		if err != nil {
			return err
		}
		c := s.rb.followUps.Cursor()
		for k, _ := c.First(); k != nil && keyNotAfter(k, now); k, _ = c.Next() {
			if limit > 0 && len(rs) >= limit {
				break
			}
			if len(k) < timeKeyLen {
				return fmt.Errorf("follow-up index key %x is malformed", k)
			}
			rk := k[timeKeyLen:]
			userID, seq, err := splitReflectionKey(rk)
			if err != nil {
				return fmt.Errorf("follow-up index: %w", err)
			}
			v := s.rb.reflections.Get(rk)
			if v == nil {
				db.log.Warn("follow-up index lists a reflection that does not exist; ignoring it", "user_id", userID, "seq", seq)
				continue
			}
			r, err := s.read(rk, v)
			if err != nil {
				db.log.Warn("cannot read a reflection due for follow-up; skipping it", "user_id", userID, "seq", seq, "error", err)
				continue
			}
			if r.FollowUpDue.IsZero() || !r.FollowedUp.IsZero() || r.FollowUpDue.After(now) {
				continue // stale index entry
			}
			rs = append(rs, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: due follow-ups: %w", err)
	}
	return rs, nil
}

// DueFollowUp returns the person's oldest commitment due to be quoted
// back by now, from the follow-up index: it reads index keys only, and
// opens no reflection but the one it returns, however many the person
// wrote since.
func (db *DB) DueFollowUp(userID string, now time.Time) (r nudges.Reflection, found bool, err error) {
	if err := checkUserID(userID); err != nil {
		return nudges.Reflection{}, false, err
	}
	due, err := db.DueFollowUpsOf([]string{userID}, now)
	if err != nil {
		return nudges.Reflection{}, false, err
	}
	r, found = due[userID]
	return r, found, nil
}

// DueFollowUpsOf is DueFollowUp for each of userIDs, from one walk of
// the follow-up index that stops once each has one; those with none due
// are left out.
func (db *DB) DueFollowUpsOf(userIDs []string, now time.Time) (map[string]nudges.Reflection, error) {
	wanted := make(map[string]bool, len(userIDs))
	for _, id := range userIDs {
		if checkUserID(id) == nil {
			wanted[id] = true
		}
	}
	due := map[string]nudges.Reflection{}
	err := db.view(func(tx *bolt.Tx) error {
		s, err := db.session(tx)
		if err != nil {
			return err
		}
		c := s.rb.followUps.Cursor()
		for k, _ := c.First(); k != nil && keyNotAfter(k, now) && len(due) < len(wanted); k, _ = c.Next() {
			if len(k) < timeKeyLen {
				return fmt.Errorf("follow-up index key %x is malformed", k)
			}
			rk := k[timeKeyLen:]
			i := bytes.IndexByte(rk, 0)
			if i < 0 {
				return fmt.Errorf("follow-up index key %x is malformed", k)
			}
			userID := string(rk[:i])
			if _, done := due[userID]; done || !wanted[userID] {
				continue
			}
			v := s.rb.reflections.Get(rk)
			if v == nil {
				continue // a stale index entry; Check reports it
			}
			got, err := s.read(rk, v)
			if err != nil {
				return err
			}
			if got.FollowUpDue.IsZero() || !got.FollowedUp.IsZero() || got.FollowUpDue.After(now) {
				continue
			}
			due[userID] = got
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: due follow-ups of %d people: %w", len(userIDs), err)
	}
	return due, nil
}
