package main

import (
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

func TestSummarizeWrites(t *testing.T) {
	ok := func(ms int) writeResult { return writeResult{Took: time.Duration(ms) * time.Millisecond} }
	tests := map[string]struct {
		in     []writeResult
		capped bool
		want   writeStats
	}{
		"none": {nil, false, writeStats{}},
		"answered, unsorted": {[]writeResult{ok(30), ok(10), ok(20)}, false, writeStats{Sent: 3, Answered: summary{N: 3,
			Min: 10 * time.Millisecond, P50: 20 * time.Millisecond, P90: 30 * time.Millisecond, P99: 30 * time.Millisecond,
			Max: 30 * time.Millisecond, Mean: 20 * time.Millisecond}}},
		// A failure is counted, its time is not a sample, and the first
		// one sent is the one named.
		"failures are not samples": {[]writeResult{ok(10), {Took: time.Minute, Err: "refused: slow down"}, {Err: "no answer"}}, true,
			writeStats{Sent: 3, Errors: 2, FirstErr: "refused: slow down", Capped: true, Answered: summary{N: 1,
				Min: 10 * time.Millisecond, P50: 10 * time.Millisecond, P90: 10 * time.Millisecond, P99: 10 * time.Millisecond,
				Max: 10 * time.Millisecond, Mean: 10 * time.Millisecond}}},
		"after the check": {[]writeResult{{Took: time.Millisecond, After: true}, {Took: time.Millisecond, After: true}}, false,
			writeStats{Sent: 2, After: 2, Answered: summary{N: 2, Min: time.Millisecond, P50: time.Millisecond, P90: time.Millisecond,
				P99: time.Millisecond, Max: time.Millisecond, Mean: time.Millisecond}}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := summarizeWrites(tt.in, tt.capped); got != tt.want {
				t.Errorf("summarizeWrites = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWriteCells(t *testing.T) {
	tests := map[string]struct {
		in                  writeStats
		count, p50, maxCell string
	}{
		"not measured": {writeStats{}, "—", "—", "—"},
		"all answered": {writeStats{Sent: 100, Answered: summary{N: 100, P50: 1500 * time.Millisecond, Max: 25 * time.Second}},
			"100", "1.50 s", "25.00 s"},
		"some failed": {writeStats{Sent: 4, Errors: 1, FirstErr: "refused: busy", Answered: summary{N: 3, P50: 2 * time.Millisecond, Max: 3 * time.Millisecond}},
			"3 (1 of 4 failed: refused: busy)", "2.00 ms", "3.00 ms"},
		"all failed": {writeStats{Sent: 5, Errors: 5, FirstErr: "not acked"}, "0 (5 of 5 failed: not acked)", "—", "—"},
		"after the check": {writeStats{Sent: 5, After: 5, Answered: summary{N: 5, P50: time.Millisecond, Max: time.Millisecond}},
			"5 (5 sent after the check)", "1.00 ms", "1.00 ms"},
		"capped": {writeStats{Sent: 240, Capped: true, Answered: summary{N: 240, P50: time.Second, Max: 2 * time.Second}},
			"240 (stopped at 60 s, check still running)", "1.00 s", "2.00 s"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			count, p50, maxCell := tt.in.cells()
			if count != tt.count || p50 != tt.p50 || maxCell != tt.maxCell {
				t.Errorf("cells = %q, %q, %q; want %q, %q, %q", count, p50, maxCell, tt.count, tt.p50, tt.maxCell)
			}
		})
	}
}

func TestWriteAnswer(t *testing.T) {
	saved := slackemu.Message{Source: "response_url", Text: "Saved privately; 1 reflection so far. `/reflect list` shows them."}
	const slowDown = "You're going faster than I can keep up with, so I skipped that one."
	slow := slackemu.Message{Source: "ack", Text: slowDown}
	sorry := slackemu.Message{Source: "response_url", Text: "Sorry, I couldn't save that just now,\nso nothing changed."}
	tests := map[string]struct {
		msgs    []slackemu.Message
		k       int
		done    bool
		problem string
	}{
		"nothing yet":           {nil, 1, false, ""},
		"saved":                 {[]slackemu.Message{saved}, 1, true, ""},
		"waits for its own":     {[]slackemu.Message{saved}, 2, false, ""},
		"second of two":         {[]slackemu.Message{sorry, saved}, 2, true, ""},
		"refused in the ack":    {[]slackemu.Message{slow}, 1, true, "refused: " + slowDown},
		"answered otherwise":    {[]slackemu.Message{sorry}, 1, true, "answered: Sorry, I couldn't save that just now, so nothing changed."},
		"first of two, refused": {[]slackemu.Message{slow, saved}, 1, true, "refused: " + slowDown},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			done, problem := writeAnswer(tt.msgs, tt.k)
			if done != tt.done || problem != tt.problem {
				t.Errorf("writeAnswer = %v, %q; want %v, %q", done, problem, tt.done, tt.problem)
			}
		})
	}
}
