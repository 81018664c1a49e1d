package storage

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

var sealedPrefix = []byte(`{"sealed":"`)

// sealedField decodes the sealed payload of an encoded record into buf,
// reporting false if the record does not start as reflectionRecord
// encodes it. JSON writes []byte as standard base64, which needs no
// escaping, so the field ends at the next quote.
func sealedField(v, buf []byte) ([]byte, []byte, bool) {
	rest, ok := bytes.CutPrefix(v, sealedPrefix)
	if !ok {
		return nil, buf, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, buf, false
	}
	if need := base64.StdEncoding.DecodedLen(end); cap(buf) < need {
		buf = make([]byte, need, 2*need)
	}
	n, err := base64.StdEncoding.Decode(buf[:cap(buf)], rest[:end])
	if err != nil {
		return nil, buf, false
	}
	return buf[:n], buf, true
}

// appendRawAAD appends what appendReflectionAAD would for the encoded
// record v, stored under userID and seq, without decoding it: the search
// path opens thousands of records and decodes only the ones that match.
// ok is false for anything unexpected (an escape inside a value, no
// creation time); the caller then decodes the record. No key it looks
// for can occur inside a value: JSON escapes every quote there.
func appendRawAAD(dst []byte, userID string, seq int, v []byte) (_ []byte, ok bool) {
	created, ok := rawField(v, `,"created":"`)
	if !ok || len(created) == 0 {
		return dst, false
	}
	share, ok := rawField(v, `,"share":"`)
	if !ok {
		return dst, false
	}
	channel, ok := rawField(v, `,"share_channel":"`)
	if !ok {
		return dst, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(created))
	if err != nil {
		return dst, false
	}
	rec := reflectionRecord{UserID: userID, Seq: seq, Created: t, Share: nudges.Share(share), ShareChannel: string(channel)}
	return appendReflectionAAD(dst, &rec), true
}

// rawField returns the string value after key in v, nil if key is
// absent, and false if the value holds an escape.
func rawField(v []byte, key string) ([]byte, bool) {
	i := bytes.Index(v, []byte(key))
	if i < 0 {
		return nil, true
	}
	rest := v[i+len(key):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, false
	}
	return rest[:end], true
}

// ReflectionByMessage returns the person's reflection typed as the Slack
// message ts, newest first; nudges.ErrNotFound when there is none. It
// reads the plain fields only, and decrypts just the one it returns.
func (db *DB) ReflectionByMessage(userID, ts string) (nudges.Reflection, error) {
	var r nudges.Reflection
	found := false
	err := db.eachNewest(userID, func(s *session, k, v []byte) (bool, error) {
		rec, err := decodeRecord(k, v)
		if err != nil {
			return false, err
		}
		if ts == "" || rec.MessageTS != ts {
			return true, nil
		}
		r, err = s.read(k, v)
		found = err == nil
		return false, err
	})
	if err == nil && !found {
		err = nudges.ErrNotFound
	}
	if err != nil {
		return nudges.Reflection{}, fmt.Errorf("storage: reflection of %s from message %s: %w", userID, ts, err)
	}
	return r, nil
}

// SearchReflections returns up to limit (all if limit <= 0) of userID's
// reflections whose text or commitment contains word, ignoring case,
// newest first. It decrypts every reflection of the person but decodes
// only the ones that match.
func (db *DB) SearchReflections(userID, word string, limit int) ([]nudges.Reflection, error) {
	word = strings.TrimSpace(word)
	if word == "" {
		return nil, fmt.Errorf("storage: search reflections of %s: %w: the search word is empty: give a word to look for", userID, ErrInvalidReflection)
	}
	needle := []byte(word)
	var rs []nudges.Reflection
	prefixLen := len(personPrefix(userID))
	err := db.eachNewest(userID, func(s *session, k, v []byte) (bool, error) {
		if limit > 0 && len(rs) >= limit {
			return false, nil
		}
		if len(k) != prefixLen+seqLen {
			return false, fmt.Errorf("reflection key %x is malformed", k)
		}
		seq := int(binary.BigEndian.Uint64(k[prefixLen:]))
		text, commitment, err := s.payload(userID, seq, v, nil)
		if err != nil {
			return false, err
		}
		if !containsFold(text, needle) && !containsFold(commitment, needle) {
			return true, nil
		}
		rec, err := decodeRecord(k, v)
		if err != nil {
			return false, err
		}
		rs = append(rs, rec.reflection(string(text), string(commitment)))
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: search reflections of %s: %w", userID, err)
	}
	return rs, nil
}

// CountReflections counts userID's reflections without decrypting them.
func (db *DB) CountReflections(userID string) (int, error) {
	var n int
	err := db.view(func(tx *bolt.Tx) error {
		if err := checkUserID(userID); err != nil {
			return err
		}
		rb, err := reflectionBucketsOf(tx)
		if err != nil {
			return err
		}
		prefix := personPrefix(userID)
		c := rb.reflections.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: count reflections of %s: %w", userID, err)
	}
	return n, nil
}
