package ops

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/storage"
)

// Ensure each kind of error maps to its exit code however deeply it is
// wrapped, a missing key before damage, and that Mark keeps the message.
func TestExitCode(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", err)) }
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"Nil", nil, ExitOK},
		{"Plain", errors.New("disk on fire"), ExitFailed},
		{"Config", Mark(ErrConfig, errors.New("bad flag")), ExitConfig},
		{"Damaged", wrap(storage.ErrCorrupt), ExitDatabase},
		{"InUse", wrap(storage.ErrInUse), ExitDatabase},
		{"NewerSchema", wrap(storage.ErrNewerSchema), ExitDatabase},
		{"NoDatabase", Mark(ErrNoDatabase, errors.New("x")), ExitDatabase},
		{"KeyMissing", wrap(storage.ErrKeyMissing), ExitKey},
		{"KeyMissingAndDamaged", errors.Join(storage.ErrCorrupt, storage.ErrKeyMissing), ExitKey},
		{"KeyFile", Mark(ErrKey, errors.New("line 1 is not valid base64")), ExitKey},
		{"SlackInvalidAuth", wrap(slack.SlackErrorResponse{Err: "invalid_auth"}), ExitSlackAuth},
		{"SlackRevoked", wrap(slack.SlackErrorResponse{Err: "token_revoked"}), ExitSlackAuth},
		{"SlackRateLimited", wrap(slack.SlackErrorResponse{Err: "ratelimited"}), ExitFailed},
		{"Recovered", Recovered("boom"), ExitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
	if err := Mark(ErrKey, errors.New("the message")); err.Error() != "the message" {
		t.Errorf("Mark changed the message to %q", err)
	}
	if Mark(ErrKey, nil) != nil {
		t.Error("Mark(kind, nil) is not nil")
	}
}

// Ensure SameFile sees through symlinks, hard links, relative paths and
// symlinked directories, for files that exist and files that do not.
func TestSameFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "nudgebot.db")
	if err := os.WriteFile(db, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(db, filepath.Join(other, "link.db")))
	must(os.Link(db, filepath.Join(other, "hard.db")))
	must(os.Symlink(dir, filepath.Join(other, "linkdir")))
	must(os.Symlink(filepath.Join(dir, "missing.key"), filepath.Join(other, "dangling")))
	wd, err := os.Getwd()
	must(err)
	t.Cleanup(func() { _ = os.Chdir(wd) })
	must(os.Chdir(dir))
	tests := []struct {
		a, b string
		want bool
	}{
		{db, db, true},
		{"nudgebot.db", db, true},
		{filepath.Join(other, "link.db"), db, true},
		{filepath.Join(other, "hard.db"), db, true},
		{filepath.Join(other, "linkdir", "nudgebot.db"), db, true},
		{filepath.Join(other, "linkdir", "missing.key"), filepath.Join(dir, "missing.key"), true},
		{filepath.Join(other, "dangling"), filepath.Join(dir, "missing.key"), true},
		{filepath.Join(other, "new.db"), db, false},
		{filepath.Join(dir, "a.key"), filepath.Join(dir, "b.key"), false},
	}
	for _, tt := range tests {
		if got := SameFile(tt.a, tt.b); got != tt.want {
			t.Errorf("SameFile(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// Ensure the output check protects the database, the key and the token
// (with -force too), any existing file without -force, and lets a new
// file through.
func TestCheckOutput(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Config{Storage: config.StorageConfig{Path: filepath.Join(dir, "nudgebot.db"), KeyFile: filepath.Join(t.TempDir(), "secret.key")}}
	for _, p := range []string{cfg.Storage.Path, cfg.Storage.KeyFile, BackupTokenPath(cfg), filepath.Join(dir, "old.db")} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tool := Tool{Config: cfg}
	tests := []struct {
		out   string
		force bool
		want  string // "" means allowed
	}{
		{cfg.Storage.Path, true, "is the database"},
		{cfg.Storage.KeyFile, true, "is the reflection key file"},
		{BackupTokenPath(cfg), true, "is the backup token file"},
		{filepath.Join(dir, "old.db"), false, "already exists"},
		{filepath.Join(dir, "old.db"), true, ""},
		{dir, true, "is a directory"},
		{filepath.Join(dir, "new.db"), false, ""},
	}
	for _, tt := range tests {
		err := tool.checkOutput(tt.out, tt.force)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("checkOutput(%s, force=%v): %v, want it allowed", tt.out, tt.force, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || ExitCode(err) != ExitConfig):
			t.Errorf("checkOutput(%s, force=%v) = %v (exit %d), want %q and exit %d", tt.out, tt.force, err, ExitCode(err), tt.want, ExitConfig)
		}
	}
}
