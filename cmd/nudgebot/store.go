package main

import (
	"net/url"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/app/scheduler"
	"github.com/nudgebot/nudgebot/bot"
	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/storage"
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
// elects the one running the scheduler, the census that counts the
// replicas (each takes its share of Slack's limits), and the wakes that
// carry a schedule change to the leader. PostgreSQL offers it; the bbolt file, which one
// process holds, does not.
type sharedStore interface {
	scheduler.Lease
	scheduler.Census
	scheduler.Wakeups
	app.Replicas
}

var _ runStore = (*storage.DB)(nil)

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
	"export":  "each person can still export their own records with /reflect export; for everything, pg_dump, or `nudgebot migrate -to-file` (bots stopped) and export that file",
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
