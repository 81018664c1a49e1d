package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/slackemu"
	"github.com/nudgebot/nudgebot/storage"
)

// Ensure `nudgebot run` with metrics.addr serves the endpoints while the
// bot runs, reports into them, and closes the port when it stops.
func TestServe_AdminEndpoints(t *testing.T) {
	const botTok, appTok = "xoxb-2222-ops-test-bot", "xapp-2-ops-test-app"
	emu := slackemu.New(slackemu.WithBotToken(botTok), slackemu.WithAppToken(appTok))
	t.Cleanup(func() { closeOK(t, emu) })
	emu.AddUser(slackemu.User{ID: "UOPS00001", Name: "ops", RealName: "Ops", TZ: "Europe/Berlin"})

	addr := freeAddr(t)
	env := map[string]string{
		config.EnvBotToken: botTok, config.EnvAppToken: appTok, config.EnvAPIURL: emu.URL(),
		config.EnvStoragePath: filepath.Join(t.TempDir(), "nudgebot.db"),
	}
	cfg, err := config.Parse("test.yaml", []byte("digests: []\nadmins: []\nmetrics:\n  addr: "+addr+"\n"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(&allLogs, testWriter{t}), nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, log, nil, func(o *knobs) { o.ShutdownTimeout = 5 * time.Second })
	}()

	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	base := "http://" + addr
	status := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0
		}
		closeOK(t, resp.Body)
		return resp.StatusCode
	}
	if err := poll(wctx, func() bool { return status("/readyz") == 200 }); err != nil {
		t.Fatalf("/readyz never became 200: %v", err)
	}
	if got := status("/healthz"); got != 200 {
		t.Errorf("/healthz = %d while connected, want 200", got)
	}
	if _, err := emu.SlashCommand(wctx, "UOPS00001", "", "/nudge", "help"); err != nil {
		t.Fatal(err)
	}
	var text string
	if err := poll(wctx, func() bool {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return false
		}
		defer closeOK(t, resp.Body)
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return false // a body cut short is polled again
		}
		text = string(b)
		return strings.Contains(text, `nudgebot_socket_envelopes_acked_total{type="slash_commands"} 1`)
	}); err != nil {
		t.Fatalf("the slash command's ack never reached /metrics: %v\n%s", err, text)
	}
	for _, want := range []string{"nudgebot_socket_connected 1", "nudgebot_subscribers ", "nudgebot_database_size_bytes "} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the admin port is still open after the bot stopped")
	}
}

// Ensure a taken port stops start-up with a message naming the setting.
func TestServe_PortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, ln)
	env := map[string]string{
		config.EnvBotToken: "xoxb-3333-ops", config.EnvAppToken: "xapp-3-ops", config.EnvAPIURL: "http://127.0.0.1:1/api/",
		config.EnvStoragePath: filepath.Join(t.TempDir(), "nudgebot.db"),
	}
	cfg, err := config.Parse("test.yaml", []byte("digests: []\nadmins: []\nmetrics:\n  addr: "+ln.Addr().String()+"\n"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	code := ops.ExitCode(serve(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil, nil))
	if code != ops.ExitFailed || !strings.Contains(logs.String(), "metrics.addr "+ln.Addr().String()+": cannot listen") {
		t.Errorf("serve = %d, logs:\n%s\nwant exit %d and the setting named", code, logs.String(), ops.ExitFailed)
	}
	// The database was released: a second start could take it.
	db, err := storage.Open(cfg.Storage.Path, storage.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("database still held after a failed start: %v", err)
	}
	closeOK(t, db)
}

// poll re-checks cond until it holds or ctx ends. The conditions it
// serves depend on the bot's goroutines, which nothing signals; the
// emulator's WaitFor wakes only on the emulator's own changes.
func poll(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("condition not met: %w", ctx.Err())
		}
	}
	return nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, ln)
	return ln.Addr().String()
}
