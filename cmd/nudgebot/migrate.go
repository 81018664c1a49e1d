package main

import (
	"context"
	"flag"
	"io"

	"github.com/nudgebot/nudgebot/ops"
)

const migrateHelp = `Usage: nudgebot migrate [-config FILE] -to-postgres URL
       nudgebot migrate [-config FILE] -to-file PATH

Copies the whole database the config names into the other storage
engine, verifies the copy, and only then lets it count. Stop every
nudgebot using the database first: migrate refuses a database in use.

  -to-postgres URL  from the bbolt file (storage.path) into the PostgreSQL
                    database at URL, which must hold no nudgebot records
                    (migrate creates the tables). One transaction: until
                    the copy is verified and committed, URL stays empty.
  -to-file PATH     from PostgreSQL (storage.driver: postgres, storage.url)
                    into a new bbolt file at PATH, and its secrets file
                    beside it, written under a temporary name and moved
                    into place once verified. PATH must not exist.

Everything is copied (people and their schedules, deliveries and the
outbox, reflections, digests, pulses and their history, the settings
admins made, the learned Slack pace, unfinished forgets) but the handled
Slack envelopes, which only guard against redeliveries in the minutes
after they arrive. Reflections move sealed, as they are: the copy needs
the same reflection key (NUDGEBOT_SECRET_KEY or storage.key_file), and
nothing is decrypted on the way but the sample the check opens. The
copy is verified before it counts: every kind of record is compared
between the two (how many, and a digest of each record), and a sample
of reflections (-sample, all when fewer) is opened with the key on both
sides and compared; a file copy also passes the full consistency check.
A table of what was copied ends the run.

Give a password in PGPASSWORD or ~/.pgpass rather than in the URL:
command lines are visible to other users of the machine.

Exit status: 0 copied and verified; 2 bad flags, or the target is not
empty or exists; 3 the source is damaged or a database is in use; 4 no
key, or not the one the reflections were sealed with; 1 anything else.
Whatever the failure, the target is left as it was: empty, or absent.`

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var toPG, toFile *string
	var sample *int
	tool, pos, err := opsSetup("migrate", migrateHelp, args, stderr, getenv, func(fs *flag.FlagSet) {
		toPG = fs.String("to-postgres", "", "copy the bbolt file into the empty PostgreSQL database at this URL")
		toFile = fs.String("to-file", "", "copy the PostgreSQL database into a new bbolt file at this path")
		sample = fs.Int("sample", ops.DefaultMigrateSample, "how many reflections to open on both sides and compare (all when fewer)")
	})
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("unexpected argument %q: name the target with -to-postgres URL or -to-file PATH", pos[0])
	}
	if *sample < 0 {
		return usageError("-sample is %d: give how many reflections to compare, 0 or more", *sample)
	}
	postgres := tool.Config.Storage.Postgres()
	switch {
	case (*toPG == "") == (*toFile == ""):
		return usageError("name one target: -to-postgres URL (from the bbolt file storage.path names) or -to-file PATH (from the PostgreSQL database storage.url names)")
	case *toPG != "" && postgres:
		return usageError("-to-postgres copies the bbolt file, but the config's storage.driver is postgres: to copy PostgreSQL into a file, use -to-file PATH")
	case *toFile != "" && !postgres:
		return usageError("-to-file copies PostgreSQL, but the config's storage.driver is bbolt: to copy the file into PostgreSQL, use -to-postgres URL")
	case *toPG != "":
		return migrateToPostgres(ctx, tool, *toPG, *sample, stdout, stderr)
	default:
		return migrateToFile(ctx, tool, *toFile, *sample, stdout, stderr)
	}
}
