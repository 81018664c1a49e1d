package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// keySecretsEmbedded in the meta bucket marks a backup of schema 5 or
// later: the secrets file's contents ride in the main file the schema 3
// way (embedSecrets), and the first read-write Open moves them out
// (moveSecrets). The schema mark stays the layout's own, so an older
// nudgebot refuses the backup as newer than it understands; a schema 4
// one would otherwise take it for schema 3 and miss every delivery.
const keySecretsEmbedded = "secrets_embedded"

// moveSecrets moves the secrets out of the main file: the schema 3 → 4
// migration, and the first read-write Open of a backup (secrets
// embedded). It writes the data keys and the open pulses' voter keys,
// totals and markers to a new secrets file, renamed over any earlier one
// (left by a move cut short, or beside a restored file: the main file's
// secrets are the ones that go with it), then deletes them, and the
// embedded mark, from the main file. If the transaction does not commit,
// the main file is as it was and the next Open moves them again. Open
// then compacts the main file, so they leave its free pages; the
// transaction sets keyNeedsCompaction, so that an Open cut short before
// that compaction leaves the next Open to do it.
func (db *DB) moveSecrets(tx *bolt.Tx) error {
	path := SecretsPath(db.path)
	pb := tx.Bucket([]byte(bucketPulses))
	open := map[string]pulseRecord{}
	if pb != nil {
		err := pb.ForEach(func(k, v []byte) error {
			var p pulseRecord
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decode pulse %q: %w", k, err)
			}
			if p.Closed.IsZero() || len(p.VoterKey) > 0 {
				open[string(k)] = p
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	tmp, err := writeSecretsCopy(path, func(dst *bolt.DB) error {
		return dst.Update(func(stx *bolt.Tx) error {
			return fillSecrets(tx, stx, open)
		})
	})
	if err != nil {
		return fmt.Errorf("write the secrets file: %w", err)
	}
	if err := renameDurably(tmp, path); err != nil {
		return err
	}
	db.secretsStep(secretsWritten)
	for _, name := range []string{bucketDataKeys, bucketPulseVoters} {
		if tx.Bucket([]byte(name)) == nil {
			continue
		}
		if err := tx.DeleteBucket([]byte(name)); err != nil {
			return fmt.Errorf("drop bucket %s: %w", name, err)
		}
	}
	for id, p := range open {
		if err := putJSON(pb, id, pulseRecord{Channel: p.Channel, Opened: p.Opened, Closed: p.Closed, Voters: p.Voters}); err != nil {
			return err
		}
	}
	meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketMeta, err)
	}
	if err := meta.Delete([]byte(keySecretsEmbedded)); err != nil {
		return fmt.Errorf("clear %s: %w", keySecretsEmbedded, err)
	}
	if err := meta.Put([]byte(keyNeedsCompaction), []byte("true")); err != nil {
		return fmt.Errorf("set %s: %w", keyNeedsCompaction, err)
	}
	db.movedSecrets = true
	return nil
}

// The steps of moving the secrets out that tests stop a process at
// (Options.afterSecretsStep): the secrets file is in place but the main
// file's transaction not committed; the main file is committed but not
// yet compacted.
const (
	secretsWritten   = "secrets file written"
	secretsCommitted = "main file committed"
)

func (db *DB) secretsStep(step string) {
	if db.afterSecretsStep != nil {
		db.afterSecretsStep(step)
	}
}

// fillSecrets copies the secrets of the main file's tx into the secrets
// file's stx: data keys, voter markers, and the key and totals of each
// pulse in open that is still open.
func fillSecrets(tx, stx *bolt.Tx, open map[string]pulseRecord) error {
	if err := createSecretBuckets(stx); err != nil {
		return err
	}
	if err := copyBucket(tx.Bucket([]byte(bucketDataKeys)), stx, secretDataKeys); err != nil {
		return err
	}
	if err := copyBucket(tx.Bucket([]byte(bucketPulseVoters)), stx, secretVoters); err != nil {
		return err
	}
	ps, err := pulseSecretsOf(stx)
	if err != nil {
		return err
	}
	for id, p := range open {
		if !p.Closed.IsZero() || len(p.VoterKey) != voterKeyLen {
			continue
		}
		if err := putJSON(ps.open, id, pulseSecret{VoterKey: p.VoterKey, Totals: p.Totals}); err != nil {
			return err
		}
	}
	return nil
}

// secretsCopy is every entry of the secrets file, by bucket: small
// enough to hold in memory, so a backup need not hold the file.
type secretsCopy map[string]map[string][]byte

func (s *secretsFile) copyAll() (secretsCopy, error) {
	out := secretsCopy{}
	err := s.view(func(stx *bolt.Tx) error {
		for _, name := range secretBuckets() {
			m := map[string][]byte{}
			out[name] = m
			b := stx.Bucket([]byte(name))
			if b == nil {
				continue
			}
			if err := b.ForEach(func(k, v []byte) error {
				m[string(k)] = bytes.Clone(v)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// writeBackupFile writes a copy of both files, as of one instant, to a
// new file beside the database, with the secrets embedded (see WriteTo),
// and returns its name. The caller removes it.
func (db *DB) writeBackupFile() (tmp string, err error) {
	f, err := os.CreateTemp(filepath.Dir(db.path), filepath.Base(db.path)+".*.backup")
	if err != nil {
		return "", fmt.Errorf("create a file beside %s: %w", db.path, err)
	}
	tmp = f.Name()
	_, err = db.writeBackup(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// writeBackup writes a copy of both files, as of one instant, into dst
// (empty, open for reading and writing) and embeds the secrets in it
// (see WriteTo, embedSecrets). It returns the size of the snapshot
// written; embedding the secrets writes inside that size, or just past
// it.
func (db *DB) writeBackup(dst BackupFile) (n int64, err error) {
	// Both snapshots are taken while no change spanning the files is
	// half done.
	db.secretsMu.Lock()
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		db.secretsMu.Unlock()
		return 0, bolterrors.ErrDatabaseNotOpen
	}
	rtx, err := db.bolt.Begin(false)
	var secrets secretsCopy
	if err == nil {
		secrets, err = db.secrets.copyAll()
	}
	db.secretsMu.Unlock()
	if err != nil {
		rollback(rtx)
		return 0, err
	}
	defer rollback(rtx)

	if n, err = rtx.WriteTo(dst); err != nil {
		return n, fmt.Errorf("copy %s: %w", db.path, err)
	}
	// bbolt gets a descriptor of its own on the same open file (closing
	// it closes only that), so this works on a file already unlinked.
	// Its Open opens no other file: it locks and maps this one.
	own, err := dupFile(dst)
	if err != nil {
		return n, fmt.Errorf("open the copy %s: %w", dst.Name(), err)
	}
	copyDB, err := bolt.Open(dst.Name(), fileMode, &bolt.Options{Timeout: db.timeout, NoSync: true,
		OpenFile: func(string, int, os.FileMode) (*os.File, error) { return own, nil }})
	if err != nil {
		_ = own.Close()
		return n, fmt.Errorf("open the copy %s: %w", dst.Name(), err)
	}
	err = copyDB.Update(func(tx *bolt.Tx) error {
		if err := embedSecrets(tx, secrets, db.fileVersion); err != nil {
			return err
		}
		n = max(n, tx.Size()) // the copy as it will be
		return nil
	})
	if cerr := copyDB.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("add the secrets to the copy %s: %w", dst.Name(), err)
	}
	return n, nil
}

// embedSecrets writes the secrets sc into the main file's tx, a copy of
// a file of schema version, the way schema 3 kept them, and marks tx so
// that Open moves them out again (moveSecrets). A copy of a schema 5 or
// later file keeps its version and gets keySecretsEmbedded: its
// deliveries are in that schema's layout, which an older nudgebot must
// refuse rather than take for its own. A copy of a schema 4 file (opened
// read-only) is marked schema 3, which it then is in every respect.
func embedSecrets(tx *bolt.Tx, sc secretsCopy, version int) error {
	for from, to := range map[string]string{secretDataKeys: bucketDataKeys, secretVoters: bucketPulseVoters} {
		b, err := tx.CreateBucketIfNotExists([]byte(to))
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", to, err)
		}
		for k, v := range sc[from] {
			if err := b.Put([]byte(k), v); err != nil {
				return fmt.Errorf("write %s: %w", to, err)
			}
		}
	}
	pb := tx.Bucket([]byte(bucketPulses))
	if pb == nil {
		return missingBucket(bucketPulses)
	}
	for id, v := range sc[secretPulses] {
		var sec pulseSecret
		if err := json.Unmarshal(v, &sec); err != nil {
			return fmt.Errorf("decode the secrets of pulse %q: %w", id, err)
		}
		var p pulseRecord
		found, err := getJSON(pb, id, &p)
		if err != nil {
			return err
		}
		if !found || !p.Closed.IsZero() {
			continue // a close cut short: its secrets stay behind
		}
		p.VoterKey, p.Totals = sec.VoterKey, sec.Totals
		if err := putJSON(pb, id, p); err != nil {
			return err
		}
	}
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		return missingBucket(bucketMeta)
	}
	if version < schemaCompactDeliveries {
		return putSchemaVersion(tx, schemaSecretsFile-1)
	}
	if err := meta.Put([]byte(keySecretsEmbedded), []byte("true")); err != nil {
		return fmt.Errorf("write %s: %w", keySecretsEmbedded, err)
	}
	return putSchemaVersion(tx, version)
}
