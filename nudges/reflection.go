package nudges

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Share says whether a reflection may appear in the team digest, and how.
// The default is not at all: reflections are private unless their author
// chooses otherwise, one reflection at a time.
type Share string

const (
	ShareNone      Share = ""
	ShareNamed     Share = "named"
	ShareAnonymous Share = "anonymous"
)

// MaxReflectionLen bounds a reflection, in characters.
const MaxReflectionLen = 3000

// MaxCommitmentLen bounds the "one thing I will do next" a reflection
// may carry, in characters: one thing, short enough to quote back in a
// nudge.
const MaxCommitmentLen = 300

// ReflectionTextProblem says what is wrong with a reflection's text, in
// words for the person who wrote it, or "" when nothing is; it never
// quotes the text. /reflect, the form and storage all ask it, so the
// limit and its words have one home.
func ReflectionTextProblem(text string) string {
	switch n := utf8.RuneCountInString(text); {
	case strings.TrimSpace(text) == "":
		return "A reflection needs some text: what happened, and what did you notice?"
	case n > MaxReflectionLen:
		return fmt.Sprintf("That is %d characters; a reflection can be at most %d. Shorten it or split it in two.", n, MaxReflectionLen)
	}
	return ""
}

// CommitmentProblem is ReflectionTextProblem for a commitment, which may
// be empty.
func CommitmentProblem(commitment string) string {
	if utf8.RuneCountInString(commitment) > MaxCommitmentLen {
		return fmt.Sprintf("Keep it to one thing, in at most %d characters.", MaxCommitmentLen)
	}
	return ""
}

// MaxReflections is how many reflections one person may keep: enough for
// decades of daily notes, and a bound on what one person can make the
// bot store, search and export.
const MaxReflections = 10_000

// ErrTooManyReflections is returned for a reflection past MaxReflections.
var ErrTooManyReflections = errors.New("too many reflections")

// Reflection is a private note a person wrote, usually about a nudge.
// Text and Commitment are sealed at rest; only the author ever reads them
// unless Share says otherwise.
type Reflection struct {
	UserID     string    `json:"user_id"`
	Seq        int       `json:"seq"` // per person, from 1: the id people type in /reflect delete
	Created    time.Time `json:"created"`
	Text       string    `json:"text"`
	Commitment string    `json:"commitment,omitempty"` // "one thing I will do next"
	DeliveryID string    `json:"delivery_id,omitempty"`
	NudgeID    string    `json:"nudge_id,omitempty"`
	Share      Share     `json:"share,omitempty"`
	// ShareChannel is the one digest channel a shared reflection may
	// appear in; empty means any digest channel its author is in.
	ShareChannel string `json:"share_channel,omitempty"`
	// MessageTS is the Slack message a reflection typed in the DM came
	// from, so editing or deleting that message changes the reflection.
	MessageTS string `json:"message_ts,omitempty"`

	// A commitment is quoted back a few working days later; these record
	// when, and what the person answered.
	FollowUpDue time.Time `json:"follow_up_due,omitzero"`
	FollowedUp  time.Time `json:"followed_up,omitzero"`
	Kept        *bool     `json:"kept,omitempty"`
}
