package nudges_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/nudges/cronspec"
)

func schedZone(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func mustSchedule(tb testing.TB, spec string) nudges.Schedule {
	tb.Helper()
	s, err := cronspec.Parse(spec)
	if err != nil {
		tb.Fatalf("Parse(%q): %v", spec, err)
	}
	return s
}

// calendarSub is a subscribed person in zone.
func calendarSub(zone string) nudges.Subscriber {
	return nudges.Subscriber{UserID: "U1", Subscribed: true, ProfileTZ: zone}
}

// nextN returns the n slots after `after`.
func nextN(c nudges.Calendar, sub nudges.Subscriber, after time.Time, n int) []time.Time {
	var out []time.Time
	for range n {
		after = c.Next(sub, after)
		if after.IsZero() {
			break
		}
		out = append(out, after)
	}
	return out
}

// Ensure wall times in DST gaps fire once when the gap ends, ambiguous
// wall times fire once at their first occurrence, and ordinary times fire
// exactly once a day on change days.
func TestCalendarNextDST(t *testing.T) {
	ny := schedZone(t, "America/New_York")
	berlin := schedZone(t, "Europe/Berlin")
	lh := schedZone(t, "Australia/Lord_Howe")
	tokyo := schedZone(t, "Asia/Tokyo")
	tests := []struct {
		name  string
		spec  string
		zone  *time.Location
		after time.Time
		want  []time.Time
	}{
		{
			name: "NewYorkSpringGap", spec: "30 2 * * *", zone: ny,
			after: time.Date(2026, 3, 7, 12, 0, 0, 0, ny),
			want: []time.Time{
				time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC),   // 02:30 does not exist: 03:00 EDT, when the gap ends
				time.Date(2026, 3, 9, 6, 30, 0, 0, time.UTC),  // 02:30 EDT
				time.Date(2026, 3, 10, 6, 30, 0, 0, time.UTC), // 02:30 EDT
			},
		},
		{
			name: "NewYorkFallBackAmbiguous", spec: "30 1 * * *", zone: ny,
			after: time.Date(2026, 10, 31, 12, 0, 0, 0, ny),
			want: []time.Time{
				time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), // 01:30 EDT, the first occurrence
				time.Date(2026, 11, 2, 6, 30, 0, 0, time.UTC), // 01:30 EST the next day; never 01:30 EST on 11-01
			},
		},
		{
			name: "NewYorkNineSpring", spec: "0 9 * * *", zone: ny,
			after: time.Date(2026, 3, 7, 12, 0, 0, 0, ny),
			want: []time.Time{
				time.Date(2026, 3, 8, 13, 0, 0, 0, time.UTC), // 09:00 EDT
				time.Date(2026, 3, 9, 13, 0, 0, 0, time.UTC),
			},
		},
		{
			name: "NewYorkNineAutumn", spec: "0 9 * * *", zone: ny,
			after: time.Date(2026, 10, 31, 12, 0, 0, 0, ny),
			want: []time.Time{
				time.Date(2026, 11, 1, 14, 0, 0, 0, time.UTC), // 09:00 EST
				time.Date(2026, 11, 2, 14, 0, 0, 0, time.UTC),
			},
		},
		{
			name: "BerlinSpringGap", spec: "30 2 * * *", zone: berlin,
			after: time.Date(2026, 3, 28, 12, 0, 0, 0, berlin),
			want: []time.Time{
				time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), // 03:00 CEST, when the gap ends
				time.Date(2026, 3, 30, 0, 30, 0, 0, time.UTC),
			},
		},
		{
			name: "BerlinAutumnAmbiguous", spec: "30 2 * * *", zone: berlin,
			after: time.Date(2026, 10, 24, 12, 0, 0, 0, berlin),
			want: []time.Time{
				time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), // 02:30 CEST
				time.Date(2026, 10, 26, 1, 30, 0, 0, time.UTC), // 02:30 CET
			},
		},
		{
			name: "BerlinNineBothDays", spec: "0 9 * * *", zone: berlin,
			after: time.Date(2026, 3, 28, 10, 0, 0, 0, berlin),
			want: []time.Time{
				time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC), // 09:00 CEST
				time.Date(2026, 3, 30, 7, 0, 0, 0, time.UTC),
			},
		},
		{
			name: "LordHoweHalfHourGap", spec: "15 2 * * *", zone: lh,
			after: time.Date(2026, 10, 3, 12, 0, 0, 0, lh),
			want: []time.Time{
				time.Date(2026, 10, 4, 2, 30, 0, 0, lh).UTC(), // +11, when the 30-minute gap ends
				time.Date(2026, 10, 5, 2, 15, 0, 0, lh).UTC(),
			},
		},
		{
			name: "LordHoweHalfHourAmbiguous", spec: "45 1 * * *", zone: lh,
			after: time.Date(2026, 4, 4, 12, 0, 0, 0, lh),
			want: []time.Time{
				time.Date(2026, 4, 4, 14, 45, 0, 0, time.UTC), // 01:45 +11
				time.Date(2026, 4, 5, 15, 15, 0, 0, time.UTC), // 01:45 +10:30 the next day
			},
		},
		{
			name: "TokyoNoDST", spec: "0 9 * * MON-FRI", zone: tokyo,
			after: time.Date(2026, 3, 6, 9, 0, 0, 0, tokyo), // a Friday, exactly at the slot
			want: []time.Time{
				time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC), // Monday 09:00 JST
				time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := nudges.Calendar{Default: mustSchedule(t, tt.spec)}
			got := nextN(c, calendarSub(tt.zone.String()), tt.after, len(tt.want))
			if !slices.EqualFunc(got, tt.want, time.Time.Equal) {
				t.Errorf("slots=%v, want %v", utcAll(got), utcAll(tt.want))
			}
		})
	}
}

func utcAll(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.UTC().Format(time.RFC3339)
	}
	return out
}

// refSlots is an independent model of the firing rule: scanning minute by
// minute, an instant fires when the wall clock first reaches a wall time
// robfig's own parser says matches the spec. It knows nothing of gaps or
// folds; they fall out of "first reaches".
func refSlots(tb testing.TB, spec string, loc *time.Location, from, to time.Time) []time.Time {
	tb.Helper()
	rs, err := cron.ParseStandard(spec)
	if err != nil {
		tb.Fatalf("robfig ParseStandard(%q): %v", spec, err)
	}
	wall := func(t time.Time) time.Time {
		l := t.In(loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), 0, 0, time.UTC)
	}
	start := from.Add(-6 * time.Hour).Truncate(time.Minute)
	maxWall := wall(start.Add(-time.Minute))
	// robfig in UTC has no DST, so on fake-UTC wall times it is exact.
	// Collect its matches once; the scan below looks them up.
	matching := map[time.Time]bool{}
	for w, end := rs.Next(maxWall.Add(-48*time.Hour)), wall(to).Add(48*time.Hour); !w.IsZero() && w.Before(end); w = rs.Next(w) {
		matching[w] = true
	}
	matches := func(w time.Time) bool { return matching[w] }
	var out []time.Time
	for t := start; !t.After(to); t = t.Add(time.Minute) {
		w := wall(t)
		if !w.After(maxWall) {
			continue
		}
		fire := false
		for v := maxWall.Add(time.Minute); !v.After(w); v = v.Add(time.Minute) {
			if matches(v) {
				fire = true
				break
			}
		}
		maxWall = w
		if fire && t.After(from) {
			out = append(out, t)
		}
	}
	return out
}

// Ensure Next agrees with the reference model around every DST change in
// zones with one-hour, half-hour, midnight and no transitions, and that
// Plan's counting agrees with stepping Next.
func TestCalendarNextMatchesReference(t *testing.T) {
	zones := []struct {
		name string
		year int
	}{
		{"America/New_York", 2026},
		{"Europe/Berlin", 2026},
		{"Australia/Lord_Howe", 2026},
		{"America/Sao_Paulo", 2018}, // changed at midnight; fell back across it
		{"Asia/Tokyo", 2026},
		{"Asia/Kathmandu", 2026},
	}
	specs := []string{"30 2 * * *", "0 9 * * *", "0,30 0-3 * * *", "*/7 1-2 * * *", "59 23 * * *", "0 0 * * *", "15 1 1,4 * SUN", "*/20 * * * *"}
	if testing.Short() {
		specs = specs[:3]
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, z := range zones {
		loc := schedZone(t, z.name)
		// Transition instants in the year; a zone without any is probed mid-year.
		var marks []time.Time
		x := time.Date(z.year, 1, 1, 0, 0, 0, 0, loc)
		for range 2 {
			_, end := x.ZoneBounds()
			if end.IsZero() || end.Year() > z.year {
				break
			}
			marks = append(marks, end)
			x = end
		}
		if len(marks) == 0 {
			marks = append(marks, time.Date(z.year, 6, 15, 2, 0, 0, 0, loc))
		}
		for _, spec := range specs {
			c := nudges.Calendar{Default: mustSchedule(t, spec), CatchUp: time.Hour}
			sub := calendarSub(z.name)
			for _, mark := range marks {
				from, to := mark.Add(-30*time.Hour), mark.Add(30*time.Hour)
				refEnd := to.Add(26 * time.Hour)
				ref := refSlots(t, spec, loc, from.Add(-time.Minute), refEnd)
				afters := []time.Time{from, mark.Add(-61 * time.Minute), mark.Add(-time.Minute), mark, mark.Add(29 * time.Minute), mark.Add(90 * time.Minute)}
				for range 8 {
					afters = append(afters, from.Add(time.Duration(rnd.Int64N(int64(60*time.Hour)))))
				}
				for _, after := range afters {
					want := time.Time{}
					for _, r := range ref {
						if r.After(after) {
							want = r
							break
						}
					}
					got := c.Next(sub, after)
					if want.IsZero() && got.After(refEnd) {
						continue // beyond what the reference scanned
					}
					if !got.Equal(want) {
						t.Errorf("%s %q: Next(%v)=%v, want %v", z.name, spec, after.In(loc), got.In(loc), want.In(loc))
					}
				}

				// Plan over the window: one delivery or all missed, counted exactly.
				var due []time.Time
				for _, r := range ref {
					if !r.Before(from) && !r.After(to) {
						due = append(due, r)
					}
				}
				if len(due) == 0 {
					continue
				}
				sub := sub
				sub.NextDue = due[0]
				p := c.Plan(sub, to)
				delivered := 0
				if p.Deliver {
					delivered = 1
					if !p.Slot.Equal(due[len(due)-1]) {
						t.Errorf("%s %q: Plan slot=%v, want %v", z.name, spec, p.Slot, due[len(due)-1])
					}
				}
				if got := p.MissedCount + delivered; got != len(due) {
					t.Errorf("%s %q around %v: MissedCount+delivered=%d, want %d", z.name, spec, mark, got, len(due))
				}
				wantMissed := due[:len(due)-delivered]
				if len(wantMissed) > 31 {
					wantMissed = wantMissed[len(wantMissed)-31:]
				}
				if !slices.EqualFunc(p.Missed, wantMissed, time.Time.Equal) {
					t.Errorf("%s %q: Missed=%v, want %v", z.name, spec, utcAll(p.Missed), utcAll(wantMissed))
				}
			}
		}
	}
}

// Ensure the person's time, days, zone, holidays and pause shape Next.
func TestCalendarNextOverrides(t *testing.T) {
	ny := schedZone(t, "America/New_York")
	berlin := schedZone(t, "Europe/Berlin")
	weekday := mustSchedule(t, "0 9 * * MON-FRI")
	fri := time.Date(2026, 12, 4, 10, 0, 0, 0, berlin) // Friday, after the 09:00 slot
	at := func(y int, m time.Month, d, h, mi int, loc *time.Location) time.Time {
		return time.Date(y, m, d, h, mi, 0, 0, loc)
	}
	tests := []struct {
		name  string
		cal   nudges.Calendar
		sub   nudges.Subscriber
		after time.Time
		want  time.Time
	}{
		{"Default", nudges.Calendar{Default: weekday}, calendarSub("Europe/Berlin"), fri, at(2026, 12, 7, 9, 0, berlin)},
		{"TimeOverride", nudges.Calendar{Default: weekday},
			func() nudges.Subscriber { s := calendarSub("Europe/Berlin"); s.Time = "07:45"; return s }(),
			fri, at(2026, 12, 7, 7, 45, berlin)},
		{"TimeOverrideLaterToday", nudges.Calendar{Default: weekday},
			func() nudges.Subscriber { s := calendarSub("Europe/Berlin"); s.Time = "16:30"; return s }(),
			fri, at(2026, 12, 4, 16, 30, berlin)},
		{"DaysOverrideWeekend", nudges.Calendar{Default: weekday},
			func() nudges.Subscriber {
				s := calendarSub("Europe/Berlin")
				s.Days = 1<<time.Saturday | 1<<time.Sunday
				return s
			}(),
			fri, at(2026, 12, 5, 9, 0, berlin)},
		{"DaysOverrideReplacesDayOfMonth", nudges.Calendar{Default: mustSchedule(t, "0 9 1 * *")},
			func() nudges.Subscriber { s := calendarSub("Europe/Berlin"); s.Days = 1 << time.Wednesday; return s }(),
			fri, at(2026, 12, 9, 9, 0, berlin)},
		{"BadStoredTimeFallsBack", nudges.Calendar{Default: weekday},
			func() nudges.Subscriber { s := calendarSub("Europe/Berlin"); s.Time = "25:99"; return s }(),
			fri, at(2026, 12, 7, 9, 0, berlin)},
		{"OverrideZoneWins", nudges.Calendar{Default: weekday},
			func() nudges.Subscriber {
				s := calendarSub("Europe/Berlin")
				s.TZOverride = "America/New_York"
				return s
			}(),
			fri, at(2026, 12, 4, 9, 0, ny)},
		{"UnknownZoneUsesFallback", nudges.Calendar{Default: weekday, Fallback: ny}, calendarSub("Nowhere/Special"), fri, at(2026, 12, 4, 9, 0, ny)},
		{"LocalZoneIsNotTheServers", nudges.Calendar{Default: weekday}, calendarSub("Local"), fri, at(2026, 12, 7, 9, 0, time.UTC)},
		{"NoZoneNoFallbackIsUTC", nudges.Calendar{Default: weekday}, calendarSub(""), fri, at(2026, 12, 7, 9, 0, time.UTC)},
		{"PinnedZoneWins", nudges.Calendar{Default: mustSchedule(t, "CRON_TZ=America/New_York 0 9 * * MON-FRI")}, calendarSub("Europe/Berlin"), fri, at(2026, 12, 4, 9, 0, ny)},
		{"HolidayEverywhere", nudges.Calendar{Default: weekday, Holidays: []nudges.Holiday{{Date: "2026-12-07"}}}, calendarSub("Europe/Berlin"), fri, at(2026, 12, 8, 9, 0, berlin)},
		{"HolidayInOtherZoneIgnored", nudges.Calendar{Default: weekday, Holidays: []nudges.Holiday{{Date: "2026-12-07", TZ: "America/New_York"}}}, calendarSub("Europe/Berlin"), fri, at(2026, 12, 7, 9, 0, berlin)},
		{"HolidayInOwnZone", nudges.Calendar{Default: weekday, Holidays: []nudges.Holiday{{Date: "2026-12-07", TZ: "Europe/Berlin"}, {Date: "2026-12-08", TZ: "Europe/Berlin"}}}, calendarSub("Europe/Berlin"), fri, at(2026, 12, 9, 9, 0, berlin)},
		{"HolidayByLocalDate", nudges.Calendar{Default: weekday, Holidays: []nudges.Holiday{{Date: "2026-12-25"}}},
			calendarSub("Pacific/Kiritimati"), // UTC+14: its 09:00 on the 25th is the 24th in UTC
			time.Date(2026, 12, 24, 12, 0, 0, 0, schedZone(t, "Pacific/Kiritimati")),
			time.Date(2026, 12, 28, 9, 0, 0, 0, schedZone(t, "Pacific/Kiritimati"))},
		{"MalformedHolidayIgnored", nudges.Calendar{Default: weekday, Holidays: []nudges.Holiday{{Date: "7 Dec"}}}, calendarSub("Europe/Berlin"), fri, at(2026, 12, 7, 9, 0, berlin)},
		{"PausedUntilSkips", nudges.Calendar{Default: weekday},
			func() nudges.Subscriber {
				s := calendarSub("Europe/Berlin")
				s.PausedUntil = at(2026, 12, 9, 0, 0, berlin)
				return s
			}(), fri, at(2026, 12, 9, 9, 0, berlin)},
		{"PausedUntilExactSlotFires", nudges.Calendar{Default: weekday},
			func() nudges.Subscriber {
				s := calendarSub("Europe/Berlin")
				s.PausedUntil = at(2026, 12, 9, 9, 0, berlin)
				return s
			}(), fri, at(2026, 12, 9, 9, 0, berlin)},
		{"PausedInThePastIgnored", nudges.Calendar{Default: weekday},
			func() nudges.Subscriber {
				s := calendarSub("Europe/Berlin")
				s.PausedUntil = at(2026, 1, 1, 0, 0, berlin)
				return s
			}(), fri, at(2026, 12, 7, 9, 0, berlin)},
		{"LeapDayOnly", nudges.Calendar{Default: mustSchedule(t, "0 9 29 2 *")}, calendarSub("UTC"), at(2027, 3, 1, 0, 0, time.UTC), at(2028, 2, 29, 9, 0, time.UTC)},
		{"NoneWithinAYear", nudges.Calendar{Default: mustSchedule(t, "0 9 29 2 *")}, calendarSub("UTC"), at(2026, 3, 1, 0, 0, time.UTC), time.Time{}},
		{"ZeroDefault", nudges.Calendar{}, calendarSub("UTC"), fri, time.Time{}},
		{"Hourly", nudges.Calendar{Default: mustSchedule(t, "@hourly")}, calendarSub("Europe/Berlin"), fri.Add(time.Second), at(2026, 12, 4, 11, 0, berlin)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cal.Next(tt.sub, tt.after); !got.Equal(tt.want) {
				t.Errorf("Next=%v, want %v", got, tt.want)
			}
		})
	}
}

// Ensure "@every D" slots are multiples of D since the epoch and honour
// only PausedUntil.
func TestCalendarNextEvery(t *testing.T) {
	c := nudges.Calendar{
		Default:  mustSchedule(t, "@every 10s"),
		Holidays: []nudges.Holiday{{Date: "2026-12-04"}},
	}
	sub := calendarSub("Europe/Berlin")
	sub.Days = 1 << time.Sunday // ignored for @every
	sub.Time = "07:00"          // ignored for @every
	after := time.Date(2026, 12, 4, 10, 0, 3, 500, time.UTC)
	tests := []struct {
		name   string
		paused time.Time
		after  time.Time
		want   time.Time
	}{
		{"NextMultiple", time.Time{}, after, time.Date(2026, 12, 4, 10, 0, 10, 0, time.UTC)},
		{"ExactlyOnSlot", time.Time{}, time.Date(2026, 12, 4, 10, 0, 10, 0, time.UTC), time.Date(2026, 12, 4, 10, 0, 20, 0, time.UTC)},
		{"Paused", time.Date(2026, 12, 4, 10, 5, 1, 0, time.UTC), after, time.Date(2026, 12, 4, 10, 5, 10, 0, time.UTC)},
		{"PausedOnSlot", time.Date(2026, 12, 4, 10, 5, 0, 0, time.UTC), after, time.Date(2026, 12, 4, 10, 5, 0, 0, time.UTC)},
		{"BeforeEpoch", time.Time{}, time.Date(1969, 12, 31, 23, 59, 55, 0, time.UTC), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sub
			s.PausedUntil = tt.paused
			if got := c.Next(s, tt.after); !got.Equal(tt.want) {
				t.Errorf("Next=%v, want %v", got, tt.want)
			}
		})
	}
}

// Ensure a tick delivers at most one slot, never a slot already
// delivered, and records the rest as missed.
func TestCalendarPlan(t *testing.T) {
	berlin := schedZone(t, "Europe/Berlin")
	at := func(d, h, m int) time.Time { return time.Date(2026, 12, d, h, m, 0, 0, berlin) } // Dec 2026: 7th is a Monday
	weekday := nudges.Calendar{Default: mustSchedule(t, "0 9 * * MON-FRI")}
	base := calendarSub("Europe/Berlin")
	with := func(f func(*nudges.Subscriber)) nudges.Subscriber { s := base; f(&s); return s }

	tests := []struct {
		name string
		cal  nudges.Calendar
		sub  nudges.Subscriber
		now  time.Time
		want nudges.Plan
	}{
		{
			name: "OnTime", cal: weekday,
			sub:  with(func(s *nudges.Subscriber) { s.NextDue = at(7, 9, 0) }),
			now:  at(7, 9, 0),
			want: nudges.Plan{Deliver: true, Slot: at(7, 9, 0), LastSlot: at(7, 9, 0), Next: at(8, 9, 0)},
		},
		{
			name: "LateWithinCatchUp", cal: weekday,
			sub:  with(func(s *nudges.Subscriber) { s.NextDue = at(7, 9, 0) }),
			now:  at(7, 10, 59),
			want: nudges.Plan{Deliver: true, Slot: at(7, 9, 0), LastSlot: at(7, 9, 0), Next: at(8, 9, 0)},
		},
		{
			name: "CatchUpIsExclusive", cal: weekday,
			sub:  with(func(s *nudges.Subscriber) { s.NextDue = at(7, 9, 0) }),
			now:  at(7, 11, 0),
			want: nudges.Plan{Missed: []time.Time{at(7, 9, 0)}, MissedCount: 1, LastSlot: at(7, 9, 0), Next: at(8, 9, 0)},
		},
		{
			name: "CustomCatchUp", cal: nudges.Calendar{Default: weekday.Default, CatchUp: 30 * time.Minute},
			sub:  with(func(s *nudges.Subscriber) { s.NextDue = at(7, 9, 0) }),
			now:  at(7, 9, 45),
			want: nudges.Plan{Missed: []time.Time{at(7, 9, 0)}, MissedCount: 1, LastSlot: at(7, 9, 0), Next: at(8, 9, 0)},
		},
		{
			name: "ResumedFiveDaysLaterOnASlotDay", cal: weekday,
			sub: with(func(s *nudges.Subscriber) { s.NextDue = at(7, 9, 0); s.LastSlot = at(4, 9, 0) }),
			now: at(11, 9, 30),
			want: nudges.Plan{
				Deliver: true, Slot: at(11, 9, 0),
				Missed:      []time.Time{at(7, 9, 0), at(8, 9, 0), at(9, 9, 0), at(10, 9, 0)},
				MissedCount: 4, LastSlot: at(11, 9, 0), Next: at(14, 9, 0),
			},
		},
		{
			name: "ResumedOnAWeekend", cal: weekday,
			sub: with(func(s *nudges.Subscriber) { s.NextDue = at(7, 9, 0) }),
			now: at(12, 10, 0),
			want: nudges.Plan{
				Missed:      []time.Time{at(7, 9, 0), at(8, 9, 0), at(9, 9, 0), at(10, 9, 0), at(11, 9, 0)},
				MissedCount: 5, LastSlot: at(11, 9, 0), Next: at(14, 9, 0),
			},
		},
		{
			name: "HolidayNotCountedAsMissed", cal: nudges.Calendar{Default: weekday.Default, Holidays: []nudges.Holiday{{Date: "2026-12-09"}}},
			sub: with(func(s *nudges.Subscriber) { s.NextDue = at(7, 9, 0) }),
			now: at(11, 9, 30),
			want: nudges.Plan{
				Deliver: true, Slot: at(11, 9, 0),
				Missed:      []time.Time{at(7, 9, 0), at(8, 9, 0), at(10, 9, 0)},
				MissedCount: 3, LastSlot: at(11, 9, 0), Next: at(14, 9, 0),
			},
		},
		{
			name: "AlreadyDeliveredSlotNeverAgain", cal: weekday,
			sub:  with(func(s *nudges.Subscriber) { s.NextDue = at(7, 9, 0); s.LastSlot = at(7, 9, 0) }),
			now:  at(7, 9, 5),
			want: nudges.Plan{LastSlot: at(7, 9, 0), Next: at(8, 9, 0)},
		},
		{
			name: "ClockJumpedBack", cal: weekday,
			sub:  with(func(s *nudges.Subscriber) { s.NextDue = at(8, 9, 0); s.LastSlot = at(7, 9, 0) }),
			now:  at(7, 8, 10), // an hour before the slot just delivered
			want: nudges.Plan{LastSlot: at(7, 9, 0), Next: at(8, 9, 0)},
		},
		{
			name: "StaleNextDueBehindLastSlot", cal: weekday,
			sub:  with(func(s *nudges.Subscriber) { s.NextDue = at(7, 9, 0); s.LastSlot = at(8, 9, 0) }),
			now:  at(8, 9, 30),
			want: nudges.Plan{LastSlot: at(8, 9, 0), Next: at(9, 9, 0)},
		},
		{
			name: "PausedAfterNextDueWasStored", cal: weekday,
			sub:  with(func(s *nudges.Subscriber) { s.NextDue = at(7, 9, 0); s.PausedUntil = at(10, 0, 0) }),
			now:  at(7, 9, 1),
			want: nudges.Plan{Next: at(10, 9, 0)},
		},
		{
			name: "NotScheduledYet", cal: weekday,
			sub:  base,
			now:  at(7, 9, 1),
			want: nudges.Plan{Next: at(8, 9, 0)},
		},
		{
			name: "Unsubscribed", cal: weekday,
			sub:  with(func(s *nudges.Subscriber) { s.NextDue = at(7, 9, 0); s.Subscribed = false }),
			now:  at(7, 9, 1),
			want: nudges.Plan{},
		},
		{
			name: "Inactive", cal: weekday,
			sub:  with(func(s *nudges.Subscriber) { s.NextDue = at(7, 9, 0); s.Inactive = true }),
			now:  at(7, 9, 1),
			want: nudges.Plan{},
		},
		{
			name: "NextDueKeptWhenNotDue", cal: weekday,
			sub:  with(func(s *nudges.Subscriber) { s.NextDue = at(7, 9, 0) }),
			now:  at(7, 8, 59),
			want: nudges.Plan{Next: at(7, 9, 0)},
		},
		{
			name: "NextDueFromOldSettingsStillCounts", cal: weekday,
			sub:  with(func(s *nudges.Subscriber) { s.NextDue = at(5, 7, 0) }), // a Saturday 07:00 from an old override
			now:  at(5, 7, 10),
			want: nudges.Plan{Deliver: true, Slot: at(5, 7, 0), LastSlot: at(5, 7, 0), Next: at(7, 9, 0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cal.Plan(tt.sub, tt.now)
			if !planEqual(got, tt.want) {
				t.Errorf("Plan=%s\nwant %s", planString(got), planString(tt.want))
			}
		})
	}
}

func planEqual(a, b nudges.Plan) bool {
	return a.Deliver == b.Deliver && a.Slot.Equal(b.Slot) && a.MissedCount == b.MissedCount &&
		a.LastSlot.Equal(b.LastSlot) && a.Next.Equal(b.Next) && slices.EqualFunc(a.Missed, b.Missed, time.Time.Equal)
}

func planString(p nudges.Plan) string {
	f := func(t time.Time) string {
		if t.IsZero() {
			return "0"
		}
		return t.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("{Deliver:%v Slot:%s Missed:%v MissedCount:%d LastSlot:%s Next:%s}",
		p.Deliver, f(p.Slot), utcAll(p.Missed), p.MissedCount, f(p.LastSlot), f(p.Next))
}

// Ensure long downtime stays bounded: counts are exact, the list is
// capped, and at most one slot is delivered.
func TestCalendarPlanLongDowntime(t *testing.T) {
	berlin := schedZone(t, "Europe/Berlin")
	tests := []struct {
		name      string
		spec      string
		nextDue   time.Time
		now       time.Time
		holidays  []nudges.Holiday
		deliver   bool
		missed    int
		wantFirst time.Time // first listed missed slot
	}{
		{
			// 3 days of 10-second slots; the latest is 5s old.
			name: "EveryTenSecondsThreeDays", spec: "@every 10s",
			nextDue: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
			now:     time.Date(2026, 12, 4, 0, 0, 5, 0, time.UTC),
			deliver: true, missed: 3 * 8640,
			wantFirst: time.Date(2026, 12, 3, 23, 54, 50, 0, time.UTC),
		},
		{
			// Ten days of minutes in Berlin, across no DST change.
			name: "EveryMinuteTenDays", spec: "* * * * *",
			nextDue: time.Date(2026, 12, 1, 0, 0, 0, 0, berlin),
			now:     time.Date(2026, 12, 11, 0, 0, 30, 0, berlin),
			deliver: true, missed: 10 * 1440,
			wantFirst: time.Date(2026, 12, 10, 23, 29, 0, 0, berlin),
		},
		{
			// A holiday in the middle removes a whole day of minutes.
			name: "EveryMinuteTenDaysWithHoliday", spec: "* * * * *",
			nextDue:  time.Date(2026, 12, 1, 0, 0, 0, 0, berlin),
			now:      time.Date(2026, 12, 11, 0, 0, 30, 0, berlin),
			holidays: []nudges.Holiday{{Date: "2026-12-05"}, {Date: "2026-12-06", TZ: "Asia/Tokyo"}},
			deliver:  true, missed: 9 * 1440,
			wantFirst: time.Date(2026, 12, 10, 23, 29, 0, 0, berlin),
		},
		{
			// Across the spring-forward day 02:00-02:59 is skipped: 23 hours.
			name: "EveryMinuteAcrossSpringForward", spec: "* * * * *",
			nextDue: time.Date(2026, 3, 28, 0, 0, 0, 0, berlin),
			now:     time.Date(2026, 3, 30, 0, 0, 0, 0, berlin),
			deliver: true, missed: 1440 + 1380,
			wantFirst: time.Date(2026, 3, 29, 23, 29, 0, 0, berlin),
		},
		{
			// Across the fall-back day the repeated hour fires once: still 24 hours of walls.
			name: "EveryMinuteAcrossFallBack", spec: "* * * * *",
			nextDue: time.Date(2026, 10, 24, 0, 0, 0, 0, berlin),
			now:     time.Date(2026, 10, 26, 0, 0, 0, 0, berlin),
			deliver: true, missed: 1440 + 1440,
			wantFirst: time.Date(2026, 10, 25, 23, 29, 0, 0, berlin),
		},
		{
			// 500 days away: only the last 400 are walked; NextDue itself still counts.
			name: "DailyFiveHundredDays", spec: "0 9 * * *",
			nextDue: time.Date(2025, 8, 1, 9, 0, 0, 0, berlin),
			now:     time.Date(2026, 12, 13, 12, 0, 0, 0, berlin),
			deliver: false, missed: 400 + 1,
			wantFirst: time.Date(2026, 11, 13, 9, 0, 0, 0, berlin),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := nudges.Calendar{Default: mustSchedule(t, tt.spec), Holidays: tt.holidays}
			sub := calendarSub("Europe/Berlin")
			sub.NextDue = tt.nextDue
			start := time.Now()
			p := c.Plan(sub, tt.now)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Plan took %v, want it bounded", d)
			}
			if p.Deliver != tt.deliver {
				t.Errorf("Deliver=%v, want %v", p.Deliver, tt.deliver)
			}
			if p.MissedCount != tt.missed {
				t.Errorf("MissedCount=%d, want %d", p.MissedCount, tt.missed)
			}
			if len(p.Missed) != 31 {
				t.Fatalf("len(Missed)=%d, want 31", len(p.Missed))
			}
			if !p.Missed[0].Equal(tt.wantFirst) {
				t.Errorf("Missed[0]=%v, want %v", p.Missed[0], tt.wantFirst)
			}
			if !slices.IsSortedFunc(p.Missed, time.Time.Compare) {
				t.Errorf("Missed not oldest first: %v", utcAll(p.Missed))
			}
			last := p.Missed[len(p.Missed)-1]
			if p.Deliver && !last.Before(p.Slot) {
				t.Errorf("last missed %v not before delivered %v", last, p.Slot)
			}
			if !p.Next.After(tt.now) {
				t.Errorf("Next=%v, want after now %v", p.Next, tt.now)
			}
		})
	}
}

// Ensure Reschedule moves to the new zone without repeating a slot that
// was already delivered.
func TestCalendarReschedule(t *testing.T) {
	berlin := schedZone(t, "Europe/Berlin")
	ny := schedZone(t, "America/New_York")
	tokyo := schedZone(t, "Asia/Tokyo")
	c := nudges.Calendar{Default: mustSchedule(t, "0 9 * * MON-FRI")}
	tests := []struct {
		name     string
		zone     string
		lastSlot time.Time
		now      time.Time
		want     time.Time
	}{
		{"MovedWest", "America/New_York", time.Date(2026, 12, 7, 9, 0, 0, 0, berlin), time.Date(2026, 12, 7, 10, 0, 0, 0, berlin), time.Date(2026, 12, 7, 9, 0, 0, 0, ny)},
		{"MovedEast", "Asia/Tokyo", time.Date(2026, 12, 7, 9, 0, 0, 0, berlin), time.Date(2026, 12, 7, 10, 0, 0, 0, berlin), time.Date(2026, 12, 8, 9, 0, 0, 0, tokyo)},
		// The clock is behind the last slot (restored VM): never at or before the last slot.
		{"ClockBehindLastSlot", "Europe/Berlin", time.Date(2026, 12, 7, 9, 0, 0, 0, berlin), time.Date(2026, 12, 7, 8, 0, 0, 0, berlin), time.Date(2026, 12, 8, 9, 0, 0, 0, berlin)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := calendarSub("Europe/Berlin")
			sub.TZOverride = tt.zone
			sub.LastSlot = tt.lastSlot
			if got := c.Reschedule(sub, tt.now); !got.Equal(tt.want) {
				t.Errorf("Reschedule=%v, want %v", got, tt.want)
			}
		})
	}
}

// Ensure Validate names the bad config value.
func TestCalendarValidate(t *testing.T) {
	ok := mustSchedule(t, "0 9 * * MON-FRI")
	tests := []struct {
		name string
		cal  nudges.Calendar
		want string // "" means valid
	}{
		{"OK", nudges.Calendar{Default: ok, Holidays: []nudges.Holiday{{Date: "2026-12-25"}, {Date: "2027-01-01", TZ: "Europe/Berlin"}}}, ""},
		{"ErrNoDefault", nudges.Calendar{}, "no default schedule"},
		{"ErrNegativeCatchUp", nudges.Calendar{Default: ok, CatchUp: -time.Minute}, "negative"},
		{"ErrHolidayDate", nudges.Calendar{Default: ok, Holidays: []nudges.Holiday{{Date: "2026-02-30"}}}, `holiday 1 date "2026-02-30"`},
		{"ErrHolidayZone", nudges.Calendar{Default: ok, Holidays: []nudges.Holiday{{Date: "2026-12-25", TZ: "Mars/Base"}}}, "Mars/Base"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cal.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate()=%v, want nil", err)
				}
				return
			}
			if err == nil || !errors.Is(err, nudges.ErrInvalidSchedule) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate()=%v, want ErrInvalidSchedule mentioning %q", err, tt.want)
			}
		})
	}
}

// Ensure the cache returns the same zones as loading them directly and
// refuses what loading refuses.
func TestZoneCache(t *testing.T) {
	var z nudges.ZoneCache
	for range 2 {
		loc, err := z.Load("America/New_York")
		if err != nil || loc.String() != "America/New_York" {
			t.Fatalf("Load=%v, %v; want America/New_York", loc, err)
		}
	}
	for _, bad := range []string{"", "Local", "/etc/localtime", "../zoneinfo/UTC", "Nowhere/Land"} {
		if _, err := z.Load(bad); err == nil {
			t.Errorf("Load(%q) error=nil, want one", bad)
		}
	}
	c := nudges.Calendar{Default: mustSchedule(t, "0 9 * * *"), Zones: &z}
	after := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	want := nudges.Calendar{Default: c.Default}.Next(calendarSub("Asia/Tokyo"), after)
	if got := c.Next(calendarSub("Asia/Tokyo"), after); !got.Equal(want) {
		t.Errorf("Next with cache=%v, want %v", got, want)
	}
}

func ExampleCalendar_Next() {
	sched, err := cronspec.Parse("30 2 * * *")
	if err != nil {
		fmt.Println(err)
		return
	}
	c := nudges.Calendar{Default: sched}
	sub := nudges.Subscriber{UserID: "U1", Subscribed: true, ProfileTZ: "America/New_York"}
	ny, _ := time.LoadLocation("America/New_York")
	after := time.Date(2026, 3, 7, 12, 0, 0, 0, ny)
	for range 2 {
		after = c.Next(sub, after)
		fmt.Println(after.In(ny).Format("Mon 2006-01-02 15:04 MST"))
	}
	// Output:
	// Sun 2026-03-08 03:00 EDT
	// Mon 2026-03-09 02:30 EDT
}

func BenchmarkNext(b *testing.B) {
	c := nudges.Calendar{Default: mustSchedule(b, "0 9 * * MON-FRI"), Zones: &nudges.ZoneCache{}}
	sub := calendarSub("America/New_York")
	after := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC) // Friday after the slot: the walk crosses a weekend
	b.Run("Cached", func(b *testing.B) {
		for b.Loop() {
			c.Next(sub, after)
		}
	})
	b.Run("Uncached", func(b *testing.B) {
		c := c
		c.Zones = nil
		for b.Loop() {
			c.Next(sub, after)
		}
	})
}

func BenchmarkPlan(b *testing.B) {
	ny := schedZone(b, "America/New_York")
	c := nudges.Calendar{Default: mustSchedule(b, "0 9 * * MON-FRI"), Zones: &nudges.ZoneCache{}}
	sub := calendarSub("America/New_York")
	sub.NextDue = time.Date(2026, 12, 7, 9, 0, 0, 0, ny)
	b.Run("OnTime", func(b *testing.B) {
		now := sub.NextDue.Add(30 * time.Second)
		for b.Loop() {
			c.Plan(sub, now)
		}
	})
	b.Run("FiveDaysDown", func(b *testing.B) {
		now := sub.NextDue.AddDate(0, 0, 5)
		for b.Loop() {
			c.Plan(sub, now)
		}
	})
	b.Run("EveryMinuteThirtyDaysDown", func(b *testing.B) {
		c := c
		c.Default = mustSchedule(b, "* * * * *")
		now := sub.NextDue.AddDate(0, 0, 30)
		for b.Loop() {
			c.Plan(sub, now)
		}
	})
}

func clipForLog(s string) string {
	if len(s) > 30 {
		return s[:30] + "..."
	}
	return s
}
