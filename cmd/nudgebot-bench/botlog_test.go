package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

func TestParseLogLine(t *testing.T) {
	tests := map[string]struct {
		line      string
		wantLevel string
		wantMsg   string
	}{
		"quoted msg": {`time=2026-11-27T10:00:00.000Z level=WARN msg="post outcome uncertain; will reconcile against the DM before any retry" delivery_id=U1-x error="EOF"`,
			"WARN", "post outcome uncertain; will reconcile against the DM before any retry"},
		"bare msg":            {`time=2026-11-27T10:00:00.000Z level=INFO msg=connected`, "INFO", "connected"},
		"escaped quote":       {`level=ERROR msg="say \"hi\"" x=1`, "ERROR", `say "hi"`},
		"key inside a value":  {`time=1 level=WARN msg="m" error="xlevel=INFO msg=fake"`, "WARN", "m"},
		"a panic, not slog":   {`panic: runtime error: index out of range [3] with length 3`, "", "panic: runtime error: index out of range [3] with length 3"},
		"unterminated quotes": {`level=WARN msg="half`, "", `level=WARN msg="half`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			level, msg := parseLogLine(tt.line)
			if level != tt.wantLevel || msg != tt.wantMsg {
				t.Errorf("parseLogLine = %q, %q, want %q, %q", level, msg, tt.wantLevel, tt.wantMsg)
			}
		})
	}
}

// Ensure the tally groups by level and message across files, keeps the
// first line of each kind as its example, and drops routine lines.
func TestTallyLogs(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"run-01.log": `time=1 level=INFO msg="nudgebot starting" version=dev
time=2 level=INFO msg="nudge delivered" delivery_id=a
time=3 level=WARN msg="slack rate limited; pausing method" method=chat.postMessage retry_after=1.1s
time=4 level=DEBUG msg="uncertain delivery settling before reconciliation"
time=5 level=WARN msg="slack rate limited; pausing method" method=chat.postMessage retry_after=1.2s
`,
		"run-02.log": `time=6 level=ERROR msg="recording a delivery" error="write /x: no space left on device"

time=7 level=WARN msg="slack rate limited; pausing method" method=chat.postMessage retry_after=1.0s
fatal error: out of memory
`,
	}
	var paths []string
	for _, name := range []string{"run-01.log", "run-02.log"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(files[name]), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	got, err := tallyLogs(paths)
	if err != nil {
		t.Fatal(err)
	}
	want := []logEntry{
		{"WARN", "slack rate limited; pausing method", 3, `time=3 level=WARN msg="slack rate limited; pausing method" method=chat.postMessage retry_after=1.1s`},
		{"ERROR", "recording a delivery", 1, `time=6 level=ERROR msg="recording a delivery" error="write /x: no space left on device"`},
		{"", "fatal error: out of memory", 1, "fatal error: out of memory"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tallyLogs =\n%+v\nwant\n%+v", got, want)
	}
	if n := countMsg(got, "slack rate limited; pausing method"); n != 3 {
		t.Errorf("countMsg = %d, want 3", n)
	}
	if es := entriesAt(got, "ERROR", ""); len(es) != 2 {
		t.Errorf("entriesAt(ERROR, \"\") = %+v, want 2 entries", es)
	}
	if _, err := tallyLogs([]string{filepath.Join(dir, "missing.log")}); err == nil {
		t.Error("tallyLogs of a missing file: no error")
	}
}

func TestClip(t *testing.T) {
	tests := map[string]struct {
		in   string
		n    int
		want string
	}{
		"short":            {"abc", 5, "abc"},
		"cut":              {"abcdef", 3, "abc…"},
		"not mid-rune":     {"aé", 2, "a…"}, // é is two bytes
		"exactly the size": {"abc", 3, "abc"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := clip(tt.in, tt.n); got != tt.want {
				t.Errorf("clip(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}

func TestPostOutcome(t *testing.T) {
	tests := map[string]struct {
		call slackemu.Call
		want string
	}{
		"posted":         {slackemu.Call{Status: 200}, "posted"},
		"rate limited":   {slackemu.Call{Status: 429, Error: "fault: HTTP 429"}, "429"},
		"answer lost":    {slackemu.Call{Status: 0, Error: "applied, but the client left before the answer"}, "applied, answer never read"},
		"no answer":      {slackemu.Call{Status: 0, Error: "no answer: context canceled during the emulated latency"}, "no answer"},
		"slack error":    {slackemu.Call{Status: 200, Error: "channel_not_found"}, "channel_not_found"},
		"server trouble": {slackemu.Call{Status: 503}, "HTTP 503"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := postOutcome(tt.call); got != tt.want {
				t.Errorf("postOutcome = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNineFloors(t *testing.T) {
	tests := map[string]struct {
		r                   nineResult
		wantFloor, wantBot  time.Duration
		wantThroughputPerMn float64
	}{
		// 100,000 at 30,000 a minute: the first 500 free, the rest 199 s.
		"the issue's case":   {nineResult{N: 100_000, Rate: 30_000, BotRate: 30_000}, 199 * time.Second, 201_515_151_515, 0},
		"fewer than a burst": {nineResult{N: 10, Rate: 6000, BotRate: 6000}, 0, 0, 0},
		"throughput": {nineResult{N: 61, Rate: 60, BotRate: 60, DMs: 61,
			First: time.Unix(0, 0), Last: time.Unix(60, 0)}, 60 * time.Second, 60_606_060_606, 60},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tt.r.floor(); got != tt.wantFloor {
				t.Errorf("floor = %s, want %s", got, tt.wantFloor)
			}
			if got := tt.r.botFloor(); (got - tt.wantBot).Abs() > time.Millisecond {
				t.Errorf("botFloor = %s, want %s", got, tt.wantBot)
			}
			if got := tt.r.throughput(); got != tt.wantThroughputPerMn {
				t.Errorf("throughput = %v, want %v", got, tt.wantThroughputPerMn)
			}
		})
	}
}

// Ensure a fault run counts as clean only when nothing was lost, doubled
// or left pending, and the database agrees.
func TestFaultResultOK(t *testing.T) {
	clean := faultResult{N: 5, Sent: 5}
	tests := map[string]struct {
		r    faultResult
		want bool
	}{
		"clean":           {clean, true},
		"one lost":        {faultResult{N: 5, Sent: 4, Missing: 1}, false},
		"one doubled":     {faultResult{N: 5, Sent: 5, Extra: 1}, false},
		"duplicate id":    {faultResult{N: 5, Sent: 5, DupIDs: 1}, false},
		"left pending":    {faultResult{N: 5, Sent: 4, Pending: 1}, false},
		"db missed one":   {faultResult{N: 5, Sent: 4}, false},
		"without payload": {faultResult{N: 5, Sent: 5, BadMeta: 1}, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tt.r.ok(); got != tt.want {
				t.Errorf("ok = %v, want %v", got, tt.want)
			}
		})
	}
}

// Ensure the faults section names every run, shows a failed run instead
// of hiding it, and quotes the log lines.
func TestFaultsSection(t *testing.T) {
	b := &bench{machine: machine{CPU: "test CPU", Cores: 2}}
	rs := []faultResult{{
		Key: "kill", N: 5, Sent: 5, Starts: 3, Began: time.Unix(0, 0), Last: time.Unix(30, 0),
		Did: "killed it", Facts: []string{"3 kills"},
		Logs: []logEntry{{"WARN", "post outcome uncertain", 2, "level=WARN msg=\"post outcome uncertain\" error=`x`"}},
	}}
	got := b.faultsSection(rs, []string{"The database's disk full: mount failed", "The database's disk full (tmpfs): skipped: cannot mount a tmpfs"})
	for _, want := range []string{
		"## 6. Faults", "test CPU", "| Repeated SIGKILL during deliveries | 0 | 0 | 0 | 5 of 5 / 0 | 3 | 30.00 s | met |",
		"**Did not complete:** The database's disk full: mount failed", "*Not run:* The database's disk full (tmpfs): skipped", "- 3 kills", "- 2 × `level=WARN msg=\"post outcome uncertain\" error='x'`",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("faults section lacks %q:\n%s", want, got)
		}
	}
}
