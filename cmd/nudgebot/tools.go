package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/ops"
)

const backupHelp = `Usage: nudgebot backup [-config FILE] [-force] OUT

Writes a consistent copy of the database to OUT while nudgebot keeps
running, then checks that the copy opens and passes the consistency check.
If a running nudgebot holds the database, the copy comes from its
/backup endpoint, which needs metrics.addr set in the config and the
backup token (NUDGEBOT_BACKUP_TOKEN, or the file nudgebot.backup-token
beside the key file, or metrics.backup_token_file); otherwise the file is
read directly. OUT appears only once complete and checked (it is written
to a fresh temporary file beside it first), with mode 0600: it holds
everyone's data. An existing OUT is replaced only with -force, and never
when it is the database, the key file or the backup token file.`

func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var force *bool
	tool, pos, err := opsSetup("backup", backupHelp, args, stderr, getenv, func(fs *flag.FlagSet) {
		force = fs.Bool("force", false, forceUsage)
	})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("give the one file to write the backup to, e.g. nudgebot backup -config config.yaml nudgebot-backup.db")
	}
	tool.Force = *force
	res, err := tool.Backup(ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s (%s, %s); the copy passed the consistency check\n",
		tool.Config.Storage.Path, pos[0], ops.ByteSize(res.Bytes), res.Source)
	return nil
}

const restoreHelp = `Usage: nudgebot restore [-config FILE] IN

Replaces the database with the backup IN. Stop nudgebot first: restore
refuses a database in use. IN must open and pass the consistency check
before anything is touched; the database it replaces is kept as
<storage.path>.before-restore. A backup from an older nudgebot is
migrated when nudgebot next starts; one from a newer nudgebot is refused.`

func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	tool, pos, err := opsSetup("restore", restoreHelp, args, stderr, getenv, nil)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("give the one backup file to restore, e.g. nudgebot restore -config config.yaml nudgebot-backup.db")
	}
	kept, err := tool.Restore(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s", pos[0], tool.Config.Storage.Path)
	if kept != "" {
		fmt.Fprintf(stdout, "; the database it replaced is kept at %s", kept)
	}
	fmt.Fprintln(stdout, ". Start nudgebot again.")
	return nil
}

const exportHelp = `Usage: nudgebot export [-config FILE] [-o OUT [-force]] [-strict]

Writes every record people own as JSON lines, one object per line, each
with a "kind": "subscriber", "delivery" or "reflection". It walks the
records themselves, so someone who only ever wrote reflections is there
too; pulse answers are anonymous and never exported. Reflections are
decrypted with the configured key (NUDGEBOT_SECRET_KEY, storage.key_file,
or nudgebot.key beside the database); a configured key that is not the
one they were sealed with stops the export, naming the key it needs. A
record that cannot be read (no key for it, or damaged) is left out and
named on standard error, and the closing line counts what was written
and what was left out, and why; with -strict, any record left out makes
the exit status 1. Works while nudgebot runs (through its /backup
endpoint, which needs metrics.addr) or when it is stopped. Without -o the
lines go to standard output; OUT appears only once complete, and an
existing OUT is replaced only with -force (never the database, the key
file or the backup token file). The export holds everyone's data: store
it as carefully as the database.`

// forceUsage is the -force flag's help, the same for every tool.
const forceUsage = "replace OUT if it exists (never the database, the key file or the backup token file)"

func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var out *string
	var strict, force *bool
	tool, pos, err := opsSetup("export", exportHelp, args, stderr, getenv, func(fs *flag.FlagSet) {
		out = fs.String("o", "", "write to this file (created with mode 0600) instead of standard output")
		force = fs.Bool("force", false, forceUsage)
		strict = fs.Bool("strict", false, "exit with status 1 if any record was left out (no key for it, or damaged); what could be read is still written")
	})
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("unexpected argument %q: to write to a file, use -o FILE", pos[0])
	}
	var counts ops.ExportCounts
	tool.Force = *force
	if *out == "" {
		counts, err = tool.Export(ctx, stdout)
	} else {
		counts, err = tool.ExportFile(ctx, *out)
	}
	if err != nil {
		return err
	}
	counts.Report(stderr, *out)
	if n := counts.LeftOut(); *strict && n > 0 {
		what := "records were"
		if n == 1 {
			what = "record was"
		}
		return fmt.Errorf("-strict: %d %s left out", n, what)
	}
	return nil
}

const compactHelp = `Usage: nudgebot compact [-config FILE]

Rewrites the database without its free pages, which bbolt never gives
back, and without the remains of deleted data. Stop nudgebot first:
compact refuses a database in use. Prints the size before and after.`

func cmdCompact(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	tool, pos, err := opsSetup("compact", compactHelp, args, stderr, getenv, nil)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("unexpected argument %q: the database is the config's storage.path", pos[0])
	}
	before, after, err := tool.Compact()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "compacted %s: %s before, %s after\n", tool.Config.Storage.Path, ops.ByteSize(before), ops.ByteSize(after))
	return nil
}

// ---- shared by the tools ----

// opsSetup parses a data tool's flags and positional arguments, in any
// order, and loads the configuration. The tools never talk to Slack, so
// the tokens are not required: the shell an operator runs them from
// rarely has them, and demanding them would only push people to paste
// tokens onto command lines.
func opsSetup(name, help string, args []string, stderr io.Writer, getenv func(string) string, define func(*flag.FlagSet)) (ops.Tool, []string, error) {
	fs := flag.NewFlagSet("nudgebot "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the YAML config file nudgebot runs with; without it, defaults and environment variables are used")
	if define != nil {
		define(fs)
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, help)
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return ops.Tool{}, nil, flagError(err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	cfg, err := readConfig(name, *path, withoutTokens(getenv), stderr)
	if err != nil {
		return ops.Tool{}, nil, err
	}
	if err := fileOnly(cfg, name); err != nil {
		return ops.Tool{}, nil, err
	}
	return ops.Tool{Config: cfg, Getenv: getenv, Stderr: stderr}, pos, nil
}

// withoutTokens answers the token variables with placeholders of the
// right shape, so validation passes without the real tokens; the data
// tools never use them.
func withoutTokens(getenv func(string) string) func(string) string {
	return func(k string) string {
		switch k {
		case config.EnvBotToken:
			return "xoxb-(unused)"
		case config.EnvAppToken:
			return "xapp-(unused)"
		}
		if getenv == nil {
			return ""
		}
		return getenv(k)
	}
}

// opsKeys loads the reflection keys as the bot does, except that it never
// creates a key file: a key a tool made up would open nothing and would
// only leave a misleading file beside the database. nil means no key is
// configured.

const healthHelp = `Usage: nudgebot health [-config FILE] [-ready]

Asks the nudgebot running with this config, over the socket beside its
database (storage.path + ".sock"), whether it is healthy: connected to
Slack, its database answering and undamaged. With -ready, whether it is
ready: connected and its scheduler has run. Prints the bot's answer and
exits 0 when healthy (or ready), 1 otherwise. It needs no port, shell or
curl, so it serves as a container's HEALTHCHECK, e.g. in distroless:
HEALTHCHECK CMD ["/usr/local/bin/nudgebot", "health"]`

func cmdHealth(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var ready *bool
	tool, pos, err := opsSetup("health", healthHelp, args, stderr, getenv, func(fs *flag.FlagSet) {
		ready = fs.Bool("ready", false, "ask whether the bot is ready (/readyz) rather than healthy (/healthz)")
	})
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("unexpected argument %q", pos[0])
	}
	answer, err := tool.Health(ctx, *ready)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, answer)
	return nil
}
