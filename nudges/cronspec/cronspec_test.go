package cronspec_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/nudges/cronspec"
)

func mustSchedule(tb testing.TB, spec string) nudges.Schedule {
	tb.Helper()
	s, err := cronspec.Parse(spec)
	if err != nil {
		tb.Fatalf("Parse(%q): %v", spec, err)
	}
	return s
}

// specNext is the schedule's next slot after `after` for someone in loc
// with no settings of their own: the evaluation every person's schedule
// goes through.
func specNext(s nudges.Schedule, after time.Time, loc *time.Location) time.Time {
	return nudges.Calendar{Default: s, Fallback: loc}.Next(nudges.Subscriber{Subscribed: true}, after)
}

// firingDays returns the days of March 2026 (in UTC) on which s fires.
func firingDays(s nudges.Schedule) []int {
	var days []int
	end := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	for t := specNext(s, time.Date(2026, 2, 28, 23, 59, 0, 0, time.UTC), time.UTC); !t.IsZero() && t.Before(end); t = specNext(s, t, time.UTC) {
		if d := t.Day(); len(days) == 0 || days[len(days)-1] != d {
			days = append(days, d)
		}
	}
	return days
}

// robfigDays is firingDays by robfig/cron's own evaluation, through its
// exported API: in UTC there are no gaps or folds, so the two must agree.
func robfigDays(tb testing.TB, spec string) []int {
	tb.Helper()
	r, err := cron.ParseStandard(spec)
	if err != nil {
		tb.Fatalf("robfig ParseStandard(%q): %v", spec, err)
	}
	var days []int
	end := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	for t := r.Next(time.Date(2026, 2, 28, 23, 59, 0, 0, time.UTC)); !t.IsZero() && t.Before(end); t = r.Next(t) {
		if d := t.Day(); len(days) == 0 || days[len(days)-1] != d {
			days = append(days, d)
		}
	}
	return days
}

// Ensure the day rule: a "*" (or "?", or "*/1") in either day field means
// both day fields must match; two restricted day fields mean either may.
// March 2026 starts on a Sunday; its Mondays are the 2nd, 9th, 16th, 23rd
// and 30th, its Fridays the 6th, 13th, 20th and 27th.
func TestScheduleDayRule(t *testing.T) {
	every := func(from, to, step int) []int {
		var out []int
		for d := from; d <= to; d += step {
			out = append(out, d)
		}
		return out
	}
	mondays := []int{2, 9, 16, 23, 30}
	tests := []struct {
		spec string
		want []int
	}{
		// A star in day-of-month: day-of-week alone decides.
		{"0 9 * * MON", mondays},
		{"0 9 ? * MON", mondays},
		{"0 9 */1 * MON", mondays},
		{"0 9 *,1 * MON", mondays}, // a star anywhere in the list counts
		// A star in day-of-week: day-of-month alone decides.
		{"0 9 1 * *", []int{1}},
		{"0 9 1 * ?", []int{1}},
		{"0 9 1 * */1", []int{1}},
		{"0 9 * * *", every(1, 31, 1)},
		// Both restricted: either may match.
		{"0 9 1 * MON", []int{1, 2, 9, 16, 23, 30}},
		{"0 9 1-31 * MON", every(1, 31, 1)},
		{"0 9 1 * 0-6", every(1, 31, 1)},
		{"0 9 15 * FRI/2", []int{6, 13, 15, 20, 27}}, // FRI/2 is FRI-SAT/2: Fridays only
		// A step above 1 restricts, even from a star.
		{"0 9 */2 * MON", []int{1, 2, 3, 5, 7, 9, 11, 13, 15, 16, 17, 19, 21, 23, 25, 27, 29, 30, 31}},
		{"0 9 10 * */7", []int{1, 8, 10, 15, 22, 29}}, // */7 is Sunday only
		// Shorthands.
		{"@weekly", []int{1, 8, 15, 22, 29}},
		{"@monthly", []int{1}},
		{"@daily", every(1, 31, 1)},
		{"@hourly", every(1, 31, 1)},
		{"@yearly", nil},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got := firingDays(mustSchedule(t, tt.spec))
			if !slices.Equal(got, tt.want) {
				t.Errorf("fires on %v, want %v", got, tt.want)
			}
			if ref := robfigDays(t, tt.spec); !slices.Equal(got, ref) {
				t.Errorf("fires on %v, robfig/cron says %v", got, ref)
			}
		})
	}
}

// stricterThanRobfig are the reasons Parse may refuse a spec
// robfig accepts: it would never fire, or it holds control characters.
var stricterThanRobfig = []string{"never fire", "contains the character"}

// Ensure nudgebot's evaluation on top of robfig's parse agrees with
// robfig's own on random specs: whatever nudgebot accepts, robfig
// accepts and fires at the same instants (in UTC, where neither has gaps
// or folds to treat differently); whatever robfig accepts and nudgebot
// refuses is refused on purpose.
func FuzzScheduleMatchesRobfig(f *testing.F) {
	for _, seed := range []string{
		"0 9 * * MON-FRI", "0 9 1 * MON", "*/15 9-17 1,15 JAN-JUN ?", "0 0 29 2 *", "5/20 */3 ? * */2",
		"0 9 *,1 * MON", "0 9 15 * FRI/2", "1-59/7 0-23/5 2-30/3 jan-dec/4 sun-sat/2", "0 9 ,1 * *",
		"0 9 *-5 * *", "0 +9 * * *", "00009 9 * * *", "0 9 31 2 *", "@weekly", "@yearly", "59 23 31 12 6",
	} {
		f.Add(seed)
	}
	after := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		if strings.Contains(spec, "=") || strings.Contains(spec, "@every") {
			return // zones and intervals are not the field parser's
		}
		ours, err := cronspec.Parse(spec)
		theirs, rerr := cron.ParseStandard(strings.Join(strings.Fields(spec), " "))
		switch {
		case err != nil && rerr != nil:
			return
		case err != nil:
			if !errors.Is(err, nudges.ErrInvalidSchedule) {
				t.Fatalf("Parse(%q) error=%v, want ErrInvalidSchedule", spec, err)
			}
			for _, why := range stricterThanRobfig {
				if strings.Contains(err.Error(), why) {
					return
				}
			}
			t.Fatalf("Parse(%q) refused what robfig accepts: %v", spec, err)
		case rerr != nil:
			t.Fatalf("Parse(%q) accepted what robfig refuses: %v", spec, rerr)
		}
		at := after
		for range 20 {
			got, want := specNext(ours, at, time.UTC), theirs.Next(at)
			if got.IsZero() {
				// Next looks 366 days ahead; robfig looks further.
				if !want.IsZero() && want.Sub(at) <= 366*24*time.Hour {
					t.Fatalf("%q: Next(%v) is none, robfig says %v", spec, at, want)
				}
				return
			}
			if !got.Equal(want) {
				t.Fatalf("%q: Next(%v)=%v, robfig says %v", spec, at, got, want)
			}
			at = got
		}
	})
}

func TestParse(t *testing.T) {
	// Ensure every spec robfig's standard parser accepts reads, in canonical form.
	t.Run("OK", func(t *testing.T) {
		tests := []struct {
			spec, want string
			every      time.Duration
			zone       string
		}{
			{spec: "0 9 * * MON-FRI", want: "0 9 * * MON-FRI"},
			{spec: "  30   8 * *\tmon,wed,fri ", want: "30 8 * * mon,wed,fri"},
			{spec: "*/15 9-17 1,15 JAN-JUN ?", want: "*/15 9-17 1,15 JAN-JUN ?"},
			{spec: "0 0 29 2 *", want: "0 0 29 2 *"},
			{spec: "@daily", want: "@daily"},
			{spec: "@midnight", want: "@midnight"},
			{spec: "@weekly", want: "@weekly"},
			{spec: "@monthly", want: "@monthly"},
			{spec: "@yearly", want: "@yearly"},
			{spec: "@annually", want: "@annually"},
			{spec: "@hourly", want: "@hourly"},
			{spec: "@every 10s", want: "@every 10s", every: 10 * time.Second},
			{spec: "@every  1h30m", want: "@every 1h30m", every: 90 * time.Minute},
			{spec: "@every 1s", want: "@every 1s", every: time.Second},
			{spec: "CRON_TZ=Asia/Tokyo 0 9 * * MON-FRI", want: "CRON_TZ=Asia/Tokyo 0 9 * * MON-FRI", zone: "Asia/Tokyo"},
			{spec: "TZ=Europe/Berlin 0 9 * * *", want: "CRON_TZ=Europe/Berlin 0 9 * * *", zone: "Europe/Berlin"},
			{spec: "CRON_TZ=UTC @daily", want: "CRON_TZ=UTC @daily", zone: "UTC"},
		}
		for _, tt := range tests {
			s, err := cronspec.Parse(tt.spec)
			if err != nil {
				t.Errorf("Parse(%q) error: %v", tt.spec, err)
				continue
			}
			if got := s.String(); got != tt.want {
				t.Errorf("Parse(%q).String()=%q, want %q", tt.spec, got, tt.want)
			}
			if got := s.Interval(); got != tt.every {
				t.Errorf("Parse(%q).Interval()=%v, want %v", tt.spec, got, tt.every)
			}
			gotZone := ""
			if loc := s.Location(); loc != nil {
				gotZone = loc.String()
			}
			if gotZone != tt.zone {
				t.Errorf("Parse(%q).Location()=%q, want %q", tt.spec, gotZone, tt.zone)
			}
			if s.IsZero() {
				t.Errorf("Parse(%q).IsZero()=true, want false", tt.spec)
			}
		}
	})

	// Ensure bad specs fail with ErrInvalidSchedule, quote the spec and say how to fix it.
	t.Run("ErrInvalidSchedule", func(t *testing.T) {
		tests := []struct {
			spec string
			want []string // substrings of the message
		}{
			{"", []string{`""`, "empty", "0 9 * * MON-FRI"}},
			{"   ", []string{"empty"}},
			{"CRON_TZ=Asia/Tokyo", []string{`schedule "CRON_TZ=Asia/Tokyo": the time zone prefix must be followed by five fields, e.g. "CRON_TZ=Asia/Tokyo 0 9 * * MON-FRI"`}},
			{"TZ=Asia/Tokyo ", []string{"followed by five fields"}},
			{"CRON_TZ= 0 9 * * *", []string{"time zone after CRON_TZ= is missing"}},
			{"CRON_TZ=Mars/Olympus 0 9 * * *", []string{`"Mars/Olympus" is not a time zone`, "Area/City"}},
			{"CRON_TZ=Local 0 9 * * *", []string{`"Local" is not a time zone`}},
			{"CRON_TZ=../../etc/passwd 0 9 * * *", []string{"not a time zone"}},
			{"cron_tz=Asia/Tokyo 0 9 * * *", []string{"capitals"}},
			{"0 9 * *", []string{"4 field(s)", "give five"}},
			{"0 0 9 * * MON", []string{"six fields", "no seconds"}},
			{"0 25 * * *", []string{`hour field "25"`, "hours are 0-23"}},
			{"60 9 * * *", []string{`minute field "60"`}},
			{"0 9 0 * *", []string{`day-of-month field "0"`}},
			{"0 9 * 13 *", []string{`month field "13"`}},
			{"0 9 * * FUNDAY", []string{`day-of-week field "FUNDAY"`}},
			{"0 9 * * 7", []string{`day-of-week field "7"`}},
			{"0 9 31 2 *", []string{"never fire"}},
			{"0 9 30,31 2 *", []string{"never fire"}},
			{"@dialy", []string{`unknown shorthand "@dialy"`, "@daily"}},
			{"@every", []string{"unknown shorthand"}},
			{"@daily 9", []string{"stands alone"}},
			{"@every 500ms", []string{"at least 1s"}},
			{"@every 0s", []string{"at least 1s"}},
			{"@every -5m", []string{"at least 1s"}},
			{"@every 1.5s", []string{"whole number of seconds"}},
			{"@every soon", []string{`"soon" is not a duration`}},
			{"0 9 * * MON\x00", []string{`'\x00'`}},
			{"CRON_TZ=Asia/Tokyo TZ=Europe/Berlin 0 9 * *", []string{"first and only once"}},
			{"0 9 * * CRON_TZ=Asia/Tokyo", []string{"first and only once"}},
			{"0 9 * * MÖN", []string{`'Ö'`}},
			{"0\n9 * * *", []string{`'\n'`}},
			{strings.Repeat("*", 5000), []string{"5000 characters"}},
			{strings.Repeat("1 ", 2500), []string{"characters"}},
		}
		for _, tt := range tests {
			_, err := cronspec.Parse(tt.spec)
			if err == nil {
				t.Errorf("Parse(%q) error=nil, want one", tt.spec)
				continue
			}
			if !errors.Is(err, nudges.ErrInvalidSchedule) {
				t.Errorf("Parse(%q) error=%v, want it to wrap ErrInvalidSchedule", tt.spec, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q) error=%q, want it to contain %q", tt.spec, err, w)
				}
			}
			if len(err.Error()) > 400 {
				t.Errorf("Parse(%q) error is %d characters long, want a short message", clipForLog(tt.spec), len(err.Error()))
			}
		}
	})
}

func clipForLog(s string) string {
	if len(s) > 30 {
		return s[:30] + "..."
	}
	return s
}

// Ensure a schedule survives a trip through its canonical text.
func TestScheduleText(t *testing.T) {
	s := mustSchedule(t, "TZ=Asia/Tokyo  0 9 * * 1-5")
	back, err := cronspec.Parse(s.String())
	if err != nil {
		t.Fatalf("Parse(%q): %v", s.String(), err)
	}
	if back.String() != s.String() || back.String() != "CRON_TZ=Asia/Tokyo 0 9 * * 1-5" {
		t.Errorf("round trip=%q, want %q", back.String(), s.String())
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"0 9 * * MON-FRI", "CRON_TZ=Asia/Tokyo", "CRON_TZ=Asia/Tokyo 0 9 * * *", "TZ=", "TZ= ", "@every 10s",
		"@every 1ns", "@hourly", "*/5 * * * *", "0 0 31 2 *", "- - - - -", "1-2-3 * * * *", "*/0 * * * *",
		"0 9 * * 5/0", "CRON_TZ=\t0 9 * * *", "@", "TZ=Local @daily",
	} {
		f.Add(seed)
	}
	after := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := cronspec.Parse(spec)
		if err != nil {
			if !errors.Is(err, nudges.ErrInvalidSchedule) {
				t.Fatalf("Parse(%q) error=%v, want ErrInvalidSchedule", spec, err)
			}
			return
		}
		back, err := cronspec.Parse(s.String())
		if err != nil || back.String() != s.String() {
			t.Fatalf("Parse(%q).String()=%q does not parse back: %q, %v", spec, s.String(), back.String(), err)
		}
		if next := specNext(s, after, time.UTC); !next.IsZero() && !next.After(after) {
			t.Fatalf("Next(%v)=%v for %q, want a later time", after, next, spec)
		}
	})
}
