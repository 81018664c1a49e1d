package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// sealShareAndKeyVoters is the schema 1 → 2 migration. It re-seals every
// reflection so that its seal binds who may see it (see
// appendReflectionAAD), and gives every open pulse a voter key, turning
// the user ids in pulse_voters into keyed markers (see voterMarker).
func (db *DB) sealShareAndKeyVoters(tx *bolt.Tx) error {
	if err := db.resealReflections(tx); err != nil {
		return fmt.Errorf("re-seal reflections: %w", err)
	}
	if err := keyPulseVoters(tx); err != nil {
		return fmt.Errorf("key the voters of open pulses: %w", err)
	}
	return nil
}

// resealReflections opens each payload with the schema 1 additional data
// and seals it again with the current one. A record that does not open
// is left as it was, so it stays refused and Check reports it; the
// records of a person whose Forget was cut short are left for Open to
// erase.
func (db *DB) resealReflections(tx *bolt.Tx) error {
	refls := tx.Bucket([]byte(bucketReflections))
	dataKeys := tx.Bucket([]byte(bucketDataKeys))
	if refls == nil || dataKeys == nil {
		return nil // a file older than reflections
	}
	type resealed struct{ k, v []byte }
	var out []resealed
	var unreadable int
	keys := map[string]*dataKey{}
	err := refls.ForEach(func(k, v []byte) error {
		rec, err := decodeRecord(k, v)
		if err != nil {
			unreadable++
			return nil
		}
		dk, ok := keys[rec.UserID]
		if !ok {
			dk, err = db.openDataKeyOf(dataKeys, rec.UserID)
			if err != nil {
				return err
			}
			keys[rec.UserID] = dk
		}
		if dk == nil {
			return nil // being forgotten
		}
		plain, err := dk.aead.Open(nil, nil, rec.Sealed, appendReflectionAADv1(nil, rec.UserID, uint64(rec.Seq)))
		if err != nil {
			unreadable++
			return nil
		}
		text, commitment, err := splitPayload(plain)
		if err != nil {
			clear(plain)
			unreadable++
			return nil
		}
		rec.Sealed = dk.seal(&rec, string(text), string(commitment))
		clear(plain)
		raw, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode reflection %d of %s: %w", rec.Seq, rec.UserID, err)
		}
		out = append(out, resealed{bytes.Clone(k), raw})
		return nil
	})
	if err != nil {
		return err
	}
	// Written after the walk: bbolt forbids writing a bucket it iterates.
	for _, r := range out {
		if err := refls.Put(r.k, r.v); err != nil {
			return fmt.Errorf("write reflection %x: %w", r.k, err)
		}
	}
	if unreadable > 0 {
		db.log.Warn("some reflections could not be opened while re-sealing them; they are left as they were and stay unreadable: run `nudgebot check`",
			"count", unreadable)
	}
	return nil
}

// openDataKeyOf opens userID's data key from the datakeys bucket b, or
// returns nil if the person has none (a Forget was cut short).
func (db *DB) openDataKeyOf(b *bolt.Bucket, userID string) (*dataKey, error) {
	var rec dataKeyRecord
	found, err := getJSON(b, userID, &rec)
	if err != nil || !found {
		return nil, err
	}
	if db.keys == nil {
		return nil, db.keyMissing(rec.Master)
	}
	raw, err := db.keys.openDataKey(userID, rec)
	if errors.Is(err, errUnknownMaster) {
		return nil, db.keyMissing(rec.Master)
	}
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	return dataKeyFrom(raw)
}

// keyPulseVoters gives each open pulse a voter key and replaces its
// pulse_voters entries (pulse id ‖ 0 ‖ user id) with keyed markers.
// Entries of closed or unknown pulses identify people to no purpose and
// are dropped.
func keyPulseVoters(tx *bolt.Tx) error {
	pb := tx.Bucket([]byte(bucketPulses))
	vb := tx.Bucket([]byte(bucketPulseVoters))
	if pb == nil || vb == nil {
		return nil
	}
	type entry struct{ k, v []byte }
	var old []entry
	err := vb.ForEach(func(k, v []byte) error {
		old = append(old, entry{bytes.Clone(k), bytes.Clone(v)})
		return nil
	})
	if err != nil {
		return err
	}
	pulses := map[string]*pulseRecord{}
	for _, e := range old {
		if err := vb.Delete(e.k); err != nil {
			return fmt.Errorf("delete %x: %w", e.k, err)
		}
		id, userID, ok := bytes.Cut(e.k, []byte{keySep})
		if !ok || len(userID) == 0 {
			continue
		}
		p, seen := pulses[string(id)]
		if !seen {
			p = &pulseRecord{}
			found, err := getJSON(pb, string(id), p)
			if err != nil {
				return err
			}
			if !found || !p.Closed.IsZero() {
				p = nil
			} else if len(p.VoterKey) == 0 {
				p.VoterKey = newVoterKey()
			}
			pulses[string(id)] = p
		}
		if p == nil {
			continue
		}
		if err := vb.Put(voterMarker(string(id), p.VoterKey, string(userID)), e.v); err != nil {
			return fmt.Errorf("write voter marker: %w", err)
		}
	}
	// Open pulses nobody answered yet need a key too.
	err = pb.ForEach(func(k, v []byte) error {
		if _, done := pulses[string(k)]; done {
			return nil
		}
		var p pulseRecord
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("decode pulse %q: %w", k, err)
		}
		if p.Closed.IsZero() && len(p.VoterKey) == 0 {
			p.VoterKey = newVoterKey()
			pulses[string(k)] = &p
		}
		return nil
	})
	if err != nil {
		return err
	}
	for id, p := range pulses {
		if p == nil {
			continue
		}
		if err := putJSON(pb, id, p); err != nil {
			return err
		}
	}
	return nil
}
