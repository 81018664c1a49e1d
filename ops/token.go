package ops

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/nudgebot/nudgebot/config"
)

// /backup hands out everyone's data, so being on the same machine is not
// enough: any local process, a sidecar, a port-forward or a web page
// using DNS rebinding can reach a loopback port. It also asks for a
// token that only the bot's user can read, and for a Host header that
// names the machine itself.

const (
	// envBackupToken overrides the token file.
	envBackupToken = "NUDGEBOT_BACKUP_TOKEN"

	// backupTokenFileName is the token file kept beside the key file.
	backupTokenFileName = "nudgebot.backup-token"

	minBackupTokenLen = 20
	maxTokenFileSize  = 4 << 10
)

// BackupTokenPath is where the token file is: metrics.backup_token_file,
// or beside the key file (storage.key_file, or the key file nudgebot
// keeps beside the database).
func BackupTokenPath(cfg config.Config) string {
	if cfg.Metrics.BackupTokenFile != "" {
		return cfg.Metrics.BackupTokenFile
	}
	dir := filepath.Dir(cfg.Storage.Path)
	if cfg.Storage.KeyFile != "" {
		dir = filepath.Dir(cfg.Storage.KeyFile)
	}
	return filepath.Join(dir, backupTokenFileName)
}

// BackupToken finds the token /backup asks for: NUDGEBOT_BACKUP_TOKEN,
// else the token file. With create (only `nudgebot run`), a missing file
// is created with a fresh token and mode 0600; the tools never create
// one, since a token they made up would match no running bot.
func BackupToken(cfg config.Config, getenv func(string) string, create bool) (string, error) {
	if getenv != nil {
		if v := strings.TrimSpace(getenv(envBackupToken)); v != "" {
			if len(v) < minBackupTokenLen {
				return "", fmt.Errorf("%s is %d characters long; use at least %d random ones, e.g. `head -c 32 /dev/urandom | base64`", envBackupToken, len(v), minBackupTokenLen)
			}
			return v, nil
		}
	}
	path := BackupTokenPath(cfg)
	tok, err := readTokenFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		return createTokenFile(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no backup token at %s: start nudgebot once with metrics.addr set to create it, or set %s to the running bot's token", path, envBackupToken)
	}
	return tok, err
}

func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("backup token file %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("backup token file %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("backup token file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return "", fmt.Errorf("backup token file %s is accessible by group or others (mode %#o): it unlocks a copy of everyone's data, so run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFileSize))
	if err != nil {
		return "", fmt.Errorf("backup token file %s: %w", path, err)
	}
	tok := strings.TrimSpace(string(data))
	if len(tok) < minBackupTokenLen {
		return "", fmt.Errorf("backup token file %s holds no token of at least %d characters: delete it and start nudgebot to create a fresh one", path, minBackupTokenLen)
	}
	return tok, nil
}

// createTokenFile writes a fresh token with O_EXCL, so a token another
// process created meanwhile is kept and read instead.
func createTokenFile(path string) (string, error) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // never fails: it crashes the program instead
	tok := base64.RawURLEncoding.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readTokenFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("create backup token file %s: %w (set metrics.backup_token_file to a writable place, or %s)", path, err, envBackupToken)
	}
	_, werr := f.WriteString(tok + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("create backup token file %s: %w", path, err)
	}
	return tok, nil
}

// bearerMatches compares the request's bearer token with want in
// constant time; hashing first hides the length too.
func bearerMatches(r *http.Request, want string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || want == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// loopbackHost reports whether a Host header names this machine by a
// loopback address or "localhost". A page served from an attacker's
// domain that rebinds to 127.0.0.1 still sends that domain as Host.
func loopbackHost(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// BackupAuthFor loads (creating it if need be) the token /backup asks
// for, when the HTTP listener is on (metrics.addr); only a starting bot
// calls it. The socket needs no token.
func BackupAuthFor(cfg config.Config, getenv func(string) string) (BackupAuth, error) {
	if cfg.Metrics.Addr == "" {
		return BackupAuth{Dir: filepath.Dir(cfg.Storage.Path)}, nil
	}
	tok, err := BackupToken(cfg, getenv, true)
	if err != nil {
		return BackupAuth{}, fmt.Errorf("metrics.addr is set, so /backup needs a token: %w", err)
	}
	return BackupAuth{Token: tok, Dir: filepath.Dir(cfg.Storage.Path)}, nil
}
