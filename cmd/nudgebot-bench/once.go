package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

// onceTally is exactly-once accounting from what Slack (the emulator)
// holds, person by person: the only record a person's experience can be
// read from, whatever the bots' databases say.
type onceTally struct {
	People        int // people expected to have one nudge each
	Lost          int // people with none
	Doubled       int // nudges beyond the first, over everyone
	DoubledPeople int // people with more than one
	DupIDs        int // nudges whose delivery id was seen before
	BadMeta       int // nudges without the bot's metadata, or another person's id
}

func (t onceTally) ok() bool {
	return t.Lost == 0 && t.Doubled == 0 && t.DupIDs == 0 && t.BadMeta == 0
}

func (t onceTally) String() string {
	return fmt.Sprintf("%d lost, %d doubled (%d people with more than one), %d duplicate delivery ids, %d without metadata, of %d people",
		t.Lost, t.Doubled, t.DoubledPeople, t.DupIDs, t.BadMeta, t.People)
}

// boltOnce is exactly-once accounting for a bot on a bbolt file: over
// everyone's DM in the emulator, and over the slot's deliveries in the
// database once the bot stopped.
type boltOnce struct {
	Missing int // people with no DM
	Extra   int // DMs beyond one per person
	DupIDs  int // messages whose delivery id was seen before
	BadMeta int // messages without our metadata
	Sent    int // deliveries the database says were sent
	Pending int // deliveries still in the outbox after shutdown
}

// ok says whether each of n people had exactly one nudge and the
// database agrees.
func (o boltOnce) ok(n int) bool {
	return o.Missing == 0 && o.Extra == 0 && o.DupIDs == 0 && o.BadMeta == 0 && o.Sent == n && o.Pending == 0
}

// readBoltOnce reads n people's DMs from emu and the deliveries due at
// slot from the stopped bot's database at dbPath.
func readBoltOnce(emu *slackemu.Server, n int, dbPath string, slot time.Time) (boltOnce, error) {
	var o boltOnce
	o.Missing, o.Extra, o.DupIDs, o.BadMeta = checkDMs(emu, n)
	var err error
	o.Sent, o.Pending, err = countDeliveries(dbPath, slot)
	return o, err
}

// tallyOnce counts, over benchUserID(0…n-1), people with no nudge, nudges
// beyond the first, delivery ids seen twice and nudges without the bot's
// metadata; msgs is a person's DM as the emulator holds it.
func tallyOnce(n int, msgs func(userID string) []slackemu.Message) onceTally {
	t := onceTally{People: n}
	seen := make(map[string]bool, n)
	for i := range n {
		id := benchUserID(i)
		ms := msgs(id)
		switch {
		case len(ms) == 0:
			t.Lost++
		case len(ms) > 1:
			t.Doubled += len(ms) - 1
			t.DoubledPeople++
		}
		for _, m := range ms {
			did, ok := deliveryID(m)
			if !ok || !strings.HasPrefix(did, id+"-") {
				t.BadMeta++
				continue
			}
			if seen[did] {
				t.DupIDs++
			}
			seen[did] = true
		}
	}
	return t
}

// rateFloor is the least time a limit of perMinute with bursts of burst
// allows for n posts: the burst goes at once, the rest at the rate.
func rateFloor(n, perMinute, burst int) time.Duration {
	if perMinute <= 0 {
		return 0
	}
	return time.Duration(float64(max(0, n-max(1, burst))) / float64(perMinute) * float64(time.Minute))
}

// floorRatio is took as a multiple of floor; 0 when there is no floor.
func floorRatio(took, floor time.Duration) float64 {
	if floor <= 0 {
		return 0
	}
	return took.Seconds() / floor.Seconds()
}

// posted is one nudge a replica logged as delivered ("nudge delivered"):
// the bot logs it once Slack answered the post.
type posted struct {
	At     time.Time
	UserID string
}

// deliveredMsg is the line the core logs after each nudge Slack took.
const deliveredMsg = "nudge delivered"

// readPosted reads the nudges a bot's log says it delivered, in order.
func readPosted(path string) ([]posted, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the bot's log: %w", err)
	}
	defer f.Close()
	ps, err := parsePosted(f)
	if err != nil {
		return nil, fmt.Errorf("read the bot's log %s: %w", path, err)
	}
	return ps, nil
}

// parsePosted picks the "nudge delivered" lines out of slog's text
// format. A line cut short by a SIGKILL is not one of them.
func parsePosted(r io.Reader) ([]posted, error) {
	var out []posted
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, deliveredMsg) {
			continue
		}
		if msg, ok := logField(line, "msg"); !ok || msg != deliveredMsg {
			continue
		}
		ts, ok1 := logField(line, "time")
		user, ok2 := logField(line, "user_id")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if !ok1 || !ok2 || err != nil || user == "" {
			continue
		}
		out = append(out, posted{At: at, UserID: user})
	}
	return out, sc.Err()
}

// firstAfter is the first of ps at or after t.
func firstAfter(ps []posted, t time.Time) (posted, bool) {
	var first posted
	for _, p := range ps {
		if !p.At.Before(t) && (first.At.IsZero() || p.At.Before(first.At)) {
			first = p
		}
	}
	return first, !first.At.IsZero()
}

// countBetween is how many of ps fall in [from, to); a zero to is open.
func countBetween(ps []posted, from, to time.Time) int {
	n := 0
	for _, p := range ps {
		if !p.At.Before(from) && (to.IsZero() || p.At.Before(to)) {
			n++
		}
	}
	return n
}

// lastBefore is the latest of times before t; zero if none.
func lastBefore(times []time.Time, t time.Time) time.Time {
	var last time.Time
	for _, at := range times {
		if at.Before(t) && at.After(last) {
			last = at
		}
	}
	return last
}

// overlap counts the seconds in which more than one replica logged a
// delivery. With one leader at a time it is 0, give or take the second
// of a handover; without leadership the replicas post side by side.
func overlap(perReplica [][]posted) int {
	secs := map[int64]map[int]bool{}
	for r, ps := range perReplica {
		for _, p := range ps {
			s := p.At.Unix()
			if secs[s] == nil {
				secs[s] = map[int]bool{}
			}
			secs[s][r] = true
		}
	}
	n := 0
	for _, rs := range secs {
		if len(rs) > 1 {
			n++
		}
	}
	return n
}
