package nudges

import (
	"fmt"
	"time"
)

// DeliveryID names the delivery of one person's slot. Deriving it from the
// slot, instead of drawing a random id, is what makes a second delivery
// of the same slot impossible: it would collide with the first. The
// timestamp sorts, so one person's deliveries are a contiguous, ordered
// range of keys.
func DeliveryID(userID string, slot time.Time, manual bool) string {
	id := userID + "-" + slot.UTC().Format("20060102T150405Z")
	if manual {
		id += "-now"
	}
	return id
}

// HistoryWindow is the longest look-back of anything computed from a
// person's delivery history that a person or a digest sees: the streak
// on /nudge status, App Home and in digests, and the recent nudges the
// choice of the next one avoids. The leading/managing balance looks back
// four weeks.
const HistoryWindow = 60 * 24 * time.Hour

// MinRetention is the shortest time deliveries may be kept: the history
// window and a day's margin. Pruning then never removes a record a
// reader could still see, so nothing anyone is shown changes, and no
// roll-up of pruned deliveries is needed.
const MinRetention = HistoryWindow + 24*time.Hour

// Acted reports whether the person did something with the nudge that
// counts as practice.
func (o Outcome) Acted() bool {
	return o == OutcomeDone || o == OutcomeReflected
}

// Streak counts the consecutive scheduled nudges, newest first, that the
// person marked done (or reflected on). The newest one does not break a
// streak while it is still unanswered and less than a day old: the person
// may simply not have got to it yet. history must be oldest first.
func Streak(history []Delivery, now time.Time) int {
	n := 0
	for i := len(history) - 1; i >= 0; i-- {
		d := history[i]
		if d.Manual || d.State == StateFailed {
			continue
		}
		if d.Outcome.Acted() {
			n++
			continue
		}
		if n == 0 && d.Outcome == OutcomeNone && d.State != StateMissed && now.Sub(d.Slot) < 24*time.Hour {
			continue
		}
		break
	}
	return n
}

// Balance counts the leading and managing nudges acted on since a time.
// A nudge for both roles counts once on each side.
func Balance(history []Delivery, since time.Time) (lead, manage int) {
	for _, d := range history {
		if d.Slot.Before(since) || !d.Outcome.Acted() {
			continue
		}
		switch d.Role {
		case RoleLead:
			lead++
		case RoleManage:
			manage++
		case RoleBoth:
			lead++
			manage++
		}
	}
	return lead, manage
}

// OutcomeText is how an outcome reads after the fact, e.g. "Done".
func OutcomeText(o Outcome) string {
	switch o {
	case OutcomeDone:
		return "Done"
	case OutcomeSnoozed:
		return "Snoozed"
	case OutcomeSkipped:
		return "Skipped"
	case OutcomeReflected:
		return "Reflected"
	case OutcomeNotForMe:
		return "Not for me"
	case OutcomeNone:
		return "No answer yet"
	}
	return fmt.Sprintf("%q", string(o))
}
