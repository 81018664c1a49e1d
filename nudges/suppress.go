package nudges

import (
	"cmp"
	"slices"
)

// Figure is one count a team digest may show, for complementary
// suppression: the records it counts, each with the person it belongs
// to, and whether it is shown so far.
type Figure struct {
	// Records maps each record counted (a delivery id) to its person.
	Records map[string]string
	Shown   bool
	// Keep orders what is withheld first when a difference must go: the
	// lowest Keep, then the smallest count.
	Keep int
}

// SuppressComplements withholds figures until no difference of the shown
// ones describes fewer than min people. Whoever reads a digest can take
// a shown figure and subtract any shown figures that are parts of it
// (strategy updates minus the strategy theme leaves the organisation
// theme, which its own rule withheld): for every shown figure and every
// set of shown, disjoint figures inside it, the records left over must
// belong to nobody or to at least min people. A failing difference loses
// one of its figures (the lowest Keep, then the smallest), and the check
// runs again. It returns which figures it withheld, in order.
func SuppressComplements(figs []Figure, min int) []int {
	var withheld []int
	for {
		bad := failingDifference(figs, min)
		if bad == nil {
			return withheld
		}
		victim := slices.MinFunc(bad, func(a, b int) int {
			if c := cmp.Compare(figs[a].Keep, figs[b].Keep); c != 0 {
				return c
			}
			return cmp.Compare(len(figs[a].Records), len(figs[b].Records))
		})
		figs[victim].Shown = false
		withheld = append(withheld, victim)
	}
}

// failingDifference is a shown figure and the parts subtracted from it
// whose leftover describes 1 to min-1 people; nil when there is none.
func failingDifference(figs []Figure, min int) []int {
	for a, whole := range figs {
		if !whole.Shown {
			continue
		}
		var parts []int
		for b, p := range figs {
			if b != a && p.Shown && len(p.Records) < len(whole.Records) && subset(p.Records, whole.Records) {
				parts = append(parts, b)
			}
		}
		// Every combination of disjoint parts: a digest has a handful of
		// figures, so at most a few dozen.
		for mask := 1; mask < 1<<len(parts); mask++ {
			var chosen []int
			for i, b := range parts {
				if mask&(1<<i) != 0 {
					chosen = append(chosen, b)
				}
			}
			if !disjoint(figs, chosen) {
				continue
			}
			if n := leftoverPeople(figs, whole, chosen); n > 0 && n < min {
				return append(chosen, a)
			}
		}
	}
	return nil
}

func subset(part, whole map[string]string) bool {
	for id := range part {
		if _, ok := whole[id]; !ok {
			return false
		}
	}
	return true
}

func disjoint(figs []Figure, chosen []int) bool {
	seen := map[string]bool{}
	for _, i := range chosen {
		for id := range figs[i].Records {
			if seen[id] {
				return false
			}
			seen[id] = true
		}
	}
	return true
}

// leftoverPeople counts the people behind whole's records outside the
// chosen parts.
func leftoverPeople(figs []Figure, whole Figure, chosen []int) int {
	people := map[string]bool{}
	for id, person := range whole.Records {
		in := false
		for _, i := range chosen {
			if _, ok := figs[i].Records[id]; ok {
				in = true
				break
			}
		}
		if !in {
			people[person] = true
		}
	}
	return len(people)
}
