// Command nudgebot runs the nudgebot Slack bot and its tools.
//
//	nudgebot run -config FILE          run the bot
//	nudgebot demo                      watch the bot at work against a built-in Slack emulator
//	nudgebot check -config FILE        validate config, database and Slack tokens
//	nudgebot backup -config FILE OUT   copy the database, even while the bot runs
//	nudgebot restore -config FILE IN   replace the database with a backup
//	nudgebot export -config FILE       write all data as JSON lines
//	nudgebot compact -config FILE      shrink the database file
//	nudgebot manifest                  print the Slack app manifest
//	nudgebot version                   print the version
//
// main only parses the subcommand, wires the packages together and turns
// signals into a cancelled context; the work happens in bot/, nudges/
// and storage/.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the bot or a tool failed while running
	exitUsage  = 2 // bad flags, bad config: fix and try again
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int
}

func commands() map[string]command {
	return map[string]command{
		"run":      {"run the bot (needs -config or SLACK_* environment variables)", cmdRun},
		"demo":     {"watch the bot at work against a built-in Slack emulator; no Slack account needed", cmdDemo},
		"check":    {"validate the config, open the database, and test both Slack tokens", cmdCheck},
		"manifest": {"print the Slack app manifest (YAML) to create the app from", cmdManifest},
		"version":  {"print the version", cmdVersion},
		"backup":   {"copy the database to a file, safely, even while the bot runs", cmdBackup},
		"restore":  {"replace the database with a backup (stop the bot first)", cmdRestore},
		"export":   {"write all data as JSON lines", cmdExport},
		"compact":  {"shrink the database file (stop the bot first)", cmdCompact},
	}
}

var commandOrder = []string{"run", "demo", "check", "backup", "restore", "export", "compact", "manifest", "version"}

func usage(w io.Writer) {
	fmt.Fprintln(w, "nudgebot: daily leadership nudges in Slack.")
	fmt.Fprintln(w, "\nUsage: nudgebot COMMAND [flags]   (nudgebot COMMAND -h for its flags)")
	cmds := commands()
	for _, name := range commandOrder {
		fmt.Fprintf(w, "  %-9s %s\n", name, cmds[name].summary)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	}
	c, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "nudgebot: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return c.run(ctx, args[1:], stdout, stderr, getenv)
}
