package nudges_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure a bad argument wraps ErrInvalidInput, quotes a bounded part of
// the input and says what to type.
func checkInputErr(t *testing.T, call string, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s error=nil, want one", call)
		return
	}
	if !errors.Is(err, nudges.ErrInvalidInput) {
		t.Errorf("%s error=%v, want it to wrap ErrInvalidInput", call, err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s error=%q, want it to contain %q", call, err, w)
		}
	}
	if len(err.Error()) > 250 {
		t.Errorf("%s error is %d characters, want a short message", call, len(err.Error()))
	}
	if strings.ContainsAny(err.Error(), "\x00\n\r\x1b") {
		t.Errorf("%s error=%q contains a raw control character", call, err)
	}
}

func TestParseClock(t *testing.T) {
	// Ensure the forms people type read as HH:MM.
	t.Run("OK", func(t *testing.T) {
		tests := map[string]string{
			"08:30":     "08:30",
			"8:30":      "08:30",
			" 8:05 ":    "08:05",
			"00:00":     "00:00",
			"23:59":     "23:59",
			"8am":       "08:00",
			"8 AM":      "08:00",
			"12am":      "00:00",
			"12pm":      "12:00",
			"5:30pm":    "17:30",
			"5:30 p.m.": "17:30",
			"11.45am":   "11:45",
			"17.15":     "17:15",
			"noon":      "12:00",
			"Midnight":  "00:00",
		}
		for in, want := range tests {
			got, err := nudges.ParseClock(in)
			if err != nil || got != want {
				t.Errorf("ParseClock(%q)=%q, %v; want %q", in, got, err, want)
			}
		}
	})
	// Ensure anything else is refused with the HH:MM hint.
	t.Run("ErrInvalidInput", func(t *testing.T) {
		tests := map[string]string{
			"":                        "empty",
			"   ":                     "empty",
			"24:00":                   "hour must be 0-23",
			"8:60":                    "minutes must be 00-59",
			"8:5":                     "two digits",
			"0830":                    "08:30",
			"8":                       "minutes or am/pm",
			"13pm":                    "1-12",
			"0am":                     "1-12",
			"8:30:00":                 "two digits",
			"-8:30":                   "not a number",
			"+8:30":                   "not a number",
			"８:３０":                    "not a number",
			"eight":                   "minutes or am/pm",
			"8:30\x00":                "",
			"\x1b[31m8:30":            "",
			strings.Repeat("9", 5000): "too long",
		}
		for in, want := range tests {
			_, err := nudges.ParseClock(in)
			checkInputErr(t, "ParseClock("+clipForLog(in)+")", err, want, "use HH:MM, e.g. 08:30")
		}
	})
}

func FuzzParseClock(f *testing.F) {
	for _, s := range []string{"08:30", "8am", "5:30pm", "12am", "0830", "noon", "24:00", "1:1", "8.30 p.m."} {
		f.Add(s)
	}
	canonical := regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d$`)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := nudges.ParseClock(s)
		if err != nil {
			if !errors.Is(err, nudges.ErrInvalidInput) {
				t.Fatalf("ParseClock(%q) error=%v, want ErrInvalidInput", s, err)
			}
			return
		}
		if !canonical.MatchString(got) {
			t.Fatalf("ParseClock(%q)=%q, want HH:MM", s, got)
		}
		if again, err := nudges.ParseClock(got); err != nil || again != got {
			t.Fatalf("ParseClock(%q)=%q, %v; want it unchanged", got, again, err)
		}
	})
}

func days(ds ...time.Weekday) nudges.Weekdays {
	var w nudges.Weekdays
	for _, d := range ds {
		w = w.With(d)
	}
	return w
}

func TestParseDays(t *testing.T) {
	const (
		sun = time.Sunday
		mon = time.Monday
		tue = time.Tuesday
		wed = time.Wednesday
		thu = time.Thursday
		fri = time.Friday
		sat = time.Saturday
	)
	weekdays := days(mon, tue, wed, thu, fri)
	all := days(sun, mon, tue, wed, thu, fri, sat)
	// Ensure the forms people type read as the right days.
	t.Run("OK", func(t *testing.T) {
		tests := map[string]nudges.Weekdays{
			"mon-fri":                  weekdays,
			"MON-FRI":                  weekdays,
			"Mon–Fri":                  weekdays,
			"monday to friday":         weekdays,
			"mon - fri":                weekdays,
			"weekdays":                 weekdays,
			"every weekday":            weekdays,
			"mon,wed,fri":              days(mon, wed, fri),
			"Mon, Wed, Fri":            days(mon, wed, fri),
			"mon wed and fri":          days(mon, wed, fri),
			"Monday, Wednesday":        days(mon, wed),
			"tues thurs":               days(tue, thu),
			"tu,th":                    days(tue, thu),
			"weds":                     days(wed),
			"mondays":                  days(mon),
			"sat-sun":                  days(sat, sun),
			"weekends":                 days(sat, sun),
			"fri-mon":                  days(fri, sat, sun, mon),
			"sun-sat":                  all,
			"every day":                all,
			"Every  Day":               all,
			"daily":                    all,
			"everyday":                 all,
			"mon-mon":                  days(mon),
			"mon, fri-sun":             days(mon, fri, sat, sun),
			"mon-wed,fri":              days(mon, tue, wed, fri),
			"weekdays, sat":            days(mon, tue, wed, thu, fri, sat),
			"thursday through tuesday": days(thu, fri, sat, sun, mon, tue),
		}
		for in, want := range tests {
			got, err := nudges.ParseDays(in)
			if err != nil || got != want {
				t.Errorf("ParseDays(%q)=%v, %v; want %v", in, got, err, want)
			}
		}
	})
	// Ensure anything else is refused with a hint.
	t.Run("ErrInvalidInput", func(t *testing.T) {
		tests := map[string]string{
			"":                           "empty",
			"funday":                     `"funday" is not a day`,
			"mon,funday":                 `"funday" is not a day`,
			"mo-":                        "both sides",
			"-fri":                       "both sides",
			"mon-weekends":               `"weekends" is not a day`,
			"m":                          `"m" is not a day`,
			"1-5":                        `'1' is not part of a day name`,
			"day":                        "on its own",
			"every":                      "names no day",
			"and":                        "names no day",
			"mon\x00":                    `'\x00'`,
			"mon\nfri":                   `'\n'`,
			strings.Repeat("mon,", 1250): "too long",
			strings.Repeat("x", 5000):    "too long",
			"lundi":                      `"lundi" is not a day`,
			"mon;wed;fri;" + "\u202etue": `'\u202e'`,
		}
		for in, want := range tests {
			_, err := nudges.ParseDays(in)
			checkInputErr(t, "ParseDays("+clipForLog(in)+")", err, want, "e.g. mon-fri")
		}
	})
}

// Ensure String writes what people read and ParseDays reads it back,
// for every one of the 127 non-empty sets.
func TestWeekdaysString(t *testing.T) {
	tests := []struct {
		in   nudges.Weekdays
		want string
	}{
		{days(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday), "Mon–Fri"},
		{days(time.Monday, time.Wednesday, time.Friday), "Mon, Wed, Fri"},
		{days(time.Saturday, time.Sunday), "Sat, Sun"},
		{days(time.Friday, time.Saturday, time.Sunday, time.Monday), "Mon, Fri–Sun"},
		{days(time.Sunday), "Sun"},
		{127, "every day"},
		{0, "no days"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Weekdays(%07b).String()=%q, want %q", uint8(tt.in), got, tt.want)
		}
	}
	for w := nudges.Weekdays(1); w <= 127; w++ {
		back, err := nudges.ParseDays(w.String())
		if err != nil || back != w {
			t.Errorf("ParseDays(%q)=%07b, %v; want %07b", w.String(), uint8(back), err, uint8(w))
		}
	}
}

func FuzzParseDays(f *testing.F) {
	for _, s := range []string{"mon-fri", "fri-mon", "every day", "Mon–Fri", "mon, wed and fri", "weekends", "-", "to to", "every"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := nudges.ParseDays(s)
		if err != nil {
			if !errors.Is(err, nudges.ErrInvalidInput) {
				t.Fatalf("ParseDays(%q) error=%v, want ErrInvalidInput", s, err)
			}
			return
		}
		if w == 0 || w > 127 {
			t.Fatalf("ParseDays(%q)=%07b, want a non-empty set of 7 days", s, uint8(w))
		}
		if back, err := nudges.ParseDays(w.String()); err != nil || back != w {
			t.Fatalf("ParseDays(%q)=%07b, %v; want %07b", w.String(), uint8(back), err, uint8(w))
		}
	})
}

func TestParsePause(t *testing.T) {
	ny := schedZone(t, "America/New_York")
	// Thursday 2026-03-05 09:00 EST; DST starts on Sunday 03-08.
	now := time.Date(2026, 3, 5, 9, 0, 0, 0, ny)
	// Ensure each accepted form ends where the person expects.
	t.Run("OK", func(t *testing.T) {
		tests := []struct {
			in   string
			loc  *time.Location
			want time.Time
		}{
			{"12h", ny, now.Add(12 * time.Hour)},
			{"36 hours", ny, now.Add(36 * time.Hour)},
			{"3d", ny, time.Date(2026, 3, 8, 9, 0, 0, 0, ny)}, // same wall time across the DST change: 71 real hours
			{"3 days", ny, time.Date(2026, 3, 8, 9, 0, 0, 0, ny)},
			{"for 1 day", ny, time.Date(2026, 3, 6, 9, 0, 0, 0, ny)},
			{"1w", ny, time.Date(2026, 3, 12, 9, 0, 0, 0, ny)},
			{"2 weeks", ny, time.Date(2026, 3, 19, 9, 0, 0, 0, ny)},
			{"52w", ny, time.Date(2027, 3, 4, 9, 0, 0, 0, ny)},
			{"365d", ny, time.Date(2027, 3, 5, 9, 0, 0, 0, ny)},
			{"until 2027-01-04", ny, time.Date(2027, 1, 4, 0, 0, 0, 0, ny)},
			{"Until 2026-03-06", ny, time.Date(2026, 3, 6, 0, 0, 0, 0, ny)},
			{"2026-03-06", ny, time.Date(2026, 3, 6, 0, 0, 0, 0, ny)},
			{"until 2026-03-06", nil, time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC)},
		}
		for _, tt := range tests {
			got, err := nudges.ParsePause(tt.in, now, tt.loc)
			if err != nil || !got.Equal(tt.want) {
				t.Errorf("ParsePause(%q)=%v, %v; want %v", tt.in, got, err, tt.want)
			}
		}
		// Midnight did not exist in São Paulo on 2018-11-04: the day began at 01:00.
		sp := schedZone(t, "America/Sao_Paulo")
		got, err := nudges.ParsePause("until 2018-11-04", time.Date(2018, 11, 1, 0, 0, 0, 0, sp), sp)
		if want := time.Date(2018, 11, 4, 1, 0, 0, 0, sp); err != nil || !got.Equal(want) {
			t.Errorf("ParsePause(until 2018-11-04) in São Paulo=%v, %v; want %v", got, err, want)
		}
	})
	// Ensure the rest is refused, naming the accepted forms.
	t.Run("ErrInvalidInput", func(t *testing.T) {
		tests := map[string]string{
			"":                          "empty",
			"soon":                      "does not start with a number",
			"0d":                        "at least 1",
			"3":                         "needs a unit",
			"3 fortnights":              `"fortnights" is not a unit`,
			"3y":                        `"y" is not a unit`,
			"53w":                       "at most a year",
			"367d":                      "at most a year",
			"9000h":                     "at most a year",
			"99999999999999999999d":     "too large",
			"until 2026-03-05":          "already begun",
			"until 2025-01-01":          "already begun",
			"until 2027-03-06":          "at most a year",
			"until 2026-02-30":          "not a date",
			"until next week":           "not a date",
			"-3d":                       "does not start with a number",
			"3d\x00":                    `"d\x00" is not a unit`,
			strings.Repeat("1", 5000):   "too long",
			"until " + "\x1b[2J":        "not a date",
			"until 2026-3-9":            "not a date",
			"until 2026-03-09T00:00:00": "not a date",
		}
		for in, want := range tests {
			_, err := nudges.ParsePause(in, now, ny)
			checkInputErr(t, "ParsePause("+clipForLog(in)+")", err, want, "use 3d, 1w, 12h or until 2027-01-04")
		}
	})
}

func FuzzParsePause(f *testing.F) {
	for _, s := range []string{"3d", "1w", "12h", "until 2027-01-04", "2026-12-01", "0h", "9999w", "for 2 weeks"} {
		f.Add(s, int64(1772719200), "America/New_York")
	}
	f.Fuzz(func(t *testing.T, s string, unix int64, zone string) {
		now := time.Unix(unix%(400*365*86400), 0) // keep now within years Go can format
		loc, err := nudges.ParseTZ(zone)
		if err != nil {
			loc = time.UTC
		}
		end, err := nudges.ParsePause(s, now, loc)
		if err != nil {
			if !errors.Is(err, nudges.ErrInvalidInput) {
				t.Fatalf("ParsePause(%q) error=%v, want ErrInvalidInput", s, err)
			}
			return
		}
		if !end.After(now) || end.After(now.In(loc).AddDate(1, 0, 0)) {
			t.Fatalf("ParsePause(%q, %v)=%v, want within a year after now", s, now, end)
		}
	})
}

func TestParseTZ(t *testing.T) {
	// Ensure zone names, in any case, read as their canonical zone.
	t.Run("OK", func(t *testing.T) {
		tests := map[string]string{
			"Europe/Berlin":                  "Europe/Berlin",
			" America/New_York ":             "America/New_York",
			"america/new_york":               "America/New_York",
			"EUROPE/BERLIN":                  "Europe/Berlin",
			"Australia/Lord_Howe":            "Australia/Lord_Howe",
			"America/Argentina/Buenos_Aires": "America/Argentina/Buenos_Aires",
			"UTC":                            "UTC",
			"utc":                            "UTC",
			"Etc/GMT+5":                      "Etc/GMT+5",
		}
		for in, want := range tests {
			loc, err := nudges.ParseTZ(in)
			if err != nil || loc.String() != want {
				t.Errorf("ParseTZ(%q)=%v, %v; want %s", in, loc, err, want)
			}
		}
	})
	// Ensure the server's zone, paths and unknown names are refused.
	t.Run("ErrInvalidInput", func(t *testing.T) {
		tests := map[string]string{
			"":                        "empty",
			"Local":                   "server's zone",
			"local":                   "server's zone",
			"auto":                    "not a zone nudgebot knows",
			"/etc/localtime":          "file path",
			"../../etc/passwd":        "file path",
			"Europe/../../etc/passwd": "file path",
			`C:\zoneinfo`:             "file path",
			"Mars/Olympus_Mons":       "not a zone nudgebot knows",
			"+02:00":                  `':'`,
			"UTC+2":                   "offset",
			"GMT-5":                   "offset",
			"Europe/Berlin\x00":       `'\x00'`,
			"Europe Berlin":           `' '`,
			strings.Repeat("A", 5000): "too long",
		}
		for in, want := range tests {
			_, err := nudges.ParseTZ(in)
			checkInputErr(t, "ParseTZ("+clipForLog(in)+")", err, want, "Area/City")
		}
	})
}

func FuzzParseTZ(f *testing.F) {
	for _, s := range []string{"Europe/Berlin", "local", "Local", "../x", "/etc/localtime", "america/new_york", "UTC", "auto", "Etc/GMT+5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		loc, err := nudges.ParseTZ(s)
		if err != nil {
			if !errors.Is(err, nudges.ErrInvalidInput) {
				t.Fatalf("ParseTZ(%q) error=%v, want ErrInvalidInput", s, err)
			}
			return
		}
		if loc == time.Local || loc.String() == "Local" {
			t.Fatalf("ParseTZ(%q) returned the server's zone", s)
		}
		back, err := nudges.ParseTZ(loc.String())
		if err != nil || back.String() != loc.String() {
			t.Fatalf("ParseTZ(%q)=%v, %v; want %s", loc.String(), back, err, loc)
		}
	})
}
