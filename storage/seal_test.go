package storage_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/storage"
)

// testKey is a fixed 32-byte key derived from seed, so failures repeat.
func testKey(seed string) []byte {
	sum := sha256.Sum256([]byte(seed))
	return sum[:]
}

func b64(raw []byte) string { return base64.StdEncoding.EncodeToString(raw) }

// idOf computes a key id independently of the code under test.
func idOf(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:8]
}

func mustKeys(tb testing.TB, raws ...[]byte) *storage.Keys {
	tb.Helper()
	k, err := storage.NewKeys(raws...)
	if err != nil {
		tb.Fatalf("NewKeys: %v", err)
	}
	return k
}

func envOf(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func writeFile(tb testing.TB, path, content string, mode os.FileMode) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode passes the umask
		tb.Fatal(err)
	}
}

// Ensure keys come from the first source that is set, in every accepted
// format, and that every mistake is named by its source and position
// without quoting a key.
func TestLoadKeys(t *testing.T) {
	k1, k2, k3 := testKey("k1"), testKey("k2"), testKey("k3")
	short := testKey("short")[:16]
	bad := "not*base64*SECRETSAUCE"
	secrets := []string{b64(k1), b64(k2), b64(k3), b64(short), bad, "SECRETSAUCE"}

	tests := []struct {
		name     string
		env      string
		keyFile  string // content of storage.key_file; "" means not configured
		fileMode os.FileMode
		besideDB string // content of nudgebot.key beside the database; "" means none
		wantIDs  []string
		wantErr  []string // substrings of the error
	}{
		{name: "env one key", env: b64(k1), wantIDs: []string{idOf(k1)}},
		{name: "env current first", env: b64(k2) + ", " + b64(k1), wantIDs: []string{idOf(k2), idOf(k1)}},
		{name: "env unpadded and url alphabet", env: base64.RawURLEncoding.EncodeToString(k1), wantIDs: []string{idOf(k1)}},
		{name: "env repeated key counts once", env: b64(k1) + "," + b64(k1), wantIDs: []string{idOf(k1)}},
		{name: "env bad base64", env: b64(k1) + "," + bad, wantErr: []string{"NUDGEBOT_SECRET_KEY: key 2 is not valid base64", "generate one"}},
		{name: "env wrong length", env: b64(short), wantErr: []string{"NUDGEBOT_SECRET_KEY: key 1 decodes to 16 bytes, want 32"}},
		{name: "env empty entry", env: b64(k1) + ",," + b64(k2), wantErr: []string{"NUDGEBOT_SECRET_KEY: key 2 is empty"}},
		{name: "env wins over key file", env: b64(k1), keyFile: b64(k2) + "\n", fileMode: 0o600, wantIDs: []string{idOf(k1)}},
		{
			name:     "key file with comments",
			keyFile:  "# rotated 2026-03\n\n" + b64(k2) + "  # current\n" + b64(k1) + "\n",
			fileMode: 0o600,
			wantIDs:  []string{idOf(k2), idOf(k1)},
		},
		{name: "key file wins over the one beside the database", keyFile: b64(k2), fileMode: 0o400, besideDB: b64(k3), wantIDs: []string{idOf(k2)}},
		{name: "key file readable by group", keyFile: b64(k1), fileMode: 0o640, wantErr: []string{"storage.key_file", "accessible by group or others", "chmod 600"}},
		{name: "key file readable by others", keyFile: b64(k1), fileMode: 0o604, wantErr: []string{"accessible by group or others"}},
		{name: "key file bad line", keyFile: "# keys\n" + b64(k1) + "\n" + bad + "\n", fileMode: 0o600, wantErr: []string{"storage.key_file", "line 3 is not valid base64"}},
		{name: "key file without keys", keyFile: "# nothing yet\n\n", fileMode: 0o600, wantErr: []string{"holds no key"}},
		{name: "existing file beside the database", besideDB: b64(k3) + "\n", wantIDs: []string{idOf(k3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			keyFile := ""
			if tt.keyFile != "" {
				keyFile = filepath.Join(dir, "secret.keys")
				writeFile(t, keyFile, tt.keyFile, tt.fileMode)
			}
			if tt.besideDB != "" {
				writeFile(t, filepath.Join(dir, storage.KeyFileName), tt.besideDB, 0o600)
			}
			keys, err := storage.LoadKeys(envOf(map[string]string{storage.EnvSecretKey: tt.env}), keyFile, filepath.Join(dir, "nudgebot.db"), nil)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("LoadKeys succeeded with %v, want an error", keys.IDs())
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				for _, s := range secrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q quotes key material %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadKeys: %v", err)
			}
			if got := keys.IDs(); !slices.Equal(got, tt.wantIDs) {
				t.Errorf("IDs()=%v, want %v", got, tt.wantIDs)
			}
			if keys.CurrentID() != tt.wantIDs[0] {
				t.Errorf("CurrentID()=%s, want %s", keys.CurrentID(), tt.wantIDs[0])
			}
		})
	}
}

// Ensure that with no key configured a key file is created beside the
// database once, private, logged once by path only, and reused after.
func TestLoadKeys_CreatesKeyFileBesideDatabase(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "nudgebot.db")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	noEnv := envOf(nil)

	keys, err := storage.LoadKeys(noEnv, "", dbPath, log)
	if err != nil {
		t.Fatalf("LoadKeys: %v", err)
	}
	path := filepath.Join(dir, storage.KeyFileName)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("key file: %v", err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode=%v, want 0600", got)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	for line := range strings.Lines(string(content)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if raw, err = base64.StdEncoding.DecodeString(line); err != nil {
			t.Fatalf("key line does not decode: %v", err)
		}
	}
	if len(raw) != 32 || idOf(raw) != keys.CurrentID() {
		t.Fatalf("key file holds %d bytes with id %s, want 32 bytes with id %s", len(raw), idOf(raw), keys.CurrentID())
	}
	if bytes.Equal(raw, make([]byte, 32)) {
		t.Error("the generated key is all zeros")
	}

	logged := logs.String()
	if n := strings.Count(logged, "\n"); n != 1 || !strings.Contains(logged, "level=INFO") || !strings.Contains(logged, path) {
		t.Errorf("logged %q, want one info line naming %s", logged, path)
	}
	if strings.Contains(logged, b64(raw)) || strings.Contains(logged, base64.RawStdEncoding.EncodeToString(raw)) {
		t.Error("the log quotes the key")
	}

	again, err := storage.LoadKeys(noEnv, "", dbPath, log)
	if err != nil {
		t.Fatalf("second LoadKeys: %v", err)
	}
	if again.CurrentID() != keys.CurrentID() {
		t.Errorf("second LoadKeys has key %s, want the same key %s", again.CurrentID(), keys.CurrentID())
	}
	if logs.String() != logged {
		t.Errorf("second LoadKeys logged %q, want nothing more", strings.TrimPrefix(logs.String(), logged))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key file: %v", len(entries), entries)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.LoadKeys(noEnv, "", dbPath, log); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("LoadKeys with a world-readable key file: err=%v, want one naming %s and chmod 600", err, path)
	}
}

// Ensure a missing directory or database path is reported, not papered
// over with a key somewhere else.
func TestLoadKeys_NoPlaceForKeyFile(t *testing.T) {
	if _, err := storage.LoadKeys(envOf(nil), "", "", nil); err == nil || !strings.Contains(err.Error(), "storage.path") {
		t.Errorf("LoadKeys without a database path: err=%v, want one naming storage.path", err)
	}
	missing := filepath.Join(t.TempDir(), "no-such-dir", "nudgebot.db")
	if _, err := storage.LoadKeys(envOf(nil), "", missing, nil); err == nil || !strings.Contains(err.Error(), "directory exists") {
		t.Errorf("LoadKeys beside a missing directory: err=%v, want one about the directory", err)
	}
	if _, err := storage.LoadKeys(envOf(nil), filepath.Join(t.TempDir(), "absent.keys"), "x.db", nil); err == nil || !strings.Contains(err.Error(), "absent.keys") {
		t.Errorf("LoadKeys with a missing key file: err=%v, want one naming it", err)
	}
}

func TestNewKeys(t *testing.T) {
	if _, err := storage.NewKeys(); err == nil {
		t.Error("NewKeys() with no key succeeded")
	}
	if _, err := storage.NewKeys(testKey("a"), testKey("b")[:31]); err == nil || !strings.Contains(err.Error(), "key 2 is 31 bytes long, want 32") {
		t.Errorf("NewKeys with a short key: err=%v", err)
	}
	k := mustKeys(t, testKey("a"), testKey("b"))
	if got, want := k.String(), "keys["+idOf(testKey("a"))+","+idOf(testKey("b"))+"]"; got != want {
		t.Errorf("String()=%q, want %q", got, want)
	}
}
