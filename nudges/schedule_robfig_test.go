package nudges_test

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
