package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

// nudgeFor is a DM as the bot posts it: metadata naming the delivery.
func nudgeFor(t *testing.T, deliveryID string) slackemu.Message {
	t.Helper()
	p, err := json.Marshal(map[string]any{"delivery_id": deliveryID})
	if err != nil {
		t.Fatal(err)
	}
	return slackemu.Message{Metadata: &slackemu.Metadata{EventType: "nudgebot_nudge", EventPayload: p}}
}

func TestTallyOnce(t *testing.T) {
	u := benchUserID
	slot := "-20261207T090000Z"
	tests := map[string]struct {
		n     int
		dms   func(t *testing.T) map[string][]slackemu.Message
		want  onceTally
		wantS string
	}{
		"everyone once": {3, func(t *testing.T) map[string][]slackemu.Message {
			return map[string][]slackemu.Message{
				u(0): {nudgeFor(t, u(0)+slot)}, u(1): {nudgeFor(t, u(1)+slot)}, u(2): {nudgeFor(t, u(2)+slot)},
			}
		}, onceTally{People: 3}, "0 lost, 0 doubled"},
		"one lost": {3, func(t *testing.T) map[string][]slackemu.Message {
			return map[string][]slackemu.Message{u(0): {nudgeFor(t, u(0)+slot)}, u(2): {nudgeFor(t, u(2)+slot)}}
		}, onceTally{People: 3, Lost: 1}, "1 lost"},
		// The same delivery posted twice: a failover that forgot what
		// Slack already had.
		"one doubled, same delivery": {2, func(t *testing.T) map[string][]slackemu.Message {
			return map[string][]slackemu.Message{
				u(0): {nudgeFor(t, u(0)+slot), nudgeFor(t, u(0)+slot)}, u(1): {nudgeFor(t, u(1)+slot)},
			}
		}, onceTally{People: 2, Doubled: 1, DoubledPeople: 1, DupIDs: 1}, "1 doubled (1 people with more than one), 1 duplicate"},
		// Two deliveries for one slot, a second planning of the slot.
		"tripled, different deliveries": {1, func(t *testing.T) map[string][]slackemu.Message {
			return map[string][]slackemu.Message{u(0): {nudgeFor(t, u(0)+slot), nudgeFor(t, u(0)+"-a"), nudgeFor(t, u(0)+"-b")}}
		}, onceTally{People: 1, Doubled: 2, DoubledPeople: 1}, "2 doubled"},
		"someone else's nudge": {2, func(t *testing.T) map[string][]slackemu.Message {
			return map[string][]slackemu.Message{u(0): {nudgeFor(t, u(1)+slot)}, u(1): {{Text: "no metadata"}}}
		}, onceTally{People: 2, BadMeta: 2}, "2 without metadata"},
		"people beyond n are not counted": {1, func(t *testing.T) map[string][]slackemu.Message {
			return map[string][]slackemu.Message{u(0): {nudgeFor(t, u(0)+slot)}, u(1): {nudgeFor(t, u(1)+slot), nudgeFor(t, u(1)+slot)}}
		}, onceTally{People: 1}, "of 1 people"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dms := tt.dms(t)
			got := tallyOnce(tt.n, func(id string) []slackemu.Message { return dms[id] })
			if got != tt.want {
				t.Errorf("tallyOnce = %+v, want %+v", got, tt.want)
			}
			if got.ok() != (tt.want == onceTally{People: tt.n}) {
				t.Errorf("ok() = %v for %+v", got.ok(), got)
			}
			if !strings.Contains(got.String(), tt.wantS) {
				t.Errorf("String() = %q, want it to say %q", got.String(), tt.wantS)
			}
		})
	}
}

func TestRateFloor(t *testing.T) {
	tests := map[string]struct {
		n, rate, burst int
		want           time.Duration
	}{
		// Section 5's figure: 100,000 at 30,000 a minute, 500 at once.
		"nine o'clock":    {100_000, 30_000, 500, 199 * time.Second},
		"failover":        {10_000, 6000, 100, 99 * time.Second},
		"all in a burst":  {50, 6000, 100, 0},
		"burst of zero":   {61, 60, 0, time.Minute}, // one post still goes at once
		"no limit at all": {10, 0, 0, 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := rateFloor(tt.n, tt.rate, tt.burst); got != tt.want {
				t.Errorf("rateFloor(%d, %d, %d) = %s, want %s", tt.n, tt.rate, tt.burst, got, tt.want)
			}
		})
	}
	if got := floorRatio(209*time.Second, 199*time.Second); got < 1.050 || got > 1.051 {
		t.Errorf("floorRatio(209s, 199s) = %.4f, want 1.0503", got)
	}
	if got := floorRatio(time.Second, 0); got != 0 {
		t.Errorf("floorRatio with no floor = %v, want 0", got)
	}
	r := burstPGResult{N: 100_000, Rate: 30_000, Due: time.Unix(1000, 0)}
	r.Last = r.Due.Add(209 * time.Second)
	r.Sent, r.Once = r.N, onceTally{People: r.N}
	if r.met() {
		t.Errorf("209 s against a 199 s floor (%.4f×) counted as within %.2f×", r.ratio(), burstPGTarget)
	}
	r.Last = r.Due.Add(208 * time.Second)
	if !r.met() {
		t.Errorf("208 s against a 199 s floor (%.4f×) not counted as within %.2f×", r.ratio(), burstPGTarget)
	}
	r.Once.Doubled = 1
	if r.met() {
		t.Error("a run with a doubled nudge counted as met")
	}
}

const botLog = `time=2026-12-07T09:00:00.100Z level=INFO msg="nudgebot starting" version=dev
time=2026-12-07T09:00:01.250Z level=INFO msg="nudge delivered" component=core delivery_id=UBENCH0000001-20261207T090000Z user_id=UBENCH0000001 nudge_id=lead-014
time=2026-12-07T09:00:01.300Z level=WARN msg="slack rate limited; pausing method" component=bot method=chat.postMessage
time=2026-12-07T09:00:01.400Z level=INFO msg="the nudge delivered twice?" user_id=UX
time=2026-12-07T09:00:02.000+01:00 level=INFO msg="nudge delivered" delivery_id=UBENCH0000002-20261207T090000Z user_id=UBENCH0000002 nudge_id=x
time=2026-12-07T09:00:03.000Z level=INFO msg="nudge delivered" delivery_id=UBENCH0000003-2026`

func TestParsePosted(t *testing.T) {
	ps, err := parsePosted(strings.NewReader(botLog))
	if err != nil {
		t.Fatal(err)
	}
	want := []posted{
		{time.Date(2026, 12, 7, 9, 0, 1, 250e6, time.UTC), "UBENCH0000001"},
		{time.Date(2026, 12, 7, 8, 0, 2, 0, time.UTC), "UBENCH0000002"},
	}
	if len(ps) != len(want) {
		t.Fatalf("parsePosted = %+v, want %+v (the line cut short by a kill, and other messages, left out)", ps, want)
	}
	for i := range want {
		if !ps[i].At.Equal(want[i].At) || ps[i].UserID != want[i].UserID {
			t.Errorf("posted[%d] = %+v, want %+v", i, ps[i], want[i])
		}
	}
}

func TestTakeoverArithmetic(t *testing.T) {
	at := func(s float64) time.Time { return time.Unix(1000, 0).Add(time.Duration(s * float64(time.Second))) }
	a := []posted{{at(1), "U1"}, {at(2), "U2"}, {at(3), "U3"}}
	b := []posted{{at(0.5), "U0"}, {at(9), "U4"}, {at(10.5), "U5"}}
	kill := at(3.2)

	if got, ok := firstAfter(b, kill); !ok || !got.At.Equal(at(9)) || got.UserID != "U4" {
		t.Errorf("firstAfter(b, kill) = %+v, %v; want U4 at +9s", got, ok)
	}
	if _, ok := firstAfter(a, kill); ok {
		t.Error("firstAfter found a post by the killed replica after its kill")
	}
	if got, ok := firstAfter(a, at(2)); !ok || !got.At.Equal(at(2)) {
		t.Errorf("firstAfter at an instant with a post = %+v, %v; want that post", got, ok)
	}
	if n := countBetween(a, at(1), at(3)); n != 2 {
		t.Errorf("countBetween [1s, 3s) = %d, want 2", n)
	}
	if n := countBetween(b, at(1), time.Time{}); n != 2 {
		t.Errorf("countBetween [1s, ∞) = %d, want 2", n)
	}

	var times []time.Time
	for _, p := range append(append([]posted(nil), b...), a...) {
		times = append(times, p.At)
	}
	if got := lastBefore(times, kill); !got.Equal(at(3)) {
		t.Errorf("lastBefore(kill) = %s, want +3s", got)
	}
	if got := lastBefore(times, at(0.5)); !got.IsZero() {
		t.Errorf("lastBefore the first post = %s, want none", got)
	}

	if got := latestPoster([][]posted{a, b}, []bool{true, true}); got != 1 {
		t.Errorf("latestPoster = %d, want 1 (B posted last)", got)
	}
	if got := latestPoster([][]posted{a, b}, []bool{true, false}); got != 0 {
		t.Errorf("latestPoster with B down = %d, want 0", got)
	}
	if got := latestPoster([][]posted{nil, nil}, []bool{true, true}); got != -1 {
		t.Errorf("latestPoster with nothing posted = %d, want -1", got)
	}

	kills := []failoverKill{{At: kill}, {At: at(10)}}
	if got := phaseCounts(b, kills); len(got) != 3 || got[0] != 1 || got[1] != 1 || got[2] != 1 {
		t.Errorf("phaseCounts(b) = %v, want [1 1 1]", got)
	}
	if got := phaseCounts(a, kills); len(got) != 3 || got[0] != 3 || got[1] != 0 || got[2] != 0 {
		t.Errorf("phaseCounts(a) = %v, want [3 0 0]", got)
	}

	// One replica at a time: no second with both. Side by side: each
	// shared second counts once.
	if n := overlap([][]posted{a, {{at(9), "U4"}}}); n != 0 {
		t.Errorf("overlap of replicas taking turns = %d, want 0", n)
	}
	if n := overlap([][]posted{a, {{at(1.5), "U9"}, {at(2.5), "U8"}, {at(2.7), "U7"}}}); n != 2 {
		t.Errorf("overlap of replicas side by side = %d, want 2", n)
	}

	// Slack stored the post at +8.95s; the process logged it at +9s.
	k := failoverKill{At: kill, Next: posted{at(9), "U4"}, NextPost: at(8.95), LastPost: at(3)}
	if k.takeover() != 5750*time.Millisecond || k.gap() != 5950*time.Millisecond {
		t.Errorf("takeover %s, gap %s; want 5.75s and 5.95s", k.takeover(), k.gap())
	}
	k.NextPost = time.Time{}
	if k.takeover() != 5800*time.Millisecond || k.gap() != 0 {
		t.Errorf("without Slack's stamp: takeover %s, gap %s; want the log's 5.8s and no gap", k.takeover(), k.gap())
	}
	if (failoverKill{At: kill}).takeover() != 0 {
		t.Error("a kill nobody took over from has a takeover time")
	}
}

func TestLeaderLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.log", `time=2026-12-07T09:00:00.000Z level=INFO msg="leading: this replica runs the scheduler, digests and housekeeping" replica=a epoch=1
time=2026-12-07T09:00:05.000Z level=INFO msg="not sent: this replica no longer leads; the leader sends it"
`)
	b := write("b.log", `time=2026-12-07T09:00:00.100Z level=INFO msg="following: another replica leads and runs the scheduler" lease_left=9.9s
time=2026-12-07T09:00:04.000Z level=WARN msg="no longer leading: scheduler, digests and housekeeping stopped" epoch=1
time=2026-12-07T09:00:13.500Z level=INFO msg="leading: this replica runs the scheduler, digests and housekeeping" replica=b epoch=2
`)
	kill := time.Date(2026, 12, 7, 9, 0, 3, 0, time.UTC)
	at, line, ok := leaderLine([]string{a, b}, kill)
	if !ok || !at.Equal(kill.Add(10500*time.Millisecond)) || !strings.Contains(line, "epoch 2") {
		t.Errorf("leaderLine = %s, %q, %v; want B's line at +10.5s with epoch 2", at, line, ok)
	}
	if _, _, ok := leaderLine([]string{a}, kill); ok {
		t.Error("leaderLine took a line that does not say the replica leads")
	}
}

func TestCPUPerNudge(t *testing.T) {
	// 100,000 nudges at 500 a second: 4 min of bot CPU over two
	// replicas and 3 min 20 s of the server's.
	r := burstPGResult{Rate: 30_000, DMs: 100_000, PGCPU: 200 * time.Second,
		Stops: []stopResult{{CPU: 230 * time.Second}, {CPU: 10 * time.Second}}}
	bot, pg, cores := r.cpuPerNudge()
	if bot != 2400*time.Microsecond || pg != 2*time.Millisecond || cores < 2.199 || cores > 2.201 {
		t.Errorf("cpuPerNudge = %s, %s, %.3f cores; want 2.4ms, 2ms, 2.2", bot, pg, cores)
	}
	if _, _, c := (burstPGResult{Rate: 30_000}).cpuPerNudge(); c != 0 {
		t.Errorf("no nudges, %.2f cores", c)
	}
}
