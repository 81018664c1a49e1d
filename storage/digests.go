package storage

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// keySep separates the parts of composite keys. Slack ids never hold it,
// and checkKeyPart refuses any that do, so prefixes cannot collide.
const keySep = 0x00

// DeliveriesFor returns the deliveries of userIDs whose slot is in
// [from, to), grouped by person in the order given (duplicates once),
// each person's oldest first. It reads each person's range through the
// person index rather than scanning, so its cost follows the period and
// the number of people, not how much history is stored; one read
// transaction makes it a consistent snapshot.
func (db *DB) DeliveriesFor(userIDs []string, from, to time.Time) ([]nudges.Delivery, error) {
	if !from.Before(to) {
		return nil, nil
	}
	var ds []nudges.Delivery
	seen := make(map[string]bool, len(userIDs))
	err := db.view(func(tx *bolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		for _, id := range userIDs {
			if id == "" || seen[id] || checkUserID(id) != nil {
				continue
			}
			seen[id] = true
			mine, err := personDeliveries(bk, id, from, to)
			if err != nil {
				return err
			}
			ds = append(ds, mine...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: deliveries of %d people from %s to %s: %w", len(userIDs), fmtTime(from), fmtTime(to), err)
	}
	return ds, nil
}

// digestState is what the digests bucket keeps per channel.
type digestState struct {
	Last     time.Time `json:"last,omitzero"`
	Broken   string    `json:"broken,omitempty"` // why the channel cannot take a digest; "" when it can
	BrokenAt time.Time `json:"broken_at,omitzero"`
	// Shown and Members: see nudges.PostedDigest.
	Shown   *nudges.Digest `json:"shown,omitempty"`
	Members []string       `json:"members,omitempty"`
}

// MarkBroken records why the channel cannot take its digest and reports
// whether it was not marked before; a later call keeps the first reason,
// so admins are told once, not at every attempt.
func (st *digestState) MarkBroken(reason string, now time.Time) (first bool) {
	if st.Broken != "" {
		return false
	}
	st.Broken, st.BrokenAt = reason, now
	return true
}

// ClearBroken forgets the mark and reports whether there was one.
func (st *digestState) ClearBroken() (changed bool) {
	if st.Broken == "" {
		return false
	}
	st.Broken, st.BrokenAt = "", time.Time{}
	return true
}

// PostedDigest returns the channel's last digest; the zero value if it
// never had one.
func (db *DB) PostedDigest(channel string) (nudges.PostedDigest, error) {
	if err := checkKeyPart("channel", channel); err != nil {
		return nudges.PostedDigest{}, fmt.Errorf("storage: posted digest: %w", err)
	}
	var st digestState
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketDigests))
		if b == nil {
			return missingBucket(bucketDigests)
		}
		_, err := getJSON(b, channel, &st)
		return err
	})
	if err != nil {
		return nudges.PostedDigest{}, fmt.Errorf("storage: posted digest of %s: %w", channel, err)
	}
	return nudges.PostedDigest{At: st.Last, Shown: st.Shown, Members: st.Members}, nil
}

// RecordDigest records a digest posted at at: what it showed (shared
// reflections' text is dropped here, so it is never kept unsealed) and
// the members the next period counts.
func (db *DB) RecordDigest(channel string, p nudges.PostedDigest) error {
	if p.Shown != nil {
		shown := *p.Shown
		shown.SharedReflections = nil
		p.Shown = &shown
	}
	err := db.updateDigestState(channel, func(st *digestState) bool {
		st.Last = p.At.UTC()
		st.Shown = p.Shown
		st.Members = slices.Clone(p.Members)
		return true
	})
	if err != nil {
		return fmt.Errorf("storage: record digest of %s: %w", channel, err)
	}
	return nil
}

// LastDigest returns when channel last got a digest, or the zero time if
// it never has.
func (db *DB) LastDigest(channel string) (time.Time, error) {
	p, err := db.PostedDigest(channel)
	return p.At, err
}

// SetLastDigest records that channel got a digest at at.
func (db *DB) SetLastDigest(channel string, at time.Time) error {
	err := db.updateDigestState(channel, func(st *digestState) bool {
		st.Last = at.UTC()
		return true
	})
	if err != nil {
		return fmt.Errorf("storage: set last digest of %s: %w", channel, err)
	}
	return nil
}

// MarkDigestBroken records that channel cannot take its digest, and why.
// first is true only if the channel was not already marked, so admins are
// told once, not at every attempt; a later call keeps the first reason.
func (db *DB) MarkDigestBroken(channel, reason string) (first bool, err error) {
	if strings.TrimSpace(reason) == "" {
		return false, fmt.Errorf("storage: mark digest of %s broken: no reason given", channel)
	}
	now := db.now().UTC()
	err = db.updateDigestState(channel, func(st *digestState) bool {
		first = st.MarkBroken(reason, now)
		return first
	})
	if err != nil {
		return false, fmt.Errorf("storage: mark digest of %s broken: %w", channel, err)
	}
	return first, nil
}

// ClearDigestBroken forgets that channel could not take its digest, so a
// later failure is reported afresh. Clearing a channel that is not marked
// does nothing.
func (db *DB) ClearDigestBroken(channel string) error {
	err := db.updateDigestState(channel, (*digestState).ClearBroken)
	if err != nil {
		return fmt.Errorf("storage: clear broken digest of %s: %w", channel, err)
	}
	return nil
}

// updateDigestState applies fn to channel's state, saving it if fn
// reports a change.
func (db *DB) updateDigestState(channel string, fn func(*digestState) bool) error {
	if err := checkKeyPart("channel", channel); err != nil {
		return err
	}
	return db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketDigests))
		if b == nil {
			return missingBucket(bucketDigests)
		}
		var st digestState
		if _, err := getJSON(b, channel, &st); err != nil {
			return err
		}
		if !fn(&st) {
			return nil
		}
		return putJSON(b, channel, st)
	})
}

// pulseRecord is one pulse in the pulses bucket of the main file: its
// channel, when it opened and, once closed, when, so late answers are
// refused and closing again returns the same summary. What must be
// erased when it closes (the running totals, the voter key and the
// voter markers) is in the secrets file (pulseSecret); files of schema 3
// and older kept Totals and VoterKey here.
type pulseRecord struct {
	Channel  string              `json:"channel"`
	Opened   time.Time           `json:"opened"`
	Closed   time.Time           `json:"closed,omitzero"`     // the summary's PeriodEnd
	Totals   nudges.PulseSummary `json:"totals,omitzero"`     // schema 3 and older
	VoterKey []byte              `json:"voter_key,omitempty"` // schema 3 and older
	// Voters are the channel's members when the pulse was posted, the
	// only people who may answer it; dropped when it closes.
	Voters []string `json:"voters,omitempty"`
}

// pulseSecret is an open pulse in the secrets file: the running totals,
// which say nothing about who gave which score, and the random key that
// turns voters into markers. The secrets file is compacted after every
// change to it, so no earlier total or voter list stays in a free page,
// and after the close, so none of it stays at all.
type pulseSecret struct {
	VoterKey []byte              `json:"voter_key"`
	Totals   nudges.PulseSummary `json:"totals"`
}

// voterKeyLen is the size of a pulse's voter key, an HMAC-SHA256 key.
const voterKeyLen = 32

func newVoterKey() []byte {
	k := make([]byte, voterKeyLen)
	_, _ = rand.Read(k) // never fails: it crashes the program instead
	return k
}

// voterMarker is pulse id ‖ 0 ‖ HMAC-SHA256(pulse key, user id): it
// tells whether this person answered this pulse to whoever holds the
// pulse's key, and, once the key is destroyed at close, to nobody. The
// same person gets unrelated markers in different pulses.
func voterMarker(id string, key []byte, userID string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(userID))
	return mac.Sum(voterKey(id, ""))
}

// pulseVoter is what is known of one marker in one open pulse: whether
// it has voted and how many answers it has added, never what it said.
// Forget leaves it alone, since it names nobody without the pulse's key
// and deleting it would let the person vote again; it is deleted when
// the pulse closes.
type pulseVoter struct {
	Voted    bool `json:"voted,omitempty"`
	HearMore int  `json:"hear_more,omitempty"`
}

// OpenPulse starts a pulse with id in channel, which voters (the
// channel's members as it is posted) may answer. Opening the same pulse
// in the same channel again does nothing, so a retried open is harmless;
// an id in use by another channel is an error.
func (db *DB) OpenPulse(channel, id string, opened time.Time, voters ...string) error {
	if err := errors.Join(checkKeyPart("channel", channel), checkKeyPart("pulse id", id)); err != nil {
		return fmt.Errorf("storage: open pulse %q: %w", id, err)
	}
	db.secretsMu.Lock()
	defer db.secretsMu.Unlock()
	err := db.update(func(tx *bolt.Tx) error {
		pb := tx.Bucket([]byte(bucketPulses))
		if pb == nil {
			return missingBucket(bucketPulses)
		}
		var old pulseRecord
		found, err := getJSON(pb, id, &old)
		if err != nil {
			return err
		}
		if found {
			if old.Channel != channel {
				return fmt.Errorf("the id is already used by a pulse in %s: pick another id", old.Channel)
			}
			return nil
		}
		// The secrets commit first: a crash before the pulse record
		// leaves a secret no pulse names, which the next Open erases.
		err = db.updatePulseSecrets(func(ps pulseSecrets) error {
			return putJSON(ps.open, id, pulseSecret{VoterKey: newVoterKey()})
		})
		if err != nil {
			return err
		}
		return putJSON(pb, id, pulseRecord{Channel: channel, Opened: opened.UTC(), Voters: slices.Clone(voters)})
	})
	if err != nil {
		return fmt.Errorf("storage: open pulse %q in %s: %w", id, channel, err)
	}
	return nil
}

// PulseVoters are the people who may answer pulse id: its channel's
// members when it was posted. A pulse opened before the snapshot was
// kept has none (snapshot false); a missing pulse wraps
// nudges.ErrNotFound, a closed one nudges.ErrPulseClosed.
func (db *DB) PulseVoters(id string) (voters []string, snapshot bool, err error) {
	if err := checkKeyPart("pulse id", id); err != nil {
		return nil, false, fmt.Errorf("storage: pulse voters: %w", err)
	}
	err = db.view(func(tx *bolt.Tx) error {
		pb := tx.Bucket([]byte(bucketPulses))
		if pb == nil {
			return missingBucket(bucketPulses)
		}
		p, err := loadPulse(pb, id)
		if err != nil {
			return err
		}
		if !p.Closed.IsZero() {
			return nudges.ErrPulseClosed
		}
		voters, snapshot = p.Voters, p.Voters != nil
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("storage: voters of pulse %q: %w", id, err)
	}
	return voters, snapshot, nil
}

// VotePulse records userID's score in pulse id. Each person votes once,
// whatever they Forget in between: a second vote changes nothing and
// returns first=false. The score goes straight into the totals, so no
// record ever pairs a person with their score, and the secrets file is
// compacted after the vote, so no earlier total is left in it either. A
// missing pulse wraps nudges.ErrNotFound, a closed one
// nudges.ErrPulseClosed.
func (db *DB) VotePulse(id, userID string, score int) (first bool, err error) {
	if err := nudges.ValidPulseScore(score); err != nil {
		return false, fmt.Errorf("storage: vote in pulse %q: %w", id, err)
	}
	err = db.updateOpenPulse(id, userID, func(p *pulseSecret, v *pulseVoter) error {
		if v.Voted {
			return nil
		}
		if err := p.Totals.Record(score); err != nil {
			return err
		}
		v.Voted, first = true, true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("storage: vote of %s in pulse %q: %w", userID, id, err)
	}
	return first, nil
}

// AddHearMore adds userID's answer to "what would you like to hear more
// about" to pulse id. The text joins the pulse's unattributed answers;
// only a count of answers is kept per person, to enforce
// nudges.MaxHearMorePerPerson (nudges.ErrTooManyAnswers). Text longer
// than nudges.MaxHearMoreLen or empty is refused. A missing pulse wraps
// nudges.ErrNotFound, a closed one nudges.ErrPulseClosed.
func (db *DB) AddHearMore(id, userID, text string) error {
	text, err := nudges.CleanHearMore(text)
	if err != nil {
		return fmt.Errorf("storage: add to pulse %q: %w", id, err)
	}
	err = db.updateOpenPulse(id, userID, func(p *pulseSecret, v *pulseVoter) error {
		if v.HearMore >= nudges.MaxHearMorePerPerson {
			return fmt.Errorf("%d answers already: %w", v.HearMore, nudges.ErrTooManyAnswers)
		}
		if v.HearMore == 0 {
			p.Totals.HearMoreWriters++
		}
		v.HearMore++
		p.Totals.HearMore = append(p.Totals.HearMore, text)
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: answer of %s to pulse %q: %w", userID, id, err)
	}
	return nil
}

// updateOpenPulse applies fn to an open pulse's secrets and one person's
// record in it, saving both unless fn fails or changes nothing, then
// compacts the secrets file so that the earlier totals and voter list
// leave it.
func (db *DB) updateOpenPulse(id, userID string, fn func(*pulseSecret, *pulseVoter) error) error {
	if err := errors.Join(checkKeyPart("pulse id", id), checkKeyPart("user id", userID)); err != nil {
		return err
	}
	db.secretsMu.Lock()
	defer db.secretsMu.Unlock()
	if err := db.view(func(tx *bolt.Tx) error {
		pb := tx.Bucket([]byte(bucketPulses))
		if pb == nil {
			return missingBucket(bucketPulses)
		}
		p, err := loadPulse(pb, id)
		if err == nil && !p.Closed.IsZero() {
			err = nudges.ErrPulseClosed
		}
		return err
	}); err != nil {
		return err
	}
	changed := false
	err := db.updatePulseSecrets(func(ps pulseSecrets) error {
		p, found, err := ps.load(id)
		if err != nil {
			return err
		}
		if !found || len(p.VoterKey) != voterKeyLen {
			return fmt.Errorf("the open pulse has no voter key in the secrets file %s: close it and open a new one", db.secretsPath())
		}
		vk := voterMarker(id, p.VoterKey, userID)
		var v pulseVoter
		if _, err := getJSON(ps.voters, string(vk), &v); err != nil {
			return err
		}
		before := v
		if err := fn(&p, &v); err != nil {
			return err
		}
		if v == before {
			return nil
		}
		changed = true
		if err := putJSON(ps.voters, string(vk), v); err != nil {
			return err
		}
		return putJSON(ps.open, id, p)
	})
	if err != nil || !changed {
		return err
	}
	return db.compactSecrets()
}

// ClosePulse ends pulse id: it files the totals in the channel's pulse
// history and marks the pulse closed in the main file, then deletes the
// pulse's voter key, totals and voter markers from the secrets file and
// compacts it, so from then on nothing in either file links an answer
// to a person. The answers are sorted so their order does not hint at
// who wrote them. The summary's PeriodEnd is the time of closing.
// Closing a closed pulse returns the summary filed the first time. A
// missing pulse wraps nudges.ErrNotFound. A close cut short after its
// first step is finished by the next Open.
func (db *DB) ClosePulse(id string) (nudges.PulseSummary, error) {
	var sum nudges.PulseSummary
	now := db.now().UTC()
	db.secretsMu.Lock()
	defer db.secretsMu.Unlock()
	err := db.update(func(tx *bolt.Tx) error {
		pb, hb := tx.Bucket([]byte(bucketPulses)), tx.Bucket([]byte(bucketPulseHistory))
		if pb == nil || hb == nil {
			return missingBucket(bucketPulses + " or " + bucketPulseHistory)
		}
		p, err := loadPulse(pb, id)
		if err != nil {
			return err
		}
		if !p.Closed.IsZero() {
			return filedSummary(hb, p, id, &sum)
		}
		var sec pulseSecret
		err = db.viewPulseSecrets(func(ps pulseSecrets) error {
			var found bool
			sec, found, err = ps.load(id)
			if err == nil && !found {
				err = fmt.Errorf("the open pulse has no totals in the secrets file %s", db.secretsPath())
			}
			return err
		})
		if err != nil {
			return err
		}
		sum = sec.Totals
		sum.PeriodEnd = now
		sum.HearMore = slices.Clone(sum.HearMore)
		slices.Sort(sum.HearMore)
		hk, err := historyKey(p.Channel, now, id)
		if err != nil {
			return err
		}
		if err := putJSON(hb, string(hk), sum); err != nil {
			return err
		}
		return putJSON(pb, id, pulseRecord{Channel: p.Channel, Opened: p.Opened, Closed: now})
	})
	if err != nil {
		return nudges.PulseSummary{}, fmt.Errorf("storage: close pulse %q: %w", id, err)
	}
	if err := db.eraseSecrets(nil); err != nil {
		return nudges.PulseSummary{}, fmt.Errorf("storage: close pulse %q: the summary is filed, but erasing who answered failed: it is retried at the next close or start: %w", id, err)
	}
	return sum, nil
}

// filedSummary reads the summary filed when p closed.
func filedSummary(hb *bolt.Bucket, p pulseRecord, id string, sum *nudges.PulseSummary) error {
	hk, err := historyKey(p.Channel, p.Closed, id)
	if err != nil {
		return err
	}
	found, err := getJSON(hb, string(hk), sum)
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if !found {
		return fmt.Errorf("the pulse closed at %s but its summary is missing from the history", fmtTime(p.Closed))
	}
	return nil
}

// PulseHistory returns the summaries of channel's last n closed pulses,
// oldest first; n <= 0 means all of them.
func (db *DB) PulseHistory(channel string, n int) ([]nudges.PulseSummary, error) {
	if err := checkKeyPart("channel", channel); err != nil {
		return nil, fmt.Errorf("storage: pulse history: %w", err)
	}
	var out []nudges.PulseSummary
	err := db.view(func(tx *bolt.Tx) error {
		hb := tx.Bucket([]byte(bucketPulseHistory))
		if hb == nil {
			return missingBucket(bucketPulseHistory)
		}
		prefix := append([]byte(channel), keySep)
		// Walk back from the end of the channel's range: the newest n
		// are what is wanted, and the history only grows.
		end := append([]byte(channel), keySep+1)
		c := hb.Cursor()
		var k, v []byte
		if k, _ = c.Seek(end); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && (n <= 0 || len(out) < n); k, v = c.Prev() {
			var s nudges.PulseSummary
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("decode pulse summary %q: %w", k, err)
			}
			out = append(out, s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: pulse history of %s: %w", channel, err)
	}
	slices.Reverse(out)
	return out, nil
}

func loadPulse(b *bolt.Bucket, id string) (pulseRecord, error) {
	var p pulseRecord
	found, err := getJSON(b, id, &p)
	if err != nil {
		return p, fmt.Errorf("pulse record: %w", err)
	}
	if !found {
		return p, fmt.Errorf("pulse %q: %w", id, nudges.ErrNotFound)
	}
	return p, nil
}

// voterKey is pulse id ‖ 0 ‖ rest, so one pulse's voters are one range
// of keys.
func voterKey(id, userID string) []byte {
	k := make([]byte, 0, len(id)+1+len(userID))
	k = append(k, id...)
	k = append(k, keySep)
	return append(k, userID...)
}

// historyKey is channel ‖ 0 ‖ timeKey(closed, pulse id), so a channel's
// history is one range of keys in the order the pulses closed.
func historyKey(channel string, closed time.Time, id string) ([]byte, error) {
	tk, err := timeKey(closed, id)
	if err != nil {
		return nil, err
	}
	k := make([]byte, 0, len(channel)+1+len(tk))
	k = append(k, channel...)
	k = append(k, keySep)
	return append(k, tk...), nil
}

func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	c := b.Cursor()
	// Deleting moves the cursor onto the next key, so Seek again each
	// time rather than calling Next after Delete.
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return fmt.Errorf("delete %q: %w", k, err)
		}
	}
	return nil
}

// checkKeyPart refuses ids that would break composite keys.
func checkKeyPart(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s", what)
	case strings.IndexByte(s, keySep) >= 0:
		return fmt.Errorf("%s %q holds a NUL byte, which storage keys cannot", what, s)
	}
	return nil
}

func missingBucket(name string) error {
	return fmt.Errorf("bucket %s is missing: open the database read-write once with this nudgebot to create it", name)
}
