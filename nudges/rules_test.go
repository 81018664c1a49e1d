package nudges_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure the reflection and commitment limits are one rule with one set
// of words: text up to MaxReflectionLen characters (not bytes), a
// commitment up to MaxCommitmentLen, and a message that says the count
// and the limit without quoting what was written.
func TestReflectionProblems(t *testing.T) {
	tests := []struct {
		name, text, commitment string
		textWant, commitWant   string // substrings; "" means no problem
	}{
		{"fine", "a hard week", "ask Priya", "", ""},
		{"empty", "  \n", "", "needs some text", ""},
		{"at the limit", strings.Repeat("é", nudges.MaxReflectionLen), strings.Repeat("é", nudges.MaxCommitmentLen), "", ""},
		{"text too long", strings.Repeat("x", nudges.MaxReflectionLen+1), "", "That is 3001 characters; a reflection can be at most 3000", ""},
		{"commitment too long", "ok", strings.Repeat("y", nudges.MaxCommitmentLen+1), "", "at most 300 characters"},
		{"no commitment", "ok", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct{ got, want string }{
				{nudges.ReflectionTextProblem(tt.text), tt.textWant},
				{nudges.CommitmentProblem(tt.commitment), tt.commitWant},
			} {
				switch {
				case c.want == "" && c.got != "":
					t.Errorf("problem %q, want none", c.got)
				case c.want != "" && !strings.Contains(c.got, c.want):
					t.Errorf("problem %q, want it to contain %q", c.got, c.want)
				case strings.Contains(c.got, "xxx") || strings.Contains(c.got, "yyy"):
					t.Errorf("problem %q quotes what was written", c.got)
				}
			}
		})
	}
}

// Ensure a settings form starts from the person's own time and days, and
// from a working morning (09:00, Monday to Friday) where they chose none.
func TestFormSettings(t *testing.T) {
	weekend := nudges.Weekdays(0).With(time.Saturday).With(time.Sunday)
	tests := []struct {
		sub       nudges.Subscriber
		clock     string
		days      nudges.Weekdays
		dayString string
	}{
		{nudges.Subscriber{}, "09:00", nudges.FormDays, "Mon–Fri"},
		{nudges.Subscriber{Time: "07:30"}, "07:30", nudges.FormDays, "Mon–Fri"},
		{nudges.Subscriber{Days: weekend}, "09:00", weekend, weekend.String()},
	}
	for _, tt := range tests {
		clock, days := tt.sub.FormSettings()
		if clock != tt.clock || days != tt.days || days.String() != tt.dayString {
			t.Errorf("FormSettings(time %q, days %s) = %s %s, want %s %s", tt.sub.Time, tt.sub.Days, clock, days, tt.clock, tt.dayString)
		}
	}
}
