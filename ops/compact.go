package ops

import (
	"errors"
	"fmt"
	"os"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/storage"
)

// Compact rewrites the database without its free pages and reports its
// size before and after.
func (t Tool) Compact() (before, after int64, err error) {
	cfg, getenv, stderr := t.Config, t.Getenv, t.stderr()
	path := cfg.Storage.Path
	// Open would create a missing file; compacting nothing is a mistake
	// in storage.path worth reporting.
	if _, err := os.Stat(path); err != nil {
		return 0, 0, Mark(ErrNoDatabase, fmt.Errorf("no database at %s: check storage.path (or %s): %w", path, config.EnvStoragePath, err))
	}
	// Opening read-write checks that the configured keys open every
	// reflection, so a database with reflections needs them here too.
	keys, err := toolKeys(cfg, getenv)
	if err != nil {
		return 0, 0, err
	}
	inUse := Mark(storage.ErrInUse, fmt.Errorf("%s is in use by a running nudgebot: stop nudgebot first (e.g. systemctl stop nudgebot), then run compact again", path))
	// A read-write open migrates and stamps the file before it checks the
	// keys, so check them first: a refused compact must leave the file
	// exactly as it was.
	if err := keysCover(path, keys); errors.Is(err, storage.ErrInUse) {
		return 0, 0, inUse
	} else if err != nil {
		return 0, 0, err
	}
	db, err := storage.Open(path, storage.Options{Timeout: lockWait, Keys: keys})
	if errors.Is(err, storage.ErrInUse) {
		return 0, 0, inUse
	}
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if before, err = db.Size(); err != nil {
		return 0, 0, err
	}
	info, _ := os.Stat(path)
	fmt.Fprintf(stderr, "compacting %s (%s)…\n", path, ByteSize(before))
	if err := db.Compact(); err != nil {
		return before, 0, err
	}
	keepOwner(path, info, stderr)
	if after, err = db.Size(); err != nil {
		return before, 0, err
	}
	return before, after, nil
}
