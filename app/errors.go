package app

import "errors"

// How the messenger reports what happened to a call Slack did not
// complete. The core decides from these what a failure means for a
// delivery; the messenger decides which of them a Slack answer is.
var (
	// ErrUncertain: the post may or may not have reached Slack (a 5xx,
	// a broken connection). Sending it blindly again could double it, so
	// the delivery is reconciled against the DM first.
	ErrUncertain = errors.New("slack may or may not have received the message")
	// ErrNotSent: the call certainly never reached Slack (rate limited on
	// every attempt, or never attempted).
	ErrNotSent = errors.New("the call never reached slack")
	// ErrNotLeader: the leader's work (a due nudge, a digest) was not
	// done because this replica's term as leader ended; the replica that
	// leads now does it.
	ErrNotLeader = errors.New("this replica does not lead")
)

// fenced is a store's refusal of a leader's write made by a replica
// whose term had ended: nothing of it was written.
type fenced interface {
	error
	Fenced() bool
}

// NotLeader reports whether err means this replica's term as leader
// ended, by its own clock (ErrNotLeader) or by the store's fence: not a
// failure, but work for the replica that leads now.
func NotLeader(err error) bool {
	if errors.Is(err, ErrNotLeader) {
		return true
	}
	f, ok := errors.AsType[fenced](err)
	return ok && f.Fenced()
}

// coded is a refusal from Slack that will not change on retry.
type coded interface {
	error
	SlackCode() string
}

// SlackCode returns Slack's error code ("channel_not_found", …) when err
// is a refusal that will not change on retry, else "".
func SlackCode(err error) string {
	if c, ok := errors.AsType[coded](err); ok {
		return c.SlackCode()
	}
	return ""
}

// goneCodes are Slack's answers that mean the person cannot receive DMs
// from us any more; their schedule stops and their data stays.
var goneCodes = map[string]bool{
	"user_not_found":   true,
	"account_inactive": true,
	"cannot_dm_bot":    true,
	"user_disabled":    true,
	"user_is_bot":      true,
}

// brokenTargetCodes are the answers that mean an admin has to act before
// a channel can get its digest.
var brokenTargetCodes = map[string]bool{
	"not_in_channel":    true,
	"channel_not_found": true,
	"is_archived":       true,
}

// notSaved is a store's refusal that left nothing of a change written (a
// full or failing disk): the same change may simply be tried again.
type notSaved interface {
	error
	NotSaved() bool
}

// NotSaved reports whether err means the store refused to write, so
// nothing of the change was saved and the person may try it again.
func NotSaved(err error) bool {
	n, ok := errors.AsType[notSaved](err)
	return ok && n.NotSaved()
}
