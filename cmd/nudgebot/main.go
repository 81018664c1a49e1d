// Command nudgebot runs the nudgebot Slack bot and its tools.
//
//	nudgebot run -config FILE          run the bot
//	nudgebot demo                      watch the bot at work against a built-in Slack emulator
//	nudgebot emulator [-addr ADDR]     serve that emulator, to try run, backup and health without Slack
//	nudgebot check -config FILE        try what run does at start, without changing anything
//	nudgebot health -config FILE       ask the running bot whether it is healthy (a HEALTHCHECK)
//	nudgebot backup -config FILE OUT   copy the database, even while the bot runs
//	nudgebot restore -config FILE IN   replace the database with a backup
//	nudgebot export -config FILE       write all data as JSON lines
//	nudgebot compact -config FILE      shrink the database file
//	nudgebot migrate -config FILE -to-postgres URL | -to-file PATH
//	                                   copy the database into the other engine, verified
//	nudgebot manifest                  print the Slack app manifest
//	nudgebot version                   print the version
//
// main only parses flags, wires the packages together (config → storage
// → app, the core → bot, the Slack adapter), turns signals into a
// cancelled context and maps errors to exit codes (ops.ExitCode); the
// work happens in app/, bot/, nudges/, storage/ and ops/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/nudgebot/nudgebot/ops"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// commandFunc is one command: nil means success; any error is printed
// (unless already shown) and mapped to its exit code.
type commandFunc func(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error

type command struct {
	summary string
	run     commandFunc
}

func commands() map[string]command {
	return map[string]command{
		"run":      {"run the bot (needs -config or SLACK_* environment variables)", cmdRun},
		"demo":     {"watch the bot at work against a built-in Slack emulator; no Slack account needed", exited(cmdDemo)},
		"emulator": {"serve that emulator, with five people to act as, for run, backup and health to be tried without Slack", cmdEmulator},
		"check":    {"try what run does at start (config, database, key, both Slack tokens), changing nothing", cmdCheck},
		"health":   {"ask the running bot whether it is healthy, over its socket (a container HEALTHCHECK)", cmdHealth},
		"manifest": {"print the Slack app manifest (YAML) to create the app from", cmdManifest},
		"version":  {"print the version", cmdVersion},
		"backup":   {"copy the database to a file, safely, even while the bot runs", cmdBackup},
		"restore":  {"replace the database with a backup (stop the bot first)", cmdRestore},
		"export":   {"write all data as JSON lines", cmdExport},
		"compact":  {"shrink the database file (stop the bot first)", cmdCompact},
		"migrate":  {"copy the database into the other engine, bbolt ⇄ PostgreSQL, verified (stop the bot first)", cmdMigrate},
	}
}

var commandOrder = []string{"run", "demo", "emulator", "check", "health", "backup", "restore", "export", "compact", "migrate", "manifest", "version"}

func usage(w io.Writer) {
	fmt.Fprintln(w, "nudgebot: daily leadership nudges in Slack.")
	fmt.Fprintln(w, "\nUsage: nudgebot COMMAND [flags]   (nudgebot COMMAND -h for its flags)")
	cmds := commands()
	for _, name := range commandOrder {
		fmt.Fprintf(w, "  %-9s %s\n", name, cmds[name].summary)
	}
	fmt.Fprintln(w, "\nExit codes: 0 ok, 1 other failure, 2 bad flags or config, 3 database damaged, missing or in use,")
	fmt.Fprintln(w, "4 reflection key missing or wrong, 5 Slack refused a token (see docs/operations.md).")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		usage(stderr)
		return ops.ExitConfig
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return ops.ExitOK
	}
	c, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "nudgebot: unknown command %q\n\n", args[0])
		usage(stderr)
		return ops.ExitConfig
	}
	err := guard(args[0], stderr, func() error { return c.run(ctx, args[1:], stdout, stderr, getenv) })
	return exitCode(args[0], err, stderr)
}

// guard runs a command, turning a panic in it into an error with a
// clear message; the stack goes to stderr for the bug report. A panic in
// another goroutine cannot be caught here: the bot's own goroutines
// recover and log theirs.
func guard(name string, stderr io.Writer, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			fmt.Fprintf(stderr, "nudgebot %s: stack of the internal error below, for the bug report:\n%s\n", name, debug.Stack())
			err = ops.Recovered(v)
		}
	}()
	return f()
}

// exitCode prints err (unless it was already shown) and maps it to the
// exit code of its kind.
func exitCode(name string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return ops.ExitOK
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	var sh shown
	if !errors.As(err, &sh) {
		fmt.Fprintf(stderr, "nudgebot %s: %v\n", name, err)
	}
	return ops.ExitCode(err)
}

// errHelp is a command's answer to -h: its help was printed.
var errHelp = errors.New("help shown")

// shown marks an error already told to the operator (by the flag
// package, or as a list of problems), which exitCode must not repeat.
type shown struct{ error }

func (s shown) Unwrap() error { return s.error }

// usageError is a mistake on the command line: exit code ops.ExitConfig.
func usageError(format string, a ...any) error {
	return ops.Mark(ops.ErrConfig, fmt.Errorf(format, a...))
}

// exitStatus is an exit code a command chose itself, its message printed.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// exited adapts a command that prints its own messages and picks its own
// exit code.
func exited(f func(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int) commandFunc {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
		if code := f(ctx, args, stdout, stderr, getenv); code != ops.ExitOK {
			return exitStatus(code)
		}
		return nil
	}
}
