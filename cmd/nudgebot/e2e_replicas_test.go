package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/internal/simclock"
	"github.com/nudgebot/nudgebot/slackemu"
)

// newReplicas returns two harnesses for two bots on one emulated Slack,
// each with its own database file (bbolt allows one process per file),
// the emulator resending what a connection leaves unacked as Slack does.
func newReplicas(t *testing.T) (*harness, *harness) {
	t.Helper()
	clock := simclock.New(monday)
	emu := slackemu.New(slackemu.WithBotToken(testBotToken), slackemu.WithAppToken(testAppToken),
		slackemu.WithClock(clock.Now), slackemu.WithRedelivery(0, 3))
	t.Cleanup(func() { closeOK(t, emu) })
	replica := func(name string) *harness {
		return &harness{t: t, emu: emu, clock: clock, cfg: mustConfig(t, emu.URL(), filepath.Join(t.TempDir(), name+".db"), "")}
	}
	return replica("a"), replica("b")
}

// Ensure two bots connected to one Slack at once share the slash commands
// and answer each exactly once; and that when one stops, every command
// goes to the other and is answered once. Only the transport is checked:
// each bot has its own database, so what one bot stored the other does
// not see (a shared store is PostgreSQL's part).
func TestTwoBotsAnswerEachCommandOnce(t *testing.T) {
	a, b := newReplicas(t)
	emu := a.emu
	people := []slackemu.User{ana, ben, chloe}
	a.addPeople(people...)
	a.start()
	b.start()
	if n := emu.OpenConnections(); n != 2 {
		t.Fatalf("%d open connections, want 2", n)
	}
	sent := 0
	say := func(round int) {
		for i := range 12 {
			p := people[i%len(people)]
			text := []string{"help", "status"}[i%2]
			if got := a.say(p.ID, "/nudge", text); got == "" {
				t.Fatalf("round %d: %s got an empty answer to %q", round, p.Name, text)
			}
			sent++
		}
	}
	say(1)
	onConn := checkOncePerCommand(t, emu, people, sent)
	if len(onConn) != 2 {
		t.Errorf("commands by connection %v, want both bots to get some", onConn)
	}

	a.stop()
	say(2)
	checkOncePerCommand(t, emu, people, sent)
	for _, d := range emu.Deliveries()[len(emu.Deliveries())-12:] {
		if d.Conn != 2 {
			t.Errorf("after the first bot stopped, envelope %s went to connection %d", d.EnvelopeID, d.Conn)
		}
	}
}

// checkOncePerCommand checks that each of the sent commands was written
// once, acked once, and answered once, and says how many went to each
// connection.
func checkOncePerCommand(t *testing.T, emu *slackemu.Server, people []slackemu.User, sent int) map[int]int {
	t.Helper()
	answers := 0
	for _, p := range people {
		answers += len(emu.Ephemerals(p.ID))
	}
	acks, perEnvelope := 0, map[string]int{}
	for _, a := range emu.Acks() {
		if a.Problem != "" {
			t.Errorf("ack %s: %s", a.EnvelopeID, a.Problem)
		}
		perEnvelope[a.EnvelopeID]++
		acks++
	}
	onConn := map[int]int{}
	for _, d := range emu.Deliveries() {
		onConn[d.Conn]++
		if d.RetryAttempt != 0 && perEnvelope[d.EnvelopeID] != 1 {
			t.Errorf("resent envelope %s acked %d times", d.EnvelopeID, perEnvelope[d.EnvelopeID])
		}
	}
	if answers != sent || acks != sent || len(perEnvelope) != sent {
		t.Errorf("%d commands: %d answers, %d acks of %d envelopes; want one of each per command (%s)", sent, answers, acks, len(perEnvelope), fmt.Sprint(onConn))
	}
	return onConn
}

// startHungReplica connects a Socket Mode client that reads every
// envelope and never acks one, as a replica stuck after its read would.
func startHungReplica(t *testing.T, emu *slackemu.Server) {
	t.Helper()
	api := slack.New(testBotToken, slack.OptionAPIURL(emu.URL()), slack.OptionAppLevelToken(testAppToken))
	sm := socketmode.New(api)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = sm.RunContext(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-sm.Events:
			case <-ctx.Done():
				return
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// Ensure a command sent to a replica that never acks reaches the other
// once Slack's ack timeout passes, as Slack's retry (same envelope,
// retry_attempt 1, reason timeout), and is answered exactly once.
func TestHungReplicasCommandsGoToTheOther(t *testing.T) {
	a, _ := newReplicas(t)
	emu := a.emu
	a.addPeople(ana)
	a.start() // connection 1
	before := emu.Connections()
	startHungReplica(t, emu)
	if err := emu.WaitConnected(a.ctx(), before+1); err != nil {
		t.Fatal(err)
	}
	const n = 6
	hung := 0
	for i := range n {
		done := make(chan error, 1)
		go func() {
			_, err := emu.SlashCommand(a.ctx(), ana.ID, "", "/nudge", "help")
			done <- err
		}()
		a.waitFor("the command written", func() bool { return len(emu.Deliveries()) > i+hung })
		if d := emu.Deliveries(); d[len(d)-1].Conn != 1 {
			hung++
			emu.ExpireAcks() // Slack's 3 s pass
		}
		if err := <-done; err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	if hung == 0 {
		t.Fatal("no command went to the hung replica: the test shows nothing")
	}
	a.waitFor("every answer", func() bool { return len(emu.Ephemerals(ana.ID)) >= n })
	if got := len(emu.Ephemerals(ana.ID)); got != n {
		t.Errorf("%d answers to %d commands, want one each", got, n)
	}
	var resent int
	for _, d := range emu.Deliveries() {
		if d.RetryAttempt == 1 {
			resent++
			if d.Conn != 1 || d.RetryReason != slackemu.RetryReasonTimeout {
				t.Errorf("resend %+v, want it on the live bot's connection 1 with reason timeout", d)
			}
		}
	}
	if resent != hung {
		t.Errorf("%d resends for %d commands sent to the hung replica", resent, hung)
	}
}
