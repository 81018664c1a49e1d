package nudges

import (
	"slices"
	"strings"
	"testing"
)

// Ensure a focus on a transition gives its arc in the declared order, with
// "day N of 5" in the reason and the status, then returns to the theme's
// mix without repeating the arc.
func TestChoose_Arc(t *testing.T) {
	c := mustDefault(t)
	arc := c.Arc(ThemeGeneralist)
	if len(arc) != 5 {
		t.Fatalf("Arc(generalist)=%v, want 5 steps", arc)
	}
	sub := Subscriber{UserID: "U1", Focus: "generalist"}
	rnd := seeded(11)
	if st, ok := c.ArcStatus(sub); !ok || st.Day != 0 || !strings.Contains(st.String(), "starts with your next nudge") {
		t.Errorf("ArcStatus before=%+v %q, %v; want day 0, starting next", st, st.String(), ok)
	}
	for day, want := range arc {
		ch := mustChoose(t, c, sub, nil, rnd)
		if ch.Nudge.ID != want {
			t.Fatalf("day %d: chose %s, want %s", day+1, ch.Nudge.ID, want)
		}
		if !strings.HasPrefix(ch.Reason, "Day "+string(rune('1'+day))+" of 5 of the Specialist → generalist arc") {
			t.Errorf("day %d: Reason=%q", day+1, ch.Reason)
		}
		Record(&sub, ch.Nudge)
		st, _ := c.ArcStatus(sub)
		if st.Day != day+1 || st.Of != 5 {
			t.Errorf("after day %d: ArcStatus=%+v", day+1, st)
		}
	}
	if st, _ := c.ArcStatus(sub); !st.Done() || !strings.Contains(st.String(), "finished") {
		t.Errorf("ArcStatus after=%q, want finished", st.String())
	}
	if got := (ArcStatus{Title: "Specialist → generalist", Day: 2, Of: 5}).String(); got != "day 2 of 5 of the Specialist → generalist arc" {
		t.Errorf("String()=%q", got)
	}
	// Back to the mix: the theme's other nudges, none of the arc's again
	// until the cycle is used up.
	for range len(c.ByTheme(ThemeGeneralist)) - len(arc) {
		ch := mustChoose(t, c, sub, nil, rnd)
		if slices.Contains(arc, ch.Nudge.ID) || ch.Nudge.Theme != ThemeGeneralist || strings.HasPrefix(ch.Reason, "Day ") {
			t.Fatalf("after the arc chose %s (%q), want another generalist nudge", ch.Nudge.ID, ch.Reason)
		}
		Record(&sub, ch.Nudge)
	}
}

// Ensure changing focus starts the new theme's arc, and a focus with no
// arc clears progress so choosing the theme again starts afresh.
func TestRecord_ArcFollowsFocus(t *testing.T) {
	c := mustDefault(t)
	sub := Subscriber{UserID: "U1", Focus: "diplomat", Arc: ArcProgress{Theme: ThemeGeneralist, Steps: 3}}
	ch := mustChoose(t, c, sub, nil, seeded(1))
	if want := c.Arc(ThemeDiplomat)[0]; ch.Nudge.ID != want {
		t.Fatalf("new focus chose %s, want the diplomat arc's first step %s", ch.Nudge.ID, want)
	}
	Record(&sub, ch.Nudge)
	if sub.Arc != (ArcProgress{Theme: ThemeDiplomat, Steps: 1}) {
		t.Errorf("Arc=%+v, want diplomat step 1", sub.Arc)
	}
	sub.Focus = "lead"
	Record(&sub, mustChoose(t, c, sub, nil, seeded(1)).Nudge)
	if sub.Arc != (ArcProgress{}) {
		t.Errorf("Arc=%+v after a role focus, want cleared", sub.Arc)
	}
	if _, ok := c.ArcStatus(sub); ok {
		t.Error("ArcStatus ok for a role focus, want none")
	}
	if _, ok := c.ArcStatus(Subscriber{Focus: "strategy"}); ok {
		t.Error("ArcStatus ok for a theme without an arc, want none")
	}
}

// Ensure a person never gets a nudge they cannot act on: a context-only
// nudge goes only to people who said they have every setting it needs,
// and a nudge with a fallback is shown with it to everyone else.
func TestChoose_Contexts(t *testing.T) {
	only := Nudge{ID: "x-only", Role: RoleLead, Theme: ThemeDeveloping, Prompt: "Coach a manager.", Why: "W.", Question: "Q?",
		Needs: ContextsOf(ContextManagesManagers), ContextOnly: true}
	fb := Nudge{ID: "x-fallback", Role: RoleLead, Theme: ThemeDeveloping, Prompt: "At standup, ask.", Why: "W.", Question: "Q?",
		Needs: ContextsOf(ContextStandup), Fallback: "No standup? Ask in a message."}
	c := newCatalog([]Nudge{only, fb})
	tests := []struct {
		name     string
		sit      Situation
		wantOnly bool
		fallback bool
	}{
		{"Not told", Situation{}, false, true},
		{"None", Situation{Known: true}, false, true},
		{"Has standup", Situation{Known: true, Has: ContextsOf(ContextStandup)}, false, false},
		{"Manages managers", Situation{Known: true, Has: ContextsOf(ContextManagesManagers)}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := Subscriber{UserID: "U1", Contexts: tt.sit}
			got := map[string]bool{}
			rnd := seeded(4)
			for range 20 {
				ch := mustChoose(t, c, sub, nil, rnd)
				got[ch.Nudge.ID] = true
				Record(&sub, ch.Nudge)
			}
			if got[only.ID] != tt.wantOnly {
				t.Errorf("context-only chosen=%v, want %v", got[only.ID], tt.wantOnly)
			}
			if w := fb.Worded(WordingOptions{Situation: tt.sit}); (w.Fallback != "") != tt.fallback {
				t.Errorf("Worded fallback=%q, want shown=%v", w.Fallback, tt.fallback)
			}
		})
	}
}

// Ensure a catalog with only context-only nudges says so rather than
// handing one to someone who cannot do it.
func TestChoose_ContextOnlyNoEligible(t *testing.T) {
	n := Nudge{ID: "x-only", Role: RoleLead, Theme: ThemeDeveloping, Prompt: "P.", Why: "W.", Question: "Q?", Needs: ContextsOf(ContextManagesManagers), ContextOnly: true}
	if _, err := newCatalog([]Nudge{n}).Choose(Subscriber{UserID: "U1"}, nil, testNow, seeded(1)); err == nil {
		t.Error("Choose gave a context-only nudge to someone who has not said they have its setting")
	}
}
