package nudges

import (
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"time"

	// Embedded so zones resolve in containers without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// Schedule is a cron spec in robfig/cron's standard syntax, parsed by
// robfig/cron (package cronspec, kept apart so that what imports nudges,
// the Slack adapter among them, links no cron package). Its evaluation for a person (Calendar) is done here, on
// top of robfig's parsed fields, because robfig has no answer for what a
// person needs: their own time and days in place of the spec's, holidays
// in their calendar, the slots missed while the bot was down (how many,
// and the latest), a wall time in a spring-forward gap fired once when
// the gap ends rather than skipped, and one in a fall-back hour fired
// once rather than twice. The zero Schedule never fires.
type Schedule struct {
	text string // canonical spec, for String

	// Bit i set: value i allowed, as robfig/cron parsed it. domStar and
	// dowStar record a "*" in the day fields, which switches cron's day
	// rule from OR to AND.
	minute, hour, dom, month, dow uint64
	domStar, dowStar              bool

	every time.Duration  // > 0 for "@every D"; the fields above are unused
	loc   *time.Location // CRON_TZ pin; nil means each person's own zone
}

const (
	exampleSpec    = `"0 9 * * MON-FRI"`
	horizonDays    = 366
	catchUpDefault = 2 * time.Hour
	// Plan walks at most this far back; a person away longer has the
	// older slots ignored rather than counted, which keeps a tick bounded.
	planWindowDays = 400
	maxMissedList  = 31
)

// CronFields are a calendar spec's five fields as parsed by robfig/cron
// (package cronspec reads them): bit i set means value i is allowed.
// DomStar and DowStar record a "*" (or "?") in a day field, which
// switches cron's day rule: both day fields must match when either is a
// star, either may when both are restricted.
type CronFields struct {
	Minute, Hour, Dom, Month, Dow uint64
	DomStar, DowStar              bool
}

// ErrNeverFires is why CalendarSchedule refuses fields that match no
// date, such as the 31st of February.
var ErrNeverFires = fmt.Errorf("it can never fire, because none of its months has the day of the month it asks for; pick a day that exists, e.g. \"0 9 28 2 *\"")

// CalendarSchedule is the schedule of parsed fields, in loc (nil: each
// person's own zone); text is its canonical spec.
func CalendarSchedule(text string, f CronFields, loc *time.Location) (Schedule, error) {
	s := Schedule{text: text, loc: loc,
		minute: f.Minute, hour: f.Hour, dom: f.Dom, month: f.Month, dow: f.Dow,
		domStar: f.DomStar, dowStar: f.DowStar}
	if !s.canFire() {
		return Schedule{}, ErrNeverFires
	}
	return s, nil
}

// EverySchedule fires every d, counted from the Unix epoch so that a slot
// stays put across restarts; text is its canonical spec.
func EverySchedule(text string, d time.Duration, loc *time.Location) Schedule {
	return Schedule{text: text, every: d, loc: loc}
}

// canFire catches specs like "0 9 31 2 *" that parse but that
// never match a date. Only the AND rule (a "*" in day-of-week) can do
// that; with the OR rule every week has a matching weekday.
func (s Schedule) canFire() bool {
	if s.domStar || !s.dowStar {
		return true
	}
	maxDay := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	for m := 1; m <= 12; m++ {
		if s.month&(1<<m) == 0 {
			continue
		}
		if s.dom&(uint64(1)<<(maxDay[m]+1)-1) != 0 {
			return true
		}
	}
	return false
}

// String returns the spec in canonical form: single spaces and, when the
// zone is pinned, a CRON_TZ= prefix.
func (s Schedule) String() string { return s.text }

// IsZero reports whether s is the zero Schedule, which never fires.
func (s Schedule) IsZero() bool { return s.text == "" }

// Location returns the zone pinned with CRON_TZ=, or nil when the schedule
// runs in each person's own zone.
func (s Schedule) Location() *time.Location { return s.loc }

// Interval returns D for "@every D" and zero for calendar schedules.
func (s Schedule) Interval() time.Duration { return s.every }

// Holiday is a date on which no scheduled nudge goes out.
type Holiday struct {
	Date string // YYYY-MM-DD, in the person's local calendar
	TZ   string // "" = everywhere; else only people whose zone has this exact name
}

// Calendar decides when each person is due. The zero CatchUp means two
// hours; a nil Fallback means UTC; a nil Zones loads zones on every call.
//
// Default is evaluated in each person's zone unless it has a CRON_TZ pin.
// A person's Time replaces the spec's hours and minutes with one time of
// day; their Days replace both day fields (day of month and day of week),
// so a nudge never lands on a day they left out. The month field always
// applies. A pinned zone pins the overrides too; holidays always follow
// the person's own calendar date.
type Calendar struct {
	Default  Schedule
	Holidays []Holiday
	CatchUp  time.Duration  // a slot later than this is recorded missed, not delivered
	Fallback *time.Location // when the person has no usable zone (UTC if nil)

	// Zones caches loaded zones. Loading one costs several microseconds,
	// more than computing a slot, and a tick does it for every due person.
	Zones *ZoneCache
}

// Validate checks the parts of a Calendar that come from config.
func (c Calendar) Validate() error {
	if c.Default.IsZero() {
		return fmt.Errorf("%w: no default schedule; set nudges.schedule, e.g. %s", ErrInvalidSchedule, exampleSpec)
	}
	if c.CatchUp < 0 {
		return fmt.Errorf("%w: catch-up window %v is negative; use a duration such as 2h", ErrInvalidSchedule, c.CatchUp)
	}
	for i, h := range c.Holidays {
		if _, ok := parseCivilDate(h.Date); !ok {
			return fmt.Errorf("%w: holiday %d date %q is not a date; write it as YYYY-MM-DD, e.g. 2026-12-25", ErrInvalidSchedule, i+1, clipArg(h.Date, 40))
		}
		if h.TZ != "" {
			if _, err := ParseTZ(h.TZ); err != nil {
				return fmt.Errorf("%w: holiday %s: %w", ErrInvalidSchedule, h.Date, err)
			}
		}
	}
	return nil
}

// Next returns the person's first slot strictly after `after`, or zero if
// none falls within 366 days of the later of `after` and PausedUntil. It
// honours the person's Time and Days overrides, their zone, holidays (by
// their local date) and PausedUntil (no slot before it). "@every D"
// schedules ignore overrides and holidays and honour only PausedUntil.
//
// A wall time that a spring-forward gap skips fires once, when the gap
// ends; an ambiguous fall-back wall time fires once, at its first
// occurrence.
func (c Calendar) Next(sub Subscriber, after time.Time) time.Time {
	r := c.personRule(sub)
	if r.sched.IsZero() {
		return time.Time{}
	}
	return r.next(after)
}

// Reschedule returns the NextDue to store after the person's zone or
// settings change. Starting from LastSlot as well as now keeps a slot
// already delivered from coming round again when the zone moves west.
func (c Calendar) Reschedule(sub Subscriber, now time.Time) time.Time {
	return c.Next(sub, laterTime(now, sub.LastSlot))
}

// Plan is what one tick does for one person.
type Plan struct {
	Deliver     bool        // one delivery for Slot
	Slot        time.Time   // the slot to deliver: the latest one due, if within catch-up
	Missed      []time.Time // slots that passed beyond catch-up, oldest first; at most the latest 31
	MissedCount int         // every missed slot, including those not listed
	LastSlot    time.Time   // the LastSlot to store: the latest slot delivered or missed
	Next        time.Time   // the NextDue to store after this tick
}

// Plan decides what a tick at now does for a person. The slots due are
// NextDue itself and every later slot up to now, skipping any at or
// before LastSlot so nothing is delivered twice. Only the latest is
// delivered, and only if it is less than CatchUp old: a bot that was down
// for days sends one nudge, not a burst. Slots more than 400 days old are
// neither delivered nor counted.
//
// People who are unsubscribed or inactive get an empty Plan (Next zero),
// so a stale NextDue cannot wake them. A zero NextDue is treated as "not
// scheduled yet" and gets a fresh Next without a delivery.
func (c Calendar) Plan(sub Subscriber, now time.Time) Plan {
	if !sub.Subscribed || sub.Inactive {
		return Plan{}
	}
	if sub.NextDue.IsZero() {
		return Plan{LastSlot: sub.LastSlot, Next: c.Reschedule(sub, now)}
	}
	if sub.NextDue.After(now) {
		return Plan{LastSlot: sub.LastSlot, Next: sub.NextDue}
	}
	r := c.personRule(sub)
	plan := Plan{LastSlot: sub.LastSlot}

	// NextDue counts as a slot even if today's settings would not produce
	// it: it is what the person was promised when it was computed.
	lo := laterTime(sub.NextDue, sub.LastSlot)
	literal := sub.NextDue.After(sub.LastSlot) && !sub.NextDue.Before(sub.PausedUntil)
	if floor := now.AddDate(0, 0, -planWindowDays); floor.After(lo) {
		lo = floor
	}

	var recent []time.Time // newest first
	count := 0
	if !r.sched.IsZero() {
		count = r.count(lo, now)
		recent = r.recent(lo, now, maxMissedList+1)
	}
	if literal {
		count++
		if len(recent) <= maxMissedList {
			recent = append(recent, sub.NextDue)
		}
	}
	if count == 0 || len(recent) == 0 {
		plan.Next = c.Next(sub, laterTime(now, sub.LastSlot))
		return plan
	}

	catchUp := c.CatchUp
	if catchUp == 0 {
		catchUp = catchUpDefault
	}
	latest := recent[0]
	plan.LastSlot = laterTime(latest, sub.LastSlot)
	missed := recent
	if now.Sub(latest) < catchUp {
		plan.Deliver, plan.Slot = true, latest
		missed = recent[1:]
		count--
	}
	if len(missed) > maxMissedList {
		missed = missed[:maxMissedList]
	}
	plan.MissedCount = count
	if len(missed) > 0 {
		plan.Missed = make([]time.Time, len(missed))
		for i, t := range missed {
			plan.Missed[len(missed)-1-i] = t
		}
	}
	plan.Next = c.Next(sub, laterTime(now, plan.LastSlot))
	return plan
}

// slotRule is one person's effective schedule, resolved once per call.
type slotRule struct {
	sched        Schedule
	minute, hour uint64
	days         Weekdays // override; zero means the spec's day fields
	loc          *time.Location
	person       *time.Location // for holidays, which follow the person's calendar
	holidays     []Holiday
	paused       time.Time
}

func (c Calendar) personRule(sub Subscriber) slotRule {
	person := c.personZone(sub)
	r := slotRule{
		sched:    c.Default,
		minute:   c.Default.minute,
		hour:     c.Default.hour,
		days:     sub.Days & allDays,
		loc:      person,
		person:   person,
		holidays: c.Holidays,
		paused:   sub.PausedUntil,
	}
	if c.Default.loc != nil {
		r.loc = c.Default.loc
	}
	// A stored time that no longer parses falls back to the default
	// rather than silencing the person.
	if h, m, ok := parseHHMM(sub.Time); ok {
		r.hour, r.minute = 1<<h, 1<<m
	}
	return r
}

func (c Calendar) personZone(sub Subscriber) *time.Location {
	for _, name := range [2]string{sub.TZOverride, sub.ProfileTZ} {
		if name == "" {
			continue
		}
		var (
			loc *time.Location
			err error
		)
		if c.Zones != nil {
			loc, err = c.Zones.Load(name)
		} else {
			loc, err = loadZone(name)
		}
		if err == nil {
			return loc
		}
	}
	if c.Fallback != nil {
		return c.Fallback
	}
	return time.UTC
}

// next returns the first slot after `after`, or zero.
func (r *slotRule) next(after time.Time) time.Time {
	lower := after
	if !r.paused.IsZero() {
		if p := r.paused.Add(-time.Nanosecond); p.After(lower) {
			lower = p
		}
	}
	if r.sched.every > 0 {
		k, ok := everyFirst(r.sched.every, lower)
		if !ok {
			return time.Time{}
		}
		t := everyTime(r.sched.every, k)
		if t.Sub(lower) > horizonDays*24*time.Hour {
			return time.Time{}
		}
		return t
	}

	start := lower.In(r.loc)
	y, mo, d := start.Date()
	sh, sm, _ := start.Clock()
	for i := 0; i <= horizonDays; i++ {
		day := time.Date(y, mo, d+i, 0, 0, 0, 0, time.UTC)
		if !r.dayMatches(day) {
			continue
		}
		dy, dm, dd := day.Date()
		for hb := r.hour; hb != 0; hb &= hb - 1 {
			h := bits.TrailingZeros64(hb)
			// Wall times at or before `after`'s own wall time on its date
			// cannot be later instants (slotTime is monotonic in wall time).
			if i == 0 && h < sh {
				continue
			}
			for mb := r.minute; mb != 0; mb &= mb - 1 {
				m := bits.TrailingZeros64(mb)
				if i == 0 && h == sh && m <= sm {
					continue
				}
				t := slotTime(dy, dm, dd, h, m, r.loc)
				if !t.After(lower) || r.isHoliday(t) {
					continue
				}
				return t
			}
		}
	}
	return time.Time{}
}

// count returns the number of slots in (lo, hi].
func (r *slotRule) count(lo, hi time.Time) int {
	lo = r.lowerBound(lo)
	if !hi.After(lo) {
		return 0
	}
	if r.sched.every > 0 {
		first, ok := everyFirst(r.sched.every, lo)
		if !ok {
			return 0
		}
		last := floorDivInt(hi.Unix(), int64(r.sched.every/time.Second))
		if last < first {
			return 0
		}
		return int(last - first + 1)
	}

	n := 0
	var prev time.Time
	// One day either side: fall-backs across midnight can put a date's
	// first instants on the neighbouring date.
	ly, lm, ld := lo.In(r.loc).Date()
	first := time.Date(ly, lm, ld-1, 0, 0, 0, 0, time.UTC)
	hy, hm, hd := hi.In(r.loc).Date()
	end := time.Date(hy, hm, hd+1, 0, 0, 0, 0, time.UTC)
	for day := first; !day.After(end); day = day.AddDate(0, 0, 1) {
		if !r.dayMatches(day) {
			continue
		}
		if m0, ok := r.plainDay(day); ok {
			n += r.countPlain(m0, lo, hi)
			continue
		}
		r.eachSlot(day, func(t time.Time) bool {
			if t.After(lo) && !t.After(hi) && t.After(prev) && !r.isHoliday(t) {
				n++
				prev = t
			}
			return true
		})
	}
	return n
}

// plainDay reports whether day has no zone transition and no holiday
// near it, and returns its first instant. On such a day a wall time is
// an offset from midnight, so slots can be counted without being built:
// that keeps Plan cheap after long downtime with minute-by-minute
// schedules.
func (r *slotRule) plainDay(day time.Time) (time.Time, bool) {
	y, m, d := day.Date()
	m0 := slotTime(y, m, d, 0, 0, r.loc)
	start, end := m0.ZoneBounds()
	// A transition exactly at midnight may have folded the previous
	// day's last wall times onto m0.
	if !start.IsZero() && !start.Before(m0) {
		return time.Time{}, false
	}
	if !end.IsZero() && end.Before(m0.Add(24*time.Hour)) {
		return time.Time{}, false
	}
	if len(r.holidays) > 0 {
		from := civilDateKey(day.AddDate(0, 0, -1))
		to := civilDateKey(day.AddDate(0, 0, 1))
		for _, h := range r.holidays {
			if !r.holidayApplies(h) {
				continue
			}
			if k, ok := parseCivilDate(h.Date); ok && k >= from && k <= to {
				return time.Time{}, false
			}
		}
	}
	return m0, true
}

// countPlain counts a plain day's slots in (lo, hi], whole hours at a
// time where it can.
func (r *slotRule) countPlain(m0, lo, hi time.Time) int {
	perHour := bits.OnesCount64(r.minute)
	n := 0
	for hb := r.hour; hb != 0; hb &= hb - 1 {
		base := m0.Add(time.Duration(bits.TrailingZeros64(hb)) * time.Hour)
		if base.After(lo) && !base.Add(59*time.Minute).After(hi) {
			n += perHour
			continue
		}
		if !base.Add(59*time.Minute).After(lo) || base.After(hi) {
			continue
		}
		for mb := r.minute; mb != 0; mb &= mb - 1 {
			t := base.Add(time.Duration(bits.TrailingZeros64(mb)) * time.Minute)
			if t.After(lo) && !t.After(hi) {
				n++
			}
		}
	}
	return n
}

// recent returns up to n slots in (lo, hi], newest first.
func (r *slotRule) recent(lo, hi time.Time, n int) []time.Time {
	lo = r.lowerBound(lo)
	if !hi.After(lo) {
		return nil
	}
	out := make([]time.Time, 0, n)
	if r.sched.every > 0 {
		first, ok := everyFirst(r.sched.every, lo)
		if !ok {
			return nil
		}
		for k := floorDivInt(hi.Unix(), int64(r.sched.every/time.Second)); k >= first && len(out) < n; k-- {
			out = append(out, everyTime(r.sched.every, k))
		}
		return out
	}

	ly, lm, ld := lo.In(r.loc).Date()
	first := time.Date(ly, lm, ld-1, 0, 0, 0, 0, time.UTC)
	hy, hm, hd := hi.In(r.loc).Date()
	for day := time.Date(hy, hm, hd+1, 0, 0, 0, 0, time.UTC); !day.Before(first) && len(out) < n; day = day.AddDate(0, 0, -1) {
		if !r.dayMatches(day) {
			continue
		}
		r.eachSlotDesc(day, hi, func(t time.Time) bool {
			switch {
			case t.After(hi):
				return true
			case !t.After(lo):
				return false // the rest of the day is earlier still
			case r.isHoliday(t):
				return true
			}
			// Two wall times in one spring-forward gap share an instant.
			if len(out) == 0 || t.Before(out[len(out)-1]) {
				out = append(out, t)
			}
			return len(out) < n
		})
	}
	return out
}

// eachSlot calls fn with the instant of every matching wall time on day,
// earliest first, until fn returns false.
func (r *slotRule) eachSlot(day time.Time, fn func(time.Time) bool) {
	y, m, d := day.Date()
	for hb := r.hour; hb != 0; hb &= hb - 1 {
		h := bits.TrailingZeros64(hb)
		for mb := r.minute; mb != 0; mb &= mb - 1 {
			if !fn(slotTime(y, m, d, h, bits.TrailingZeros64(mb), r.loc)) {
				return
			}
		}
	}
}

// eachSlotDesc is eachSlot latest first, skipping hours whose first
// minute already lies after hi. slotTime is monotonic in the wall time,
// so the instants come out non-increasing and the skip is safe.
func (r *slotRule) eachSlotDesc(day, hi time.Time, fn func(time.Time) bool) {
	y, m, d := day.Date()
	for hb := r.hour; hb != 0; {
		h := 63 - bits.LeadingZeros64(hb)
		hb &^= 1 << h
		if slotTime(y, m, d, h, 0, r.loc).After(hi) {
			continue
		}
		for mb := r.minute; mb != 0; {
			mi := 63 - bits.LeadingZeros64(mb)
			mb &^= 1 << mi
			if !fn(slotTime(y, m, d, h, mi, r.loc)) {
				return
			}
		}
	}
}

// lowerBound folds PausedUntil into an exclusive lower bound.
func (r *slotRule) lowerBound(lo time.Time) time.Time {
	if !r.paused.IsZero() {
		if p := r.paused.Add(-time.Nanosecond); p.After(lo) {
			return p
		}
	}
	return lo
}

// dayMatches applies the month field and either the person's days or
// cron's day rule (see Schedule): both day fields must match if either
// is "*", otherwise either one may.
func (r *slotRule) dayMatches(day time.Time) bool {
	_, m, d := day.Date()
	wd := day.Weekday()
	s := &r.sched
	if s.month&(1<<uint(m)) == 0 {
		return false
	}
	if r.days != 0 {
		return r.days.Has(wd)
	}
	domMatch := s.dom&(1<<uint(d)) != 0 || s.domStar
	dowMatch := s.dow&(1<<uint(wd)) != 0 || s.dowStar
	if s.domStar || s.dowStar {
		return domMatch && dowMatch
	}
	return domMatch || dowMatch
}

func (r *slotRule) holidayApplies(h Holiday) bool {
	return h.TZ == "" || h.TZ == r.person.String()
}

func (r *slotRule) isHoliday(t time.Time) bool {
	if len(r.holidays) == 0 {
		return false
	}
	k := civilDateKey(t.In(r.person))
	for _, h := range r.holidays {
		if r.holidayApplies(h) {
			if hk, ok := parseCivilDate(h.Date); ok && hk == k {
				return true
			}
		}
	}
	return false
}

// slotTime returns the first instant at which the wall clock in loc reads
// y-m-d h:mi or later. For an ordinary wall time that is the wall time
// itself; in a fall-back hour it is the first of the two occurrences; in
// a spring-forward gap it is the instant the gap ends. Being monotonic in
// the wall time is what lets the day walk stop at the first match.
func slotTime(y int, mo time.Month, d, h, mi int, loc *time.Location) time.Time {
	want := time.Date(y, mo, d, h, mi, 0, 0, time.UTC).Unix()
	t := time.Date(y, mo, d, h, mi, 0, 0, loc)
	_, off := t.Zone()
	got := t.Unix() + int64(off)
	if got == want {
		// time.Date may pick either occurrence of an ambiguous time.
		for range 2 {
			start, _ := t.ZoneBounds()
			if start.IsZero() || t.Sub(start) > 26*time.Hour {
				break
			}
			_, prevOff := start.Add(-time.Second).Zone()
			if prevOff <= off {
				break
			}
			earlier := t.Add(-time.Duration(prevOff-off) * time.Second)
			if !earlier.Before(start) {
				break
			}
			t, off = earlier, prevOff
		}
		return t
	}
	start, end := t.ZoneBounds()
	if got > want {
		// t lies after the gap, so the gap ends where t's zone period starts.
		if start.IsZero() {
			return t
		}
		return start
	}
	if end.IsZero() {
		return t
	}
	return end
}

// everyFirst returns the index of the first "@every" slot strictly after
// t. Slots are multiples of the interval since the Unix epoch, so they
// stay put across restarts.
func everyFirst(every time.Duration, t time.Time) (int64, bool) {
	ds := int64(every / time.Second)
	if ds <= 0 {
		return 0, false
	}
	return floorDivInt(t.Unix(), ds) + 1, true
}

func everyTime(every time.Duration, k int64) time.Time {
	return time.Unix(k*int64(every/time.Second), 0).UTC()
}

func floorDivInt(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func laterTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// civilDateKey encodes a date as YYYYMMDD, which orders like the dates.
func civilDateKey(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

// parseCivilDate reads YYYY-MM-DD without allocating; holidays are checked
// on every slot.
func parseCivilDate(s string) (int, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	n := 0
	for i := 0; i < 10; i++ {
		if i == 4 || i == 7 {
			continue
		}
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	m, d := n/100%100, n%100
	if m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, false
	}
	y := n / 10000
	if time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Day() != d {
		return 0, false
	}
	return n, true
}

// ZoneCache remembers time zones loaded by name. It is safe for
// concurrent use; the zero value is ready. Only zones that loaded are
// kept, so the cache cannot grow past the size of the zone database.
type ZoneCache struct {
	m sync.Map // string -> *time.Location
}

// Load returns the zone with the given name, with the same rules as
// ParseTZ.
func (z *ZoneCache) Load(name string) (*time.Location, error) {
	if v, ok := z.m.Load(name); ok {
		return v.(*time.Location), nil
	}
	loc, err := loadZone(name)
	if err != nil {
		return nil, err
	}
	z.m.Store(name, loc)
	return loc, nil
}

// loadZone is time.LoadLocation without its escape hatches: "" and
// "Local" would mean the server's zone, not the person's.
func loadZone(name string) (*time.Location, error) {
	if name == "" || strings.EqualFold(name, "local") || len(name) > maxTZLen ||
		strings.HasPrefix(name, "/") || strings.Contains(name, "..") || strings.ContainsAny(name, "\\\x00") {
		return nil, fmt.Errorf("time zone %q: not an Area/City name", clipArg(name, 40))
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", clipArg(name, 40), err)
	}
	return loc, nil
}

// clip shortens s for error messages, so a 5,000-character input does not
// become a 5,000-character reply.
func clipArg(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// SetNextDue sets the person's next due time after a change to their
// subscription or settings: none while they are unsubscribed or gone.
// One scheduled nudge a day: a new time later today does not bring a
// second nudge on a day that already had one.
func (c Calendar) SetNextDue(s *Subscriber, now time.Time) {
	if !s.Subscribed || s.Inactive {
		s.NextDue = time.Time{}
		return
	}
	after := laterTime(now, s.LastSlot)
	if s.Time != "" && !s.LastSlot.IsZero() {
		loc := s.Location(c.Fallback)
		ly, lm, ld := s.LastSlot.In(loc).Date()
		ny, nm, nd := now.In(loc).Date()
		if ly == ny && lm == nm && ld == nd {
			endOfDay := time.Date(ny, nm, nd+1, 0, 0, 0, 0, loc).Add(-time.Second)
			after = laterTime(after, endOfDay)
		}
	}
	s.NextDue = c.Next(*s, after)
}
