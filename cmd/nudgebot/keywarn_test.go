package main

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/storage"
)

// Ensure start-up warns when the key file shares the database's
// directory, and only then.
func TestWarnKeyBesideDB(t *testing.T) {
	data, keys := t.TempDir(), t.TempDir()
	db := filepath.Join(data, "nudgebot.db")
	tests := []struct {
		name    string
		keyFile string
		env     string
		warn    bool
	}{
		{"default key file beside the database", "", "", true},
		{"key file named in the same directory", filepath.Join(data, "other.key"), "", true},
		{"key file elsewhere", filepath.Join(keys, "nudgebot.key"), "", false},
		{"key from the environment", "", "a-key", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			cfg := config.Default()
			cfg.Storage.Path, cfg.Storage.KeyFile = db, tt.keyFile
			env := map[string]string{storage.EnvSecretKey: tt.env}
			warnKeyBesideDB(cfg, func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(&buf, nil)))
			if got := strings.Contains(buf.String(), "same directory as the database"); got != tt.warn {
				t.Errorf("warned=%v, want %v; log: %s", got, tt.warn, buf.String())
			}
		})
	}
}
