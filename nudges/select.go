package nudges

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxReasonLen bounds Choice.Reason, in runes, so it fits one line in Slack.
const MaxReasonLen = 120

// similarWindow is how far back a positive outcome counts as "recent"
// when explaining a choice.
const similarWindow = 14 * 24 * time.Hour

// ErrNoEligible means no nudge in the catalog matches the person's focus.
var ErrNoEligible = errors.New("no nudges match the focus")

// Choice is the nudge picked for a person and a one-line reason
// (at most MaxReasonLen runes) to show with it.
type Choice struct {
	Nudge  Nudge
	Reason string
}

// ChooseOptions are the inputs to a choice beyond the person and their
// history. The zero value is a plain choice.
type ChooseOptions struct {
	// Lean, from PulseLean over a channel the person manages, brings
	// strategy and organisation nudges forward.
	Lean Lean
}

// Choose picks the next nudge for sub with no options; see ChooseWith.
func (c *Catalog) Choose(sub Subscriber, history []Delivery, now time.Time, rnd *rand.Rand) (Choice, error) {
	return c.ChooseWith(sub, history, now, rnd, ChooseOptions{})
}

// ChooseWith picks the next nudge for sub. history is their recent
// deliveries, newest last; now should be in the person's zone so that day
// words in the reason ("yesterday") read right; rnd is the randomness (nil
// uses math/rand/v2's global source). ChooseWith is deterministic for a
// given rnd state.
//
// Nudges that match the focus and that the person can act on are
// eligible: a nudge marked context_only only goes to people who said they
// have every setting it needs. A person who has not said gets nudges with
// a fallback (Worded shows it), and never a context-only one.
//
// In order, the choice is:
//   - the next step of the arc, when the focus is a transition theme with
//     an arc the person has not finished;
//   - with opts.Lean, a strategy or organisation nudge, unless one of the
//     last two deliveries was one already, and the reason says why;
//   - otherwise the usual mix: none repeats until every eligible one has
//     been seen, and then a new cycle starts, never with the very last
//     nudge. With no focus (or "both") the roles alternate where the unseen
//     nudges allow it, a both-role nudge counting as either. Among the
//     remaining themes Thompson sampling draws once from each theme's
//     Beta(1+Up, 1+Down) feedback distribution and takes the highest, so
//     themes a person found useful come up more often while uncertain ones
//     still get explored; then a uniformly random nudge in that theme.
//
// A stored focus that is no longer valid (say, a theme was retired) is
// treated as no focus, so a stale setting never stops the daily nudge.
// The error wraps ErrNoEligible when the catalog has nothing for the focus.
func (c *Catalog) ChooseWith(sub Subscriber, history []Delivery, now time.Time, rnd *rand.Rand, opts ChooseOptions) (Choice, error) {
	if rnd == nil {
		rnd = rand.New(globalSource{})
	}
	f := focusOf(sub.Focus)
	eligible := make([]int, 0, len(c.nudges))
	for i, n := range c.nudges {
		if f.allows(n) && sub.Contexts.canAct(n) {
			eligible = append(eligible, i)
		}
	}
	if len(eligible) == 0 {
		return Choice{}, fmt.Errorf("choose a nudge for %s: %w %q: pick another focus, such as both", sub.UserID, ErrNoEligible, f.String())
	}
	if ch, ok := c.arcChoice(sub, eligible); ok {
		return ch, nil
	}

	last := lastNudgeID(sub, history)
	seen := make(map[string]bool, len(sub.Seen)+1)
	for _, id := range sub.Seen {
		seen[id] = true
	}
	seen[last] = true
	cands := c.filter(eligible, func(n Nudge) bool { return !seen[n.ID] })
	if len(cands) == 0 {
		// The cycle is used up: start again, but not with what they just had.
		cands = c.filter(eligible, func(n Nudge) bool { return n.ID != last })
		if len(cands) == 0 {
			cands = eligible
		}
	}

	if leaned, ok := c.leanCandidates(opts.Lean, cands, eligible, history, last); ok {
		n := c.pick(leaned, sub.Stats, rnd)
		return Choice{Nudge: n, Reason: clipRunes(opts.Lean.Reason, MaxReasonLen)}, nil
	}

	alternated := false
	if f.alternates() {
		if want := opposite(sub.LastRole); want != "" {
			// No-repeat wins over alternation: fall back to any candidate
			// when the unseen ones are all of the same role.
			if alt := c.filter(cands, func(n Nudge) bool { return n.Role == want || n.Role == RoleBoth }); len(alt) > 0 {
				cands, alternated = alt, true
			}
		}
	}
	n := c.pick(cands, sub.Stats, rnd)
	return Choice{Nudge: n, Reason: reason(f, n, sub, history, now, alternated)}, nil
}

// pick is the Thompson step over themes, then a uniform draw in the theme.
func (c *Catalog) pick(cands []int, stats map[Theme]BetaStat, rnd *rand.Rand) Nudge {
	theme := c.sampleTheme(cands, stats, rnd)
	inTheme := c.filter(cands, func(n Nudge) bool { return n.Theme == theme })
	return c.nudges[inTheme[rnd.IntN(len(inTheme))]]
}

// arcChoice returns the next step of the person's arc, if they are on one
// and can be given it.
func (c *Catalog) arcChoice(sub Subscriber, eligible []int) (Choice, bool) {
	theme, step := c.arcStep(sub)
	if step < 0 {
		return Choice{}, false
	}
	i, ok := c.byID[c.arcs[theme][step]]
	if !ok || !slices.Contains(eligible, i) {
		return Choice{}, false
	}
	info, _ := LookupTheme(theme)
	r := fmt.Sprintf("Day %d of %d of the %s arc you chose.", step+1, len(c.arcs[theme]), info.Title)
	return Choice{Nudge: c.nudges[i], Reason: clipRunes(r, MaxReasonLen)}, true
}

// leanGap is how many of the latest deliveries must be free of strategy
// and organisation nudges before a Lean brings another forward, so a
// falling pulse makes them come sooner without making them daily.
const leanGap = 2

// leanCandidates narrows the candidates to the themes a Lean brings
// forward, when it applies.
func (c *Catalog) leanCandidates(l Lean, cands, eligible []int, history []Delivery, last string) ([]int, bool) {
	if !l.Sooner {
		return nil, false
	}
	for i := len(history) - 1; i >= 0 && i >= len(history)-leanGap; i-- {
		if leansOn(history[i].Theme) {
			return nil, false
		}
	}
	on := func(n Nudge) bool { return leansOn(n.Theme) }
	if out := c.filter(cands, on); len(out) > 0 {
		return out, true
	}
	// Every such nudge was seen this cycle: repeat one rather than wait.
	out := c.filter(eligible, func(n Nudge) bool { return on(n) && n.ID != last })
	return out, len(out) > 0
}

// filter returns the indices in idx whose nudge satisfies keep.
func (c *Catalog) filter(idx []int, keep func(Nudge) bool) []int {
	out := make([]int, 0, len(idx))
	for _, i := range idx {
		if keep(c.nudges[i]) {
			out = append(out, i)
		}
	}
	return out
}

// sampleTheme is the Thompson step. Themes are visited in catalog order,
// not map order, so a seeded rnd always gives the same answer.
func (c *Catalog) sampleTheme(cands []int, stats map[Theme]BetaStat, rnd *rand.Rand) Theme {
	themes := make([]Theme, 0, len(Themes))
	for _, i := range cands {
		if t := c.nudges[i].Theme; !slices.Contains(themes, t) {
			themes = append(themes, t)
		}
	}
	var best Theme
	bestDraw := -1.0
	for _, t := range themes {
		s := stats[t]
		if d := betaSample(rnd, 1+nonNegative(s.Up), 1+nonNegative(s.Down)); d > bestDraw {
			best, bestDraw = t, d
		}
	}
	return best
}

// nonNegative guards the sampler against corrupt stored stats.
func nonNegative(x float64) float64 {
	if !(x > 0) || math.IsInf(x, 1) {
		return 0
	}
	return x
}

// lastNudgeID is the nudge the person got most recently.
func lastNudgeID(sub Subscriber, history []Delivery) string {
	if len(history) > 0 {
		return history[len(history)-1].NudgeID
	}
	if len(sub.Seen) > 0 {
		return sub.Seen[len(sub.Seen)-1]
	}
	return ""
}

func opposite(r Role) Role {
	switch r {
	case RoleLead:
		return RoleManage
	case RoleManage:
		return RoleLead
	}
	return ""
}

// Record updates sub after n was delivered. It advances the arc of a
// transition focus (see ArcProgress) and adds n to Seen; since
// Choose repeats a nudge only once the eligible set is used up, a repeat
// means a new cycle, and Seen restarts with n. LastRole becomes the role n
// played in the alternation: a both-role nudge counts as the opposite of
// the previous one.
func Record(sub *Subscriber, n Nudge) {
	if sub == nil {
		return
	}
	if slices.Contains(sub.Seen, n.ID) {
		sub.Seen = []string{n.ID}
	} else {
		// Clip so the append never writes into an array another copy of
		// the Subscriber shares.
		sub.Seen = append(slices.Clip(sub.Seen), n.ID)
	}
	role := n.Role
	if role == RoleBoth {
		if o := opposite(sub.LastRole); o != "" {
			role = o
		}
	}
	sub.LastRole = role
	advanceArc(sub, n)
}

// ApplyFeedback folds an outcome on a nudge of the given theme into sub's
// stats: done, reflected and helpful count for the theme, skipped and
// not_for_me against it, and anything else (snoozed) is neutral.
func ApplyFeedback(sub *Subscriber, theme Theme, o Outcome) {
	var up, down float64
	switch o {
	case OutcomeDone, OutcomeReflected, OutcomeHelpful:
		up = 1
	case OutcomeSkipped:
		down = 1
	case OutcomeNotForMe:
		// An explicit "not for me" is about the content; a skip may only
		// mean a busy day.
		down = 2
	default:
		return
	}
	if sub == nil || theme == "" {
		return
	}
	stats := maps.Clone(sub.Stats)
	if stats == nil {
		stats = make(map[Theme]BetaStat, 1)
	}
	s := stats[theme]
	s.Up += up
	s.Down += down
	stats[theme] = s
	sub.Stats = stats
}

// focus is a parsed Subscriber.Focus: a role, a theme, or neither.
type focus struct {
	role  Role
	theme Theme
}

func focusOf(s string) focus {
	switch s {
	case "", "both":
		return focus{}
	case "lead":
		return focus{role: RoleLead}
	case "manage":
		return focus{role: RoleManage}
	}
	if _, ok := LookupTheme(Theme(s)); ok {
		return focus{theme: Theme(s)}
	}
	// Not canonical: perhaps stored by hand. Stale values mean no focus.
	p, err := ParseFocus(s)
	if err != nil {
		return focus{}
	}
	return focusOf(p)
}

func (f focus) allows(n Nudge) bool {
	switch {
	case f.theme != "":
		return n.Theme == f.theme
	case f.role != "":
		return n.Role == f.role || n.Role == RoleBoth
	}
	return true
}

func (f focus) alternates() bool { return f == focus{} }

func (f focus) String() string {
	switch {
	case f.theme != "":
		return string(f.theme)
	case f.role != "":
		return string(f.role)
	}
	return "both"
}

// ParseFocus turns what a person typed into a canonical focus: "lead",
// "manage", "both" or a theme id. It ignores case and accepts theme titles
// and either side of a transition ("warrior", "diplomat", "Warrior →
// diplomat", "agenda setter"). The error wraps ErrInvalidInput and lists
// the options.
func ParseFocus(s string) (string, error) {
	k := focusKey(s)
	switch k {
	case "lead", "leader", "leadership":
		return string(RoleLead), nil
	case "manage", "manager", "management":
		return string(RoleManage), nil
	case "both", "all", "any":
		return string(RoleBoth), nil
	}
	if k != "" {
		for _, t := range Themes {
			from, to, _ := strings.Cut(t.Title, "→")
			for _, name := range []string{string(t.ID), t.Title, from, to} {
				if name != "" && focusKey(name) == k {
					return string(t.ID), nil
				}
			}
		}
	}
	return "", inputErr("focus", s, "use lead, manage, both, or a theme: "+themeList())
}

// focusKey folds the ways people write a focus into one form:
// "Warrior -> Diplomat", "warrior to diplomat" and "warrior→diplomat" all
// become "warrior-→-diplomat".
func focusKey(s string) string {
	s = strings.ToLower(strings.ReplaceAll(s, "->", "→"))
	words := strings.FieldsFunc(s, func(r rune) bool {
		return r != '→' && !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	var parts []string
	for _, w := range words {
		// Split "a→b" written without spaces.
		for i, part := range strings.Split(w, "→") {
			if i > 0 {
				parts = append(parts, "→")
			}
			if part != "" {
				parts = append(parts, part)
			}
		}
	}
	for i, p := range parts {
		if p == "to" {
			parts[i] = "→"
		}
	}
	return strings.Join(parts, "-")
}

// reason explains a choice in one line: the focus if one is set, a similar
// nudge the person liked recently, else the alternation, else what the
// theme is about.
func reason(f focus, n Nudge, sub Subscriber, history []Delivery, now time.Time, alternated bool) string {
	info, _ := LookupTheme(n.Theme)
	similar := similarNote(history, n.Theme, now)
	var s string
	switch {
	case f.theme != "" && similar != "":
		s = fmt.Sprintf("You chose the %s track; %s.", f.theme, similar)
	case f.theme != "":
		s = fmt.Sprintf("You chose the %s track.", f.theme)
	case f.role != "" && similar != "":
		s = fmt.Sprintf("You chose to focus on %s; %s.", roleWord(f.role), similar)
	case f.role != "":
		s = fmt.Sprintf("You chose to focus on %s; this one is from %s.", roleWord(f.role), info.Title)
	case similar != "":
		s = capitalize(similar) + "."
	case alternated && n.Role != RoleBoth && len(history) > 0:
		s = fmt.Sprintf("A %s one today, after %s %s one.", roleWord(n.Role), dayPossessive(history[len(history)-1], now), roleWord(sub.LastRole))
	default:
		st := sub.Stats[n.Theme]
		switch {
		case st.Up >= 2 && st.Up > st.Down:
			s = fmt.Sprintf("More from %s, which has been working for you.", info.Title)
		case st.Up+st.Down > 0:
			s = fmt.Sprintf("Another look at %s, to see if it fits you better now.", info.Title)
		default:
			s = fmt.Sprintf("Something new from %s: %s.", info.Title, info.Summary)
		}
	}
	return clipRunes(s, MaxReasonLen)
}

// similarNote describes the newest positive outcome on the theme within
// similarWindow, or returns "".
func similarNote(history []Delivery, theme Theme, now time.Time) string {
	for i := len(history) - 1; i >= 0; i-- {
		d := history[i]
		if d.Theme != theme {
			continue
		}
		at := d.ActedAt
		if at.IsZero() {
			at = d.Slot
		}
		if now.Sub(at) > similarWindow {
			continue
		}
		when := daysAgo(at, now)
		switch d.Outcome {
		case OutcomeHelpful:
			return "you marked a similar one helpful " + when
		case OutcomeDone:
			return "you marked a similar one done " + when
		case OutcomeReflected:
			return "you reflected on a similar one " + when
		}
	}
	return ""
}

// calendarDays counts midnights between t and now in now's zone, so
// "yesterday" means the previous date, not 24 hours ago.
func calendarDays(t, now time.Time) int {
	y1, m1, d1 := t.In(now.Location()).Date()
	y2, m2, d2 := now.Date()
	a := time.Date(y1, m1, d1, 0, 0, 0, 0, time.UTC)
	b := time.Date(y2, m2, d2, 0, 0, 0, 0, time.UTC)
	return int(b.Sub(a).Hours() / 24)
}

func daysAgo(t, now time.Time) string {
	switch d := calendarDays(t, now); {
	case d <= 0:
		return "earlier today"
	case d == 1:
		return "yesterday"
	case d < 7:
		return fmt.Sprintf("%d days ago", d)
	case d < 14:
		return "last week"
	default:
		return "two weeks ago"
	}
}

func dayPossessive(d Delivery, now time.Time) string {
	t := d.Slot
	if t.IsZero() {
		return "the last"
	}
	switch days := calendarDays(t, now); {
	case days == 1:
		return "yesterday's"
	case days > 1 && days < 7:
		return t.In(now.Location()).Weekday().String() + "'s"
	default:
		return "the last"
	}
}

func roleWord(r Role) string {
	switch r {
	case RoleLead:
		return "leading"
	case RoleManage:
		return "managing"
	}
	return "leading and managing"
}

func capitalize(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[size:]
}

// clipRunes shortens s to at most limit runes, at a word boundary where it
// can.
func clipRunes(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)[:limit-1]
	cut := string(r)
	if i := strings.LastIndexByte(cut, ' '); i > 0 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;:") + "…"
}

// betaSample draws from Beta(a, b) as X/(X+Y) with X ~ Gamma(a, 1) and
// Y ~ Gamma(b, 1). a and b must be positive.
func betaSample(rnd *rand.Rand, a, b float64) float64 {
	x := gammaSample(rnd, a)
	y := gammaSample(rnd, b)
	if x+y == 0 {
		// Both underflowed, possible only for tiny shapes.
		return 0.5
	}
	return x / (x + y)
}

// gammaSample draws from Gamma(a, 1) by Marsaglia and Tsang's squeeze
// method (2000). For a < 1 it draws Gamma(a+1) and scales by U^(1/a).
func gammaSample(rnd *rand.Rand, a float64) float64 {
	if a < 1 {
		u := 1 - rnd.Float64() // (0, 1], so the power is never of zero
		return gammaSample(rnd, a+1) * math.Pow(u, 1/a)
	}
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rnd.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := 1 - rnd.Float64()
		if u < 1-0.0331*x*x*x*x {
			return d * v
		}
		if math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// globalSource adapts math/rand/v2's goroutine-safe top-level functions to
// a Source, for callers that pass no *rand.Rand.
type globalSource struct{}

func (globalSource) Uint64() uint64 { return rand.Uint64() }
