package nudges_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/nudgebot/nudgebot/nudges"
)

func recs(pairs ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return m
}

// Ensure complementary suppression withholds what a subtraction would
// reveal, the figure with the lowest Keep first, and nothing more.
func TestSuppressComplements(t *testing.T) {
	total := recs("d1", "A", "d2", "A", "d3", "B", "d4", "C", "d5", "D", "d6", "D", "d7", "E")
	strategy := recs("d1", "A", "d2", "A", "d3", "B", "d4", "C", "d5", "D", "d6", "D")
	theme := recs("d1", "A", "d2", "A", "d3", "B", "d4", "C")
	hidden := recs("d5", "D", "d6", "D")
	tests := map[string]struct {
		figs []nudges.Figure
		want []int
	}{
		"the issue's case: strategy (6) minus its theme (4) is one person's": {
			figs: []nudges.Figure{{Records: strategy, Shown: true, Keep: 3}, {Records: theme, Shown: true}, {Records: hidden, Shown: false}},
			want: []int{1},
		},
		"the total goes when it has the lower Keep": {
			figs: []nudges.Figure{{Records: strategy, Shown: true, Keep: 1}, {Records: theme, Shown: true, Keep: 2}},
			want: []int{0},
		},
		"a leftover of three people is safe": {
			figs: []nudges.Figure{{Records: total, Shown: true}, {Records: recs("d1", "A", "d2", "A"), Shown: true}},
			want: nil,
		},
		"two parts subtracted together": {
			figs: []nudges.Figure{
				{Records: total, Shown: true, Keep: 5},
				{Records: recs("d1", "A", "d2", "A", "d3", "B"), Shown: true, Keep: 1},
				{Records: recs("d4", "C", "d5", "D", "d6", "D"), Shown: true, Keep: 2},
			},
			want: []int{1}, // total − both = E alone; withholding one part leaves three people
		},
		"withheld figures are no parts": {
			figs: []nudges.Figure{{Records: strategy, Shown: true}, {Records: theme, Shown: false}},
			want: nil,
		},
		"an empty leftover is safe": {
			figs: []nudges.Figure{{Records: theme, Shown: true}, {Records: recs("d1", "A", "d2", "A", "d3", "B", "d4", "C"), Shown: true}},
			want: nil,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := nudges.SuppressComplements(tt.figs, 3); !slices.Equal(got, tt.want) {
				t.Errorf("withheld %v, want %v", got, tt.want)
			}
		})
	}
}

// Ensure no difference a digest allows isolates anyone: for random teams
// and weeks, every shown figure minus every combination of shown figures
// inside it (counted here from the deliveries, not from the digest's own
// bookkeeping) leaves nobody or at least the threshold of people.
func TestBuildDigest_NoDifferenceIsolates(t *testing.T) {
	themes := []nudges.Theme{nudges.ThemeStrategy, nudges.ThemeOrganisation, nudges.ThemeLeading, nudges.ThemeManaging, ""}
	outcomes := []nudges.Outcome{nudges.OutcomeDone, nudges.OutcomeReflected, nudges.OutcomeSkipped, ""}
	const min = nudges.MinGroup
	for seed := range uint64(2000) {
		r := rand.New(rand.NewPCG(seed, 19))
		people := users(2 + r.IntN(6))
		var ds []nudges.Delivery
		for _, p := range people {
			for day := range r.IntN(5) {
				ds = append(ds, acted(p, day, themes[r.IntN(len(themes))], outcomes[r.IntN(len(outcomes))]))
			}
		}
		in := weekInput(people, ds...)
		d := nudges.BuildDigest(in)

		type fig struct {
			name string
			recs map[int]string
		}
		count := func(name string, keep func(nudges.Delivery) bool) fig {
			f := fig{name: name, recs: map[int]string{}}
			for i, dl := range ds {
				if keep(dl) {
					f.recs[i] = dl.UserID
				}
			}
			return f
		}
		var shown []fig
		if d.ReceivedShown {
			shown = append(shown, count("received", func(dl nudges.Delivery) bool { return dl.State == nudges.StateSent }))
		}
		if d.ActedOnShown {
			shown = append(shown, count("acted on", func(dl nudges.Delivery) bool { return dl.Outcome.Acted() }))
		}
		if d.StrategyShown {
			shown = append(shown, count("strategy", func(dl nudges.Delivery) bool {
				return dl.Outcome.Acted() && (dl.Theme == nudges.ThemeStrategy || dl.Theme == nudges.ThemeOrganisation)
			}))
		}
		for _, tc := range d.TopThemes {
			shown = append(shown, count(string(tc.Theme), func(dl nudges.Delivery) bool { return dl.Outcome.Acted() && dl.Theme == tc.Theme }))
		}
		for a, whole := range shown {
			for mask := 0; mask < 1<<len(shown); mask++ {
				if mask&(1<<a) != 0 {
					continue
				}
				left := map[int]string{}
				for i, p := range whole.recs {
					left[i] = p
				}
				ok, names := true, []string{whole.name}
				for b, part := range shown {
					if mask&(1<<b) == 0 {
						continue
					}
					names = append(names, part.name)
					for i := range part.recs {
						if _, in := left[i]; !in {
							ok = false // not inside what is left: no subtraction
						}
						delete(left, i)
					}
				}
				if !ok {
					continue
				}
				who := map[string]bool{}
				for _, p := range left {
					who[p] = true
				}
				if n := len(who); n > 0 && n < min {
					t.Fatalf("seed %d: %v leaves %d records of %d people:\ndigest %+v", seed, names, len(left), n, d)
				}
			}
		}
	}
}

func ExampleSuppressComplements() {
	strategy := map[string]string{"d1": "Ana", "d2": "Ben", "d3": "Cy", "d4": "Dee", "d5": "Dee"}
	strategyTheme := map[string]string{"d1": "Ana", "d2": "Ben", "d3": "Cy"}
	withheld := nudges.SuppressComplements([]nudges.Figure{
		{Records: strategy, Shown: true, Keep: 1},
		{Records: strategyTheme, Shown: true},
	}, 3)
	fmt.Println(withheld)
	// Output: [1]
}
