package nudges_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/nudges"
)

func TestParseContextArgs(t *testing.T) {
	set := func(ids ...nudges.Context) nudges.ContextArgs {
		return nudges.ContextArgs{Set: nudges.Situation{Known: true, Has: nudges.ContextsOf(ids...)}}
	}
	// Ensure each accepted form gives the answer the person meant.
	t.Run("OK", func(t *testing.T) {
		tests := map[string]nudges.ContextArgs{
			"":                            {Show: true},
			"  show ":                     {Show: true},
			"none":                        {Set: nudges.Situation{Known: true}},
			"NONE":                        {Set: nudges.Situation{Known: true}},
			"standup one-to-ones":         set(nudges.ContextStandup, nudges.ContextOneToOnes),
			"standup, 1:1s and channel":   set(nudges.ContextStandup, nudges.ContextOneToOnes, nudges.ContextTeamChannel),
			"Change-Under-Way":            set(nudges.ContextChangeUnderWay),
			"figures managers leadership": set(nudges.ContextCompanyFigures, nudges.ContextManagesManagers, nudges.ContextLeadershipMeeting),
			"standup standup":             set(nudges.ContextStandup),
		}
		for in, want := range tests {
			got, err := nudges.ParseContextArgs(in)
			if err != nil || got != want {
				t.Errorf("ParseContextArgs(%q)=%+v, %v; want %+v", in, got, err, want)
			}
		}
	})
	// Ensure anything else gets a usage error naming the vocabulary.
	t.Run("ErrInvalidInput", func(t *testing.T) {
		tests := map[string]string{
			"standup slack":                `"slack" is not a setting`,
			"none standup":                 `"none" cannot go with settings`,
			"show standup":                 `"show" goes on its own`,
			"stand\x00up":                  "not a setting",
			strings.Repeat("standup ", 40): "too long",
		}
		for in, want := range tests {
			_, err := nudges.ParseContextArgs(in)
			checkInputErr(t, "ParseContextArgs("+clip(in)+")", err, want, "team-channel, standup")
		}
	})
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

func FuzzParseContextArgs(f *testing.F) {
	for _, s := range []string{"", "show", "none", "standup one-to-ones", "1:1s, channel and figures", "none standup", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := nudges.ParseContextArgs(s)
		if err != nil {
			if !errors.Is(err, nudges.ErrInvalidInput) {
				t.Fatalf("ParseContextArgs(%q) error=%v, want ErrInvalidInput", s, err)
			}
			return
		}
		if a.Show {
			if a.Set != (nudges.Situation{}) {
				t.Fatalf("ParseContextArgs(%q)=%+v: show with an answer", s, a)
			}
			return
		}
		if !a.Set.Known {
			t.Fatalf("ParseContextArgs(%q)=%+v: an answer that is not known", s, a)
		}
		// The answer written back as ids reads the same.
		back := "none"
		if a.Set.Has != 0 {
			back = a.Set.Has.String()
		}
		if again, err := nudges.ParseContextArgs(back); err != nil || again != a {
			t.Fatalf("ParseContextArgs(%q)=%+v, %v; want %+v", back, again, err, a)
		}
	})
}

// Ensure a subscriber's situation survives storage as readable ids, and
// unknown ids from a newer or older vocabulary are dropped, not fatal.
func TestSituationJSON(t *testing.T) {
	s := nudges.Subscriber{UserID: "U1", Contexts: nudges.Situation{Known: true, Has: nudges.ContextsOf(nudges.ContextStandup, nudges.ContextTeamChannel)}}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"contexts":{"known":true,"has":["team-channel","standup"]}`; !strings.Contains(string(data), want) {
		t.Errorf("JSON=%s, want it to contain %s", data, want)
	}
	var back nudges.Subscriber
	if err := json.Unmarshal(data, &back); err != nil || back.Contexts != s.Contexts {
		t.Errorf("round trip=%+v, %v; want %+v", back.Contexts, err, s.Contexts)
	}
	data, _ = json.Marshal(nudges.Subscriber{UserID: "U1"})
	if strings.Contains(string(data), "contexts") {
		t.Errorf("JSON=%s: an unanswered situation should be left out", data)
	}
	var old nudges.Situation
	if err := json.Unmarshal([]byte(`{"known":true,"has":["standup","hot-desk"]}`), &old); err != nil || old.Has != nudges.ContextsOf(nudges.ContextStandup) {
		t.Errorf("unknown id: %+v, %v; want standup only", old, err)
	}
}

func TestSituationDescribe(t *testing.T) {
	tests := []struct {
		s    nudges.Situation
		want string
	}{
		{nudges.Situation{}, "not told yet"},
		{nudges.Situation{Known: true}, "none of the listed settings"},
		{nudges.Situation{Known: true, Has: nudges.ContextsOf(nudges.ContextStandup, nudges.ContextOneToOnes)}, "a standup or daily check-in; regular 1:1s with the people you manage"},
	}
	for _, tt := range tests {
		if got := tt.s.Describe(); !strings.Contains(got, tt.want) {
			t.Errorf("Describe(%+v)=%q, want it to contain %q", tt.s, got, tt.want)
		}
	}
}
