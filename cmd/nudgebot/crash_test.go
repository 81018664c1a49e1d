package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/slackemu"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// childEnv makes the test binary run the bot instead of the tests, so the
// crash test can SIGKILL a real process.
const childEnv = "NUDGEBOT_TEST_CHILD"

// runChild is `nudgebot run` with a faster scheduler: the same config
// loading, wiring and signal handling.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load(os.Getenv("NUDGEBOT_TEST_CONFIG"), os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return ops.ExitConfig
	}
	log := newLogger(cfg.Log, os.Stderr)
	return ops.ExitCode(serve(ctx, cfg, log, os.Getenv, func(o *knobs) {
		o.Tick = time.Second
		o.SettleTime = 300 * time.Millisecond
	}))
}

// Ensure SIGKILL at random moments during a burst of deliveries, many
// times over, neither loses nor doubles a nudge: after the last restart
// every person has exactly one, and nothing is left pending.
func TestCrashDuringBurstNeitherLosesNorDoubles(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs subprocesses")
	}
	const people = 150
	emu := slackemu.New(slackemu.WithBotToken(testBotToken), slackemu.WithAppToken(testAppToken))
	defer closeOK(t, emu)
	emu.RateLimit("chat.postMessage", 1800, 30) // 30 a second: a burst lasts ~5s
	// Slack takes the message, then answers 150 ms later: a kill in that
	// window leaves a delivery that reached Slack but was never marked sent.
	emu.SetResponseLatency("chat.postMessage", 150*time.Millisecond)

	dir := t.TempDir()
	dbPath := filepath.Join(dir, "nudgebot.db")
	db := storagetest.OpenAt(t, dbPath, storage.Options{})
	now := time.Now()
	ids := make([]string, people)
	for i := range ids {
		id := fmt.Sprintf("UCRASH%04d", i)
		ids[i] = id
		emu.AddUser(slackemu.User{ID: id, Name: id, TZ: "UTC"})
		_, err := db.UpdateSubscriber(id, func(s *nudges.Subscriber) error {
			s.Subscribed = true
			s.ProfileTZ = "UTC"
			s.NextDue = now.Add(-30 * time.Second).Truncate(time.Second)
			s.DMChannel = emu.IMChannel(id)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`storage:
  path: %s
nudges:
  schedule: "0 9 * * *"
slack_limits:
  chat.postMessage: 1800
  # Every kill can leave a post uncertain, and each is looked for in the
  # DM's history before anything is sent again; Slack's own 50 a minute
  # would make this test wait a second or more per lookup.
  conversations.history: 6000
digests: []
admins: []
shutdown_timeout: 5s
log:
  level: debug
`, dbPath)), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=run", "NUDGEBOT_TEST_CONFIG="+cfgPath,
			"SLACK_BOT_TOKEN="+testBotToken, "SLACK_APP_TOKEN="+testAppToken, "SLACK_API_URL="+emu.URL())
		cmd.Stderr = &allLogs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	delivered := func() int {
		n := 0
		for _, id := range ids {
			if len(emu.DM(id)) > 0 {
				n++
			}
		}
		return n
	}

	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	kills, killsMidBurst := 0, 0
	for kills < 12 && delivered() < people {
		was := delivered()
		cmd := start()
		// Kill only once this child is sending (a nudge more than before
		// it started), then after a random part of a second, so every
		// kill lands in the burst, at a moment the seed decides.
		sending, cancelWait := context.WithTimeout(context.Background(), 20*time.Second)
		if err := emu.WaitFor(sending, func() bool { return delivered() > was }); err != nil {
			t.Logf("child %d sent nothing within 20s (%d of %d delivered): %v", kills+1, delivered(), people, err)
		}
		cancelWait()
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		before := delivered()
		kill(t, cmd, syscall.SIGKILL)
		// The only acceptable end is death by that signal: an exit of
		// its own would mean the child failed before it was killed.
		if err := cmd.Wait(); !killedBy(err, syscall.SIGKILL) {
			t.Fatalf("child %d: want it killed by SIGKILL, got %v (logs above)", kills+1, err)
		}
		kills++
		if before > 0 && before < people {
			killsMidBurst++
		}
	}
	// One last, undisturbed run finishes the job and stops cleanly. It
	// reconciles what the kills left uncertain once that has settled; a
	// slow machine may stop it before the last lookup, so run it again,
	// a few times at most, until the outbox is empty.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for run := 1; ; run++ {
		cmd := start()
		if err := emu.WaitFor(ctx, func() bool { return delivered() == people }); err != nil {
			t.Errorf("only %d of %d people got their nudge: %v", delivered(), people, err)
		}
		time.Sleep(1500 * time.Millisecond) // a tick or two to settle anything uncertain
		kill(t, cmd, syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("bot did not exit cleanly on SIGTERM: %v", err)
		}
		if run == 3 || pendingIn(t, dbPath) == 0 {
			break
		}
	}

	lost, doubled := 0, 0
	seen := map[string]bool{}
	for _, id := range ids {
		msgs := emu.DM(id)
		switch {
		case len(msgs) == 0:
			lost++
		case len(msgs) > 1:
			doubled++
		}
		for _, m := range msgs {
			var p struct {
				DeliveryID string `json:"delivery_id"`
			}
			if m.Metadata == nil {
				t.Errorf("a nudge to %s carries no metadata", id)
				continue
			}
			if err := json.Unmarshal(m.Metadata.EventPayload, &p); err != nil || p.DeliveryID == "" {
				t.Errorf("a nudge to %s carries no delivery id in %s: %v", id, m.Metadata.EventPayload, err)
				continue
			}
			if seen[p.DeliveryID] {
				t.Errorf("delivery %s posted twice", p.DeliveryID)
			}
			seen[p.DeliveryID] = true
		}
	}
	t.Logf("seed %d: %d SIGKILLs (%d in the middle of the burst), %d people: %d lost, %d doubled", seed, kills, killsMidBurst, people, lost, doubled)
	if lost != 0 || doubled != 0 {
		t.Fatalf("lost %d, doubled %d; want 0 and 0 (rerun with %s=%d)", lost, doubled, crashSeedEnv, seed)
	}
	// A run in which no kill interrupted the burst proves nothing about
	// crashes, however clean its outcome.
	if killsMidBurst == 0 {
		t.Fatalf("no kill landed mid-burst, so nothing was tested (rerun with %s=%d)", crashSeedEnv, seed)
	}
	p, err := storagetest.OpenAt(t, dbPath, storage.Options{}).Pending()
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 0 {
		t.Fatalf("%d deliveries still pending after the last run: %+v", len(p), p)
	}
}

// crashSeedEnv replays a crash test run: its seed decides when each kill
// lands.
const crashSeedEnv = "NUDGEBOT_CRASH_SEED"

// crashSeed is the seed from crashSeedEnv, else a fresh one; either way
// it is logged first, so a failure can be replayed.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashSeedEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a number: %v", crashSeedEnv, v, err)
		}
		seed = n
	}
	t.Logf("crash test seed %d (replay with %s=%d)", seed, crashSeedEnv, seed)
	return seed
}

// kill sends sig to the child; the child being gone already is a failure,
// because every caller expects it to be running.
func kill(t *testing.T, cmd *exec.Cmd, sig os.Signal) {
	t.Helper()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to child: %v", sig, err)
	}
}

// killedBy reports whether err, from Wait, says the process died of sig.
func killedBy(err error, sig syscall.Signal) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// pendingIn counts the deliveries left in the outbox of the (closed)
// database at path.
func pendingIn(t *testing.T, path string) int {
	t.Helper()
	db := storagetest.OpenAt(t, path, storage.Options{})
	defer closeOK(t, db) // the next child needs the file
	p, err := db.Pending()
	if err != nil {
		t.Fatal(err)
	}
	return len(p)
}
