package main

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := map[string]struct {
		args     []string
		wantCode int
		check    func(t *testing.T, o options)
	}{
		"defaults are the full run": {nil, -1, func(t *testing.T, o options) {
			if !o.full() || o.report != "docs/performance.md" || o.ackDuration != time.Minute || o.subs != 100_000 || o.burstSubs != 10_000 ||
				o.nineSubs != 100_000 || o.nineRate != 30_000 || o.faultSubs != 500 || o.faultKills != 10 {
				t.Errorf("defaults = %+v, want the full run writing docs/performance.md", o)
			}
			if !reflect.DeepEqual(o.ackRates, []int{50, 200, 1000}) || !reflect.DeepEqual(o.burstBotPct, []int{100, 98}) {
				t.Errorf("ackRates = %v, burstBotPct = %v", o.ackRates, o.burstBotPct)
			}
			if !reflect.DeepEqual(o.faultRuns, faultOrder) || !reflect.DeepEqual(o.scenarios, scenarioOrder) {
				t.Errorf("faultRuns = %v, scenarios = %v, want all", o.faultRuns, o.scenarios)
			}
		}},
		"quick shortens and writes nothing": {[]string{"-quick"}, -1, func(t *testing.T, o options) {
			if o.full() || o.report != "" || o.ackDuration != 3*time.Second || o.subs != 5000 || o.tickDue != 100 ||
				o.nineSubs != 3000 || o.faultSubs != 60 || o.faultKills != 3 {
				t.Errorf("quick = %+v", o)
			}
		}},
		"quick keeps what was given": {[]string{"-quick", "-ack-duration", "5s", "-report", "x.md"}, -1, func(t *testing.T, o options) {
			if o.ackDuration != 5*time.Second || o.report != "x.md" || o.subs != 5000 {
				t.Errorf("quick with flags = %+v", o)
			}
		}},
		"some scenarios, in report order": {[]string{"-scenarios", "tick, ack,tick"}, -1, func(t *testing.T, o options) {
			if !reflect.DeepEqual(o.scenarios, []string{"ack", "tick"}) || o.full() {
				t.Errorf("scenarios = %v, full = %v", o.scenarios, o.full())
			}
		}},
		"fault runs, in report order": {[]string{"-scenarios", "faults", "-faults-runs", "disk, kill"}, -1, func(t *testing.T, o options) {
			if !reflect.DeepEqual(o.faultRuns, []string{"kill", "disk"}) || !reflect.DeepEqual(o.scenarios, []string{"faults"}) {
				t.Errorf("faultRuns = %v, scenarios = %v", o.faultRuns, o.scenarios)
			}
		}},
		"postgres defaults": {nil, -1, func(t *testing.T, o options) {
			if !reflect.DeepEqual(o.replicas, []int{1, 2}) || !reflect.DeepEqual(o.ackPGRates, []int{200}) || o.burstPGSubs != 100_000 ||
				o.burstPGRate != 30_000 || o.failSubs != 10_000 || o.failReplicas != 2 || o.pgURL == "" {
				t.Errorf("postgres defaults = %+v", o)
			}
		}},
		"postgres flags": {[]string{"-scenarios", "failover-pg,burst-pg", "-replicas", "2", "-failover-replicas", "1", "-pg-url", "postgres://x@h/d"}, -1, func(t *testing.T, o options) {
			if !reflect.DeepEqual(o.scenarios, []string{"burst-pg", "failover-pg"}) || !reflect.DeepEqual(o.replicas, []int{2}) ||
				o.failReplicas != 1 || o.pgURL != "postgres://x@h/d" {
				t.Errorf("postgres flags = %+v", o)
			}
		}},
		"quick shortens postgres": {[]string{"-quick", "-scenarios", "burst-pg"}, -1, func(t *testing.T, o options) {
			if o.burstPGSubs != 3000 || o.failSubs != 600 || o.sizePGDays != 5 {
				t.Errorf("quick postgres = %+v", o)
			}
		}},
		"eleven replicas":     {[]string{"-replicas", "1,11"}, exitUsage, nil},
		"no replicas":         {[]string{"-replicas", "0"}, exitUsage, nil},
		"three in failover":   {[]string{"-failover-replicas", "3"}, exitUsage, nil},
		"failover too small":  {[]string{"-failover-subscribers", "10"}, exitUsage, nil},
		"size too large":      {[]string{"-size-pg-people", "100000", "-size-pg-days", "3650"}, exitUsage, nil},
		"unknown scenario":    {[]string{"-scenarios", "ack,soak"}, exitUsage, nil},
		"unknown fault run":   {[]string{"-faults-runs", "kill,flood"}, exitUsage, nil},
		"bad disk mode":       {[]string{"-faults-disk", "ramdisk"}, exitUsage, nil},
		"nine rate too low":   {[]string{"-nine-rate", "10"}, exitUsage, nil},
		"bad rate":            {[]string{"-ack-rates", "200,fast"}, exitUsage, nil},
		"zero rate":           {[]string{"-ack-rates", "0"}, exitUsage, nil},
		"bad percent":         {[]string{"-burst-bot-pct", "5"}, exitUsage, nil},
		"more due than exist": {[]string{"-subscribers", "10", "-tick-due", "11"}, exitUsage, nil},
		"too short":           {[]string{"-ack-duration", "10ms"}, exitUsage, nil},
		"stray argument":      {[]string{"ack"}, exitUsage, nil},
		"help":                {[]string{"-h"}, exitOK, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr strings.Builder
			o, code := parseFlags(tt.args, &stderr)
			if code != tt.wantCode {
				t.Fatalf("parseFlags(%q) code = %d, want %d; stderr:\n%s", tt.args, code, tt.wantCode, stderr.String())
			}
			if code == exitUsage && !strings.Contains(stderr.String(), "nudgebot-bench") && !strings.Contains(stderr.String(), "flag") {
				t.Errorf("usage error says nothing useful: %q", stderr.String())
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

// Ensure a bad flag stops the run before anything is built.
func TestRunUsage(t *testing.T) {
	if code := run(t.Context(), []string{"-scenarios", "nope"}, io.Discard, io.Discard); code != exitUsage {
		t.Errorf("run with a bad scenario = %d, want %d", code, exitUsage)
	}
}
