package nudges

import (
	"fmt"
	"time"
)

// Thresholds for PulseLean. A fall of ClarityDrop points between two
// pulses is more than the wobble of a small team's answers; an average at
// or below ClarityLow means most people are unsure where things are going.
const (
	ClarityDrop = 0.3
	ClarityLow  = 2.5
)

// Lean tells Choose to bring strategy and organisation nudges forward for
// the managers of one channel, and why. The zero value leans nowhere.
type Lean struct {
	Sooner bool `json:"sooner,omitempty"`
	// Reason is shown with the nudge. It describes the team, never one
	// person.
	Reason string `json:"reason,omitempty"`
}

// TeamLean is a Lean a person carries from their team's last digest
// until the next one.
type TeamLean struct {
	Lean  Lean      `json:"lean,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// At is the lean in force at now: none once it has run out.
func (t TeamLean) At(now time.Time) Lean {
	if now.Before(t.Until) {
		return t.Lean
	}
	return Lean{}
}

// leanThemes are the themes a Lean brings forward.
var leanThemes = [...]Theme{ThemeStrategy, ThemeOrganisation}

func leansOn(t Theme) bool { return t == leanThemes[0] || t == leanThemes[1] }

// PulseLean decides from a channel's closed pulses (oldest first) and the
// number of distinct people who asked to hear more in the latest one
// whether its managers should get strategy and organisation nudges
// sooner. Only pulses with at least minGroup answers count, and the
// hear-more count only when it is at least minGroup; minGroup is never
// taken below MinGroup, so no signal can describe one person.
func PulseLean(trend []PulseSummary, hearMorePeople, minGroup int) Lean {
	minGroup = max(minGroup, MinGroup)
	var shown []PulseSummary
	for _, p := range trend {
		if p.Responses >= minGroup {
			shown = append(shown, p)
		}
	}
	var clarity string
	if n := len(shown); n > 0 {
		last := shown[n-1].Average()
		switch {
		case n >= 2 && shown[n-2].Average()-last >= ClarityDrop-1e-9:
			clarity = fmt.Sprintf("Your team's clarity pulse went from %.1f to %.1f.", shown[n-2].Average(), last)
		case last <= ClarityLow:
			clarity = fmt.Sprintf("Your team rated how clear the direction is at %.1f out of %d.", last, PulseMaxScore)
		}
	}
	var asked string
	if hearMorePeople >= minGroup {
		asked = fmt.Sprintf("%d people on your team asked to hear more.", hearMorePeople)
	}
	switch {
	case clarity != "" && asked != "":
		return Lean{Sooner: true, Reason: clipRunes(clarity+" "+asked, MaxReasonLen)}
	case clarity != "":
		return Lean{Sooner: true, Reason: clarity}
	case asked != "":
		return Lean{Sooner: true, Reason: asked}
	}
	return Lean{}
}

// StrongestLean picks, for a person in several channels, the lean to
// follow: the first that leans, in the order given.
func StrongestLean(leans ...Lean) Lean {
	for _, l := range leans {
		if l.Sooner {
			return l
		}
	}
	return Lean{}
}
