//go:build !nopostgres

package main

// The wiring of the PostgreSQL engine (storage/pgstore), the only file of
// the bot that links pgx. A build with -tags nopostgres leaves it out
// (nopostgres.go stands in), for a binary with the bbolt file only.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/app/scheduler"
	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/pgstore"
)

var (
	_ runStore    = (*pgstore.Store)(nil)
	_ sharedStore = (*pgstore.Store)(nil)
)

// openPostgres opens the PostgreSQL database storage.url names, under
// the configured key (postgresKeys), and returns the keys with it.
func openPostgres(cfg config.Config, log *slog.Logger, getenv func(string) string) (runStore, *storage.Keys, error) {
	keys, err := postgresKeys(cfg, getenv, log)
	if err != nil {
		return nil, nil, err
	}
	db, err := pgstore.Open(context.Background(), pgstore.Options{URL: cfg.Storage.URL.Reveal(), Keys: keys, Logger: log, Retention: cfg.Storage.Retention})
	if err != nil {
		if errors.Is(err, storage.ErrKeyMissing) {
			return nil, nil, ops.Mark(ops.ErrKey, err)
		}
		return nil, nil, err
	}
	return db, keys, nil
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

// migrateApp is what migrate's connections are called in
// pg_stat_activity: not a bot's name, so they are not taken for one.
const migrateApp = "nudgebot-migrate"

// notRunning refuses a PostgreSQL database a running nudgebot uses (the
// source: it would write what the copy misses; the target: it would
// write beside the copy): one holds the scheduler's lease, another
// recorded itself alive (a follower), or one is connected under a bot's
// name.
func notRunning(ctx context.Context, opts pgstore.Options, role string) error {
	holder, left, err := pgstore.Leader(ctx, opts)
	if err != nil {
		return err
	}
	if holder != "" {
		return ops.Mark(storage.ErrInUse, fmt.Errorf("the %s, %s, is in use: nudgebot %s leads its replicas (its lease runs %s more): stop every nudgebot using it first; nothing was written",
			role, pgstore.Where(opts), holder, left.Round(time.Second)))
	}
	// A follower's connections may go by another name (through a pooler,
	// or a URL of its own), but it records itself alive every few
	// seconds; one killed is forgotten three lease times after.
	alive, err := pgstore.LiveReplicas(ctx, opts)
	if err != nil {
		return err
	}
	if alive > 0 {
		return ops.Mark(storage.ErrInUse, fmt.Errorf("the %s, %s, is in use: %d nudgebot replica(s) recorded themselves alive in the last %s: stop every nudgebot using it first (one killed rather than stopped is forgotten that long after); nothing was written",
			role, pgstore.Where(opts), alive, scheduler.PresenceTTLs*scheduler.DefaultLeaseTTL))
	}
	n, err := pgstore.BotConnections(ctx, opts)
	if err != nil {
		return err
	}
	if n > 0 {
		return ops.Mark(storage.ErrInUse, fmt.Errorf("the %s, %s, is in use: %d connection(s) of a running nudgebot: stop every nudgebot using it first; nothing was written", role, pgstore.Where(opts), n))
	}
	return nil
}

// holdForCopy keeps every nudgebot from starting on a PostgreSQL source
// or target until the copy is over (pgstore.HoldForCopy), then looks
// again for one that started before the lock was taken.
func holdForCopy(ctx context.Context, opts pgstore.Options, role string) (release func(), err error) {
	release, err = pgstore.HoldForCopy(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := notRunning(ctx, opts, role); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// migrateToPostgres copies the bbolt file the config names into the
// empty PostgreSQL database at url, in one transaction it commits only
// once the copy is verified.
func migrateToPostgres(ctx context.Context, tool ops.Tool, url string, sample int, stdout, stderr io.Writer) error {
	src, keys, err := tool.OpenMigrateSource()
	if err != nil {
		return err
	}
	defer src.Close()
	opts := pgstore.Options{URL: url, Keys: keys, ApplicationName: migrateApp}
	where := pgstore.Where(opts)
	if err := notRunning(ctx, opts, "target"); err != nil {
		return err
	}
	// Looked at before Open, which would create or upgrade the tables:
	// a database that is not empty is left exactly as it was.
	empty, err := pgstore.Empty(ctx, opts)
	if err != nil {
		return err
	}
	if !empty {
		return notEmpty(where)
	}
	dst, err := pgstore.Open(ctx, opts)
	if err != nil {
		return err
	}
	defer dst.Close()
	release, err := holdForCopy(ctx, opts, "target")
	if err != nil {
		return err
	}
	defer release()
	load, err := dst.BeginLoad(ctx)
	if errors.Is(err, storage.ErrNotEmpty) {
		return notEmpty(where)
	}
	if err != nil {
		return err
	}
	defer load.Rollback()
	fmt.Fprintf(stderr, "copying %s into %s, in one transaction\n", tool.Config.Storage.Path, where)
	sum, err := ops.Migrate(ctx, src, load, sample, stderr)
	if err != nil {
		return fmt.Errorf("%w; %s is left empty", err, where)
	}
	if err := load.Commit(); err != nil {
		return fmt.Errorf("%w; %s is left empty", err, where)
	}
	sum.Report(stdout)
	fmt.Fprintf(stdout, "%s now holds a verified copy of %s. Point every nudgebot at it (storage.driver: postgres, storage.url or %s) with the same reflection key (%s or storage.key_file), then start them; keep %s until you are content.\n",
		where, tool.Config.Storage.Path, config.EnvDatabaseURL, storage.EnvSecretKey, tool.Config.Storage.Path)
	if beside := tool.KeyBeside(); beside != "" {
		fmt.Fprintf(stdout, "The key was read from %s, beside the file; on PostgreSQL nudgebot only reads a configured key: set storage.key_file to a copy of it that every replica can read, or %s to its contents.\n", beside, storage.EnvSecretKey)
	}
	return nil
}

func notEmpty(where string) error {
	return ops.Mark(ops.ErrConfig, fmt.Errorf("%s is not empty: migrate copies only into an empty database, and never writes over one; nothing was written: name an empty database (CREATE DATABASE …), or empty this one yourself", where))
}

// migrateToFile copies the PostgreSQL database the config names into a
// new bbolt file at path, moved into place only once verified.
func migrateToFile(ctx context.Context, tool ops.Tool, path string, sample int, stdout, stderr io.Writer) error {
	cfg := tool.Config
	keys, err := postgresKeys(cfg, tool.Getenv, nil)
	if err != nil {
		return err
	}
	opts := pgstore.Options{URL: cfg.Storage.URL.Reveal(), Keys: keys, ApplicationName: migrateApp}
	if err := notRunning(ctx, opts, "source"); err != nil {
		return err
	}
	src, err := pgstore.Open(ctx, opts)
	if err != nil {
		if errors.Is(err, storage.ErrKeyMissing) {
			return ops.Mark(ops.ErrKey, err)
		}
		return err
	}
	defer src.Close()
	release, err := holdForCopy(ctx, opts, "source")
	if err != nil {
		return err
	}
	defer release()
	dst, err := ops.NewFileTarget(path, keys)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "copying %s into %s\n", pgstore.Where(opts), path)
	sum, err := ops.Migrate(ctx, pgSource{ctx, src}, dst, sample, stderr)
	if err == nil {
		fmt.Fprintln(stderr, "checking the copy (every page, index and seal)")
		err = dst.Check()
	}
	if err != nil {
		dst.Abort()
		return fmt.Errorf("%w; %s was not written", err, path)
	}
	if err := dst.Commit(); err != nil {
		return err
	}
	sum.Report(stdout)
	fmt.Fprintf(stdout, "%s now holds a verified copy of %s. Point nudgebot at it (storage.driver: bbolt, storage.path: %s) with the same reflection key (%s or storage.key_file), then start it.\n",
		path, pgstore.Where(opts), path, storage.EnvSecretKey)
	return nil
}

// pgSource is the PostgreSQL store as a migration's source.
type pgSource struct {
	ctx context.Context
	s   *pgstore.Store
}

func (p pgSource) Dump(fn func(storage.Record) error) error { return p.s.Dump(p.ctx, fn) }

func (p pgSource) Reflection(userID string, seq int) (nudges.Reflection, error) {
	return p.s.Reflection(userID, seq)
}
