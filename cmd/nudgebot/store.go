package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/app/scheduler"
	"github.com/nudgebot/nudgebot/bot"
	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/pgstore"
)

// runStore is what `run` needs of a storage engine: the core's ports,
// the envelopes the bot marks, the scheduler's housekeeping, what the
// admin endpoints ask, the background check and key rotation. The bbolt file and PostgreSQL both
// offer it.
type runStore interface {
	app.Subscribers
	app.Settings
	app.Deliveries
	app.Reflections
	app.Digests
	app.Eraser
	app.Exporter
	bot.HandledEnvelopes
	bot.PaceMemory
	scheduler.Housekeeping
	ops.AdminDB
	StartCheck() <-chan struct{}
	RotateKeys() (int, error)
	Close() error
}

// sharedStore is a database several replicas may share: the lease that
// elects the one running the scheduler, and the wakes that carry a
// schedule change to it. PostgreSQL offers it; the bbolt file, which one
// process holds, does not.
type sharedStore interface {
	scheduler.Lease
	scheduler.Wakeups
	app.Replicas
}

var (
	_ runStore    = (*storage.DB)(nil)
	_ runStore    = (*pgstore.Store)(nil)
	_ sharedStore = (*pgstore.Store)(nil)
)

// openPostgres opens the PostgreSQL database storage.url names, under
// the configured key (postgresKeys).
func openPostgres(cfg config.Config, log *slog.Logger, getenv func(string) string) (*pgstore.Store, error) {
	keys, err := postgresKeys(cfg, getenv, log)
	if err != nil {
		return nil, err
	}
	db, err := pgstore.Open(context.Background(), pgstore.Options{URL: cfg.Storage.URL.Reveal(), Keys: keys, Logger: log, Retention: cfg.Storage.Retention})
	if err != nil {
		if errors.Is(err, storage.ErrKeyMissing) {
			return nil, ops.Mark(ops.ErrKey, err)
		}
		return nil, err
	}
	return db, nil
}

// postgresKeys loads the configured master keys. One must be configured:
// replicas share the database, so they must share the key, and one made
// up beside a file would seal what no other replica (nor a restore)
// could open.
func postgresKeys(cfg config.Config, getenv func(string) string, log *slog.Logger) (*storage.Keys, error) {
	if cfg.Storage.KeyFile == "" && (getenv == nil || strings.TrimSpace(getenv(storage.EnvSecretKey)) == "") {
		return nil, ops.Mark(ops.ErrKey, fmt.Errorf("storage.driver is postgres but no reflection key is configured: set %s or storage.key_file (every nudgebot sharing the database needs the same key; none is made up)", storage.EnvSecretKey))
	}
	keys, err := storage.LoadKeys(getenv, cfg.Storage.KeyFile, "", log)
	if err != nil {
		return nil, ops.Mark(ops.ErrKey, fmt.Errorf("reflection keys: %w", err))
	}
	return keys, nil
}

// fileOnly refuses, for PostgreSQL, the commands that work on the bbolt
// file, and says what to use instead.
func fileOnly(cfg config.Config, command string) error {
	instead, ok := onPostgres[command]
	if !cfg.Storage.Postgres() || !ok {
		return nil
	}
	return usageError("nudgebot %s works on the bbolt file, and storage.driver is postgres: %s", command, instead)
}

// onPostgres is what to use instead of each file-only command.
var onPostgres = map[string]string{
	"backup":  "back up with pg_dump, or your provider's base backups and point-in-time recovery",
	"restore": "restore with pg_restore (into an empty database) or your provider's point-in-time recovery",
	"compact": "PostgreSQL reclaims space itself (autovacuum; the bot vacuums after a forget); VACUUM FULL rewrites a table if you must",
	"export":  "each person can still export their own records with /reflect export; for everything, pg_dump",
}

// databaseName is what the start-up line says the database is: the file,
// or the PostgreSQL host and database (never the URL, which may hold a
// password).
func databaseName(cfg config.Config) string {
	if !cfg.Storage.Postgres() {
		return cfg.Storage.Path
	}
	u, err := url.Parse(cfg.Storage.URL.Reveal())
	if err != nil {
		return "postgres"
	}
	return "postgres://" + u.Host + u.Path
}

// checkPostgres is `nudgebot check`'s look at a PostgreSQL database: it
// answers, its schema is not newer, the key opens its data keys. It
// writes nothing.
func checkPostgres(ctx context.Context, cfg config.Config, getenv func(string) string, stdout io.Writer) []error {
	keys, err := postgresKeys(cfg, getenv, nil)
	if err != nil {
		return []error{err}
	}
	report, err := pgstore.Inspect(ctx, pgstore.Options{URL: cfg.Storage.URL.Reveal(), Keys: keys})
	if err != nil {
		if errors.Is(err, storage.ErrKeyMissing) {
			err = ops.Mark(ops.ErrKey, err)
		}
		return []error{err}
	}
	fmt.Fprintln(stdout, report)
	return nil
}
