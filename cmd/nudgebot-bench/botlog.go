package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

// logEntry is one kind of line the bot logged: the same level and
// message, counted, with the first line of that kind kept as the example
// to quote.
type logEntry struct {
	Level   string // INFO, WARN, ERROR; "" for a line that is not slog's
	Msg     string
	Count   int
	Example string
}

// routineMsgs are INFO lines every run logs; they say nothing about a
// fault, so the report leaves them out.
var routineMsgs = map[string]bool{
	"nudge delivered":                     true,
	"opened database":                     true,
	"nudgebot starting":                   true,
	"connected to slack":                  true,
	"shutting down: no new work accepted": true,
	"shutdown complete":                   true,
	"nudgebot stopped":                    true,
	"created a key file to seal reflections; keep a copy apart from the database's backups": true,
}

// exampleWidth bounds a quoted line; the report is read, not grepped.
const exampleWidth = 320

// tallyLogs reads the bot's log files and groups their lines by level and
// message, keeping everything but routine INFO lines, in order of first
// appearance.
func tallyLogs(paths []string) ([]logEntry, error) {
	var out []logEntry
	index := map[string]int{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("read the bot's log: %w", err)
		}
		err = tallyLines(f, &out, index)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read the bot's log %s: %w", p, err)
		}
	}
	return out, nil
}

func tallyLines(r io.Reader, out *[]logEntry, index map[string]int) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		level, msg := parseLogLine(line)
		if level == "INFO" && routineMsgs[msg] {
			continue
		}
		if level == "DEBUG" {
			continue
		}
		key := level + "\x00" + msg
		if i, ok := index[key]; ok {
			(*out)[i].Count++
			continue
		}
		index[key] = len(*out)
		*out = append(*out, logEntry{Level: level, Msg: msg, Count: 1, Example: clip(line, exampleWidth)})
	}
	return sc.Err()
}

// parseLogLine reads level= and msg= from a line of slog's text format.
// A line in another shape (a panic, the runtime's own output) comes back
// with no level and itself as the message.
func parseLogLine(line string) (level, msg string) {
	level, okL := logField(line, "level")
	msg, okM := logField(line, "msg")
	if !okL || !okM {
		return "", clip(line, 120)
	}
	return level, msg
}

// logField finds key=value in slog's text format, where a value with
// spaces or quotes is a Go-quoted string.
func logField(line, key string) (string, bool) {
	for i := 0; i < len(line); {
		j := strings.Index(line[i:], key+"=")
		if j < 0 {
			return "", false
		}
		j += i
		if j > 0 && line[j-1] != ' ' {
			i = j + len(key) + 1
			continue // the key is the tail of another key or inside a value
		}
		v := line[j+len(key)+1:]
		if strings.HasPrefix(v, `"`) {
			q, err := strconv.QuotedPrefix(v)
			if err != nil {
				return "", false
			}
			s, err := strconv.Unquote(q)
			return s, err == nil
		}
		if k := strings.IndexByte(v, ' '); k >= 0 {
			v = v[:k]
		}
		return v, true
	}
	return "", false
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// countLines counts the lines of the logs at paths that contain any of
// subs; unreadable files count nothing, as tallyLogs reports them.
func countLines(paths []string, subs ...string) int {
	n := 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if slices.ContainsFunc(subs, func(s string) bool { return strings.Contains(line, s) }) {
				n++
			}
		}
	}
	return n
}

// entriesAt keeps the entries at one of the given levels.
func entriesAt(es []logEntry, levels ...string) []logEntry {
	var out []logEntry
	for _, e := range es {
		if slices.Contains(levels, e.Level) {
			out = append(out, e)
		}
	}
	return out
}

// countMsg is how many times the bot logged msg, at any level.
func countMsg(es []logEntry, msg string) int {
	n := 0
	for _, e := range es {
		if e.Msg == msg {
			n += e.Count
		}
	}
	return n
}

// dmTracker watches the emulator's transcript for nudges arriving, so the
// bench can wait for "everyone has one" without reading every DM after
// each call.
type dmTracker struct {
	mu      sync.Mutex
	perUser map[string]int
	times   []time.Time            // when each DM was posted, in arrival order
	userAt  map[string][]time.Time // when each person's DMs were posted
	total   int
}

func newDMTracker() *dmTracker {
	return &dmTracker{perUser: map[string]int{}, userAt: map[string][]time.Time{}}
}

// option hooks the tracker into a new emulator.
func (t *dmTracker) option() slackemu.Option {
	return slackemu.OnEvent(func(e slackemu.Event) {
		if e.Kind != slackemu.EventDM {
			return
		}
		t.mu.Lock()
		t.perUser[e.User]++
		t.total++
		t.times = append(t.times, e.Time)
		t.userAt[e.User] = append(t.userAt[e.User], e.Time)
		t.mu.Unlock()
	})
}

// people is how many different people have at least one DM.
func (t *dmTracker) people() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.perUser)
}

// span is when the first and the last DM were posted.
func (t *dmTracker) span() (first, last time.Time, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, at := range t.times {
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	return first, last, len(t.times)
}

// postTimes is when each DM was posted, in arrival order.
func (t *dmTracker) postTimes() []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.times)
}

// postedFor is when Slack stored the first DM to userID at or after t.
func (t *dmTracker) postedFor(userID string, after time.Time) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var first time.Time
	for _, at := range t.userAt[userID] {
		if !at.Before(after) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// lateness is how long after due each DM was posted: the median, the
// 99th percentile and the worst.
func (t *dmTracker) lateness(due time.Time) (p50, p99, worst time.Duration) {
	t.mu.Lock()
	late := make([]time.Duration, len(t.times))
	for i, at := range t.times {
		late[i] = at.Sub(due)
	}
	t.mu.Unlock()
	if len(late) == 0 {
		return 0, 0, 0
	}
	slices.Sort(late)
	at := func(q float64) time.Duration { return late[min(len(late)-1, int(q*float64(len(late))))] }
	return at(0.50), at(0.99), late[len(late)-1]
}
