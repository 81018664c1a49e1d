package nudges_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nudgebot/nudgebot/nudges"
)

// digestFrom is the Monday a test digest's week starts.
var digestFrom = time.Date(2026, time.March, 2, 0, 0, 0, 0, time.UTC)

func users(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("U%02d", i+1)
	}
	return ids
}

// acted is a sent delivery to user on day (0 = Monday) with an outcome.
func acted(user string, day int, theme nudges.Theme, o nudges.Outcome) nudges.Delivery {
	slot := digestFrom.Add(time.Duration(day)*24*time.Hour + 9*time.Hour)
	return nudges.Delivery{
		ID: nudges.DeliveryID(user, slot, false), UserID: user, Theme: theme,
		Slot: slot, State: nudges.StateSent, Outcome: o,
	}
}

func weekInput(members []string, ds ...nudges.Delivery) nudges.DigestInput {
	return nudges.DigestInput{
		Channel: "C1", From: digestFrom, To: digestFrom.AddDate(0, 0, 7),
		Members: members, Deliveries: ds, Now: digestFrom.AddDate(0, 0, 7),
		Threshold: nudges.MinGroup, // these cases probe the rule at its floor
	}
}

func hasNote(d nudges.Digest, word string) bool {
	for _, s := range d.Suppressed {
		if strings.Contains(s, word) {
			return true
		}
	}
	return false
}

// Ensure no count that fewer than three people contributed to is shown.
func TestBuildDigest_MinGroup(t *testing.T) {
	done, strat := nudges.OutcomeDone, nudges.ThemeStrategy
	tests := map[string]struct {
		in nudges.DigestInput
		// wants; -1 means withheld
		received, actedOn, strategy int
		notes                       []string
	}{
		"three acted": {
			in: weekInput(users(5), acted("U01", 0, strat, done), acted("U02", 0, strat, done), acted("U03", 1, strat, nudges.OutcomeReflected), acted("U04", 1, strat, nudges.OutcomeSkipped)),
			// Received (4) minus acted on (3) would be one person's skip.
			received: -1, actedOn: 3, strategy: 3,
			notes: []string{"work out"},
		},
		"three acted, three did not": {
			in: weekInput(users(6), acted("U01", 0, strat, done), acted("U02", 0, strat, done), acted("U03", 1, strat, done),
				acted("U04", 1, strat, ""), acted("U05", 1, strat, ""), acted("U06", 1, strat, "")),
			received: 6, actedOn: 3, strategy: 3,
		},
		"two acted": {
			in:       weekInput(users(5), acted("U01", 0, strat, done), acted("U01", 1, strat, done), acted("U02", 0, strat, done), acted("U03", 1, strat, nudges.OutcomeSkipped)),
			received: 4, actedOn: -1, strategy: -1,
			notes: []string{"acted on", "Strategy"},
		},
		"nobody acted in a big team": {
			in:       weekInput(users(3), acted("U01", 0, strat, ""), acted("U02", 0, strat, ""), acted("U03", 0, strat, "")),
			received: 3, actedOn: 0, strategy: 0,
		},
		"nobody acted in a team of two": {
			in:       weekInput(users(2), acted("U01", 0, strat, ""), acted("U02", 0, strat, "")),
			received: -1, actedOn: -1, strategy: -1,
			notes: []string{"received", "acted on", "Strategy"},
		},
		"non-members do not make up the numbers": {
			in:       weekInput(users(2), acted("U01", 0, strat, done), acted("U02", 0, strat, done), acted("X9", 0, strat, done)),
			received: -1, actedOn: -1, strategy: -1,
		},
		"outside the period does not count": {
			in:       weekInput(users(3), acted("U01", 0, strat, done), acted("U02", 0, strat, done), acted("U03", 7, strat, done), acted("U03", -1, strat, done)),
			received: -1, actedOn: -1, strategy: -1,
		},
		"other themes are not strategy": {
			in:       weekInput(users(3), acted("U01", 0, nudges.ThemeLeading, done), acted("U02", 0, nudges.ThemeLeading, done), acted("U03", 0, strat, done)),
			received: 3, actedOn: 3, strategy: -1,
			notes: []string{"Strategy", "Themes"},
		},
		"missed and failed are not received": {
			in: weekInput(users(3),
				nudges.Delivery{UserID: "U01", Slot: digestFrom.Add(time.Hour), State: nudges.StateMissed},
				nudges.Delivery{UserID: "U02", Slot: digestFrom.Add(time.Hour), State: nudges.StateFailed},
				nudges.Delivery{UserID: "U03", Slot: digestFrom.Add(time.Hour), State: nudges.StatePending},
			),
			received: 0, actedOn: 0, strategy: 0,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			d := nudges.BuildDigest(tt.in)
			check := func(what string, got int, shown bool, want int) {
				t.Helper()
				switch {
				case want < 0 && (shown || got != 0):
					t.Errorf("%s=%d shown=%v, want withheld (0, false)", what, got, shown)
				case want >= 0 && (!shown || got != want):
					t.Errorf("%s=%d shown=%v, want %d shown", what, got, shown, want)
				}
			}
			check("Received", d.Received, d.ReceivedShown, tt.received)
			check("ActedOn", d.ActedOn, d.ActedOnShown, tt.actedOn)
			check("StrategyUpdates", d.StrategyUpdates, d.StrategyShown, tt.strategy)
			for _, n := range tt.notes {
				if !hasNote(d, n) {
					t.Errorf("Suppressed=%q, want a note about %q", d.Suppressed, n)
				}
			}
		})
	}
}

// Ensure only themes at least three people practised are listed, most
// practised first, at most three.
func TestBuildDigest_TopThemes(t *testing.T) {
	done := nudges.OutcomeDone
	var ds []nudges.Delivery
	add := func(theme nudges.Theme, people, each int) {
		for p := range people {
			for i := range each {
				ds = append(ds, acted(fmt.Sprintf("U%02d", p+1), i, theme, done))
			}
		}
	}
	add(nudges.ThemeDiplomat, 2, 5)   // 10 nudges, but only two people
	add(nudges.ThemeLeading, 3, 1)    // 3
	add(nudges.ThemeManaging, 4, 1)   // 4
	add(nudges.ThemeChange, 3, 2)     // 6
	add(nudges.ThemeStrategist, 3, 1) // 3, ties with leading, which comes first in Themes
	add(nudges.ThemeArchitect, 1, 1)  // 1
	d := nudges.BuildDigest(weekInput(users(6), ds...))
	want := []nudges.ThemeCount{{nudges.ThemeChange, 6}, {nudges.ThemeManaging, 4}, {nudges.ThemeLeading, 3}}
	if !reflect.DeepEqual(d.TopThemes, want) {
		t.Errorf("TopThemes=%v, want %v", d.TopThemes, want)
	}
	if !hasNote(d, "Themes fewer than 3") {
		t.Errorf("Suppressed=%q, want a note that small themes are not listed", d.Suppressed)
	}
}

func TestBuildDigest_Streaks(t *testing.T) {
	done := nudges.OutcomeDone
	tests := map[string]struct {
		in   nudges.DigestInput
		want nudges.StreakSummary
	}{
		"from subscribers": {
			in:   nudges.DigestInput{Members: users(5), Streaks: map[string]int{"U01": 3, "U02": 9, "U03": 4, "U04": 2, "X9": 50}},
			want: nudges.StreakSummary{Shown: true, Members: 3},
		},
		"two is too few": {
			in:   nudges.DigestInput{Members: users(5), Streaks: map[string]int{"U01": 3, "U02": 9, "U03": 2, "X9": 50, "X8": 50}},
			want: nudges.StreakSummary{},
		},
		"none in a big team": {
			in:   nudges.DigestInput{Members: users(3), Streaks: map[string]int{"U01": 1}},
			want: nudges.StreakSummary{Shown: true},
		},
		"none in a small team": {
			in:   nudges.DigestInput{Members: users(2), Streaks: map[string]int{}},
			want: nudges.StreakSummary{},
		},
		"from deliveries": {
			in: weekInput(users(4),
				// out of order on purpose: the digest sorts each history
				acted("U01", 2, "", done), acted("U01", 0, "", done), acted("U01", 1, "", done),
				acted("U02", 0, "", done), acted("U02", 1, "", done), acted("U02", 2, "", done), acted("U02", 3, "", done),
				acted("U03", 0, "", nudges.OutcomeSkipped), acted("U03", 1, "", done), acted("U03", 2, "", done), acted("U03", 3, "", done),
				acted("U04", 0, "", done), acted("U04", 1, "", nudges.OutcomeSkipped), acted("U04", 2, "", done),
			),
			want: nudges.StreakSummary{Shown: true, Members: 3},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			tt.in.Threshold = nudges.MinGroup
			if got := nudges.BuildDigest(tt.in).Streaks; got != tt.want {
				t.Errorf("Streaks=%+v, want %+v", got, tt.want)
			}
		})
	}
}

// Ensure shared reflections are quoted raw, as their authors chose, and
// nothing else is.
func TestBuildDigest_SharedReflections(t *testing.T) {
	at := func(h int) time.Time { return digestFrom.Add(time.Duration(h) * time.Hour) }
	raw := "<!channel> & <@U1> said \u202Ehi"
	in := weekInput(users(3))
	in.Nudges = map[string]nudges.Nudge{"lead-001": {ID: "lead-001", Prompt: "Tell one person why today's work matters."}}
	in.Shared = []nudges.Reflection{
		{UserID: "U01", Created: at(30), Text: "second", Share: nudges.ShareNamed},
		{UserID: "U01", Created: at(2), Text: raw, Share: nudges.ShareNamed, NudgeID: "lead-001"},
		{UserID: "U02", Created: at(40), Text: "named", Share: nudges.ShareNamed},
		{UserID: "U03", Created: at(50), Text: "anon", Share: nudges.ShareAnonymous, NudgeID: "gone-001"},
		{UserID: "U03", Created: at(51), Text: "private", Share: nudges.ShareNone},
		{UserID: "X9", Created: at(52), Text: "not a member", Share: nudges.ShareNamed},
		{UserID: "U01", Created: at(-1), Text: "last week", Share: nudges.ShareNamed},
		{UserID: "U01", Created: at(7 * 24), Text: "next week", Share: nudges.ShareNamed},
		{UserID: "U01", Created: at(60), Text: "  \n ", Share: nudges.ShareNamed},
	}
	want := []nudges.SharedLine{
		{AuthorID: "U01", Text: raw, Nudge: "Tell one person why today's work matters."},
		{AuthorID: "U01", Text: "second"},
		{AuthorID: "U02", Text: "named"},
		{AuthorID: "", Text: "anon"},
	}
	if got := nudges.BuildDigest(in).SharedReflections; !reflect.DeepEqual(got, want) {
		t.Errorf("SharedReflections=%+v\nwant %+v", got, want)
	}
}

// Ensure an anonymous reflection appears only when enough people take
// part in the digest for its author to stay anonymous, and is otherwise
// held back (to tell its author), whatever number of people share the
// channel.
func TestBuildDigest_AnonymousNeedsEnoughPeople(t *testing.T) {
	at := digestFrom.Add(time.Hour)
	for _, tt := range []struct {
		members int
		shown   bool
	}{{1, false}, {2, false}, {3, true}, {5, true}} {
		in := weekInput(users(tt.members))
		in.Shared = []nudges.Reflection{
			{UserID: "U01", Seq: 4, Created: at, Text: "anon", Share: nudges.ShareAnonymous},
			{UserID: "U01", Seq: 5, Created: at, Text: "named", Share: nudges.ShareNamed},
		}
		got := nudges.BuildDigest(in).SharedReflections
		anon := slices.ContainsFunc(got, func(l nudges.SharedLine) bool { return l.Text == "anon" })
		named := slices.ContainsFunc(got, func(l nudges.SharedLine) bool { return l.Text == "named" })
		held := nudges.HeldBack(in)
		if anon != tt.shown || !named {
			t.Errorf("%d people: anonymous shown %v, named shown %v; want %v, true", tt.members, anon, named, tt.shown)
		}
		if wantHeld := !tt.shown; (len(held) == 1 && held[0].Seq == 4) != wantHeld || len(held) > 1 {
			t.Errorf("%d people: held back %+v, want the anonymous one held: %v", tt.members, held, wantHeld)
		}
	}
}

func TestBuildDigest_Pulse(t *testing.T) {
	end := digestFrom.AddDate(0, 0, 7)
	summary := func(counts ...int) nudges.PulseSummary {
		p := nudges.PulseSummary{PeriodEnd: end}
		for score, n := range counts {
			for range n {
				if err := p.Record(score + 1); err != nil {
					t.Fatal(err)
				}
			}
		}
		return p
	}
	var trend []nudges.PulseSummary
	for i := range 14 {
		switch {
		case i == 12:
			trend = append(trend, summary(0, 2)) // too few to show
		case i < 3:
			trend = append(trend, summary(0, 0, 0, 0, 3)) // dropped: older than the sparkline
		default:
			trend = append(trend, summary(3))
		}
	}
	tests := map[string]struct {
		pulse nudges.PulseSummary
		trend []nudges.PulseSummary
		want  nudges.PulseSection
	}{
		"none held": {
			want: nudges.PulseSection{},
		},
		"held, nobody answered": {
			pulse: nudges.PulseSummary{PeriodEnd: end},
			want:  nudges.PulseSection{Held: true, Sparkline: "·"},
		},
		"too few answers": {
			pulse: func() nudges.PulseSummary { p := summary(0, 0, 0, 2); p.HearMore = []string{"hiring"}; return p }(),
			want:  nudges.PulseSection{Held: true, Responses: 2, Sparkline: "·"},
		},
		"enough voters, one writer": {
			pulse: func() nudges.PulseSummary {
				p := summary(0, 0, 1, 1, 1)
				p.HearMore, p.HearMoreWriters = []string{"roadmap", "hiring"}, 1
				return p
			}(),
			trend: trend,
			want: nudges.PulseSection{
				Held: true, Responses: 3, Average: 4, AverageShown: true,
				Sparkline: "▁▁▁▁▁▁▁▁▁·▁▆",
			},
		},
		"enough answers": {
			pulse: func() nudges.PulseSummary {
				p := summary(0, 0, 1, 1, 1)
				p.HearMore, p.HearMoreWriters = []string{"roadmap", "hiring"}, 3
				return p
			}(),
			trend: trend,
			want: nudges.PulseSection{
				Held: true, Responses: 3, Average: 4, AverageShown: true,
				Sparkline: "▁▁▁▁▁▁▁▁▁·▁▆", HearMore: []string{"hiring", "roadmap"},
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			in := weekInput(users(3))
			in.Pulse, in.Trend = tt.pulse, tt.trend
			d := nudges.BuildDigest(in)
			if !reflect.DeepEqual(d.Pulse, tt.want) {
				t.Errorf("Pulse=%+v\nwant %+v", d.Pulse, tt.want)
			}
			if n := utf8.RuneCountInString(d.Pulse.Sparkline); n > nudges.TrendPeriods {
				t.Errorf("sparkline has %d bars, want at most %d", n, nudges.TrendPeriods)
			}
			if withheld := d.Pulse.Held && !d.Pulse.AverageShown; withheld != hasNote(d, "pulse") {
				t.Errorf("Suppressed=%q; a note about the pulse is wanted iff its average is withheld (%v)", d.Suppressed, withheld)
			}
		})
	}
	// The caller's summary is not reordered behind its back.
	p := summary(0, 0, 3)
	p.HearMore = []string{"b", "a"}
	in := weekInput(users(3))
	in.Pulse = p
	nudges.BuildDigest(in)
	if p.HearMore[0] != "b" {
		t.Error("BuildDigest sorted the caller's HearMore in place")
	}
}

func TestBuildDigest_Empty(t *testing.T) {
	d := nudges.BuildDigest(nudges.DigestInput{Channel: "C1"})
	if d.ReceivedShown || d.ActedOnShown || d.StrategyShown || d.Streaks.Shown || d.Pulse.Held || len(d.SharedReflections) != 0 {
		t.Errorf("digest of nobody=%+v, want nothing shown", d)
	}
}

// Ensure each period's pulse is paired with that period's strategy
// updates, each figure under the MinGroup rule on its own, so a team can
// see whether explaining more moved clarity.
func TestBuildDigest_ClarityVsUpdates(t *testing.T) {
	members := users(5)
	week := 7 * 24 * time.Hour
	pulse := func(end time.Time, score, n int) nudges.PulseSummary {
		p := nudges.PulseSummary{PeriodEnd: end}
		for range n {
			if err := p.Record(score); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	// Two weeks before this one: a pulse of 3 from 4 people and updates
	// by 3 people; then a pulse of 2 answers and updates by 1 person.
	back := func(weeks int, user string, theme nudges.Theme) nudges.Delivery {
		d := acted(user, 0, theme, nudges.OutcomeDone)
		d.Slot = d.Slot.Add(-time.Duration(weeks) * week)
		return d
	}
	in := weekInput(members,
		acted("U01", 1, nudges.ThemeStrategy, nudges.OutcomeDone),
		acted("U02", 1, nudges.ThemeOrganisation, nudges.OutcomeDone),
		acted("U03", 2, nudges.ThemeStrategy, nudges.OutcomeReflected),
		acted("U04", 2, nudges.ThemeDiplomat, nudges.OutcomeDone),
	)
	in.Pulse = pulse(in.To, 4, 5)
	in.Trend = []nudges.PulseSummary{pulse(digestFrom.Add(-week), 3, 4), pulse(digestFrom, 2, 2)}
	in.TrendDeliveries = []nudges.Delivery{
		back(2, "U01", nudges.ThemeStrategy), back(2, "U02", nudges.ThemeStrategy), back(2, "U03", nudges.ThemeOrganisation),
		back(2, "U04", nudges.ThemeDiplomat), back(1, "U01", nudges.ThemeStrategy),
	}
	d := nudges.BuildDigest(in)
	want := []nudges.ClarityPoint{
		{End: digestFrom.Add(-week), Average: 3, AverageShown: true, Updates: 3, UpdatesShown: true},
		{End: digestFrom},
		{End: in.To, Average: 4, AverageShown: true, Updates: 3, UpdatesShown: true},
	}
	if len(d.ClarityVsUpdates) != len(want) {
		t.Fatalf("ClarityVsUpdates=%+v, want %+v", d.ClarityVsUpdates, want)
	}
	for i, w := range want {
		if got := d.ClarityVsUpdates[i]; !got.End.Equal(w.End) || got.Average != w.Average || got.AverageShown != w.AverageShown || got.Updates != w.Updates || got.UpdatesShown != w.UpdatesShown {
			t.Errorf("period %d=%+v, want %+v", i, got, w)
		}
	}
	in.TrendDeliveries = nil
	if d := nudges.BuildDigest(in); d.ClarityVsUpdates[0].UpdatesShown {
		t.Errorf("without TrendDeliveries past updates are shown: %+v", d.ClarityVsUpdates[0])
	}

	// With what the last digest showed, a past period shows its count
	// from then (closed a second before that digest was built), or none:
	// never one counted again, over today's members.
	in.TrendDeliveries = []nudges.Delivery{back(2, "U01", nudges.ThemeStrategy), back(2, "U02", nudges.ThemeStrategy), back(2, "U03", nudges.ThemeStrategy)}
	in.Shown = []nudges.ClarityPoint{
		{End: digestFrom.Add(-week).Add(time.Second), Updates: 7, UpdatesShown: true},
		{End: digestFrom.Add(time.Second), Updates: 0, UpdatesShown: false},
	}
	d = nudges.BuildDigest(in)
	if got := d.ClarityVsUpdates[0]; got.Updates != 7 || !got.UpdatesShown {
		t.Errorf("a period shown before: %+v, want the 7 shown then", got)
	}
	if got := d.ClarityVsUpdates[1]; got.UpdatesShown {
		t.Errorf("a period whose count was withheld then is shown now: %+v", got)
	}
}

// Ensure the configured threshold holds every figure, defaults to five,
// and can never go below the floor of three.
func TestBuildDigest_Threshold(t *testing.T) {
	done := nudges.OutcomeDone
	four := weekInput(users(6),
		acted("U01", 0, nudges.ThemeStrategy, done), acted("U02", 0, nudges.ThemeStrategy, done),
		acted("U03", 0, nudges.ThemeStrategy, done), acted("U04", 0, nudges.ThemeStrategy, done),
	)
	for _, tc := range []struct {
		threshold, want int
		shown           bool
	}{
		{0, nudges.DefaultThreshold, false}, // four people: under the default five
		{4, 4, true},
		{1, nudges.MinGroup, true}, // never below three
	} {
		in := four
		in.Threshold = tc.threshold
		d := nudges.BuildDigest(in)
		if d.Threshold != tc.want || d.ActedOnShown != tc.shown || d.StrategyShown != tc.shown {
			t.Errorf("threshold %d: digest threshold %d, acted shown %v, strategy shown %v; want %d and %v",
				tc.threshold, d.Threshold, d.ActedOnShown, d.StrategyShown, tc.want, tc.shown)
		}
	}
}
