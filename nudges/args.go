package nudges

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalidInput marks a command argument nudgebot could not read. The
// error's text is written for the person who typed the argument: it
// quotes what they typed and says what to type instead.
var ErrInvalidInput = errors.New("invalid")

const (
	maxArgLen = 100
	maxTZLen  = 64
	allDays   = Weekdays(1<<7 - 1)
)

// inputErr reads e.g. `invalid time "25:00": the hour must be 0-23; use
// HH:MM, e.g. 08:30`.
func inputErr(what, input, why string) error {
	return fmt.Errorf("%w %s %q: %s", ErrInvalidInput, what, clipArg(input, 40), why)
}

// ParseClock reads a time of day such as "08:30", "8:30", "8am" or
// "5:30pm" and returns it as "HH:MM" on the 24-hour clock.
func ParseClock(s string) (string, error) {
	const use = "use HH:MM, e.g. 08:30"
	fail := func(why string) (string, error) {
		return "", inputErr("time", s, why+"; "+use)
	}
	t := strings.ToLower(strings.TrimSpace(s))
	switch {
	case t == "":
		return fail("it is empty")
	case len(t) > 16:
		return fail("it is too long for a time of day")
	case t == "noon":
		return "12:00", nil
	case t == "midnight":
		return "00:00", nil
	}
	half := byte(0) // 'a' or 'p' when written on the 12-hour clock
	for _, sfx := range []string{"a.m.", "p.m.", "am", "pm"} {
		if rest, ok := strings.CutSuffix(t, sfx); ok {
			half, t = sfx[0], strings.TrimSpace(rest)
			break
		}
	}
	hs, ms, hasMin := strings.Cut(t, ":")
	if !hasMin {
		hs, ms, hasMin = strings.Cut(t, ".")
	}
	if !hasMin {
		if half == 0 {
			if len(t) == 4 && isDigits(t) {
				return fail(fmt.Sprintf("write it with a colon, as %s:%s", t[:2], t[2:]))
			}
			return fail("it needs minutes or am/pm")
		}
		ms = "00"
	}
	if len(hs) < 1 || len(hs) > 2 || !isDigits(hs) {
		return fail("the hour is not a number")
	}
	if len(ms) != 2 || !isDigits(ms) {
		return fail("the minutes must be two digits")
	}
	h := digitsValue(hs)
	m := digitsValue(ms)
	if m > 59 {
		return fail("the minutes must be 00-59")
	}
	switch half {
	case 0:
		if h > 23 {
			return fail("the hour must be 0-23")
		}
	default:
		if h < 1 || h > 12 {
			return fail("with am or pm the hour must be 1-12")
		}
		h %= 12
		if half == 'p' {
			h += 12
		}
	}
	return fmt.Sprintf("%02d:%02d", h, m), nil
}

// parseHHMM reads the canonical "HH:MM" that ParseClock returns.
func parseHHMM(s string) (h, m int, ok bool) {
	if len(s) != 5 || s[2] != ':' || !isDigits(s[:2]) || !isDigits(s[3:]) {
		return 0, 0, false
	}
	h, m = digitsValue(s[:2]), digitsValue(s[3:])
	return h, m, h <= 23 && m <= 59
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// digitsValue converts at most a few ASCII digits, already checked.
func digitsValue(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

var weekdayNames = [7]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

var weekdaySets = map[string]Weekdays{
	"weekdays": 0b0111110, "weekday": 0b0111110, "workdays": 0b0111110,
	"weekends": 0b1000001, "weekend": 0b1000001,
	"daily": allDays, "everyday": allDays, "all": allDays,
}

// lookupDay accepts full names, any prefix of at least three letters
// ("tue", "tues", "thurs"), the plural ("mondays") and two-letter forms.
func lookupDay(w string) (time.Weekday, bool) {
	if w == "weds" {
		return time.Wednesday, true
	}
	for i, name := range weekdayNames {
		switch {
		case len(w) == 2 && name[:2] == w,
			len(w) >= 3 && strings.HasPrefix(name, w),
			w == name+"s":
			return time.Weekday(i), true
		}
	}
	return 0, false
}

// ParseDays reads a set of weekdays: "mon-fri", "mon,wed,fri",
// "weekdays", "weekends", "every day" or "daily", ranges that wrap round
// the weekend ("fri-mon"), full names, any case. It reads back what
// Weekdays.String writes.
func ParseDays(s string) (Weekdays, error) {
	fail := func(why string) (Weekdays, error) {
		return 0, inputErr("days", s, why+"; use day names or ranges, e.g. mon-fri or mon,wed,fri")
	}
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return fail("it is empty")
	}
	if len(t) > maxArgLen {
		return fail("it is too long")
	}
	var b strings.Builder
	for _, r := range t {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r)
		case r == '-' || r == '–' || r == '—':
			b.WriteString(" - ")
		case r == ',' || r == ';' || r == '&' || r == '+' || r == '/' || r == ' ' || r == '\t':
			b.WriteByte(' ')
		default:
			return fail(fmt.Sprintf("%q is not part of a day name", r))
		}
	}
	words := strings.Fields(b.String())

	var (
		set       Weekdays
		afterWord = false // "every" was the previous word
	)
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch w {
		case "and":
			continue
		case "every":
			afterWord = true
			continue
		case "day", "days":
			if !afterWord {
				return fail(fmt.Sprintf("%q on its own is not a day", w))
			}
			set |= allDays
			afterWord = false
			continue
		case "-", "to", "through", "thru", "till", "until":
			return fail("a range needs a day on both sides")
		}
		afterWord = false
		if ds, ok := weekdaySets[w]; ok {
			set |= ds
			continue
		}
		from, ok := lookupDay(w)
		if !ok {
			return fail(fmt.Sprintf("%q is not a day", clipArg(w, 20)))
		}
		if i+1 < len(words) && isRangeWord(words[i+1]) {
			if i+2 >= len(words) {
				return fail("a range needs a day on both sides")
			}
			to, ok := lookupDay(words[i+2])
			if !ok {
				return fail(fmt.Sprintf("%q is not a day", clipArg(words[i+2], 20)))
			}
			for d := from; ; d = (d + 1) % 7 {
				set = set.With(d)
				if d == to {
					break
				}
			}
			i += 2
			continue
		}
		set = set.With(from)
	}
	if set == 0 {
		return fail("it names no day")
	}
	return set, nil
}

func isRangeWord(w string) bool {
	switch w {
	case "-", "to", "through", "thru", "till", "until":
		return true
	}
	return false
}

// String names the days Monday first, folding runs of three or more into
// a range: "Mon–Fri", "Mon, Wed, Fri", "Sat, Sun", "every day". The zero
// set, meaning "not set", reads "no days".
func (w Weekdays) String() string {
	w &= allDays
	switch w {
	case 0:
		return "no days"
	case allDays:
		return "every day"
	}
	order := [7]time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}
	short := func(d time.Weekday) string { return d.String()[:3] }
	var parts []string
	for i := 0; i < 7; {
		if !w.Has(order[i]) {
			i++
			continue
		}
		j := i
		for j+1 < 7 && w.Has(order[j+1]) {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, short(order[i])+"–"+short(order[j]))
		case j == i+1:
			parts = append(parts, short(order[i]), short(order[j]))
		default:
			parts = append(parts, short(order[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// ParsePause reads how long to pause: "3d", "1w", "2w", "12h" (also
// "3 days", "2 weeks"), or "until 2027-01-04", which resumes at the start
// of that day in loc. Days and weeks are calendar days in loc, so a pause
// across a DST change still ends at the same wall time. Pauses end within
// a year. loc nil means UTC.
func ParsePause(s string, now time.Time, loc *time.Location) (time.Time, error) {
	const forms = "use 3d, 1w, 12h or until 2027-01-04"
	fail := func(why string) (time.Time, error) {
		return time.Time{}, inputErr("pause", s, why+"; "+forms)
	}
	if loc == nil {
		loc = time.UTC
	}
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return fail("it is empty")
	}
	if len(t) > maxArgLen {
		return fail("it is too long")
	}
	local := now.In(loc)
	limit := local.AddDate(1, 0, 0)

	if rest, ok := strings.CutPrefix(t, "until "); ok || (len(t) == 10 && t[4] == '-') {
		if !ok {
			rest = t
		}
		rest = strings.TrimSpace(rest)
		k, valid := parseCivilDate(rest)
		if !valid {
			return fail(fmt.Sprintf("%q is not a date written YYYY-MM-DD", clipArg(rest, 20)))
		}
		end := slotTime(k/10000, time.Month(k/100%100), k%100, 0, 0, loc)
		switch {
		case !end.After(now):
			return fail("that date has already begun")
		case end.After(limit):
			return fail("a pause can last at most a year")
		}
		return end, nil
	}

	t = strings.TrimSpace(strings.TrimPrefix(t, "for "))
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return fail("it does not start with a number")
	}
	if i > 4 {
		return fail("the number is too large")
	}
	n := digitsValue(t[:i])
	if n == 0 {
		return fail("a pause must be at least 1")
	}
	var end time.Time
	switch strings.TrimSpace(t[i:]) {
	case "h", "hr", "hrs", "hour", "hours":
		end = now.Add(time.Duration(n) * time.Hour)
	case "d", "day", "days":
		end = local.AddDate(0, 0, n)
	case "w", "wk", "wks", "week", "weeks":
		end = local.AddDate(0, 0, 7*n)
	case "":
		return fail("the number needs a unit (h, d or w)")
	default:
		return fail(fmt.Sprintf("%q is not a unit; use h, d or w", clipArg(strings.TrimSpace(t[i:]), 20)))
	}
	if end.After(limit) {
		return fail("a pause can last at most a year")
	}
	return end, nil
}

// ParseTZ reads an IANA zone name such as "Europe/Berlin". It refuses ""
// and "Local", which would silently mean the server's zone, and anything
// that looks like a file path. Lower-case names are accepted when their
// capitalised form is a zone ("europe/berlin"). "auto" is the caller's
// business: it means "follow my Slack profile".
func ParseTZ(s string) (*time.Location, error) {
	const use = "use an Area/City name such as Europe/Berlin or America/New_York"
	fail := func(why string) (*time.Location, error) {
		return nil, inputErr("time zone", s, why+"; "+use)
	}
	t := strings.TrimSpace(s)
	switch {
	case t == "":
		return fail("it is empty")
	case len(t) > maxTZLen:
		return fail("it is too long for a zone name")
	case strings.EqualFold(t, "local"):
		return fail(`"Local" would mean the server's zone, not yours`)
	case strings.HasPrefix(t, "/") || strings.Contains(t, "..") || strings.Contains(t, `\`):
		return fail("it looks like a file path")
	}
	for _, r := range t {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '/' || r == '_' || r == '-' || r == '+'
		if !ok {
			return fail(fmt.Sprintf("it contains %q, which no zone name has", r))
		}
	}
	for _, name := range []string{t, titleZone(t), strings.ToUpper(t)} {
		if loc, err := loadZone(name); err == nil {
			return loc, nil
		}
	}
	if strings.ContainsAny(t, "+-0123456789") && !strings.Contains(t, "/") {
		return fail("a UTC offset changes with daylight saving, a zone name does not")
	}
	return fail("it is not a zone nudgebot knows")
}

// titleZone capitalises each word of a zone name: "america/new_york" ->
// "America/New_York".
func titleZone(s string) string {
	b := []byte(strings.ToLower(s))
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		up = c == '/' || c == '_' || c == '-'
	}
	return string(b)
}
