package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/slackemu"
	"github.com/nudgebot/nudgebot/storage"
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
		return exitUsage
	}
	log := newLogger(cfg.Log, os.Stderr)
	return serve(ctx, cfg, log, os.Getenv, func(o *knobs) {
		o.Tick = time.Second
		o.SettleTime = 300 * time.Millisecond
	})
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
	defer emu.Close()
	emu.RateLimit("chat.postMessage", 1800, 30) // 30 a second: a burst lasts ~5s
	// Slack takes the message, then answers 150 ms later: a kill in that
	// window leaves a delivery that reached Slack but was never marked sent.
	emu.SetResponseLatency("chat.postMessage", 150*time.Millisecond)

	dir := t.TempDir()
	dbPath := filepath.Join(dir, "nudgebot.db")
	db, err := storage.Open(dbPath, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
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
	db.Close()
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`storage:
  path: %s
nudges:
  schedule: "0 9 * * *"
slack_limits:
  chat.postMessage: 1800
digests: []
admins: []
shutdown_timeout: 5s
log:
  level: warn
`, dbPath)), 0o600)

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

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	kills, killsMidBurst := 0, 0
	for kills < 12 && delivered() < people {
		cmd := start()
		time.Sleep(time.Duration(150+rng.IntN(600)) * time.Millisecond)
		before := delivered()
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		kills++
		if before > 0 && before < people {
			killsMidBurst++
		}
	}
	// One last, undisturbed run finishes the job and stops cleanly.
	cmd := start()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := emu.WaitFor(ctx, func() bool { return delivered() == people }); err != nil {
		t.Errorf("only %d of %d people got their nudge: %v", delivered(), people, err)
	}
	time.Sleep(1500 * time.Millisecond) // a tick or two to settle anything uncertain
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("bot did not exit cleanly on SIGTERM: %v", err)
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
			if m.Metadata != nil {
				json.Unmarshal(m.Metadata.EventPayload, &p)
			}
			if seen[p.DeliveryID] {
				t.Errorf("delivery %s posted twice", p.DeliveryID)
			}
			seen[p.DeliveryID] = true
		}
	}
	t.Logf("%d SIGKILLs (%d in the middle of the burst), %d people: %d lost, %d doubled", kills, killsMidBurst, people, lost, doubled)
	if lost != 0 || doubled != 0 {
		t.Fatalf("lost %d, doubled %d; want 0 and 0", lost, doubled)
	}
	if killsMidBurst == 0 {
		t.Log("no kill landed mid-burst this run; the loss/double check still holds")
	}
	db, err = storage.Open(dbPath, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if p, _ := db.Pending(); len(p) != 0 {
		t.Fatalf("%d deliveries still pending after the last run", len(p))
	}
}
