package nudges

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MinGroup is the fewest people a figure in a team digest may ever
// describe, whatever the config says. A count that fewer people
// contributed to could single one of them out ("one person acted on a
// strategy nudge this week"), so it is left out and a note says why.
const MinGroup = 3

// DefaultThreshold is the anonymity threshold when the config sets none.
const DefaultThreshold = 5

// threshold is the group size a digest's figures need: the configured
// one, never below MinGroup.
func threshold(n int) int {
	if n <= 0 {
		return DefaultThreshold
	}
	return max(n, MinGroup)
}

// StreakThreshold is the streak length the digest counts members for.
const StreakThreshold = 3

// TrendPeriods is how many periods, this one included, the pulse
// sparkline spans.
const TrendPeriods = 12

// MaxTopThemes is how many themes the digest lists.
const MaxTopThemes = 3

// DigestInput is everything a channel's digest is built from. Raw user
// text stays raw here; escaping is the renderer's job.
type DigestInput struct {
	Channel  string
	From, To time.Time // the period, [From, To)
	// Threshold is the fewest people any figure may describe; 0 means
	// DefaultThreshold, and it is never below MinGroup.
	Threshold int

	// Members are the channel's members who are subscribers; deliveries,
	// reflections and streaks of anyone else are ignored.
	Members    []string
	Deliveries []Delivery   // the members' deliveries in [From, To)
	Shared     []Reflection // reflections in the period whose authors chose to share them
	Pulse      PulseSummary // this period's closed pulse; zero if none ran
	Trend      []PulseSummary

	// TrendDeliveries are the members' deliveries over the periods of
	// Trend, to count the strategy updates shared in each beside its
	// pulse. Nil leaves those counts out of ClarityVsUpdates.
	TrendDeliveries []Delivery
	// TrendSince is how far back TrendDeliveries reach.
	TrendSince time.Time
	// Shown is what the channel's last digest showed of clarity beside
	// strategy updates (its ClarityVsUpdates). A past period then shows
	// the count the digest that covered it showed, or none: counted again
	// over today's members, or without that digest's suppression, it
	// could be subtracted from what was shown then. Nil (no digest kept
	// what it showed) counts past periods from TrendDeliveries.
	Shown []ClarityPoint

	// Streaks holds members' current streaks (Subscriber.Streak) when the
	// caller has them. When nil, streaks are worked out from Deliveries,
	// which cannot see past From and so never exceed the period.
	Streaks map[string]int
	// Nudges is the catalog by id, to quote the nudge a shared reflection
	// answers; nil quotes none.
	Nudges map[string]Nudge

	Now time.Time
}

// PostedDigest is a channel's last digest: when it went out, what it
// showed, and the members it fixed for the period after it.
type PostedDigest struct {
	At time.Time
	// Shown is what the digest showed, for members' previews, without the
	// shared reflections' text, which stays sealed with the reflections.
	Shown *Digest
	// Members are the channel's members when it went out: the people the
	// next period counts, so nobody joining or leaving in between
	// changes who a figure describes.
	Members []string
}

// Digest is what a team digest shows. A figure whose Shown flag is false
// is withheld under the MinGroup rule and Suppressed says so; the figure
// itself is then zero.
type Digest struct {
	Channel  string
	From, To time.Time
	Members  int // subscribers among the channel's members
	// Threshold is the fewest people a figure here describes.
	Threshold int

	Received      int // nudges delivered to members in the period
	ReceivedShown bool
	ActedOn       int // nudges marked done or reflected on
	ActedOnShown  bool

	// TopThemes are the most practised themes, by nudges acted on, among
	// themes that at least MinGroup people practised.
	TopThemes []ThemeCount

	// StrategyUpdates counts acted-on nudges in ThemeStrategy and
	// ThemeOrganisation: people explaining where the organisation is going
	// and how it is doing, and listening.
	StrategyUpdates int
	StrategyShown   bool

	// ClarityVsUpdates pairs, period by period, the clarity pulse with
	// the strategy updates shared, oldest first and this period last, so
	// a team can see whether explaining more moved clarity.
	ClarityVsUpdates []ClarityPoint

	Streaks StreakSummary

	// SharedReflections are reflections their authors chose to share,
	// oldest first.
	SharedReflections []SharedLine

	Pulse PulseSection

	// Suppressed explains, one line each, what was withheld and why.
	Suppressed []string
}

// ClarityPoint is one period's clarity pulse beside its strategy updates.
// Each figure obeys the MinGroup rule on its own.
type ClarityPoint struct {
	End          time.Time // the end of the period
	Average      float64
	AverageShown bool // a pulse ran and at least MinGroup people answered
	Updates      int
	UpdatesShown bool // counted, and at least MinGroup people shared one
}

// ThemeCount is how many nudges of one theme members acted on.
type ThemeCount struct {
	Theme Theme
	Count int
}

// StreakSummary describes streaks without naming anyone.
type StreakSummary struct {
	Shown   bool
	Members int // members with a streak of at least StreakThreshold
}

// SharedLine is one shared reflection as the digest quotes it.
type SharedLine struct {
	// AuthorID is the author's user id for a reflection shared with their
	// name, credited as a mention: a display name is free text its owner
	// sets, so "boss" could be anyone. "" when shared anonymously.
	AuthorID string
	Text     string
	Nudge    string // the prompt of the nudge it answers; "" if unknown
}

// PulseSection is the clarity pulse's part of the digest.
type PulseSection struct {
	Held         bool // a pulse ran this period
	Responses    int
	Average      float64
	AverageShown bool // at least MinGroup people answered
	// Sparkline spans the last TrendPeriods periods, this one included.
	Sparkline string
	HearMore  []string // sorted, so their order says nothing about who wrote them
}

// BuildDigest works out a channel's digest for one period, applying the
// MinGroup rule to every figure.
func BuildDigest(in DigestInput) Digest {
	members := make(map[string]bool, len(in.Members))
	for _, id := range in.Members {
		members[id] = true
	}
	min := threshold(in.Threshold)
	d := Digest{Channel: in.Channel, From: in.From, To: in.To, Members: len(members), Threshold: min}

	t := tallyPeriod(in, members, &d)
	recipients, actors, strategy, themeN, themePeople, history := t.recipients, t.actors, t.strategy, t.themeN, t.themePeople, t.history

	note := func(format string, args ...any) { d.Suppressed = append(d.Suppressed, fmt.Sprintf(format, args...)) }

	d.ReceivedShown = groupOK(len(recipients), d.Members, min)
	if !d.ReceivedShown {
		d.Received = 0
		note("Nudges received are not shown: fewer than %d people received any.", min)
	}
	d.ActedOnShown = groupOK(len(actors), d.Members, min)
	if !d.ActedOnShown {
		d.ActedOn = 0
		note("Nudges acted on are not shown: fewer than %d people acted on one.", min)
	}
	d.StrategyShown = groupOK(len(strategy), d.Members, min)
	if !d.StrategyShown {
		d.StrategyUpdates = 0
		note("Strategy updates are not shown: fewer than %d people made one.", min)
	}

	hiddenThemes := 0
	for th, n := range themeN {
		if len(themePeople[th]) < min {
			hiddenThemes++
			continue
		}
		d.TopThemes = append(d.TopThemes, ThemeCount{Theme: th, Count: n})
	}
	slices.SortFunc(d.TopThemes, func(a, b ThemeCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(themeRank(a.Theme), themeRank(b.Theme))
	})
	if len(d.TopThemes) > MaxTopThemes {
		d.TopThemes = d.TopThemes[:MaxTopThemes]
	}
	if hiddenThemes > 0 && d.ActedOnShown {
		note("Themes fewer than %d people practised are not listed.", min)
	}
	if suppressComplements(&d, t, min) {
		note("Some figures are withheld because, with the others shown, they would let you work out what fewer than %d people did.", min)
	}

	d.Streaks = streakSummary(in, members, history, min)
	if !d.Streaks.Shown {
		note("Streaks are not shown: fewer than %d people have a streak of %d or more.", min, StreakThreshold)
	}

	d.SharedReflections = sharedLines(in, members, min)

	d.Pulse = pulseSection(in, min)
	d.ClarityVsUpdates = clarityVsUpdates(in, members, d, min)
	if d.Pulse.Held && !d.Pulse.AverageShown {
		note("The pulse's average and suggestions are shown once at least %d people answer.", min)
	}
	return d
}

// suppressComplements withholds the digest's figures that, subtracted
// from one another, would leave what fewer than min people did (see
// SuppressComplements); it reports whether it withheld any. Themes go
// first, the strategy updates count last: it is the figure the clarity
// trend pairs with the pulse.
func suppressComplements(d *Digest, t periodTally, min int) bool {
	figs := []Figure{
		{Records: t.receivedRecs, Shown: d.ReceivedShown, Keep: 1},
		{Records: t.actedRecs, Shown: d.ActedOnShown, Keep: 2},
		{Records: t.strategyRecs, Shown: d.StrategyShown, Keep: 3},
	}
	for _, tc := range d.TopThemes {
		figs = append(figs, Figure{Records: t.themeRecs[tc.Theme], Shown: true})
	}
	withheld := SuppressComplements(figs, min)
	if len(withheld) == 0 {
		return false
	}
	if !figs[0].Shown {
		d.Received, d.ReceivedShown = 0, false
	}
	if !figs[1].Shown {
		d.ActedOn, d.ActedOnShown = 0, false
	}
	if !figs[2].Shown {
		d.StrategyUpdates, d.StrategyShown = 0, false
	}
	themes := d.TopThemes[:0]
	for i, tc := range d.TopThemes {
		if figs[3+i].Shown {
			themes = append(themes, tc)
		}
	}
	d.TopThemes = themes
	return true
}

// periodTally is who did what in a digest's period: the people behind
// each figure, so each can be held to the threshold.
type periodTally struct {
	recipients, actors, strategy map[string]bool
	themeN                       map[Theme]int
	themePeople                  map[Theme]map[string]bool
	history                      map[string][]Delivery
	// The records behind each figure (delivery → person), for
	// complementary suppression.
	receivedRecs, actedRecs, strategyRecs map[string]string
	themeRecs                             map[Theme]map[string]string
}

// tallyPeriod counts the members' deliveries in the period into d's raw
// figures, and who each figure stands for.
func tallyPeriod(in DigestInput, members map[string]bool, d *Digest) periodTally {
	t := periodTally{
		recipients: map[string]bool{}, actors: map[string]bool{}, strategy: map[string]bool{},
		themeN: map[Theme]int{}, themePeople: map[Theme]map[string]bool{}, history: map[string][]Delivery{},
		receivedRecs: map[string]string{}, actedRecs: map[string]string{}, strategyRecs: map[string]string{}, themeRecs: map[Theme]map[string]string{},
	}
	for i, dl := range in.Deliveries {
		if !members[dl.UserID] || dl.Slot.Before(in.From) || !dl.Slot.Before(in.To) {
			continue
		}
		rec := strconv.Itoa(i)
		if in.Streaks == nil {
			t.history[dl.UserID] = append(t.history[dl.UserID], dl)
		}
		if dl.State == StateSent {
			d.Received++
			t.recipients[dl.UserID] = true
			t.receivedRecs[rec] = dl.UserID
		}
		if !dl.Outcome.Acted() {
			continue
		}
		d.ActedOn++
		t.actors[dl.UserID] = true
		t.actedRecs[rec] = dl.UserID
		if dl.Theme == "" {
			continue
		}
		t.themeN[dl.Theme]++
		if t.themePeople[dl.Theme] == nil {
			t.themePeople[dl.Theme] = map[string]bool{}
			t.themeRecs[dl.Theme] = map[string]string{}
		}
		t.themePeople[dl.Theme][dl.UserID] = true
		t.themeRecs[dl.Theme][rec] = dl.UserID
		if leansOn(dl.Theme) {
			d.StrategyUpdates++
			t.strategy[dl.UserID] = true
			t.strategyRecs[rec] = dl.UserID
		}
	}
	return t
}

// groupOK reports whether a figure that people contributed to may be
// shown. Zero may be shown when the team is large enough: "nobody"
// describes everyone, not one person.
func groupOK(people, members, min int) bool {
	if people == 0 {
		return members >= min
	}
	return people >= min
}

func themeRank(t Theme) int {
	for i, ti := range Themes {
		if ti.ID == t {
			return i
		}
	}
	return len(Themes)
}

// streakSummary counts the members on a streak. It says nothing of the
// longest streak: that is one person's figure, and whoever is known to
// be on a long run would be named by it.
func streakSummary(in DigestInput, members map[string]bool, history map[string][]Delivery, min int) StreakSummary {
	var s StreakSummary
	count := func(n int) {
		if n >= StreakThreshold {
			s.Members++
		}
	}
	if in.Streaks != nil {
		for id, n := range in.Streaks {
			if members[id] {
				count(n)
			}
		}
	} else {
		for _, h := range history {
			slices.SortStableFunc(h, func(a, b Delivery) int { return a.Slot.Compare(b.Slot) })
			count(Streak(h, in.Now))
		}
	}
	if s.Members >= min || (s.Members == 0 && len(members) >= min) {
		s.Shown = true
		return s
	}
	return StreakSummary{}
}

// sharedLines are the reflections shared in the period. An anonymous
// one appears only when at least min people's contributions can appear
// in the digest (its subscribed members): among fewer, the others could
// tell who wrote it, so it is held back (HeldBack lists those).
func sharedLines(in DigestInput, members map[string]bool, min int) []SharedLine {
	var out []SharedLine
	for _, r := range periodShares(in, members) {
		if r.Share == ShareAnonymous && len(members) < min {
			continue
		}
		l := SharedLine{Text: r.Text}
		if r.Share == ShareNamed {
			l.AuthorID = r.UserID
		}
		if n, ok := in.Nudges[r.NudgeID]; ok && r.NudgeID != "" {
			l.Nudge = n.Prompt
		}
		out = append(out, l)
	}
	return out
}

// HeldBack are the anonymous reflections shared in the period that the
// digest leaves out because too few people take part in it for their
// authors to stay anonymous, oldest first; their authors are told.
func HeldBack(in DigestInput) []Reflection {
	members := make(map[string]bool, len(in.Members))
	for _, id := range in.Members {
		members[id] = true
	}
	if len(members) >= threshold(in.Threshold) {
		return nil
	}
	var out []Reflection
	for _, r := range periodShares(in, members) {
		if r.Share == ShareAnonymous {
			out = append(out, r)
		}
	}
	return out
}

// periodShares are the members' reflections shared, with some text, in
// the period, oldest first.
func periodShares(in DigestInput, members map[string]bool) []Reflection {
	rs := make([]Reflection, 0, len(in.Shared))
	for _, r := range in.Shared {
		if !members[r.UserID] || strings.TrimSpace(r.Text) == "" {
			continue
		}
		if r.Created.Before(in.From) || !r.Created.Before(in.To) {
			continue
		}
		if r.Share != ShareNamed && r.Share != ShareAnonymous {
			continue // private unless the author chose otherwise
		}
		rs = append(rs, r)
	}
	slices.SortStableFunc(rs, func(a, b Reflection) int { return a.Created.Compare(b.Created) })
	return rs
}

func pulseSection(in DigestInput, min int) PulseSection {
	p := in.Pulse
	if p.PeriodEnd.IsZero() && p.Responses == 0 {
		return PulseSection{}
	}
	s := PulseSection{Held: true, Responses: p.Responses}
	if p.Responses >= min {
		s.AverageShown = true
		s.Average = p.Average()
	}
	// Answers are counted by the people who wrote them: five voters and
	// one writer would show that one person's words as the team's.
	if p.HearMoreWriters >= min {
		s.HearMore = slices.Clone(p.HearMore)
		slices.Sort(s.HearMore)
	}
	trend := in.Trend
	if n := TrendPeriods - 1; len(trend) > n {
		trend = trend[len(trend)-n:]
	}
	values := make([]float64, 0, len(trend)+1)
	ok := make([]bool, 0, len(trend)+1)
	for _, t := range append(slices.Clip(trend), p) {
		values = append(values, t.Average())
		ok = append(ok, t.Responses >= min)
	}
	s.Sparkline = Sparkline(values, ok)
	return s
}

// clarityVsUpdates pairs each pulse of the trend, and this period's, with
// the strategy updates shared in its period. A past period runs from the
// previous pulse's end to its own; the oldest is taken to be as long as
// this one.
func clarityVsUpdates(in DigestInput, members map[string]bool, d Digest, min int) []ClarityPoint {
	trend := in.Trend
	if n := TrendPeriods - 1; len(trend) > n {
		trend = trend[len(trend)-n:]
	}
	out := make([]ClarityPoint, 0, len(trend)+1)
	for i, p := range trend {
		from := p.PeriodEnd.Add(-in.To.Sub(in.From))
		if i > 0 {
			from = trend[i-1].PeriodEnd
		}
		pt := ClarityPoint{End: p.PeriodEnd, AverageShown: p.Responses >= min}
		if pt.AverageShown {
			pt.Average = p.Average()
		}
		// A period older than the deliveries at hand (retention keeps
		// HistoryWindow of them) shows its clarity only, never a count
		// made from a part of it.
		switch {
		case in.Shown != nil:
			pt.Updates, pt.UpdatesShown = shownUpdates(in.Shown, p.PeriodEnd)
		case in.TrendDeliveries != nil && !from.Before(in.TrendSince):
			pt.Updates, pt.UpdatesShown = strategyUpdates(in.TrendDeliveries, members, from, p.PeriodEnd, min)
		}
		out = append(out, pt)
	}
	now := ClarityPoint{End: in.To, Updates: d.StrategyUpdates, UpdatesShown: d.StrategyShown}
	if d.Pulse.AverageShown {
		now.Average, now.AverageShown = d.Pulse.Average, true
	}
	return append(out, now)
}

// shownUpdates is the strategy updates count an earlier digest showed
// for the period ending at end; false when it showed none. A pulse's
// period ends when it is closed, moments before its digest is built, so
// the point nearest end within matchWindow is that period's.
func shownUpdates(shown []ClarityPoint, end time.Time) (int, bool) {
	const matchWindow = time.Hour
	best, found := ClarityPoint{}, false
	for _, pt := range shown {
		if d := pt.End.Sub(end).Abs(); d <= matchWindow && (!found || d < best.End.Sub(end).Abs()) {
			best, found = pt, true
		}
	}
	if !found || !best.UpdatesShown {
		return 0, false
	}
	return best.Updates, true
}

// strategyUpdates counts the strategy and organisation nudges members
// acted on in [from, to), and whether enough people did to show it.
func strategyUpdates(ds []Delivery, members map[string]bool, from, to time.Time, min int) (int, bool) {
	n := 0
	people := map[string]bool{}
	for _, dl := range ds {
		if !members[dl.UserID] || dl.Slot.Before(from) || !dl.Slot.Before(to) || !dl.Outcome.Acted() || !leansOn(dl.Theme) {
			continue
		}
		n++
		people[dl.UserID] = true
	}
	if !groupOK(len(people), len(members), min) {
		return 0, false
	}
	return n, true
}
