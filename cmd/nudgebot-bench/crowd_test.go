package main

import (
	"strings"
	"testing"
	"time"
)

func TestBoltOnceOK(t *testing.T) {
	good := boltOnce{Sent: 5}
	tests := map[string]struct {
		o    boltOnce
		want bool
	}{
		"all sent once":      {good, true},
		"one without a DM":   {boltOnce{Missing: 1, Sent: 5}, false},
		"an extra DM":        {boltOnce{Extra: 1, Sent: 5}, false},
		"a duplicate id":     {boltOnce{DupIDs: 1, Sent: 5}, false},
		"without metadata":   {boltOnce{BadMeta: 1, Sent: 5}, false},
		"one not sent":       {boltOnce{Sent: 4}, false},
		"one still pending":  {boltOnce{Sent: 5, Pending: 1}, false},
		"more sent than due": {boltOnce{Sent: 6}, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tt.o.ok(5); got != tt.want {
				t.Errorf("%+v.ok(5) = %v, want %v", tt.o, got, tt.want)
			}
		})
	}
}

func TestStopsCell(t *testing.T) {
	clean := stopResult{Took: time.Second}
	killed := stopResult{Killed: true, Took: 15 * time.Second}
	tests := map[string]struct {
		stops []stopResult
		want  string
	}{
		"all clean":          {[]stopResult{clean, clean}, "A exit 0 in 1s, B exit 0 in 1s: met"},
		"one killed":         {[]stopResult{clean, killed}, "A exit 0 in 1s, B **KILLED after 15s**: **missed**"},
		"a slot not running": {[]stopResult{{NotRunning: true}, clean}, "A not running, B exit 0 in 1s: met"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := stopsCell(tt.stops); got != tt.want {
				t.Errorf("stopsCell = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDBAfterStopCell(t *testing.T) {
	if got, want := dbAfterStopCell(5, 5, 0), "met: 5 sent, 0 left pending"; got != want {
		t.Errorf("all sent: %q, want %q", got, want)
	}
	if got, want := dbAfterStopCell(5, 4, 1), "**missed**: 4 sent, 1 left pending"; got != want {
		t.Errorf("one pending: %q, want %q", got, want)
	}
}

func TestPeakSample(t *testing.T) {
	at := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	ss := []memSample{
		{At: at, Mem: procStatus{VmRSS: 10}},
		{At: at.Add(time.Second), Mem: procStatus{VmRSS: 30}},
		{At: at.Add(2 * time.Second), Mem: procStatus{VmRSS: 20}},
	}
	if got := peakSample(ss); !got.At.Equal(at.Add(time.Second)) {
		t.Errorf("peakSample = %+v, want the one at +1s", got)
	}
	if got := peakSample(nil); got.Mem.VmRSS != 0 || !got.At.IsZero() {
		t.Errorf("peakSample(nil) = %+v, want none", got)
	}
}

func TestWriteWarnings(t *testing.T) {
	logs := []logEntry{
		{Level: "INFO", Msg: "nudge delivered", Count: 9, Example: "nudge delivered"},
		{Level: "WARN", Msg: "slow", Count: 2, Example: "level=WARN msg=`slow`"},
	}
	var sb strings.Builder
	writeWarnings(&sb, "The bots", logs)
	if got, want := sb.String(), "\nThe bots logged:\n\n- 2 × `level=WARN msg='slow'`\n"; got != want {
		t.Errorf("with a warning: %q, want %q", got, want)
	}
	sb.Reset()
	writeWarnings(&sb, "The bot", logs[:1])
	if got, want := sb.String(), "\nThe bot logged no warnings or errors.\n"; got != want {
		t.Errorf("without: %q, want %q", got, want)
	}
}

// A bad list names its own flag, so the person knows which to fix.
func TestParseFlagsNamesTheBadList(t *testing.T) {
	for _, name := range []string{"scenarios", "ack-rates", "faults-runs", "pace-limits", "pace-people", "ack-pg-rates", "replicas", "burst-bot-pct"} {
		t.Run(name, func(t *testing.T) {
			var stderr strings.Builder
			if _, code := parseFlags([]string{"-" + name, "nonsense"}, &stderr); code != exitUsage {
				t.Fatalf("code = %d, want %d", code, exitUsage)
			}
			if want := "nudgebot-bench: -" + name + ": "; !strings.HasPrefix(stderr.String(), want) {
				t.Errorf("stderr = %q, want it to start %q", stderr.String(), want)
			}
		})
	}
}
