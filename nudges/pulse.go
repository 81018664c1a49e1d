package nudges

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The clarity pulse asks a channel "How clear is our direction right
// now?" on a scale of PulseMinScore to PulseMaxScore. Answers are
// anonymous: only the totals outlive the pulse.
const (
	PulseMinScore = 1
	PulseMaxScore = 5

	// MaxHearMoreLen bounds one "what would you like to hear more
	// about" answer, in characters.
	MaxHearMoreLen = 500

	// MaxHearMorePerPerson bounds the answers one person may add to one
	// pulse, so nobody can drown out the rest of the team.
	MaxHearMorePerPerson = 3
)

// Errors about pulses; adapters wrap them with context.
var (
	// ErrPulseClosed means the pulse no longer takes answers.
	ErrPulseClosed = errors.New("this pulse has closed")

	// ErrTooManyAnswers means the person already added
	// MaxHearMorePerPerson answers to the pulse.
	ErrTooManyAnswers = errors.New("too many answers to this pulse")
)

// PulseSummary is what is kept of a closed pulse: totals, never who
// answered what.
type PulseSummary struct {
	PeriodEnd time.Time `json:"period_end"`
	Responses int       `json:"responses"`
	Sum       int       `json:"sum"`
	// Counts[i] is how many people answered score i+1.
	Counts   [PulseMaxScore]int `json:"counts"`
	HearMore []string           `json:"hear_more,omitempty"`
	// HearMoreWriters is how many people wrote the HearMore answers: the
	// answers are shown only when enough people wrote them, whatever
	// number of people voted.
	HearMoreWriters int `json:"hear_more_writers,omitempty"`
}

// Average is the mean score, or 0 when nobody answered.
func (p PulseSummary) Average() float64 {
	if p.Responses == 0 {
		return 0
	}
	return float64(p.Sum) / float64(p.Responses)
}

// Record adds one answer to the totals.
func (p *PulseSummary) Record(score int) error {
	if err := ValidPulseScore(score); err != nil {
		return err
	}
	p.Responses++
	p.Sum += score
	p.Counts[score-PulseMinScore]++
	return nil
}

// ValidPulseScore reports whether score is on the pulse's scale.
func ValidPulseScore(score int) error {
	if score < PulseMinScore || score > PulseMaxScore {
		return fmt.Errorf("pulse score %d is not between %d and %d", score, PulseMinScore, PulseMaxScore)
	}
	return nil
}

// CleanHearMore trims a "hear more about" answer and checks its length.
func CleanHearMore(text string) (string, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", errors.New("the answer is empty: write what you would like to hear more about")
	}
	if n := utf8.RuneCountInString(text); n > MaxHearMoreLen {
		return "", fmt.Errorf("the answer is %d characters long: keep it to %d", n, MaxHearMoreLen)
	}
	return text, nil
}

// sparkBars are the eight levels of a sparkline, lowest first.
var sparkBars = []rune("▁▂▃▄▅▆▇█")

// SparkGap stands for a period whose value is not shown.
const SparkGap = '·'

// Sparkline draws pulse averages, oldest first, as one bar each. Bars
// are placed on the pulse's fixed 1–5 scale rather than stretched between
// the smallest and largest value, so a move from 4.1 to 4.2 looks as
// small as it is. A value with ok[i] false (too few answers to show, or
// no pulse that period) is drawn as SparkGap. Missing ok entries count
// as false.
func Sparkline(values []float64, ok []bool) string {
	var b strings.Builder
	for i, v := range values {
		if i >= len(ok) || !ok[i] {
			b.WriteRune(SparkGap)
			continue
		}
		b.WriteRune(sparkBars[sparkLevel(v)])
	}
	return b.String()
}

func sparkLevel(v float64) int {
	const lo, hi = PulseMinScore, PulseMaxScore
	top := len(sparkBars) - 1
	f := (v - lo) / (hi - lo) * float64(top)
	// NaN compares false both ways, so it lands on the lowest bar.
	switch {
	case !(f > 0):
		return 0
	case f >= float64(top):
		return top
	}
	return int(f + 0.5)
}
