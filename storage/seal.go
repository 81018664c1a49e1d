package storage

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Reflections are sealed with envelope encryption: each person has a
// random data key that seals their reflections, and the data key itself
// is stored sealed under a master key. Deleting the data key makes every
// copy of the person's reflections unreadable at once, and rotating the
// master key re-seals one small record per person instead of every
// reflection.

const (
	// EnvSecretKey holds the master keys as base64, comma-separated,
	// current first.
	EnvSecretKey = "NUDGEBOT_SECRET_KEY"

	// KeyFileName is the key file LoadKeys keeps beside the database when
	// no key is configured.
	KeyFileName = "nudgebot.key"

	keyLen = 32 // AES-256

	// maxKeyFileSize bounds what LoadKeys reads: a key file holds a few
	// lines, so anything larger is the wrong file.
	maxKeyFileSize = 64 << 10

	keyHint = "generate one with `head -c 32 /dev/urandom | base64`"
)

// ErrTampered means a sealed reflection does not open with its author's
// data key: it was damaged, or a field bound into its seal (who may see
// it) was changed by someone without the key. It comes wrapped together
// with ErrCorrupt.
var ErrTampered = errors.New("sealed reflection does not match its record")

// ErrKeyMissing means reflections were sealed with a master key that is
// not configured, or no key is configured at all.
var ErrKeyMissing = errors.New("encryption key missing")

// Keys is a ring of master keys: the first seals, all of them open, which
// is how rotation works. It holds no key bytes, only ciphers, and is safe
// for concurrent use.
type Keys struct {
	ring []masterKey
}

type masterKey struct {
	id   string
	aead cipher.AEAD
}

// NewKeys builds a ring from raw 32-byte keys, current first. Repeated
// keys count once.
func NewKeys(keys ...[]byte) (*Keys, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("no key given: %s", keyHint)
	}
	k := &Keys{}
	for i, raw := range keys {
		if len(raw) != keyLen {
			return nil, fmt.Errorf("key %d is %d bytes long, want %d: %s", i+1, len(raw), keyLen, keyHint)
		}
		id := keyID(raw)
		if k.byID(id) != nil {
			continue
		}
		aead, err := newAEAD(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d (%s): %w", i+1, id, err)
		}
		k.ring = append(k.ring, masterKey{id: id, aead: aead})
	}
	return k, nil
}

// CurrentID is the id of the key that seals: the first 8 hex digits of
// the SHA-256 of its bytes.
func (k *Keys) CurrentID() string { return k.ring[0].id }

// IDs lists the ids of every key, current first.
func (k *Keys) IDs() []string {
	ids := make([]string, len(k.ring))
	for i, m := range k.ring {
		ids[i] = m.id
	}
	return ids
}

// String names the keys by id, so printing a ring never prints a key.
func (k *Keys) String() string {
	return "keys[" + strings.Join(k.IDs(), ",") + "]"
}

func (k *Keys) byID(id string) *masterKey {
	for i := range k.ring {
		if k.ring[i].id == id {
			return &k.ring[i]
		}
	}
	return nil
}

func keyID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:4])
}

func newAEAD(raw []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("aes cipher: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}

// LoadKeys finds the master keys. The first source that is set wins:
//  1. the environment variable NUDGEBOT_SECRET_KEY: base64 keys,
//     comma-separated, current first;
//  2. keyFile (the config's storage.key_file): one base64 key per line,
//     current first, blank lines and # comments allowed;
//  3. the file nudgebot.key beside dbPath, in keyFile's format, created
//     with a fresh random key (mode 0600) if it does not exist.
//
// Key files must not be accessible to group or others. Errors name the
// source and the line or position, never a key.
func LoadKeys(env func(string) string, keyFile, dbPath string, log *slog.Logger) (*Keys, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if env != nil {
		if v := strings.TrimSpace(env(EnvSecretKey)); v != "" {
			return parseKeys(EnvSecretKey, "key", strings.Split(v, ","))
		}
	}
	if keyFile != "" {
		return readKeyFile(keyFile, "storage.key_file "+keyFile)
	}
	if dbPath == "" {
		return nil, errors.New("no key configured and no database path to keep a key file beside: set storage.path, or set " + EnvSecretKey)
	}
	path := filepath.Join(filepath.Dir(dbPath), KeyFileName)
	keys, err := readKeyFile(path, "key file "+path)
	if !errors.Is(err, fs.ErrNotExist) {
		return keys, err
	}
	return createKeyFile(path, log)
}

// parseKeys decodes entries, naming each by what (key or line) and its
// position, and skipping the ones that are empty (only for files, where
// blank lines and comments are allowed).
func parseKeys(source, what string, entries []string) (*Keys, error) {
	var raws [][]byte
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if what == "line" {
			e, _, _ = strings.Cut(e, "#")
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
		}
		if e == "" {
			return nil, fmt.Errorf("%s: %s %d is empty: list keys separated by commas, current first", source, what, i+1)
		}
		raw, err := decodeKey(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %s %d %w: %s", source, what, i+1, err, keyHint)
		}
		raws = append(raws, raw)
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("%s holds no key: %s", source, keyHint)
	}
	keys, err := NewKeys(raws...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return keys, nil
}

// decodeKey accepts base64 with or without padding, standard or URL
// alphabet: tools differ, and the key is the same.
func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		raw, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(raw) != keyLen {
			return nil, fmt.Errorf("decodes to %d bytes, want %d", len(raw), keyLen)
		}
		return raw, nil
	}
	// The decoder's message is left out: it can quote the key.
	return nil, errors.New("is not valid base64")
}

func readKeyFile(path, source string) (*Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s cannot be read: %w", source, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s cannot be read: %w", source, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: point it at the key file", source)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%s is accessible by group or others (mode %#o): it guards everyone's reflections, so run chmod 600 %s", source, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s cannot be read: %w", source, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes, too large for a key file: check the path", source, maxKeyFileSize)
	}
	return parseKeys(source, "line", strings.Split(string(data), "\n"))
}

// createKeyFile writes a fresh key and links it into place, so the file
// appears complete or not at all, and a key file another process created
// meanwhile is kept.
func createKeyFile(path string, log *slog.Logger) (*Keys, error) {
	raw := make([]byte, keyLen)
	_, _ = rand.Read(raw) // never fails: it crashes the program instead
	defer clear(raw)
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+KeyFileName+"-*")
	if err != nil {
		return nil, fmt.Errorf("create key file %s: %w: check that the directory exists and nudgebot may write there, or set %s", path, err, EnvSecretKey)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	content := "# nudgebot master key: seals everyone's reflections. Keep a copy apart\n# from the database's backups; without it reflections cannot be read.\n" +
		base64.StdEncoding.EncodeToString(raw) + "\n"
	_, werr := tmp.WriteString(content)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return readKeyFile(path, "key file "+path)
	} else if err != nil {
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	log.Info("created a key file to seal reflections; keep a copy apart from the database's backups", "path", path)
	return NewKeys(raw)
}

// syncDir makes a new or renamed directory entry durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for syncing there
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Data keys.

// dataKeyRecord is a person's data key as stored in the datakeys bucket.
type dataKeyRecord struct {
	ID     string `json:"id"`     // keyID of the data key; reflections name it
	Master string `json:"master"` // the master key it is sealed under
	Sealed []byte `json:"sealed"`
	// Prev is the key being replaced while a deleted reflection's key is
	// retired (see DeleteReflection): the person's other reflections are
	// re-sealed from it to ID, then it is dropped.
	Prev *dataKeyRecord `json:"prev,omitempty"`
}

// dataKey seals one person's reflections.
type dataKey struct {
	id   string
	aead cipher.AEAD
	prev *dataKey // what Prev opens, while a re-key is under way
}

// newDataKey makes a fresh data key for userID and its record, sealed
// under the current master key.
func (k *Keys) newDataKey(userID string) (*dataKey, dataKeyRecord, error) {
	raw := make([]byte, keyLen)
	_, _ = rand.Read(raw)
	defer clear(raw)
	dk, err := dataKeyFrom(raw)
	if err != nil {
		return nil, dataKeyRecord{}, err
	}
	return dk, k.sealDataKey(userID, dk.id, raw), nil
}

func (k *Keys) sealDataKey(userID, id string, raw []byte) dataKeyRecord {
	cur := k.ring[0]
	return dataKeyRecord{
		ID:     id,
		Master: cur.id,
		Sealed: cur.aead.Seal(nil, nil, raw, dataKeyAAD(userID, id)),
	}
}

// openDataKey returns the raw data key of rec; the caller clears it. An
// unknown master key is errUnknownMaster.
func (k *Keys) openDataKey(userID string, rec dataKeyRecord) ([]byte, error) {
	m := k.byID(rec.Master)
	if m == nil {
		return nil, errUnknownMaster
	}
	raw, err := m.aead.Open(nil, nil, rec.Sealed, dataKeyAAD(userID, rec.ID))
	if err != nil {
		return nil, fmt.Errorf("the data key of %s does not open with key %s: its record is damaged: %w", userID, rec.Master, ErrCorrupt)
	}
	if len(raw) != keyLen || keyID(raw) != rec.ID {
		clear(raw)
		return nil, fmt.Errorf("the data key of %s is not the key %s its record names: %w", userID, rec.ID, ErrCorrupt)
	}
	return raw, nil
}

var errUnknownMaster = errors.New("sealed with a master key that is not configured")

func dataKeyFrom(raw []byte) (*dataKey, error) {
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	return &dataKey{id: keyID(raw), aead: aead}, nil
}

// dataKeyAAD binds a sealed data key to its owner, so a record moved to
// another person does not open.
func dataKeyAAD(userID, id string) []byte {
	return []byte("nudgebot datakey v1\x00" + userID + "\x00" + id)
}

// Reflection payloads.

// payloadVersion leads every sealed payload, so the format can change.
const payloadVersion = 1

// appendPayload encodes text and commitment as the version, the length
// of text as a uvarint, text, then commitment: searching decodes it
// without allocating.
func appendPayload(dst []byte, text, commitment string) []byte {
	dst = append(dst, payloadVersion)
	dst = binary.AppendUvarint(dst, uint64(len(text)))
	dst = append(dst, text...)
	return append(dst, commitment...)
}

func splitPayload(p []byte) (text, commitment []byte, err error) {
	if len(p) == 0 || p[0] != payloadVersion {
		return nil, nil, errors.New("unknown payload version")
	}
	n, w := binary.Uvarint(p[1:])
	if w <= 0 || n > uint64(len(p)-1-w) {
		return nil, nil, errors.New("payload length out of range")
	}
	rest := p[1+w:]
	return rest[:n], rest[n:], nil
}

// appendReflectionAAD binds a sealed payload to every field that decides
// who may see it: its author, seq and creation time (so payloads cannot
// be swapped between records) and its share setting and channel (so
// someone who can write the file but has no key cannot turn a private
// reflection into a shared one). Created is in range: validateReflection
// refuses times UnixNano cannot hold.
func appendReflectionAAD(dst []byte, rec *reflectionRecord) []byte {
	dst = append(dst, "nudgebot reflection v2\x00"...)
	dst = append(dst, rec.UserID...)
	dst = append(dst, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(rec.Seq))
	dst = binary.BigEndian.AppendUint64(dst, uint64(rec.Created.UnixNano()))
	dst = append(dst, rec.Share...)
	dst = append(dst, 0)
	return append(dst, rec.ShareChannel...)
}

// appendReflectionAADv1 is what schema 1 bound: only the owner and seq.
// The schema 2 migration re-seals every payload, so only a read-only
// open of an older file still needs it.
func appendReflectionAADv1(dst []byte, userID string, seq uint64) []byte {
	dst = append(dst, "nudgebot reflection v1\x00"...)
	dst = append(dst, userID...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// seal seals text and commitment for rec, whose bound fields must be
// final: changing one later means sealing again.
func (dk *dataKey) seal(rec *reflectionRecord, text, commitment string) []byte {
	plain := appendPayload(make([]byte, 0, 1+binary.MaxVarintLen64+len(text)+len(commitment)), text, commitment)
	defer clear(plain)
	return dk.aead.Seal(nil, nil, plain, appendReflectionAAD(nil, rec))
}

// containsFold reports whether s contains substr under Unicode simple
// case folding, like strings.EqualFold, without allocating.
func containsFold(s, substr []byte) bool {
	if len(substr) == 0 {
		return true
	}
	if first := substr[0]; first < utf8.RuneSelf {
		// Most words start with an ASCII letter: skip, a byte at a time,
		// every position that cannot start a match. Non-ASCII runes stay
		// candidates (the Kelvin sign folds to k), continuation bytes
		// cannot start a rune.
		lo, up := lowerASCII(first), upperASCII(first)
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < utf8.RuneSelf && c != lo && c != up || c >= 0x80 && c < 0xc0 {
				continue
			}
			if hasPrefixFold(s[i:], substr) {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(s); {
		if hasPrefixFold(s[i:], substr) {
			return true
		}
		// Step one rune; a malformed byte counts as one.
		_, w := utf8.DecodeRune(s[i:])
		i += w
	}
	return false
}

func hasPrefixFold(s, prefix []byte) bool {
	for len(prefix) > 0 {
		if len(s) == 0 {
			return false
		}
		// ASCII fast path: most text and most words are ASCII.
		if a, b := s[0], prefix[0]; a < 0x80 && b < 0x80 {
			if a != b && lowerASCII(a) != lowerASCII(b) {
				return false
			}
			s, prefix = s[1:], prefix[1:]
			continue
		}
		r1, w1 := utf8.DecodeRune(s)
		r2, w2 := utf8.DecodeRune(prefix)
		if !equalFoldRune(r1, r2) {
			return false
		}
		s, prefix = s[w1:], prefix[w2:]
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFoldRune walks a's case-folding orbit, as strings.EqualFold does.
func equalFoldRune(a, b rune) bool {
	if a == b {
		return true
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}
