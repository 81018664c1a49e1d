package nudges

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on the strategy lines admins set, which strategy and organisation
// nudges quote.
const (
	MaxStrategyLines   = 3
	MaxStrategyLineLen = 200
)

// CheckStrategyLine says what is wrong with one strategy line, or returns
// nil. The message is written for the admin who typed it.
func CheckStrategyLine(line string) error {
	switch n := utf8.RuneCountInString(line); {
	case strings.TrimSpace(line) == "":
		return fmt.Errorf("the line is empty: write one sentence on where the organisation is going")
	case strings.ContainsAny(line, "\r\n"):
		return fmt.Errorf("the line has a line break: keep each line to one sentence on one line")
	case n > MaxStrategyLineLen:
		return fmt.Errorf("the line is %d characters; the limit is %d: keep it to one sentence", n, MaxStrategyLineLen)
	case strings.Contains(line, StrategyPlaceholder):
		return fmt.Errorf("the line contains %s: write the strategy itself", StrategyPlaceholder)
	}
	return nil
}

// StrategyOp is what an admin asked to do with the strategy lines.
type StrategyOp string

const (
	StrategyShow   StrategyOp = "show"
	StrategySet    StrategyOp = "set"    // replace line Index, or add it at the end
	StrategyRemove StrategyOp = "remove" // remove line Index
	StrategyClear  StrategyOp = "clear"  // remove every line
)

// StrategyArgs is a parsed admin strategy command.
type StrategyArgs struct {
	Op    StrategyOp
	Index int // 1-based, for set and remove
	Text  string
}

// StrategyUsage is the line shown with a malformed strategy command.
const StrategyUsage = "strategy, strategy set 1 <line>, strategy add <line>, strategy remove 2, strategy clear"

// ParseStrategyArgs reads what follows "strategy" in the admin command:
// nothing or "show", "set N text", "add text", "remove N", or "clear".
// The error wraps ErrInvalidInput.
func ParseStrategyArgs(s string) (StrategyArgs, error) {
	fail := func(why string) (StrategyArgs, error) {
		return StrategyArgs{}, inputErr("strategy command", s, why+"; use "+StrategyUsage)
	}
	t := strings.TrimSpace(s)
	if utf8.RuneCountInString(t) > MaxStrategyLineLen+20 {
		return fail("it is too long")
	}
	verb, rest, _ := strings.Cut(t, " ")
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(verb) {
	case "", "show", "list":
		if rest != "" {
			return fail("show takes nothing after it")
		}
		return StrategyArgs{Op: StrategyShow}, nil
	case "clear":
		if rest != "" {
			return fail("clear takes nothing after it")
		}
		return StrategyArgs{Op: StrategyClear}, nil
	case "add":
		if err := CheckStrategyLine(rest); err != nil {
			return fail(err.Error())
		}
		return StrategyArgs{Op: StrategySet, Index: 0, Text: rest}, nil
	case "set", "remove", "delete":
		num, text, _ := strings.Cut(rest, " ")
		i, err := strconv.Atoi(num)
		if err != nil || i < 1 || i > MaxStrategyLines {
			return fail(fmt.Sprintf("say which line, 1 to %d", MaxStrategyLines))
		}
		text = strings.TrimSpace(text)
		if strings.ToLower(verb) != "set" {
			if text != "" {
				return fail("remove takes only the line's number")
			}
			return StrategyArgs{Op: StrategyRemove, Index: i}, nil
		}
		if err := CheckStrategyLine(text); err != nil {
			return fail(err.Error())
		}
		return StrategyArgs{Op: StrategySet, Index: i, Text: text}, nil
	}
	return fail(fmt.Sprintf("%q is not a strategy command", clipArg(verb, 20)))
}

// Apply returns lines with a applied. lines is not changed. Setting line
// N where fewer exist adds the text at the end. The error wraps
// ErrInvalidInput.
func (a StrategyArgs) Apply(lines []string) ([]string, error) {
	out := append([]string(nil), lines...)
	switch a.Op {
	case StrategyShow:
		return out, nil
	case StrategyClear:
		return nil, nil
	case StrategyRemove:
		if a.Index < 1 || a.Index > len(out) {
			return nil, fmt.Errorf("%w strategy line %d: there are %d lines", ErrInvalidInput, a.Index, len(out))
		}
		return append(out[:a.Index-1], out[a.Index:]...), nil
	case StrategySet:
		if err := CheckStrategyLine(a.Text); err != nil {
			return nil, fmt.Errorf("%w strategy line: %s", ErrInvalidInput, err)
		}
		if a.Index >= 1 && a.Index <= len(out) {
			out[a.Index-1] = a.Text
			return out, nil
		}
		if len(out) >= MaxStrategyLines {
			return nil, fmt.Errorf("%w strategy line: there are already %d lines: replace one with set N, or remove one first", ErrInvalidInput, MaxStrategyLines)
		}
		return append(out, a.Text), nil
	}
	return nil, fmt.Errorf("%w strategy command %q", ErrInvalidInput, a.Op)
}
