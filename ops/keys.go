package ops

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/storage"
)

// RunKeys loads the reflection keys for `nudgebot run`, which, unlike the
// tools, creates nudgebot.key beside the database when no key is
// configured at all. It never creates one beside a database that already
// holds sealed data: a fresh key would open none of it, and the bot would
// refuse to start anyway, leaving a useless key on disk. Then it says
// which key the database wants and where it looked.
func RunKeys(cfg config.Config, getenv func(string) string, log *slog.Logger) (*storage.Keys, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if beside, configured := keySource(cfg, getenv); !configured {
		if _, err := os.Stat(beside); errors.Is(err, fs.ErrNotExist) {
			err := sealedWithout(cfg.Storage.Path)
			if errors.Is(err, storage.ErrInUse) {
				return nil, err // no key is made beside a file another process holds
			}
			if err != nil {
				return nil, Mark(ErrKey, fmt.Errorf("%w; no key was found: %s is not set, storage.key_file is not set, and %s does not exist (a new key is made there only for a database with no reflections yet): restore the key file or set %s", err, storage.EnvSecretKey, beside, storage.EnvSecretKey))
			}
		}
	}
	keys, err := storage.LoadKeys(getenv, cfg.Storage.KeyFile, cfg.Storage.Path, log)
	if err != nil {
		return nil, Mark(ErrKey, fmt.Errorf("reflection keys: %w", err))
	}
	return keys, nil
}

// keySource says where the key file beside the database would be, and
// whether a key is configured elsewhere (the environment or
// storage.key_file).
func keySource(cfg config.Config, getenv func(string) string) (beside string, configured bool) {
	beside = filepath.Join(filepath.Dir(cfg.Storage.Path), storage.KeyFileName)
	return beside, strings.TrimSpace(getenv(storage.EnvSecretKey)) != "" || cfg.Storage.KeyFile != ""
}

// sealedWithout reports storage's ErrKeyMissing error (naming the key ids
// the data was sealed with) when the database at path holds sealed data,
// and ErrInUse when another process holds it, so nobody can tell; nil
// when there is no database or nothing sealed in it. Damage is left for
// the real open to report.
func sealedWithout(path string) error {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	err := keysCover(path, nil)
	if errors.Is(err, storage.ErrKeyMissing) || errors.Is(err, storage.ErrInUse) {
		return err
	}
	return nil
}

// toolKeys loads the reflection keys as the bot does, except that it never
// creates a key file: a key a tool made up would open nothing and would
// only leave a misleading file beside the database. nil means no key is
// configured.
func toolKeys(cfg config.Config, getenv func(string) string) (*storage.Keys, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if beside, configured := keySource(cfg, getenv); !configured {
		if _, err := os.Stat(beside); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	keys, err := storage.LoadKeys(getenv, cfg.Storage.KeyFile, cfg.Storage.Path, nil)
	if err != nil {
		return nil, Mark(ErrKey, fmt.Errorf("reflection keys: %w", err))
	}
	return keys, nil
}
