package main

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var out []time.Duration
		for _, v := range n {
			out = append(out, time.Duration(v)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // reversed, so summarize must sort
	}
	tests := map[string]struct {
		in   []time.Duration
		want summary
	}{
		"empty": {nil, summary{}},
		"one": {ms(7), summary{N: 1, Min: 7 * time.Millisecond, P50: 7 * time.Millisecond, P90: 7 * time.Millisecond,
			P99: 7 * time.Millisecond, Max: 7 * time.Millisecond, Mean: 7 * time.Millisecond}},
		// Nearest rank: p50 of 1..4 is the 2nd value, p90 and p99 the 4th.
		"four unsorted": {ms(4, 1, 3, 2), summary{N: 4, Min: time.Millisecond, P50: 2 * time.Millisecond, P90: 4 * time.Millisecond,
			P99: 4 * time.Millisecond, Max: 4 * time.Millisecond, Mean: 2500 * time.Microsecond}},
		"hundred": {ms(hundred...), summary{N: 100, Min: time.Millisecond, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond,
			P99: 99 * time.Millisecond, Max: 100 * time.Millisecond, Mean: 50500 * time.Microsecond}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := summarize(tt.in); got != tt.want {
				t.Errorf("summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMs(t *testing.T) {
	tests := map[time.Duration]string{
		4 * time.Microsecond:    "0.004 ms",
		850 * time.Microsecond:  "0.850 ms",
		2300 * time.Microsecond: "2.30 ms",
		42 * time.Millisecond:   "42.0 ms",
		1500 * time.Millisecond: "1.50 s",
	}
	for in, want := range tests {
		if got := ms(in); got != want {
			t.Errorf("ms(%s) = %q, want %q", in, got, want)
		}
	}
}
