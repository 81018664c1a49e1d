package nudges

import (
	"testing"
)

// Ensure the wording quotes a strategy line where the nudge has a place
// for one, stays readable without lines, keeps one line per delivery, and
// adds the say line.
func TestWorded(t *testing.T) {
	n := Nudge{ID: "strategy-99-x", Role: RoleBoth, Theme: ThemeStrategy,
		Prompt:         "Share a strategy update.",
		StrategyPrompt: "Share one way this week's work moves: “{line}”.",
		Say:            "Here is where we are going.",
		Why:            "W.", Question: "Q?"}
	lines := []string{"Every customer on the new plan by June", "  ", "Half the support queue answered the same day"}
	tests := []struct {
		name  string
		lines []string
		want  []string
	}{
		{"No lines", nil, []string{"Share a strategy update."}},
		{"Blank lines only", []string{" ", ""}, []string{"Share a strategy update."}},
		{"Lines", lines, []string{"Share one way this week's work moves: “Every customer on the new plan by June”.", "Share one way this week's work moves: “Half the support queue answered the same day”."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, seed := range []string{"U1-a", "U1-b", "U2-a", "U3-c", "U4-d", "U5-e"} {
				w := n.Worded(WordingOptions{StrategyLines: tt.lines, Seed: seed})
				if again := n.Worded(WordingOptions{StrategyLines: tt.lines, Seed: seed}); again != w {
					t.Fatalf("seed %s gave %q then %q", seed, w.Prompt, again.Prompt)
				}
				seen[w.Prompt] = true
				if w.Say != "Try saying: “Here is where we are going.”" {
					t.Errorf("Say=%q", w.Say)
				}
			}
			for _, p := range tt.want {
				if !seen[p] {
					t.Errorf("prompts %v, want %q among them", seen, p)
				}
			}
			if len(seen) != len(tt.want) {
				t.Errorf("prompts %v, want exactly %v", seen, tt.want)
			}
		})
	}
	if w := (Nudge{Prompt: "P.", StrategyPrompt: "Q {line}."}).Worded(WordingOptions{}); w.Say != "" || w.Fallback != "" || w.Prompt != "P." {
		t.Errorf("plain Worded=%+v", w)
	}
	if w := (Nudge{Prompt: "P."}).Worded(WordingOptions{StrategyLines: lines}); w.Prompt != "P." {
		t.Errorf("a nudge without a strategy prompt quoted a line: %q", w.Prompt)
	}
}
