// Package cronspec reads cron specs (the default nudge schedule, each
// digest's) with robfig/cron's parser into nudges.Schedule, with a
// message for whoever wrote the config that names the field at fault and
// how to fix it.
//
// It is apart from package nudges so that the Slack adapter, which
// imports nudges, links no cron package: robfig/cron belongs to the
// core's scheduler and to whatever reads the config.
package cronspec

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nudgebot/nudgebot/nudges"
)

const (
	maxSpecLen  = 200
	exampleSpec = `"0 9 * * MON-FRI"`
)

// zones loads a CRON_TZ= zone with the rules of a person's zone: an
// Area/City name, never "Local" or a path.
var zones nudges.ZoneCache

// Parse reads a robfig/cron standard spec: five fields, an optional
// "CRON_TZ=Area/City " (or "TZ=") prefix, or a descriptor such as @daily
// or "@every 10s". Every error wraps ErrInvalidSchedule and says how to fix
// the spec, because the text ends up in front of whoever wrote the config.
func Parse(spec string) (nudges.Schedule, error) {
	fail := func(format string, args ...any) (nudges.Schedule, error) {
		return nudges.Schedule{}, fmt.Errorf("%w %q: %s", nudges.ErrInvalidSchedule, clip(spec, 60), fmt.Sprintf(format, args...))
	}
	s := strings.TrimSpace(spec)
	if s == "" {
		return fail("it is empty; give five fields (minute hour day-of-month month day-of-week), e.g. %s", exampleSpec)
	}
	if len(s) > maxSpecLen {
		return fail("it is %d characters long, more than the %d a schedule needs; give five fields, e.g. %s", len(s), maxSpecLen, exampleSpec)
	}
	for _, r := range s {
		if (r < 0x20 && r != '\t') || r >= 0x7f {
			return fail("it contains the character %q; use only letters, digits, spaces and * , - / ? @ =, e.g. %s", r, exampleSpec)
		}
	}

	loc, zoneName, body, why := cutZonePrefix(s)
	if why != "" {
		return fail("%s", why)
	}
	if strings.Contains(body, "=") {
		return fail("the time zone prefix goes first and only once, e.g. \"CRON_TZ=Europe/Berlin 0 9 * * MON-FRI\"")
	}
	// Normalising whitespace means "@every  10s" and tab-separated fields
	// read the same as their single-spaced forms.
	fields := strings.Fields(body)
	body = strings.Join(fields, " ")
	var every time.Duration
	if strings.HasPrefix(body, "@") {
		if d, ok := strings.CutPrefix(body, "@every "); ok {
			dur, err := time.ParseDuration(d)
			switch {
			case err != nil:
				return fail("%q is not a duration; write it like \"@every 10s\", \"@every 5m\" or \"@every 1h30m\"", clip(d, 40))
			case dur < time.Second:
				return fail("the interval must be at least 1s, e.g. \"@every 10s\"")
			case dur%time.Second != 0:
				return fail("the interval must be a whole number of seconds, e.g. \"@every 10s\"")
			}
			every = dur
		} else if len(fields) != 1 {
			return fail("a shorthand stands alone; use one of @yearly, @monthly, @weekly, @daily, @hourly or \"@every 10s\"")
		}
	} else if len(fields) != 5 {
		if len(fields) == 6 {
			return fail("it has six fields, but nudgebot schedules have five (minute hour day-of-month month day-of-week) and no seconds, e.g. %s", exampleSpec)
		}
		return fail("it has %d field(s); give five (minute hour day-of-month month day-of-week), e.g. %s", len(fields), exampleSpec)
	}

	text := body
	if zoneName != "" {
		text = "CRON_TZ=" + zoneName + " " + body
	}
	if every > 0 {
		return nudges.EverySchedule(text, every, loc), nil
	}
	parsed, err := parseCalendar(body, fields)
	if err != nil {
		return fail("%v", err)
	}
	sched, err := nudges.CalendarSchedule(text, nudges.CronFields{
		Minute: parsed.Minute &^ starBit, Hour: parsed.Hour &^ starBit,
		Dom: parsed.Dom &^ starBit, Month: parsed.Month &^ starBit, Dow: parsed.Dow &^ starBit,
		DomStar: parsed.Dom&starBit != 0, DowStar: parsed.Dow&starBit != 0,
	}, loc)
	if err != nil {
		return fail("%v", err)
	}
	return sched, nil
}

// cutZonePrefix splits a "CRON_TZ=Area/City " (or "TZ=") prefix off s,
// which has no surrounding space. why says what is wrong with a
// malformed prefix; without a prefix body is s.
func cutZonePrefix(s string) (loc *time.Location, zoneName, body, why string) {
	lower := strings.ToLower(s)
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		if !strings.HasPrefix(lower, strings.ToLower(prefix)) {
			continue
		}
		if !strings.HasPrefix(s, prefix) {
			return nil, "", "", "write the time zone prefix in capitals, e.g. \"CRON_TZ=Europe/Berlin 0 9 * * MON-FRI\""
		}
		rest := s[len(prefix):]
		i := strings.IndexAny(rest, " \t")
		name := rest
		if i >= 0 {
			name = rest[:i]
		}
		if name == "" {
			return nil, "", "", fmt.Sprintf("the time zone after %s is missing, e.g. \"CRON_TZ=Europe/Berlin 0 9 * * MON-FRI\"", prefix)
		}
		if i < 0 || strings.TrimSpace(rest[i:]) == "" {
			return nil, "", "", fmt.Sprintf("the time zone prefix must be followed by five fields, e.g. \"CRON_TZ=%s 0 9 * * MON-FRI\"", clip(name, 40))
		}
		l, err := zones.Load(name)
		if err != nil {
			return nil, "", "", fmt.Sprintf("%q is not a time zone nudgebot knows; use an Area/City name, e.g. \"CRON_TZ=Europe/Berlin 0 9 * * MON-FRI\"", clip(name, 40))
		}
		return l, name, strings.TrimSpace(rest[i:]), ""
	}
	return nil, "", s, ""
}

// specParser is robfig/cron's standard parser: five fields and the
// shorthands. "@every" is read above instead, since nudgebot's intervals
// count from the Unix epoch, so a slot stays put across restarts, where
// robfig's count from whenever the process asked.
var specParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// starBit is where robfig/cron marks a field written as "*" or "?"
// (unstepped): bit 63 of the field's exported bits.
const starBit = uint64(1) << 63

// specFields names the five fields and their ranges, for messages.
var specFields = [5]struct{ name, rng string }{
	{"minute", "minutes are 0-59"},
	{"hour", "hours are 0-23"},
	{"day-of-month", "days of the month are 1-31"},
	{"month", "months are 1-12 or JAN-DEC"},
	{"day-of-week", "days of the week are 0-6 or SUN-SAT"},
}

// parseCalendar reads a shorthand or five fields with robfig/cron's
// parser, with a message that names the field at fault and its range.
func parseCalendar(body string, fields []string) (*cron.SpecSchedule, error) {
	parsed, err := specParser.Parse(body)
	if err == nil {
		if spec, ok := parsed.(*cron.SpecSchedule); ok {
			return spec, nil
		}
		return nil, fmt.Errorf("%q is not a calendar schedule", clip(body, 40)) // cannot happen: @every is read before
	}
	if strings.HasPrefix(body, "@") {
		return nil, fmt.Errorf("unknown shorthand %q; use one of @yearly, @monthly, @weekly, @daily, @hourly or \"@every 10s\"", clip(body, 40))
	}
	// robfig names no field; parsing each alone among stars finds it.
	for i, f := range fields {
		alone := []string{"*", "*", "*", "*", "*"}
		alone[i] = f
		if _, ferr := specParser.Parse(strings.Join(alone, " ")); ferr != nil {
			return nil, fmt.Errorf("the %s field %q is not valid (%s); %s, e.g. %s", specFields[i].name, clip(f, 40), fieldWhy(ferr, f), specFields[i].rng, exampleSpec)
		}
	}
	return nil, fmt.Errorf("%v; give five fields, e.g. %s", err, exampleSpec)
}

// fieldWhy says what robfig/cron found wrong with a field, in words for
// whoever wrote the config: its "failed to parse int" quotes strconv.
func fieldWhy(err error, field string) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "failed to parse int from ") {
		return clip(field, 40) + " is not a number or a name"
	}
	return clip(msg, 80)
}

// clip shortens s for error messages, so a 5,000-character input does
// not become a 5,000-character message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
