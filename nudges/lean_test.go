package nudges

import (
	"errors"
	"strings"
	"testing"
)

func pulse(avg float64, n int) PulseSummary {
	return PulseSummary{Responses: n, Sum: int(avg*float64(n) + 0.5)}
}

// Ensure the pulse leans only on figures that describe enough people, and
// says why in words about the team.
func TestPulseLean(t *testing.T) {
	tests := []struct {
		name     string
		trend    []PulseSummary
		hearMore int
		minGroup int
		want     string // "" for no lean
	}{
		{"Fall", []PulseSummary{pulse(3.9, 10), pulse(3.1, 10)}, 0, 3, "Your team's clarity pulse went from 3.9 to 3.1."},
		{"Small fall", []PulseSummary{pulse(3.9, 10), pulse(3.7, 10)}, 0, 3, ""},
		{"Rise", []PulseSummary{pulse(3.0, 10), pulse(3.6, 10)}, 0, 3, ""},
		{"Fall past a small pulse", []PulseSummary{pulse(4.0, 5), pulse(1.0, 2), pulse(3.5, 4)}, 0, 3, "Your team's clarity pulse went from 4.0 to 3.5."},
		{"Too few answers", []PulseSummary{pulse(4.0, 2), pulse(2.0, 2)}, 0, 3, ""},
		{"Low", []PulseSummary{pulse(2.4, 5)}, 0, 3, "Your team rated how clear the direction is at 2.4 out of 5."},
		{"Hear more", nil, 4, 3, "4 people on your team asked to hear more."},
		{"Hear more below threshold", nil, 2, 3, ""},
		{"Threshold never below MinGroup", nil, 2, 1, ""},
		{"Higher threshold", []PulseSummary{pulse(3.9, 4), pulse(3.0, 4)}, 4, 5, ""},
		{"Both", []PulseSummary{pulse(3.9, 10), pulse(3.1, 10)}, 3, 3, "Your team's clarity pulse went from 3.9 to 3.1. 3 people on your team asked to hear more."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := PulseLean(tt.trend, tt.hearMore, tt.minGroup)
			if l.Sooner != (tt.want != "") || l.Reason != tt.want {
				t.Errorf("PulseLean=%+v, want reason %q", l, tt.want)
			}
		})
	}
	if l := StrongestLean(Lean{}, Lean{Sooner: true, Reason: "b"}, Lean{Sooner: true, Reason: "c"}); l.Reason != "b" {
		t.Errorf("StrongestLean=%+v, want the first that leans", l)
	}
}

// Ensure a lean brings a strategy or organisation nudge forward with its
// reason, but not two days running, and never past a chosen theme focus.
func TestChooseWith_Lean(t *testing.T) {
	c := mustDefault(t)
	lean := PulseLean([]PulseSummary{pulse(3.9, 6), pulse(3.1, 6)}, 0, MinGroup)
	opts := ChooseOptions{Lean: lean}
	for seed := range uint64(20) {
		ch, err := c.ChooseWith(Subscriber{UserID: "U1"}, nil, testNow, seeded(seed), opts)
		if err != nil {
			t.Fatal(err)
		}
		if !leansOn(ch.Nudge.Theme) || ch.Reason != lean.Reason {
			t.Fatalf("seed %d: chose %s (%s) with %q, want a strategy or organisation nudge with the pulse's reason", seed, ch.Nudge.ID, ch.Nudge.Theme, ch.Reason)
		}
	}
	recent := []Delivery{{NudgeID: "strategy-01-two-sentence-update", Theme: ThemeStrategy}}
	for seed := range uint64(20) {
		ch, _ := c.ChooseWith(Subscriber{UserID: "U1"}, recent, testNow, seeded(seed), opts)
		if ch.Reason == lean.Reason {
			t.Fatalf("seed %d: leaned again right after a strategy nudge", seed)
		}
	}
	ch, _ := c.ChooseWith(Subscriber{UserID: "U1", Focus: "diplomat"}, nil, testNow, seeded(1), opts)
	if ch.Nudge.Theme != ThemeDiplomat {
		t.Errorf("focus diplomat with a lean chose %s", ch.Nudge.ID)
	}
	if strings.Contains(ch.Reason, "pulse") {
		t.Errorf("Reason=%q, want the arc's", ch.Reason)
	}
}

func TestParseStrategyArgs(t *testing.T) {
	long := strings.Repeat("a", MaxStrategyLineLen+1)
	tests := []struct {
		in   string
		want StrategyArgs
		err  string
	}{
		{"", StrategyArgs{Op: StrategyShow}, ""},
		{"show", StrategyArgs{Op: StrategyShow}, ""},
		{"clear", StrategyArgs{Op: StrategyClear}, ""},
		{"add Every customer on the new plan by June", StrategyArgs{Op: StrategySet, Text: "Every customer on the new plan by June"}, ""},
		{"set 2  Fewer, better products ", StrategyArgs{Op: StrategySet, Index: 2, Text: "Fewer, better products"}, ""},
		{"remove 3", StrategyArgs{Op: StrategyRemove, Index: 3}, ""},
		{"set 4 text", StrategyArgs{}, "say which line, 1 to 3"},
		{"set 1", StrategyArgs{}, "the line is empty"},
		{"add " + long[:MaxStrategyLineLen-10] + " {line}", StrategyArgs{}, "contains {line}"},
		{"add " + long, StrategyArgs{}, "the line is 201 characters"},
		{"add " + long + long, StrategyArgs{}, "too long"},
		{"remove 1 extra", StrategyArgs{}, "only the line's number"},
		{"publish now", StrategyArgs{}, `"publish" is not a strategy command`},
	}
	for _, tt := range tests {
		got, err := ParseStrategyArgs(tt.in)
		if tt.err != "" {
			if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseStrategyArgs(%.30q) err=%v, want ErrInvalidInput containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseStrategyArgs(%q)=%+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestStrategyArgs_Apply(t *testing.T) {
	two := []string{"A", "B"}
	tests := []struct {
		a    StrategyArgs
		want []string
		err  bool
	}{
		{StrategyArgs{Op: StrategyShow}, two, false},
		{StrategyArgs{Op: StrategyClear}, nil, false},
		{StrategyArgs{Op: StrategySet, Index: 1, Text: "C"}, []string{"C", "B"}, false},
		{StrategyArgs{Op: StrategySet, Text: "C"}, []string{"A", "B", "C"}, false},
		{StrategyArgs{Op: StrategySet, Index: 3, Text: "C"}, []string{"A", "B", "C"}, false},
		{StrategyArgs{Op: StrategyRemove, Index: 1}, []string{"B"}, false},
		{StrategyArgs{Op: StrategyRemove, Index: 3}, nil, true},
		{StrategyArgs{Op: StrategySet, Text: ""}, nil, true},
	}
	for _, tt := range tests {
		got, err := tt.a.Apply(two)
		if (err != nil) != tt.err || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%+v.Apply=%q, %v; want %q, error %v", tt.a, got, err, tt.want, tt.err)
		}
	}
	if two[0] != "A" || len(two) != 2 {
		t.Errorf("Apply changed its input: %q", two)
	}
	if _, err := (StrategyArgs{Op: StrategySet, Text: "D"}).Apply([]string{"A", "B", "C"}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("a fourth line: err=%v, want ErrInvalidInput", err)
	}
}

func FuzzParseStrategyArgs(f *testing.F) {
	for _, s := range []string{"", "show", "clear", "add x", "set 1 y", "remove 2", "set 9 z", "add {line}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseStrategyArgs(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("ParseStrategyArgs(%q) err=%v, want ErrInvalidInput", s, err)
			}
			return
		}
		lines, err := a.Apply([]string{"A"})
		if err != nil && a.Op != StrategyRemove {
			t.Fatalf("ParseStrategyArgs(%q)=%+v, whose Apply failed: %v", s, a, err)
		}
		if len(lines) > MaxStrategyLines {
			t.Fatalf("%d lines after %+v", len(lines), a)
		}
		for _, l := range lines {
			if CheckStrategyLine(l) != nil {
				t.Fatalf("Apply(%+v) kept a bad line %q", a, l)
			}
		}
	})
}
