package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/config"
)

const statusFixture = `Name:	nudgebot
State:	S (sleeping)
VmPeak:	 1250000 kB
VmHWM:	   17900 kB
VmRSS:	   16200 kB
RssAnon:	    5932 kB
RssFile:	    9852 kB
RssShmem:	       0 kB
Threads:	7
`

func TestParseStatus(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    procStatus
		wantErr string
	}{
		"ok": {statusFixture, procStatus{VmRSS: 16200, VmHWM: 17900, RssAnon: 5932, RssFile: 9852, Threads: 7}, ""},
		// A zombie has no memory lines at all.
		"no memory":    {"Name:\tnudgebot\nState:\tZ (zombie)\nThreads:\t1\n", procStatus{Threads: 1}, "no VmRSS"},
		"not kB":       {"VmRSS:\t16200 MB\nVmHWM:\t1 kB\n", procStatus{}, "want a number of kB"},
		"not a number": {"VmRSS:\tlots kB\n", procStatus{}, "VmRSS"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseStatus(strings.NewReader(tt.in))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("parseStatus: %v", err)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseStatus error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if got != tt.want {
				t.Errorf("parseStatus = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Ensure the config the bench writes is one `nudgebot run` accepts, and
// that the limits it sets are the ones the bot reads back.
func TestBotConfig(t *testing.T) {
	env := map[string]string{
		config.EnvBotToken: benchBotToken, config.EnvAppToken: benchAppToken,
		config.EnvAPIURL: "http://127.0.0.1:1/", config.EnvStoragePath: "x.db",
	}
	tests := map[string]map[string]int{
		"no limits": nil,
		"burst":     {"chat.postMessage": 5880},
		"several":   {"chat.postMessage": 6000, "conversations.open": 50},
	}
	for name, limits := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Parse("bench.yaml", []byte(botConfig(limits)), func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("config.Parse refused the bench's config: %v\n%s", err, botConfig(limits))
			}
			if len(limits) == 0 && len(cfg.SlackLimits) != 0 || len(limits) > 0 && !reflect.DeepEqual(cfg.SlackLimits, limits) {
				t.Errorf("SlackLimits = %v, want %v", cfg.SlackLimits, limits)
			}
			if cfg.ShutdownTimeout != shutdownTimeout {
				t.Errorf("ShutdownTimeout = %s, want %s", cfg.ShutdownTimeout, shutdownTimeout)
			}
			if cfg.Nudges.Schedule != "0 9 * * *" {
				t.Errorf("Nudges.Schedule = %q, want \"0 9 * * *\"", cfg.Nudges.Schedule)
			}
		})
	}
}

func TestStopResultOK(t *testing.T) {
	tests := map[string]struct {
		r    stopResult
		want bool
	}{
		"clean":          {stopResult{ExitCode: 0, Took: 5 * time.Millisecond}, true},
		"at the limit":   {stopResult{ExitCode: 0, Took: shutdownTimeout}, true},
		"too slow":       {stopResult{ExitCode: 0, Took: shutdownTimeout + time.Millisecond}, false},
		"failed":         {stopResult{ExitCode: 1, Took: time.Millisecond}, false},
		"killed":         {stopResult{ExitCode: -1, Took: shutdownTimeout + 5*time.Second, Killed: true}, false},
		"signal, exit 0": {stopResult{ExitCode: 0, Killed: true}, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tt.r.ok(); got != tt.want {
				t.Errorf("%+v.ok() = %v, want %v", tt.r, got, tt.want)
			}
		})
	}
}

const smapsFixture = `55c918a57000-55c918a59000 r--p 00000000 fe:00 247278                     /tmp/w/nudgebot
Size:                  8 kB
Rss:                   8 kB
Pss:                   4 kB
7f0000000000-7f0004000000 r--s 00000000 fe:00 1234                       /tmp/w/sub dir/nudgebot.db
Size:              65536 kB
Rss:               61000 kB
Pss:               61000 kB
7f0004000000-7f0004001000 rw-p 00000000 00:00 0 
Size:                  4 kB
Rss:                   4 kB
7f0005000000-7f0005800000 r--s 00000000 fe:00 1234                       /tmp/w/sub dir/nudgebot.db
Size:               8192 kB
Rss:                1200 kB
VmFlags: rd sh mr mw me ms sd 
7f0006000000-7f0006001000 r--s 00000000 fe:00 1235                       /tmp/w/sub dir/nudgebot.db.bak
Rss:                 999 kB
`

func TestParseSmapsRSS(t *testing.T) {
	tests := map[string]struct {
		path string
		want int64
	}{
		"two mappings, a space in the path": {"/tmp/w/sub dir/nudgebot.db", 62200},
		"the binary":                        {"/tmp/w/nudgebot", 8},
		"not mapped":                        {"/tmp/other.db", 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseSmapsRSS(strings.NewReader(smapsFixture), tt.path)
			if err != nil {
				t.Fatalf("parseSmapsRSS: %v", err)
			}
			if got != tt.want {
				t.Errorf("parseSmapsRSS(%q) = %d kB, want %d", tt.path, got, tt.want)
			}
		})
	}
}
