package nudges

import (
	"fmt"
	"strconv"
	"strings"
)

// The five fields of a standard cron spec are parsed here rather than by
// robfig/cron: its parse keeps whether a day field was "*" only in an
// unexported bit of its fields, and the day rule depends on it. The
// grammar is robfig's standard one, so every spec it accepts for nudgebot
// reads the same here (a test compares the two on random specs).

// cronField is one of the five fields: its name and range for messages,
// and the names it accepts besides numbers.
type cronField struct {
	name, rng string
	min, max  int
	names     map[string]int
}

var cronFields = [5]cronField{
	{name: "minute", rng: "minutes are 0-59", min: 0, max: 59},
	{name: "hour", rng: "hours are 0-23", min: 0, max: 23},
	{name: "day-of-month", rng: "days of the month are 1-31", min: 1, max: 31},
	{name: "month", rng: "months are 1-12 or JAN-DEC", min: 1, max: 12, names: map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}},
	{name: "day-of-week", rng: "days of the week are 0-6 or SUN-SAT", min: 0, max: 6, names: map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	}},
}

// Field indexes into cronSpec.bits.
const (
	fieldMinute = iota
	fieldHour
	fieldDom
	fieldMonth
	fieldDow
)

// cronSpec is a parsed calendar spec. Bit i of bits[f] set means value i
// is allowed in field f. star[f] records that the field was "*" or "?"
// (unstepped, or stepped by 1): cron's day rule is "both day fields must
// match" when either day field is a star, and "either may match" when
// both are restricted, so "0 9 1 * MON" fires on the 1st and on Mondays.
type cronSpec struct {
	bits [5]uint64
	star [5]bool
}

// cronDescriptors are robfig's shorthands, each the spec it stands for.
var cronDescriptors = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// parseCronDescriptor reads a shorthand such as @daily.
func parseCronDescriptor(d string) (cronSpec, bool) {
	spec, ok := cronDescriptors[d]
	if !ok {
		return cronSpec{}, false
	}
	s, _, err := parseCronFields(strings.Fields(spec))
	if err != nil {
		panic(fmt.Sprintf("nudges: shorthand %s: %v", d, err)) // a typo in the table above
	}
	return s, true
}

// parseCronFields reads the five fields. On error it also returns the
// index of the field at fault, so the message can name it.
func parseCronFields(fields []string) (cronSpec, int, error) {
	var s cronSpec
	if len(fields) != len(cronFields) {
		return s, 0, fmt.Errorf("%d fields, want %d", len(fields), len(cronFields))
	}
	for i, text := range fields {
		bits, star, err := parseCronField(text, cronFields[i])
		if err != nil {
			return cronSpec{}, i, err
		}
		s.bits[i], s.star[i] = bits, star
	}
	return s, 0, nil
}

// parseCronField reads one field: a comma-separated list of "*", "?", a
// value, or a range "a-b", each optionally followed by "/step"; "a/step"
// means a-max/step. star is true if any item is an unstepped "*" or "?",
// as in robfig.
func parseCronField(text string, f cronField) (bits uint64, star bool, err error) {
	for item := range strings.SplitSeq(text, ",") {
		b, s, err := parseCronItem(item, f)
		if err != nil {
			return 0, false, err
		}
		bits |= b
		star = star || s
	}
	return bits, star, nil
}

func parseCronItem(item string, f cronField) (bits uint64, star bool, err error) {
	if item == "" {
		return 0, false, fmt.Errorf("an empty item in the list")
	}
	rangePart, stepPart, stepped := strings.Cut(item, "/")
	if strings.Contains(stepPart, "/") {
		return 0, false, fmt.Errorf("more than one / in %q", item)
	}
	var lo, hi int
	if rangePart == "*" || rangePart == "?" {
		lo, hi, star = f.min, f.max, true
	} else {
		loText, hiText, isRange := strings.Cut(rangePart, "-")
		if strings.Contains(hiText, "-") {
			return 0, false, fmt.Errorf("more than one - in %q", item)
		}
		if lo, err = cronValue(loText, f); err != nil {
			return 0, false, err
		}
		hi = lo
		switch {
		case isRange:
			if hi, err = cronValue(hiText, f); err != nil {
				return 0, false, err
			}
			if lo > hi {
				return 0, false, fmt.Errorf("the range %s runs backwards", rangePart)
			}
		case stepped:
			hi = f.max // "a/step" is "a-max/step"
		}
	}
	step := 1
	if stepped {
		if stepPart == "" {
			return 0, false, fmt.Errorf("the step after / is missing")
		}
		if step, err = cronNumber(stepPart); err != nil {
			return 0, false, fmt.Errorf("the step %w", err)
		}
		if step < 1 {
			return 0, false, fmt.Errorf("the step must be at least 1")
		}
		if step > 1 {
			star = false
		}
	}
	for v := lo; v <= hi; v += step {
		bits |= 1 << uint(v)
	}
	return bits, star, nil
}

// cronValue reads a number or a name of field f and checks its range.
func cronValue(text string, f cronField) (int, error) {
	if v, ok := f.names[strings.ToLower(text)]; ok {
		return v, nil
	}
	v, err := cronNumber(text)
	if err != nil {
		return 0, err
	}
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%d is outside %d-%d", v, f.min, f.max)
	}
	return v, nil
}

// cronNumber reads a non-negative decimal number of at most four digits,
// plenty for any field or step.
func cronNumber(text string) (int, error) {
	if text == "" {
		return 0, fmt.Errorf("a number is missing")
	}
	for _, r := range text {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%s is not a number or a name", text)
		}
	}
	if len(text) > 4 {
		return 0, fmt.Errorf("%s is not a number in range", text)
	}
	return strconv.Atoi(text)
}
