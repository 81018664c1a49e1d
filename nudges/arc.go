package nudges

import "fmt"

// ArcProgress is how far a person is along the arc of their focus theme:
// Steps nudges of Theme delivered since they chose it. Record keeps it up
// to date; Choose follows it. The zero value means no arc has begun.
type ArcProgress struct {
	Theme Theme `json:"theme,omitempty"`
	Steps int   `json:"steps,omitempty"`
}

// maxArcSteps caps Steps so a long-kept focus cannot grow it without
// bound; any arc is far shorter.
const maxArcSteps = 99

// advanceArc is Record's part for arcs. Only a focus on a transition
// theme has an arc, and every step of an arc is a nudge of that theme, so
// counting the theme's nudges since the focus was chosen is the arc's
// progress, and Record needs no catalog to keep it.
func advanceArc(sub *Subscriber, n Nudge) {
	f := focusOf(sub.Focus)
	info, ok := LookupTheme(f.theme)
	if !ok || !info.Transition {
		sub.Arc = ArcProgress{}
		return
	}
	if n.Theme != f.theme {
		return
	}
	if sub.Arc.Theme != f.theme {
		sub.Arc = ArcProgress{Theme: f.theme}
	}
	sub.Arc.Steps = min(sub.Arc.Steps+1, maxArcSteps)
}

// Arc returns the ordered nudge ids of a theme's arc, or nil.
func (c *Catalog) Arc(t Theme) []string {
	return append([]string(nil), c.arcs[t]...)
}

// arcStep returns the index of the nudge the person's arc calls for next,
// or -1 when they are on no arc or have finished it.
func (c *Catalog) arcStep(sub Subscriber) (Theme, int) {
	f := focusOf(sub.Focus)
	arc := c.arcs[f.theme]
	if len(arc) == 0 {
		return "", -1
	}
	steps := 0
	if sub.Arc.Theme == f.theme {
		steps = sub.Arc.Steps
	}
	if steps >= len(arc) {
		return f.theme, -1
	}
	return f.theme, steps
}

// ArcStatus is where a person is on an arc, for /nudge status and App
// Home.
type ArcStatus struct {
	Theme Theme
	Title string // the theme's title, e.g. "Specialist → generalist"
	Day   int    // arc nudges delivered so far, 0 before the first
	Of    int    // the arc's length
}

// Done reports whether the whole arc has been delivered.
func (a ArcStatus) Done() bool { return a.Day >= a.Of }

// String reads "day 2 of 5 of the Specialist → generalist arc", or says
// the arc starts with the next nudge, or that it is finished.
func (a ArcStatus) String() string {
	switch {
	case a.Day <= 0:
		return fmt.Sprintf("the %s arc (%d days) starts with your next nudge", a.Title, a.Of)
	case a.Done():
		return fmt.Sprintf("finished the %d-day %s arc; now a mix from the theme", a.Of, a.Title)
	}
	return fmt.Sprintf("day %d of %d of the %s arc", a.Day, a.Of, a.Title)
}

// ArcStatus reports where sub is on the arc of their focus theme; ok is
// false when their focus has no arc.
func (c *Catalog) ArcStatus(sub Subscriber) (ArcStatus, bool) {
	f := focusOf(sub.Focus)
	arc := c.arcs[f.theme]
	if len(arc) == 0 {
		return ArcStatus{}, false
	}
	info, _ := LookupTheme(f.theme)
	s := ArcStatus{Theme: f.theme, Title: info.Title, Of: len(arc)}
	if sub.Arc.Theme == f.theme {
		s.Day = min(sub.Arc.Steps, len(arc))
	}
	return s, true
}
