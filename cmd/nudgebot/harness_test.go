package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app/scheduler"
	"github.com/nudgebot/nudgebot/bot"
	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/internal/simclock"
	"github.com/nudgebot/nudgebot/slackemu"
)

const (
	testBotToken = "xoxb-1111-test-bot-token"
	testAppToken = "xapp-1-test-app-token"
)

// allLogs collects every log line the end-to-end tests produce, so
// TestMain can check that no token (and no reflection text) ever reached
// a log.
var allLogs lockedBuffer

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harnessStarted says an end-to-end test ran, so there must be logs.
var harnessStarted atomic.Bool

// privateMarkers are words that appear only in reflections: no log line
// may contain them.
var privateMarkers []string

// secretsInLogs are patterns that must never appear in any log line.
var secretsInLogs = regexp.MustCompile(`xox[abp]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+`)

// responseURLsInLogs matches a response_url, Slack's or the emulator's:
// whoever holds one can answer that person for 30 minutes.
var responseURLsInLogs = regexp.MustCompile(`hooks\.slack\.com/[A-Za-z0-9/_-]+|/response/[A-Za-z0-9]+`)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "run" {
		os.Exit(runChild())
	}
	code := m.Run()
	if code == 0 {
		logs := allLogs.String()
		if s := secretsInLogs.FindString(logs); s != "" {
			fmt.Fprintf(os.Stderr, "FAIL: a token reached the logs: %q\n", s)
			code = 1
		}
		if s := responseURLsInLogs.FindString(logs); s != "" {
			fmt.Fprintf(os.Stderr, "FAIL: a response_url reached the logs: %q\n", s)
			code = 1
		}
		for _, m := range privateMarkers {
			if strings.Contains(logs, m) {
				fmt.Fprintf(os.Stderr, "FAIL: reflection text reached the logs: %q\n", m)
				code = 1
			}
		}
		if harnessStarted.Load() && len(logs) == 0 {
			fmt.Fprintln(os.Stderr, "FAIL: no log output captured; the log checks would prove nothing")
			code = 1
		}
	}
	os.Exit(code)
}

// harness runs the real wiring (wire → bot.Run) against the emulator.
type harness struct {
	t      *testing.T
	emu    *slackemu.Server
	clock  *simclock.Clock
	cfg    config.Config
	bot    *bot.Bot
	sched  *scheduler.Scheduler // ticked by the tests, at fake times
	tune   func(*knobs)
	cancel context.CancelFunc
	done   chan error
	w      wiring
	runs   int
	// replica: one of several bots sharing a PostgreSQL database, which
	// may follow; a bot alone leads, and start waits until it does.
	replica bool
}

type harnessOption func(*harness)

// withConfig adds YAML to the test config.
func withConfig(yaml string) harnessOption {
	return func(h *harness) {
		h.cfg = mustConfig(h.t, h.emu.URL(), h.cfg.Storage.Path, yaml)
	}
}

func withTune(f func(*knobs)) harnessOption {
	return func(h *harness) { h.tune = f }
}

func mustConfig(t *testing.T, apiURL, dbPath, yaml string) config.Config {
	t.Helper()
	env := map[string]string{
		config.EnvBotToken: testBotToken, config.EnvAppToken: testAppToken,
		config.EnvAPIURL: apiURL, config.EnvStoragePath: dbPath,
	}
	if yaml == "" {
		yaml = "digests: []\nadmins: []\n"
	}
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// Monday 30 November 2026, 06:00 UTC: before anyone's 09:00 in Europe or
// the Americas, after Tokyo's.
var monday = time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, clock: simclock.New(monday)}
	// One clock for both sides, as in real life: message timestamps and
	// the bot's view of "now" agree, which reconciliation depends on.
	h.emu = slackemu.New(slackemu.WithBotToken(testBotToken), slackemu.WithAppToken(testAppToken), slackemu.WithClock(h.clock.Now))
	t.Cleanup(func() { closeOK(t, h.emu) })
	h.cfg = mustConfig(t, h.emu.URL(), filepath.Join(t.TempDir(), "nudgebot.db"), "")
	for _, o := range opts {
		o(h)
	}
	return h
}

func (h *harness) addPeople(people ...slackemu.User) {
	for _, p := range people {
		h.emu.AddUser(p)
	}
}

// start runs the bot and waits until it is connected.
func (h *harness) start() {
	h.t.Helper()
	log := slog.New(slog.NewTextHandler(io.MultiWriter(&allLogs, testWriter{h.t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := wire(h.cfg, log, func(string) string { return "" }, func(o *knobs) {
		o.Now = h.clock.Now
		o.ManualTicks = true // tests call Tick themselves, at fake times
		// Tests type faster than any person; the flood test sets the
		// allowance back to its default.
		o.Budget, o.BudgetBurst = 1_000_000, 1_000_000
		o.ShutdownTimeout = 5 * time.Second
		if h.tune != nil {
			h.tune(o)
		}
	})
	if err != nil {
		h.t.Fatalf("wire: %v", err)
	}
	h.w = w
	h.bot = w.Bot
	h.sched = w.Scheduler
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	connections := h.emu.Connections()
	go func() { h.done <- w.Bot.Run(ctx) }()
	h.runs++
	harnessStarted.Store(true)
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := h.emu.WaitConnected(wctx, connections+1); err != nil {
		h.t.Fatalf("bot did not connect: %v", err)
	}
	h.t.Cleanup(h.stop)
	if h.w.Election != nil && !h.replica {
		h.waitLeading() // the tests tick it, and a follower's tick does nothing
	}
}

// stop cancels the bot as SIGTERM would and waits for it to finish.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("bot.Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		h.t.Errorf("bot did not stop within 15s")
	}
	if err := h.w.Close(); err != nil {
		h.t.Errorf("closing database: %v", err)
	}
	h.cancel = nil
}

func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	h.start()
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

// say types a slash command and returns what the person then sees: the
// ack's reply or the follow-up through response_url.
func (h *harness) say(user, command, text string) string {
	h.t.Helper()
	before := len(h.emu.Ephemerals(user))
	if _, err := h.emu.SlashCommand(h.ctx(), user, "", command, text); err != nil {
		h.t.Fatalf("%s %s: %v", command, text, err)
	}
	if err := h.emu.WaitFor(h.ctx(), func() bool { return len(h.emu.Ephemerals(user)) > before }); err != nil {
		h.t.Fatalf("%s %s: no answer: %v", command, text, err)
	}
	eph := h.emu.Ephemerals(user)
	return eph[len(eph)-1].VisibleText()
}

func (h *harness) nudge(user, text string) string { return h.say(user, "/nudge", text) }

// tick runs one scheduler pass at the fake time.
func (h *harness) tick() {
	h.sched.Tick(context.Background())
}

// waitDMs waits until the person's DM holds n messages.
func (h *harness) waitDMs(user string, n int) []slackemu.Message {
	h.t.Helper()
	if err := h.emu.WaitFor(h.ctx(), func() bool { return len(h.emu.DM(user)) >= n }); err != nil {
		h.t.Fatalf("%s: %d DMs, want %d: %v", user, len(h.emu.DM(user)), n, err)
	}
	return h.emu.DM(user)
}

// click presses the button with actionID (and value; "" takes the
// first) on msg as user. The emulator refuses a button the message does
// not have, so a renamed button fails here, not in a later wait.
func (h *harness) click(user string, msg slackemu.Message, actionID, value string) {
	h.t.Helper()
	if _, err := h.emu.ClickButton(h.ctx(), user, msg, actionID, value); err != nil {
		h.t.Fatalf("%s clicks %s: %v", user, actionID, err)
	}
}

// waitFor waits until cond holds, failing the test with what it waited
// for when it never does.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	if err := h.emu.WaitFor(h.ctx(), cond); err != nil {
		h.t.Fatalf("waiting for %s: %v", what, err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// writeFile writes a test's config file, failing the test if it cannot.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readIfAny is readFile for a file that may not exist, which reads as nil.
func readIfAny(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return b
}

// closeOK closes c and fails the test if that fails: a database that
// cannot be closed cleanly may not have written what the test checks.
func closeOK(t testing.TB, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("close %T: %v", c, err)
	}
}

func contains(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("got %q\nwant it to contain %q", got, w)
		}
	}
}
