package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/slackemu"
	"github.com/nudgebot/nudgebot/storage"
)

var (
	ana   = slackemu.User{ID: "UANA00001", Name: "ana", RealName: "Ana", TZ: "Europe/Berlin"}
	ben   = slackemu.User{ID: "UBEN00001", Name: "ben", RealName: "Ben", TZ: "America/New_York"}
	chloe = slackemu.User{ID: "UCHLOE001", Name: "chloe", RealName: "Chloe", TZ: "Asia/Tokyo"}
)

// Ensure the bot connects over Socket Mode and answers help, a bare
// /nudge, and an unknown subcommand with a "did you mean", all in the ack.
func TestHelpInTheAck(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	for _, text := range []string{"help", "", "  HELP  "} {
		ack, err := h.emu.SlashCommand(h.ctx(), ana.ID, "", "/nudge", text)
		if err != nil {
			t.Fatal(err)
		}
		var p struct{ Text, ResponseType string }
		if err := json.Unmarshal(ack.Payload, &p); err != nil {
			t.Fatalf("ack payload %s: %v", ack.Payload, err)
		}
		contains(t, p.Text, "/nudge start", "/nudge status", "/reflect")
		if ack.Problem != "" {
			t.Errorf("emulator says Slack would refuse the ack: %s", ack.Problem)
		}
	}
	got := h.nudge(ana.ID, "strat")
	contains(t, got, "I don't know `strat`", "Did you mean `/nudge start`?")
}

// Ensure garbage in a command never crashes the bot and gets a useful
// answer: control characters, 5,000 characters, invalid UTF-8, mentions.
func TestBadCommandText(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	cases := []struct {
		name, text string
		want       []string
	}{
		{"ControlCharacters", "\x00he\x07lp\x1b", []string{"/nudge start"}}, // dropped, leaving "help"
		{"ControlAroundVerb", "\x01help\x02", []string{"/nudge start"}},
		{"TooLong", strings.Repeat("a", 5000), []string{"longer than 4000 characters"}},
		{"InvalidUTF8", "\xff\xfe time", []string{"Usage: `/nudge time HH:MM`"}},
		{"Mention", "<!channel> ping", []string{"&lt;!channel&gt;"}},
		{"BadTime", "time 25:99", []string{"Usage: `/nudge time HH:MM`", "Example: `/nudge time 08:30`"}},
		{"BadDays", "days funday", []string{"Usage: `/nudge days DAYS`"}},
		{"BadPause", "pause forever", []string{"Usage: `/nudge pause"}},
		{"BadFocus", "focus golf", []string{"Usage: `/nudge focus"}},
		{"BadTZ", "tz Mars/Base", []string{"Usage: `/nudge tz"}},
		{"TZTraversal", "tz ../../etc/passwd", []string{"Usage: `/nudge tz"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := h.nudge(ana.ID, tc.text)
			contains(t, got, tc.want...)
		})
	}
	// Still alive and well.
	contains(t, h.nudge(ana.ID, "help"), "/nudge start")
}

// Ensure the bot reconnects after Slack asks it to (refresh_requested,
// warning) and after the socket simply drops, and answers afterwards.
func TestReconnect(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	for i, cut := range []func(){
		func() { h.emu.Disconnect("refresh_requested") },
		func() { h.emu.Disconnect("warning") },
		h.emu.Drop,
	} {
		before := h.emu.Connections()
		cut()
		if err := h.emu.WaitConnected(h.ctx(), before+1); err != nil {
			t.Fatalf("cut %d: no reconnect: %v", i, err)
		}
		contains(t, h.nudge(ana.ID, "help"), "/nudge start")
	}
}

func slashEnvelope(t *testing.T, id, user, text string, retry int) slackemu.Envelope {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"team_id": slackemu.TeamID, "user_id": user, "channel_id": "D" + user[1:],
		"command": "/nudge", "text": text, "trigger_id": "trig-" + id, "api_app_id": slackemu.AppID,
	})
	env := slackemu.Envelope{ID: id, Type: "slash_commands", Payload: payload, AcceptsResponsePayload: true, RetryAttempt: retry}
	if retry > 0 {
		env.RetryReason = "timeout"
	}
	return env
}

// Ensure an envelope Slack re-sends (same id, retry_attempt 1) is acked
// again but handled once, also when the re-send comes after a restart.
func TestResentEnvelopeHandledOnce(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	if _, err := h.emu.Send(h.ctx(), slashEnvelope(t, "env-now-1", ana.ID, "now", 0)); err != nil {
		t.Fatal(err)
	}
	h.waitDMs(ana.ID, 1)
	if _, err := h.emu.Send(h.ctx(), slashEnvelope(t, "env-now-1", ana.ID, "now", 1)); err != nil {
		t.Fatalf("re-sent envelope not acked: %v", err)
	}
	h.restart()
	if _, err := h.emu.Send(h.ctx(), slashEnvelope(t, "env-now-1", ana.ID, "now", 2)); err != nil {
		t.Fatalf("re-sent envelope after restart not acked: %v", err)
	}
	// A fresh command proves the bot is working, and everything before it
	// has been handled (or ignored) by the time its DM lands.
	h.clock.Add(time.Minute)
	if _, err := h.emu.Send(h.ctx(), slashEnvelope(t, "env-now-2", ana.ID, "now", 0)); err != nil {
		t.Fatal(err)
	}
	h.waitDMs(ana.ID, 2)
	h.stop()
	if n := len(h.emu.DM(ana.ID)); n != 2 {
		t.Fatalf("DMs = %d, want 2 (one per distinct envelope)", n)
	}
}

// Ensure malformed envelopes and unknown types are acked (so Slack stops
// re-sending them) and do not stop the bot.
func TestMalformedEnvelopes(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	bad := []slackemu.Envelope{
		{ID: "bad-1", Type: "slash_commands", Payload: json.RawMessage(`"not an object"`)},
		{ID: "bad-2", Type: "something_new", Payload: json.RawMessage(`{}`)},
		{ID: "bad-3", Type: "events_api", Payload: json.RawMessage(`{"type":"event_callback","event":{"type":"made_up_event"}}`)},
	}
	for _, env := range bad {
		if _, err := h.emu.Send(h.ctx(), env); err != nil {
			t.Errorf("envelope %s (%s) not acked: %v", env.ID, env.Type, err)
		}
	}
	contains(t, h.nudge(ana.ID, "help"), "/nudge start")
}

// Ensure stopping the bot (as SIGTERM does) while a delivery is in flight
// loses nothing and doubles nothing: after a restart the nudge is there
// exactly once.
func TestStopDuringWorkLosesNothing(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	h.emu.SetLatency("chat.postMessage", 700*time.Millisecond)
	if _, err := h.emu.SlashCommand(h.ctx(), ana.ID, "", "/nudge", "now"); err != nil {
		t.Fatal(err)
	}
	// Stop while the post is on the wire.
	if err := h.emu.WaitFor(h.ctx(), func() bool { return len(h.emu.Calls("chat.postMessage")) > 0 }); err != nil {
		t.Fatal(err)
	}
	h.stop()
	h.emu.SetLatency("chat.postMessage", 0)
	h.start()
	h.tick()
	h.stop()
	if n := len(h.emu.DM(ana.ID)); n != 1 {
		t.Fatalf("DMs after stop and restart = %d, want exactly 1", n)
	}
	pending, err := h.openDB().Pending()
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 0 {
		t.Fatalf("pending deliveries after restart = %d, want 0", len(pending))
	}
}

// Ensure a second nudgebot on the same database is refused at once with
// a message naming the file, instead of hanging.
func TestLockedDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nudgebot.db")
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, db)
	cfgFile := filepath.Join(dir, "config.yaml")
	writeFile(t, cfgFile, "storage:\n  path: "+path+"\ndigests: []\nadmins: []\n")
	var stdout, stderr bytes.Buffer
	env := map[string]string{"SLACK_BOT_TOKEN": testBotToken, "SLACK_APP_TOKEN": testAppToken, "SLACK_API_URL": "http://127.0.0.1:1/"}
	start := time.Now()
	code := run(context.Background(), []string{"run", "-config", cfgFile}, &stdout, &stderr, func(k string) string { return env[k] })
	if code == 0 {
		t.Fatalf("exit code 0 with a locked database")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to refuse, want well under 5s", d)
	}
	contains(t, stderr.String(), "database "+path+" is in use by another process")
}

// Ensure every bad configuration is refused at once, non-zero, with a
// message naming the problem, and never prints a token.
func TestBadConfig(t *testing.T) {
	good := map[string]string{"SLACK_BOT_TOKEN": testBotToken, "SLACK_APP_TOKEN": testAppToken}
	cases := []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{"UnknownKey", "nudges:\n  shedule: \"0 9 * * *\"\n", good, []string{":2:", `unknown key "nudges.shedule"`, `did you mean "nudges.schedule"`}},
		{"MissingBotToken", "", map[string]string{"SLACK_APP_TOKEN": testAppToken}, []string{"SLACK_BOT_TOKEN"}},
		{"MissingAppToken", "", map[string]string{"SLACK_BOT_TOKEN": testBotToken}, []string{"SLACK_APP_TOKEN"}},
		{"WrongBotPrefix", "", map[string]string{"SLACK_BOT_TOKEN": "xoxp-secret-user-token", "SLACK_APP_TOKEN": testAppToken}, []string{"SLACK_BOT_TOKEN", `"xoxb-"`}},
		{"WrongAppPrefix", "", map[string]string{"SLACK_BOT_TOKEN": testBotToken, "SLACK_APP_TOKEN": "xoxb-swapped-token"}, []string{"SLACK_APP_TOKEN", `"xapp-"`}},
		{"CronTZAlone", "nudges:\n  schedule: \"CRON_TZ=Asia/Tokyo\"\n", good, []string{`"CRON_TZ=Asia/Tokyo"`}},
		{"CronGarbage", "nudges:\n  schedule: \"every morning\"\n", good, []string{`"every morning"`}},
		{"BadDuration", "nudges:\n  catch_up: soon\n", good, []string{"catch_up"}},
		{"NotYAML", "nudges: [\n", good, []string{"test.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := filepath.Join(dir, "test.yaml")
			writeFile(t, f, tc.yaml+"storage:\n  path: "+filepath.Join(dir, "x.db")+"\n")
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"run", "-config", f}, &stdout, &stderr, func(k string) string { return tc.env[k] })
			if code != ops.ExitConfig {
				t.Errorf("exit code %d, want %d", code, ops.ExitConfig)
			}
			contains(t, stderr.String(), tc.want...)
			for _, v := range tc.env {
				if strings.Contains(stderr.String()+stdout.String(), v) {
					t.Errorf("output contains a token: %s", stderr.String())
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "x.db")); err == nil {
				t.Errorf("a database was created despite the bad config")
			}
		})
	}
}

// Ensure `nudgebot manifest` prints exactly the committed manifest.
func TestManifestCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"manifest"}, &stdout, &stderr, nil); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	committed, err := os.ReadFile("../../slack-app-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if stdout.String() != string(committed) {
		t.Fatal("nudgebot manifest differs from slack-app-manifest.yaml")
	}
}

// Ensure `nudgebot check` says ready against a working Slack, and lists
// every problem against a broken one.
func TestCheckCommand(t *testing.T) {
	h := newHarness(t)
	cfgFile := filepath.Join(t.TempDir(), "c.yaml")
	writeFile(t, cfgFile, "storage:\n  path: "+h.cfg.Storage.Path+"\ndigests: []\nadmins: []\n")
	env := map[string]string{"SLACK_BOT_TOKEN": testBotToken, "SLACK_APP_TOKEN": testAppToken, "SLACK_API_URL": h.emu.URL()}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"check", "-config", cfgFile}, &stdout, &stderr, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	contains(t, stdout.String(), "ready")

	env["SLACK_BOT_TOKEN"] = "xoxb-wrong-token"
	env["SLACK_APP_TOKEN"] = "xapp-wrong-token"
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"check", "-config", cfgFile}, &stdout, &stderr, func(k string) string { return env[k] }); code == 0 {
		t.Fatal("check passed with wrong tokens")
	}
	contains(t, stderr.String(), "auth.test failed", "apps.connections.open failed")
	if strings.Contains(stdout.String()+stderr.String(), "wrong-token") {
		t.Error("check printed a token")
	}
}

// Ensure every subcommand answers -h.
func TestSubcommandHelp(t *testing.T) {
	for _, name := range commandOrder {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{name, "-h"}, &stdout, &stderr, func(string) string { return "" })
		if code != 0 {
			t.Errorf("%s -h: exit %d: %s", name, code, stderr.String())
		}
		if stdout.Len()+stderr.Len() == 0 {
			t.Errorf("%s -h printed nothing", name)
		}
	}
}
