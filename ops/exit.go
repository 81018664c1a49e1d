package ops

import (
	"errors"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/storage"
)

// Exit codes of every nudgebot command, defined here once: docs, the
// systemd unit (RestartPreventExitStatus) and scripts read them, so each
// says what kind of fix is needed.
const (
	ExitOK        = 0
	ExitFailed    = 1 // anything else: a failure while running, a disk error, a panic
	ExitConfig    = 2 // bad flags or configuration: fix it; restarting cannot help
	ExitDatabase  = 3 // the database is damaged, from a newer nudgebot, missing, or held by another process
	ExitKey       = 4 // the reflection key is missing, unreadable or not the one the data was sealed with
	ExitSlackAuth = 5 // Slack refused a token (invalid_auth, token_revoked, …)
)

// Errors a command wraps around what went wrong so ExitCode can tell the
// kinds apart; storage's own errors (ErrCorrupt, ErrInUse,
// ErrNewerSchema, ErrKeyMissing) are recognised as they are.
var (
	ErrConfig    = errors.New("configuration")
	ErrKey       = errors.New("reflection key")
	ErrSlackAuth = errors.New("authentication with Slack")
	// ErrNoDatabase: the tool was asked to work on a database that is
	// not there.
	ErrNoDatabase = errors.New("no database")
)

// slackAuthErrors are the Slack error codes that mean a token is wrong
// or no longer valid: restarting cannot fix them.
var slackAuthErrors = map[string]bool{
	"invalid_auth": true, "not_authed": true, "token_revoked": true, "token_expired": true,
	"account_inactive": true, "not_allowed_token_type": true, "missing_scope": true,
}

// ExitCode maps err to the exit code of its kind; nil is ExitOK. A key
// the database wants is checked before damage, as storage marks a
// reflection sealed under another key as missing its key, not damaged.
func ExitCode(err error) int {
	var slackErr slack.SlackErrorResponse
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrConfig):
		return ExitConfig
	case errors.Is(err, ErrKey), errors.Is(err, storage.ErrKeyMissing):
		return ExitKey
	case errors.Is(err, storage.ErrCorrupt), errors.Is(err, storage.ErrInUse),
		errors.Is(err, storage.ErrNewerSchema), errors.Is(err, ErrNoDatabase):
		return ExitDatabase
	case errors.Is(err, ErrSlackAuth):
		return ExitSlackAuth
	case errors.As(err, &slackErr) && slackAuthErrors[slackErr.Err]:
		return ExitSlackAuth
	}
	return ExitFailed
}

// kindError gives an error a kind for ExitCode without changing its
// message.
type kindError struct {
	kind, err error
}

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.err, e.kind} }

// Mark returns err marked as of kind (ErrConfig, ErrKey, …) for ExitCode;
// its message is err's. Mark(kind, nil) is nil.
func Mark(kind, err error) error {
	if err == nil {
		return nil
	}
	return kindError{kind: kind, err: err}
}

// Recovered turns a panic's value into an error a command can report: a
// panic must not escape as a Go stack trace that tells an operator
// nothing about what to do.
func Recovered(v any) error {
	return fmt.Errorf("internal error (a bug in nudgebot; please report it with the log): %v", v)
}
