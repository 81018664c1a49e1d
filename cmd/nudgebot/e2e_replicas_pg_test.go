package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudgebot/nudgebot/internal/simclock"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/slackemu"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/pgstore"
)

// replicaLeaseTTL is the lease the replicas in these tests hold: short,
// so a takeover takes seconds, yet long enough that a loaded machine
// does not lose it between two renewals.
const replicaLeaseTTL = 5 * time.Second

// newPGReplicas returns two harnesses for two bots sharing one emulated
// Slack (each its own Socket Mode connection, the emulator spreading
// envelopes across them and resending what one leaves unacked) and one
// PostgreSQL schema, under the same key, as two replicas of one
// deployment. yaml is the config both read, without its storage part;
// seed opens the database as they do, to fill it before they start.
func newPGReplicas(t *testing.T, yaml string) (a, b *harness, conn *pgx.Conn, seed func() *pgstore.Store) {
	t.Helper()
	url, conn := postgresSchema(t)
	clock := simclock.New(monday)
	emu := slackemu.New(slackemu.WithBotToken(testBotToken), slackemu.WithAppToken(testAppToken),
		slackemu.WithClock(clock.Now), slackemu.WithRedelivery(0, 3))
	t.Cleanup(func() { closeOK(t, emu) })
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	writeFile(t, keyFile, base64.StdEncoding.EncodeToString(key)+"\n")
	replica := func(name string) *harness {
		h := &harness{t: t, emu: emu, clock: clock, replica: true}
		h.cfg = mustConfig(t, emu.URL(), filepath.Join(t.TempDir(), "unused.db"),
			yaml+"storage:\n  driver: postgres\n  url: \""+url+"\"\n  key_file: "+keyFile+"\n")
		h.tune = func(k *knobs) { k.LeaseTTL, k.Replica = replicaLeaseTTL, name }
		return h
	}
	seed = func() *pgstore.Store {
		keys, err := storage.NewKeys(key)
		if err != nil {
			t.Fatal(err)
		}
		s, err := pgstore.Open(context.Background(), pgstore.Options{URL: url, Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return replica("a"), replica("b"), conn, seed
}

// leads reports whether this replica leads now.
func (h *harness) leads() bool { return h.w.Election != nil && h.w.Election.Leading() == nil }

// waitLeading waits, up to twice the lease, for this replica to lead.
func (h *harness) waitLeading() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*replicaLeaseTTL+10*time.Second)
	defer cancel()
	if err := h.emu.WaitFor(ctx, h.leads); err != nil {
		h.t.Fatalf("replica %s never led: %v", h.w.Election.Replica(), err)
	}
}

// tickAll runs a scheduler pass at the fake time on every replica, as
// their due loops would: only the one leading does anything.
func tickAll(hs ...*harness) {
	for _, h := range hs {
		if h.cancel != nil {
			h.tick()
		}
	}
}

// kill stops the bot as a killed process stops: its database connections
// drop first, so it neither renews nor releases its lease, and another
// replica takes over only once the lease runs out.
func (h *harness) kill() {
	h.t.Helper()
	_ = h.w.Close()
	h.stop()
}

const replicasConfig = `digests:
  - channel: CTEAM0001
    schedule: "0 16 * * FRI"
    timezone: Europe/Berlin
admins: [UADMIN001]
anonymity_threshold: 3
`

// Ensure the main journeys pass with two replicas sharing PostgreSQL,
// each with its own Socket Mode connection, the emulator spreading the
// envelopes across both: people subscribe, each due nudge is delivered
// once (only the leader's scheduler sends), Done, Snooze, Skip and
// Reflect answer whichever replica gets the click, /reflect saves and
// lists, a digest is posted once, forget leaves no row; then the leader
// dies and the other takes over when its lease runs out, and delivers
// the next due nudges exactly once.
func TestReplicasOnPostgres(t *testing.T) {
	a, b, conn, _ := newPGReplicas(t, replicasConfig)
	emu := a.emu
	team := []slackemu.User{ana, ben, chloe, dan}
	a.addPeople(append(team, boss)...)
	emu.AddChannel("CTEAM0001", "team", ana.ID, ben.ID, chloe.ID, dan.ID)
	a.start()
	a.waitLeading()
	b.start()
	if n := emu.OpenConnections(); n != 2 {
		t.Fatalf("%d open connections, want 2", n)
	}
	if b.leads() {
		t.Fatal("both replicas lead")
	}

	for _, p := range team {
		contains(t, a.nudge(p.ID, "start"), "You're subscribed")
	}
	// Monday into Tuesday, hour by hour: each person's 09:00 in their
	// own zone (Tokyo's had passed), the due loops of both replicas.
	a.clock.Set(monday)
	for range 20 {
		a.clock.Add(time.Hour)
		tickAll(a, b)
	}
	for _, p := range team {
		if n := len(a.waitDMs(p.ID, 1)); n != 1 {
			t.Errorf("%s: %d nudges on their first day, want 1", p.Name, n)
		}
	}

	// The buttons, each click to whichever replica the emulator picks.
	done := a.waitDMs(ana.ID, 1)[0]
	a.click(ana.ID, done, "nudge_done", "")
	a.waitFor("Ana's nudge marked done", func() bool { return emu.DM(ana.ID)[0].Edits > 0 })
	contains(t, emu.DM(ana.ID)[0].VisibleText(), "✅ Done")
	skip := a.waitDMs(chloe.ID, 1)[0]
	a.click(chloe.ID, skip, "nudge_skip", "")
	a.waitFor("Chloe's nudge skipped", func() bool { return emu.DM(chloe.ID)[0].Edits > 0 })
	contains(t, emu.DM(chloe.ID)[0].VisibleText(), "⏭️ Skipped")
	snooze := a.waitDMs(ben.ID, 1)[0]
	a.click(ben.ID, snooze, "nudge_snooze_1h", "")
	a.waitFor("Ben's nudge snoozed", func() bool { return emu.DM(ben.ID)[0].Edits > 0 })
	a.clock.Add(time.Hour)
	tickAll(a, b)
	contains(t, a.waitDMs(ben.ID, 2)[1].VisibleText(), "Snoozed nudge, back as promised")
	reflect := a.waitDMs(dan.ID, 1)[0]
	a.click(dan.ID, reflect, "nudge_reflect", "")
	contains(t, a.waitModal(dan.ID).VisibleText(), "Today's nudge:")

	// /reflect, answered by either replica, read back by either.
	contains(t, a.say(ana.ID, "/reflect", "Named one owner per goal; "+marker), "Saved privately; 1 reflection so far")
	for range 3 {
		contains(t, a.say(ana.ID, "/reflect", "list"), "#1", marker)
	}
	if n := rows(t, conn, "SELECT count(*) FROM reflections WHERE position(convert_to($1, 'UTF8') IN sealed) > 0 OR strpos(record::text, $1) > 0", marker); n != 0 {
		t.Errorf("the reflection is in the database in the clear (%d rows)", n)
	}

	// A digest: the follower's scheduler posts nothing, the leader's once.
	b.sched.RunDigest(b.ctx(), "CTEAM0001")
	if n := len(emu.Messages("CTEAM0001")); n != 0 {
		t.Fatalf("the follower posted %d digest messages", n)
	}
	a.sched.RunDigest(a.ctx(), "CTEAM0001")
	posted := len(emu.Messages("CTEAM0001"))
	if posted == 0 {
		t.Fatal("the leader posted no digest")
	}
	b.sched.RunDigest(b.ctx(), "CTEAM0001")
	if n := len(emu.Messages("CTEAM0001")); n != posted {
		t.Errorf("%d digest messages after the follower's run, want the leader's %d", n, posted)
	}
	if n := rows(t, conn, "SELECT count(*) FROM pulses"); n != 1 {
		t.Errorf("%d pulses opened, want 1", n)
	}

	// Forget, on whichever replica.
	a.forget(dan.ID)
	for _, table := range []string{"subscribers", "deliveries", "reflections", "data_keys"} {
		if n := rows(t, conn, "SELECT count(*) FROM "+table+" WHERE user_id = $1", dan.ID); n != 0 {
			t.Errorf("%d rows of Dan's left in %s after forget", n, table)
		}
	}

	// Every envelope was handled once, and both connections took some.
	onConn, acks := map[int]int{}, map[string]int{}
	for _, d := range emu.Deliveries() {
		onConn[d.Conn]++
	}
	for _, ack := range emu.Acks() {
		acks[ack.EnvelopeID]++
	}
	if len(onConn) != 2 {
		t.Errorf("envelopes by connection %v, want both replicas to get some", onConn)
	}
	for id, n := range acks {
		if n != 1 {
			t.Errorf("envelope %s acked %d times", id, n)
		}
	}

	// The leader dies; the other leads once the lease runs out.
	before := map[string]int{}
	for _, p := range team[:3] {
		before[p.ID] = len(emu.DM(p.ID))
	}
	died := time.Now()
	a.kill()
	b.waitLeading()
	t.Logf("the follower led %s after the leader died (lease %s)", time.Since(died).Round(time.Millisecond), replicaLeaseTTL)
	took := false
	for line := range strings.Lines(allLogs.String()) {
		took = took || strings.Contains(line, "leading: this replica runs the scheduler") && strings.Contains(line, "replica=b epoch=2")
	}
	if !took {
		t.Error("no log line says the follower took the lead, with its epoch")
	}
	// Tuesday into Wednesday: everyone still subscribed gets the next
	// nudge from the new leader, exactly once.
	for range 24 {
		b.clock.Add(time.Hour)
		tickAll(b)
	}
	for _, p := range team[:3] {
		msgs := b.waitDMs(p.ID, before[p.ID]+1)
		if len(msgs) != before[p.ID]+1 {
			t.Errorf("%s: %d nudges after the takeover, want one more than %d", p.Name, len(msgs), before[p.ID])
		}
		earlier := map[string]bool{}
		for _, id := range deliveryIDs(t, msgs[:before[p.ID]]) {
			earlier[id] = true
		}
		for _, id := range deliveryIDs(t, msgs[before[p.ID]:]) {
			if earlier[id] {
				t.Errorf("%s: delivery %s posted again by the new leader", p.Name, id)
			}
		}
	}
}

// Ensure two replicas together stay within Slack's workspace limit on
// chat.postMessage, which neither was told of, through a takeover in the
// middle of a 09:00 rush. On Monday the leader alone posts the rush,
// learning the limit from Slack's 429s, and saves the figure in the
// database. On Tuesday it dies a quarter of the way through the rush,
// and the replica taking over, which started before anything was
// learned, takes the figure up instead of learning it again: Tuesday's
// posts, both replicas' together, meet 429s for 1% of them or fewer, and
// every nudge goes out once.
func TestReplicasShareTheWorkspaceLimit(t *testing.T) {
	a, b, _, seed := newPGReplicas(t, "digests: []\nadmins: []\n")
	for _, h := range []*harness{a, b} {
		tune := h.tune
		h.tune = func(k *knobs) { tune(k); k.SettleTime = time.Second }
	}
	emu := a.emu
	const n = 200
	people := make([]slackemu.User, n)
	subs := make([]nudges.Subscriber, n)
	due := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC) // Monday 09:00 in Berlin
	for i := range people {
		people[i] = slackemu.User{ID: fmt.Sprintf("URUSH%04d", i), Name: fmt.Sprintf("rush%d", i), TZ: "Europe/Berlin"}
		emu.AddUser(people[i])
		subs[i] = nudges.Subscriber{UserID: people[i].ID, Subscribed: true, SubscribedAt: due.Add(-7 * 24 * time.Hour),
			ProfileTZ: "Europe/Berlin", DMChannel: emu.IMChannel(people[i].ID), NextDue: due}
	}
	if err := seed().ImportSubscribers(subs); err != nil {
		t.Fatal(err)
	}
	a.start()
	a.waitLeading()
	b.start()
	emu.PublishedLimits()
	emu.WorkspaceLimit(1800) // 30 a second, bursts of 30
	posts := func() int {
		n := 0
		for _, c := range emu.Calls("chat.postMessage") {
			if c.Status == 200 {
				n++
			}
		}
		return n
	}
	// everyone waits until each person has dms nudges, ticking h.
	everyone := func(h *harness, dms int) {
		for i := 0; i < 10 && h.countPeopleWith(people, dms) < n; i++ {
			h.tick() // uncertain posts are looked for once settled (1 s)
			if h.countPeopleWith(people, dms) < n {
				h.clock.Add(2 * time.Second)
			}
		}
	}

	a.clock.Set(due)
	stop := a.runClock()
	everyone(a, 1)
	stop()
	learning := emu.RateLimited("chat.postMessage")
	t.Logf("Monday: the leader posted %d, learning the limit from %d 429s", posts(), learning)

	a.clock.Set(due.Add(24 * time.Hour))
	before := posts()
	stop = sync.OnceFunc(a.runClock())
	defer stop()
	rush := make(chan struct{})
	go func() { defer close(rush); a.tick() }()
	a.waitFor("a quarter of Tuesday's rush posted", func() bool { return a.countPeopleWith(people, 2) >= n/4 })
	died := time.Now()
	a.kill()
	<-rush
	b.waitLeading()
	t.Logf("takeover %s after the leader died mid-rush", time.Since(died).Round(time.Millisecond))
	everyone(b, 2)
	stop()

	for _, p := range people {
		if got := len(emu.DM(p.ID)); got != 2 {
			t.Errorf("%s: %d nudges on two days, want exactly 2", p.ID, got)
		}
	}
	if learning == 0 {
		t.Fatal("no 429 on Monday: the rush never met the workspace limit, so the test shows nothing")
	}
	tuesday, limited := posts()-before, emu.RateLimited("chat.postMessage")-learning
	t.Logf("Tuesday: %d posts by both replicas, %d answered 429 (%.2f%%)", tuesday, limited, 100*float64(limited)/float64(tuesday))
	if limited*100 > tuesday {
		t.Errorf("Tuesday's %d posts met %d 429s, more than 1%%", tuesday, limited)
	}
	took := false
	for line := range strings.Lines(allLogs.String()) {
		took = took || strings.Contains(line, "taking up the Slack pace the replicas learned")
	}
	if !took {
		t.Error("the new leader did not take up the pace the old one learned")
	}
}

// Ensure replicas count one another and take their share of Slack's
// limits, as their metrics endpoints show: both report 2 replicas once
// both run, and after one stops gracefully the other reports 1 at its
// next round, well before the stopped one's presence would have run
// out.
func TestReplicasCountEachOther(t *testing.T) {
	a, b, _, _ := newPGReplicas(t, "digests: []\nadmins: []\n")
	logsBefore := len(allLogs.String())
	scrape := map[*harness]func() string{}
	for _, h := range []*harness{a, b} {
		m := ops.NewMetrics("test", nil)
		tune := h.tune
		h.tune = func(k *knobs) { tune(k); k.Metrics = m }
		h.start()
		admin := httptest.NewServer(ops.AdminHandler(ops.AdminDeps{Metrics: m, Bot: h.bot, DB: h.w.Store}))
		t.Cleanup(admin.Close)
		scrape[h] = func() string {
			resp, err := http.Get(admin.URL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			defer closeOK(t, resp.Body)
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return string(body)
		}
	}
	// reports waits for h's metrics to show n replicas: a round of the
	// election comes every third of a lease; a replica's presence runs
	// out after three leases, so one that stopped must have removed it.
	reports := func(h *harness, n int) {
		t.Helper()
		want := fmt.Sprintf("\nnudgebot_replicas %d\n", n)
		ctx, cancel := context.WithTimeout(context.Background(), 2*replicaLeaseTTL)
		defer cancel()
		if err := poll(ctx, func() bool { return strings.Contains(scrape[h](), want) }); err != nil {
			got := regexp.MustCompile(`(?m)^nudgebot_replicas .*$`).FindString(scrape[h]())
			t.Fatalf("replica %s's metrics show %q, want %q: %v", h.w.Election.Replica(), got, strings.TrimSpace(want), err)
		}
	}
	began := time.Now()
	reports(a, 2)
	reports(b, 2)
	t.Logf("both counted 2 within %s", time.Since(began).Round(time.Millisecond))
	if n := strings.Count(allLogs.String()[logsBefore:], "2 replicas share Slack's limits: each calls a method at 1/2 of its limit"); n != 2 {
		t.Errorf("the share of Slack's limits logged %d times, want once by each replica", n)
	}
	stopped := time.Now()
	b.stop()
	t.Logf("b stopped in %s", time.Since(stopped).Round(time.Millisecond))
	reports(a, 1)
	t.Logf("a counted 1 %s after b was asked to stop", time.Since(stopped).Round(time.Millisecond))
}
