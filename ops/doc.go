// Package ops is what an operator does to a nudgebot installation besides
// running it: back up (from the file, or from the running bot over its
// Unix socket or its HTTP endpoint), restore, export, compact and check
// it, and the admin HTTP server a running bot offers (/metrics, /healthz,
// /readyz, /backup). It is a package of its own, not part of the command,
// so that each operation can be imported and tested apart from flag
// parsing: cmd/nudgebot only parses flags, wires and maps errors to exit
// codes (see ExitCode).
//
// The data tools (backup, restore, export, compact, health) never talk to
// Slack, and no tool creates a key or a token: what it made up would open
// nothing and only leave a misleading file. check, and run at start
// (BotTokenRefused), ask Slack whether it accepts the tokens.
package ops
