package nudges_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/nudges"
)

func TestSparkline(t *testing.T) {
	tests := map[string]struct {
		values []float64
		ok     []bool
		want   string
	}{
		"empty":        {nil, nil, ""},
		"scale ends":   {[]float64{1, 5}, []bool{true, true}, "▁█"},
		"every level":  {[]float64{1, 1.57, 2.14, 2.71, 3.29, 3.86, 4.43, 5}, []bool{true, true, true, true, true, true, true, true}, "▁▂▃▄▅▆▇█"},
		"small moves":  {[]float64{4.2, 4.25}, []bool{true, true}, "▇▇"},
		"gaps":         {[]float64{3, 0, 3}, []bool{true, false, true}, "▅·▅"},
		"missing ok":   {[]float64{3, 3}, []bool{true}, "▅·"},
		"out of range": {[]float64{-7, 99}, []bool{true, true}, "▁█"},
		"not a number": {[]float64{math.NaN()}, []bool{true}, "▁"},
		"rounds":       {[]float64{1.5}, []bool{true}, "▂"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := nudges.Sparkline(tt.values, tt.ok); got != tt.want {
				t.Errorf("Sparkline(%v, %v)=%q, want %q", tt.values, tt.ok, got, tt.want)
			}
		})
	}
}

func TestPulseSummary_Record(t *testing.T) {
	var p nudges.PulseSummary
	if got := p.Average(); got != 0 {
		t.Errorf("Average of nothing=%v, want 0", got)
	}
	for _, s := range []int{5, 4, 4, 1} {
		if err := p.Record(s); err != nil {
			t.Fatalf("Record(%d): %v", s, err)
		}
	}
	for _, bad := range []int{0, 6, -1} {
		if err := p.Record(bad); err == nil {
			t.Errorf("Record(%d)=nil, want an error", bad)
		}
	}
	if p.Responses != 4 || p.Sum != 14 || p.Counts != [5]int{1, 0, 0, 2, 1} {
		t.Errorf("after 5,4,4,1: %+v, want 4 responses, sum 14, counts [1 0 0 2 1]", p)
	}
	if got := p.Average(); got != 3.5 {
		t.Errorf("Average=%v, want 3.5", got)
	}
}

func TestCleanHearMore(t *testing.T) {
	tests := map[string]struct {
		in, want string
		wantErr  string
	}{
		"OK":             {"  more on hiring  ", "more on hiring", ""},
		"at the limit":   {strings.Repeat("é", nudges.MaxHearMoreLen), strings.Repeat("é", nudges.MaxHearMoreLen), ""},
		"ErrEmpty":       {" \n\t", "", "empty"},
		"ErrTooLong":     {strings.Repeat("a", nudges.MaxHearMoreLen+1), "", "keep it to 500"},
		"ErrTooLongRune": {strings.Repeat("🙂", nudges.MaxHearMoreLen+1), "", "501 characters"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := nudges.CleanHearMore(tt.in)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("CleanHearMore=%q, %v; want %q, nil", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("CleanHearMore error=%v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidPulseScore(t *testing.T) {
	for s := -1; s <= 7; s++ {
		err := nudges.ValidPulseScore(s)
		if want := s >= 1 && s <= 5; (err == nil) != want {
			t.Errorf("ValidPulseScore(%d)=%v, want valid=%v", s, err, want)
		}
	}
	if errors.Is(nudges.ErrPulseClosed, nudges.ErrTooManyAnswers) {
		t.Error("pulse errors must be distinct")
	}
}
