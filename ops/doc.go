// Package ops is what an operator does to a nudgebot installation besides
// running it: back up (from the file, or from the running bot over its
// Unix socket or its HTTP endpoint), restore, export, compact and check
// it, and the admin HTTP server a running bot offers (/metrics, /healthz,
// /readyz, /backup). It is a package of its own, not part of the command,
// so that each operation can be imported and tested apart from flag
// parsing: cmd/nudgebot only parses flags, wires and maps errors to exit
// codes (see ExitCode).
//
// The tools never talk to Slack and never create a key or a token: what
// they made up would open nothing and only leave a misleading file.
package ops
