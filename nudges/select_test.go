package nudges

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// testNow is a Tuesday morning.
var testNow = time.Date(2026, time.March, 10, 9, 0, 0, 0, time.UTC)

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// mustChoose calls Choose or stops the test.
func mustChoose(tb testing.TB, c *Catalog, sub Subscriber, history []Delivery, rnd *rand.Rand) Choice {
	tb.Helper()
	ch, err := c.Choose(sub, history, testNow, rnd)
	if err != nil {
		tb.Fatalf("Choose: %v", err)
	}
	return ch
}

// testNudge builds a valid nudge for small hand-made catalogs.
func testNudge(id string, r Role, t Theme) Nudge {
	return Nudge{ID: id, Role: r, Theme: t, Prompt: "Do " + id + ".", Why: "Because.", Question: "Did it help?"}
}

// Ensure the Beta sampler has the right mean and spread, including shapes
// below one that take the boosted Gamma path.
func TestBetaSample(t *testing.T) {
	tests := []struct{ a, b float64 }{
		{1, 1}, {2, 5}, {11, 1}, {1, 11}, {0.5, 0.5}, {30, 70},
	}
	const draws = 40000
	for _, tt := range tests {
		t.Run(fmt.Sprintf("Beta(%g,%g)", tt.a, tt.b), func(t *testing.T) {
			rnd := seeded(1)
			var sum, sumSq float64
			for range draws {
				x := betaSample(rnd, tt.a, tt.b)
				if x < 0 || x > 1 || math.IsNaN(x) {
					t.Fatalf("sample %v outside [0, 1]", x)
				}
				sum += x
				sumSq += x * x
			}
			mean := sum / draws
			variance := sumSq/draws - mean*mean
			wantMean := tt.a / (tt.a + tt.b)
			wantVar := tt.a * tt.b / ((tt.a + tt.b) * (tt.a + tt.b) * (tt.a + tt.b + 1))
			if math.Abs(mean-wantMean) > 0.01 {
				t.Errorf("mean=%.4f, want %.4f", mean, wantMean)
			}
			if math.Abs(variance-wantVar) > 0.1*wantVar {
				t.Errorf("variance=%.5f, want %.5f", variance, wantVar)
			}
		})
	}
}

// Ensure the Gamma sampler's mean is its shape.
func TestGammaSample(t *testing.T) {
	for _, a := range []float64{0.3, 1, 2.5, 10} {
		rnd := seeded(2)
		const draws = 40000
		var sum float64
		for range draws {
			sum += gammaSample(rnd, a)
		}
		if mean := sum / draws; math.Abs(mean-a) > 0.03*a {
			t.Errorf("Gamma(%g) mean=%.4f, want %g", a, mean, a)
		}
	}
}

// Ensure no nudge repeats until every eligible one was delivered, and a
// new cycle never opens with the nudge just delivered.
func TestChoose_NoRepeatAcrossCycle(t *testing.T) {
	c := mustDefault(t)
	for _, focus := range []string{"", "lead", "manage", "diplomat", "strategy"} {
		t.Run("focus="+focus, func(t *testing.T) {
			f := focusOf(focus)
			var want []string
			for _, n := range c.All() {
				if f.allows(n) && !n.ContextOnly {
					want = append(want, n.ID)
				}
			}
			sub := Subscriber{UserID: "U1", Focus: focus}
			rnd := seeded(3)
			var got []string
			for range len(want) {
				ch := mustChoose(t, c, sub, nil, rnd)
				got = append(got, ch.Nudge.ID)
				Record(&sub, ch.Nudge)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("one cycle delivered %d nudges (%d distinct), want each of the %d eligible once", len(got), len(slices.Compact(slices.Clone(got))), len(want))
			}
			last := sub.Seen[len(sub.Seen)-1]
			for range 20 {
				// Each draw on the used-up cycle must avoid the last one.
				if ch := mustChoose(t, c, sub, nil, rnd); ch.Nudge.ID == last {
					t.Fatalf("new cycle opened with %s, the nudge just delivered", last)
				}
			}
			ch := mustChoose(t, c, sub, nil, rnd)
			Record(&sub, ch.Nudge)
			if !slices.Equal(sub.Seen, []string{ch.Nudge.ID}) {
				t.Errorf("Seen=%v after the cycle restarted, want [%s]", sub.Seen, ch.Nudge.ID)
			}
		})
	}
}

// Ensure a tiny catalog cycles without ever repeating back to back, and a
// single eligible nudge is still delivered.
func TestChoose_SmallCatalogs(t *testing.T) {
	c := newCatalog([]Nudge{
		testNudge("a-1", RoleLead, ThemeLeading),
		testNudge("b-1", RoleManage, ThemeManaging),
		testNudge("c-1", RoleBoth, ThemeChange),
	})
	sub := Subscriber{UserID: "U1"}
	rnd := seeded(4)
	prev := ""
	for i := range 60 {
		ch := mustChoose(t, c, sub, nil, rnd)
		if ch.Nudge.ID == prev {
			t.Fatalf("draw %d repeated %s back to back", i, prev)
		}
		Record(&sub, ch.Nudge)
		prev = ch.Nudge.ID
	}

	one := newCatalog([]Nudge{testNudge("a-1", RoleLead, ThemeLeading)})
	sub = Subscriber{UserID: "U1", Seen: []string{"a-1"}}
	if ch := mustChoose(t, one, sub, nil, rnd); ch.Nudge.ID != "a-1" {
		t.Errorf("Choose=%s, want the only nudge a-1", ch.Nudge.ID)
	}
}

// Ensure lead and manage alternate when there is no focus, with a
// both-role nudge standing in for either.
func TestChoose_Alternates(t *testing.T) {
	c := mustDefault(t)
	for _, focus := range []string{"", "both"} {
		t.Run("focus="+focus, func(t *testing.T) {
			sub := Subscriber{UserID: "U1", Focus: focus}
			rnd := seeded(5)
			var roles []Role
			for i := range 40 {
				prev := sub.LastRole
				ch := mustChoose(t, c, sub, nil, rnd)
				r := ch.Nudge.Role
				roles = append(roles, r)
				if prev != "" && r != RoleBoth && r == prev {
					t.Fatalf("draw %d: %s after %s; roles so far %v", i, r, prev, roles)
				}
				Record(&sub, ch.Nudge)
			}
		})
	}
	t.Run("focus=lead does not alternate", func(t *testing.T) {
		sub := Subscriber{UserID: "U1", Focus: "lead", LastRole: RoleLead}
		rnd := seeded(5)
		leads := 0
		for range 20 {
			ch := mustChoose(t, c, sub, nil, rnd)
			if ch.Nudge.Role == RoleLead {
				leads++
			}
			Record(&sub, ch.Nudge)
		}
		if leads < 10 {
			t.Errorf("%d of 20 were lead-only with focus lead, want most", leads)
		}
	})
}

// Ensure a focus restricts the nudges and shows in the reason.
func TestChoose_Focus(t *testing.T) {
	c := mustDefault(t)
	tests := []struct {
		focus  string
		ok     func(Nudge) bool
		reason string
	}{
		{"lead", func(n Nudge) bool { return n.Role != RoleManage }, "You chose to focus on leading"},
		{"manage", func(n Nudge) bool { return n.Role != RoleLead }, "You chose to focus on managing"},
		{"diplomat", func(n Nudge) bool { return n.Theme == ThemeDiplomat }, "You chose the diplomat track"},
		{"Warrior → diplomat", func(n Nudge) bool { return n.Theme == ThemeDiplomat }, "You chose the diplomat track"},
		{"agenda-setter", func(n Nudge) bool { return n.Theme == ThemeAgendaSetter }, "You chose the agenda-setter track"},
		{"retired-theme", func(Nudge) bool { return true }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.focus, func(t *testing.T) {
			// The arc comes first for a transition focus; past it, the
			// track is a mix from the theme.
			sub := Subscriber{UserID: "U1", Focus: tt.focus, Arc: ArcProgress{Theme: focusOf(tt.focus).theme, Steps: maxArcSteps}}
			rnd := seeded(6)
			for range 30 {
				ch := mustChoose(t, c, sub, nil, rnd)
				if !tt.ok(ch.Nudge) {
					t.Fatalf("focus %q chose %s (%s, %s)", tt.focus, ch.Nudge.ID, ch.Nudge.Role, ch.Nudge.Theme)
				}
				if tt.reason != "" && !strings.HasPrefix(ch.Reason, tt.reason) {
					t.Fatalf("Reason=%q, want it to start %q", ch.Reason, tt.reason)
				}
				Record(&sub, ch.Nudge)
			}
		})
	}
}

// Ensure feedback moves the choice: a theme marked done often comes up far
// more than one that is always skipped.
func TestChoose_FeedbackShiftsChoices(t *testing.T) {
	c := mustDefault(t)
	count := func(sub Subscriber) map[Theme]int {
		rnd := seeded(7)
		got := map[Theme]int{}
		for range 1000 {
			got[mustChoose(t, c, sub, nil, rnd).Nudge.Theme]++
		}
		return got
	}

	before := count(Subscriber{UserID: "U1"})
	// With no feedback, every theme gets roughly 1000/11 draws.
	for _, th := range []Theme{ThemeStrategy, ThemeChange} {
		if before[th] < 50 || before[th] > 150 {
			t.Errorf("no feedback: theme %s chosen %d of 1000, want about 91", th, before[th])
		}
	}

	sub := Subscriber{UserID: "U1"}
	for range 10 {
		ApplyFeedback(&sub, ThemeStrategy, OutcomeDone)
		ApplyFeedback(&sub, ThemeChange, OutcomeSkipped)
	}
	after := count(sub)
	if after[ThemeStrategy] < 400 {
		t.Errorf("after 10 done: strategy chosen %d of 1000, want at least 400", after[ThemeStrategy])
	}
	if after[ThemeChange] > 20 {
		t.Errorf("after 10 skips: change chosen %d of 1000, want at most 20", after[ThemeChange])
	}
	t.Logf("strategy %d→%d, change %d→%d of 1000", before[ThemeStrategy], after[ThemeStrategy], before[ThemeChange], after[ThemeChange])
}

// Ensure a seeded source gives the same sequence every time, and another
// seed a different one.
func TestChoose_Deterministic(t *testing.T) {
	c := mustDefault(t)
	run := func(seed uint64) []string {
		sub := Subscriber{UserID: "U1"}
		ApplyFeedback(&sub, ThemeDiplomat, OutcomeHelpful)
		rnd := seeded(seed)
		var ids []string
		for range 50 {
			ch := mustChoose(t, c, sub, nil, rnd)
			ids = append(ids, ch.Nudge.ID+"|"+ch.Reason)
			Record(&sub, ch.Nudge)
		}
		return ids
	}
	if a, b := run(8), run(8); !slices.Equal(a, b) {
		t.Errorf("same seed, different sequences:\n%v\n%v", a, b)
	}
	if a, b := run(8), run(9); slices.Equal(a, b) {
		t.Error("seeds 8 and 9 gave the same 50 choices")
	}
}

// Ensure Choose says so when nothing matches the focus.
func TestChoose_ErrNoEligible(t *testing.T) {
	leadOnly := newCatalog([]Nudge{testNudge("a-1", RoleLead, ThemeLeading), testNudge("a-2", RoleLead, ThemeStrategy)})
	tests := []struct {
		name  string
		c     *Catalog
		focus string
		want  string
	}{
		{"Role", leadOnly, "manage", `no nudges match the focus "manage": pick another focus`},
		{"Theme", leadOnly, "diplomat", `no nudges match the focus "diplomat"`},
		{"Empty catalog", newCatalog(nil), "", `no nudges match the focus "both"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Choose(Subscriber{UserID: "U1", Focus: tt.focus}, nil, testNow, seeded(1))
			if !errors.Is(err, ErrNoEligible) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err=%v, want ErrNoEligible containing %q", err, tt.want)
			}
		})
	}
}

// Ensure the reason picks the most telling explanation, in order: focus,
// a similar nudge liked recently, alternation, then the theme itself.
func TestChoose_Reason(t *testing.T) {
	// One theme, so the chosen theme is known.
	c := newCatalog([]Nudge{
		testNudge("s-1", RoleLead, ThemeStrategy),
		testNudge("s-2", RoleManage, ThemeStrategy),
		testNudge("s-3", RoleLead, ThemeStrategy),
	})
	day := 24 * time.Hour
	acted := func(o Outcome, ago time.Duration) []Delivery {
		return []Delivery{{NudgeID: "s-9", Theme: ThemeStrategy, Role: RoleLead, Slot: testNow.Add(-ago), ActedAt: testNow.Add(-ago), Outcome: o}}
	}
	tests := []struct {
		name    string
		sub     Subscriber
		history []Delivery
		want    string
	}{
		{"Theme focus", Subscriber{Focus: "strategy"}, nil,
			"You chose the strategy track."},
		{"Theme focus and similar", Subscriber{Focus: "strategy"}, acted(OutcomeHelpful, 6*day),
			"You chose the strategy track; you marked a similar one helpful 6 days ago."},
		{"Role focus", Subscriber{Focus: "lead"}, nil,
			"You chose to focus on leading; this one is from Communicating strategy."},
		{"Role focus and similar", Subscriber{Focus: "lead"}, acted(OutcomeDone, 9*day),
			"You chose to focus on leading; you marked a similar one done last week."},
		{"Similar done yesterday", Subscriber{}, acted(OutcomeDone, day),
			"You marked a similar one done yesterday."},
		{"Similar reflected today", Subscriber{}, acted(OutcomeReflected, time.Hour),
			"You reflected on a similar one earlier today."},
		{"Similar too old", Subscriber{}, acted(OutcomeHelpful, 15*day),
			"Something new from Communicating strategy: explain where we are going and why, and carry questions back up."},
		{"Skipped is not similar", Subscriber{}, acted(OutcomeSkipped, day),
			"Something new from Communicating strategy: explain where we are going and why, and carry questions back up."},
		{"Alternation yesterday", Subscriber{LastRole: RoleManage},
			[]Delivery{{NudgeID: "s-2", Theme: ThemeStrategy, Role: RoleManage, Slot: testNow.Add(-day)}},
			"A leading one today, after yesterday's managing one."},
		{"Alternation on Friday", Subscriber{LastRole: RoleLead},
			[]Delivery{{NudgeID: "s-1", Theme: ThemeStrategy, Role: RoleLead, Slot: testNow.Add(-4 * day)}},
			"A managing one today, after Friday's leading one."},
		{"Working for you", Subscriber{Stats: map[Theme]BetaStat{ThemeStrategy: {Up: 3}}}, nil,
			"More from Communicating strategy, which has been working for you."},
		{"Another look", Subscriber{Stats: map[Theme]BetaStat{ThemeStrategy: {Down: 2}}}, nil,
			"Another look at Communicating strategy, to see if it fits you better now."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := mustChoose(t, c, tt.sub, tt.history, seeded(10))
			if ch.Reason != tt.want {
				t.Errorf("Reason=%q, want %q", ch.Reason, tt.want)
			}
		})
	}
}

// Ensure every reason fits on one line, whatever the history.
func TestChoose_ReasonLength(t *testing.T) {
	c := mustDefault(t)
	rnd := seeded(11)
	outcomes := []Outcome{OutcomeNone, OutcomeDone, OutcomeHelpful, OutcomeReflected, OutcomeSkipped}
	for _, focus := range []string{"", "lead", "manage", "lead-role", "agenda-setter"} {
		sub := Subscriber{UserID: "U1", Focus: focus}
		var history []Delivery
		for i := range 200 {
			ch := mustChoose(t, c, sub, history, rnd)
			if n := utf8.RuneCountInString(ch.Reason); n > MaxReasonLen || n == 0 {
				t.Fatalf("Reason %q is %d characters, want 1 to %d", ch.Reason, n, MaxReasonLen)
			}
			o := outcomes[i%len(outcomes)]
			history = append(history, Delivery{NudgeID: ch.Nudge.ID, Theme: ch.Nudge.Theme, Role: ch.Nudge.Role, Slot: testNow.Add(time.Duration(i-200) * 24 * time.Hour), Outcome: o})
			Record(&sub, ch.Nudge)
			ApplyFeedback(&sub, ch.Nudge.Theme, o)
		}
	}
}

func TestClipRunes(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"one two three four", 10, "one two…"},
		{"ééééé ééééé", 8, "ééééé…"},
	}
	for _, tt := range tests {
		if got := clipRunes(tt.in, tt.limit); got != tt.want || utf8.RuneCountInString(got) > tt.limit {
			t.Errorf("clipRunes(%q, %d)=%q, want %q", tt.in, tt.limit, got, tt.want)
		}
	}
}

// Ensure Record tracks the cycle and the role, without writing into a
// Seen array that another copy of the Subscriber shares.
func TestRecord(t *testing.T) {
	lead := testNudge("a-1", RoleLead, ThemeLeading)
	manage := testNudge("b-1", RoleManage, ThemeManaging)
	both := testNudge("c-1", RoleBoth, ThemeChange)
	tests := []struct {
		name     string
		sub      Subscriber
		n        Nudge
		wantSeen []string
		wantRole Role
	}{
		{"First", Subscriber{}, lead, []string{"a-1"}, RoleLead},
		{"Append", Subscriber{Seen: []string{"a-1"}, LastRole: RoleLead}, manage, []string{"a-1", "b-1"}, RoleManage},
		{"Repeat starts a cycle", Subscriber{Seen: []string{"a-1", "b-1"}, LastRole: RoleManage}, lead, []string{"a-1"}, RoleLead},
		{"Both after lead counts as manage", Subscriber{LastRole: RoleLead}, both, []string{"c-1"}, RoleManage},
		{"Both after manage counts as lead", Subscriber{LastRole: RoleManage}, both, []string{"c-1"}, RoleLead},
		{"Both first stays both", Subscriber{}, both, []string{"c-1"}, RoleBoth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := tt.sub
			Record(&sub, tt.n)
			if !slices.Equal(sub.Seen, tt.wantSeen) {
				t.Errorf("Seen=%v, want %v", sub.Seen, tt.wantSeen)
			}
			if sub.LastRole != tt.wantRole {
				t.Errorf("LastRole=%q, want %q", sub.LastRole, tt.wantRole)
			}
		})
	}

	t.Run("No aliasing", func(t *testing.T) {
		backing := make([]string, 1, 4)
		backing[0] = "a-1"
		a := Subscriber{Seen: backing}
		b := a
		Record(&a, manage)
		Record(&b, both)
		if !slices.Equal(a.Seen, []string{"a-1", "b-1"}) || !slices.Equal(b.Seen, []string{"a-1", "c-1"}) {
			t.Errorf("a.Seen=%v, b.Seen=%v, want each with its own second id", a.Seen, b.Seen)
		}
	})
	Record(nil, lead) // must not panic
}

// Ensure each outcome moves the theme's stats the right way.
func TestApplyFeedback(t *testing.T) {
	tests := []struct {
		o    Outcome
		want BetaStat
	}{
		{OutcomeDone, BetaStat{Up: 1}},
		{OutcomeReflected, BetaStat{Up: 1}},
		{OutcomeHelpful, BetaStat{Up: 1}},
		{OutcomeSkipped, BetaStat{Down: 1}},
		{OutcomeNotForMe, BetaStat{Down: 2}},
		{OutcomeSnoozed, BetaStat{}},
		{OutcomeNone, BetaStat{}},
		{"unknown", BetaStat{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.o), func(t *testing.T) {
			shared := map[Theme]BetaStat{ThemeLeading: {Up: 5}}
			sub := Subscriber{Stats: shared}
			ApplyFeedback(&sub, ThemeDiplomat, tt.o)
			if got := sub.Stats[ThemeDiplomat]; got != tt.want {
				t.Errorf("Stats[diplomat]=%+v, want %+v", got, tt.want)
			}
			if got := sub.Stats[ThemeLeading]; got != (BetaStat{Up: 5}) {
				t.Errorf("Stats[leading]=%+v, want it untouched", got)
			}
			if _, ok := shared[ThemeDiplomat]; ok {
				t.Error("ApplyFeedback wrote into a map another Subscriber copy shares")
			}
		})
	}
	t.Run("Nil stats", func(t *testing.T) {
		var sub Subscriber
		ApplyFeedback(&sub, ThemeChange, OutcomeDone)
		ApplyFeedback(&sub, ThemeChange, OutcomeDone)
		if got := sub.Stats[ThemeChange]; got != (BetaStat{Up: 2}) {
			t.Errorf("Stats[change]=%+v, want Up 2", got)
		}
	})
	ApplyFeedback(nil, ThemeChange, OutcomeDone) // must not panic
}

// Ensure corrupt stored stats cannot break the sampler.
func TestChoose_CorruptStats(t *testing.T) {
	c := mustDefault(t)
	sub := Subscriber{UserID: "U1", Stats: map[Theme]BetaStat{
		ThemeLeading: {Up: math.NaN(), Down: -3},
		ThemeChange:  {Up: math.Inf(1), Down: math.Inf(-1)},
	}}
	rnd := seeded(12)
	for range 100 {
		mustChoose(t, c, sub, nil, rnd)
	}
}

func TestParseFocus(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"lead", "lead"},
		{"  LEAD ", "lead"},
		{"Leadership", "lead"},
		{"manage", "manage"},
		{"management", "manage"},
		{"both", "both"},
		{"leading", "leading"},
		{"Managing", "managing"},
		{"strategy", "strategy"},
		{"Communicating strategy", "strategy"},
		{"agenda-setter", "agenda-setter"},
		{"Agenda Setter", "agenda-setter"},
		{"problem-solver", "agenda-setter"},
		{"Problem-solver → agenda-setter", "agenda-setter"},
		{"diplomat", "diplomat"},
		{"warrior", "diplomat"},
		{"warrior -> diplomat", "diplomat"},
		{"Warrior to Diplomat", "diplomat"},
		{"warrior→diplomat", "diplomat"},
		{"lead role", "lead-role"},
		{"lead-role", "lead-role"},
		{"supporting cast", "lead-role"},
		{"specialist", "generalist"},
		{"analyst", "integrator"},
		{"tactician", "strategist"},
		{"bricklayer", "architect"},
		{"Leading change", "change"},
	}
	for _, tt := range tests {
		got, err := ParseFocus(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseFocus(%q)=%q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "   ", "boss", "→", "to", "diplomats", strings.Repeat("x", 500)} {
		_, err := ParseFocus(bad)
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseFocus(%q) err=%v, want ErrInvalidInput", bad, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "use lead, manage, both, or a theme: leading, managing, strategy,") || len(msg) > 300 {
			t.Errorf("ParseFocus(%q) err=%q, want a short list of the options", bad, msg)
		}
	}
}

// Ensure the catalog can serve many people at once.
func TestCatalog_Concurrent(t *testing.T) {
	c := mustDefault(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			sub := Subscriber{UserID: fmt.Sprint("U", i)}
			rnd := seeded(uint64(i))
			for range 50 {
				ch, err := c.Choose(sub, nil, testNow, rnd)
				if err != nil {
					t.Error(err)
					return
				}
				Record(&sub, ch.Nudge)
				c.Get(ch.Nudge.ID)
				c.ByTheme(ch.Nudge.Theme)
			}
		})
	}
	wg.Wait()
}

func ExampleParseFocus() {
	for _, s := range []string{"Warrior → diplomat", "agenda setter", "LEAD"} {
		f, _ := ParseFocus(s)
		fmt.Println(f)
	}
	_, err := ParseFocus("boss")
	fmt.Println(err)
	// Output:
	// diplomat
	// agenda-setter
	// lead
	// invalid focus "boss": use lead, manage, both, or a theme: leading, managing, strategy, organisation, developing, every-level, own-lean, generalist, integrator, strategist, architect, agenda-setter, diplomat, lead-role, change
}

func BenchmarkChoose(b *testing.B) {
	c := mustDefault(b)
	sub := Subscriber{UserID: "U1", LastRole: RoleLead}
	var history []Delivery
	for i, n := range c.All()[:c.Len()/2] {
		sub.Seen = append(sub.Seen, n.ID)
		ApplyFeedback(&sub, n.Theme, []Outcome{OutcomeDone, OutcomeSkipped, OutcomeHelpful}[i%3])
		history = append(history, Delivery{NudgeID: n.ID, Theme: n.Theme, Role: n.Role, Slot: testNow.Add(-time.Duration(c.Len()/2-i) * 24 * time.Hour), Outcome: OutcomeDone})
	}
	rnd := seeded(13)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Choose(sub, history, testNow, rnd); err != nil {
			b.Fatal(err)
		}
	}
}
