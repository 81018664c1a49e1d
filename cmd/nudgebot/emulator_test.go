package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Ensure an operator can try nudgebot without Slack: `nudgebot emulator`
// serves a workspace and prints the settings for it; `nudgebot run`
// with exactly those settings connects and turns ready; a person the
// operator types for subscribes; /metrics counts them and `nudgebot
// backup` copies the running bot's database, as in production.
func TestEmulatorCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var emuOut lockedBuffer
	stdin, typed := io.Pipe()
	emuDone := make(chan error, 1)
	go func() {
		emuDone <- emulate(ctx, []string{"-addr", "127.0.0.1:0"}, stdin, &emuOut, io.Discard)
	}()
	t.Cleanup(func() {
		_ = typed.Close()
		cancel()
		if err := <-emuDone; err != nil {
			t.Errorf("emulator: %v", err)
		}
	})
	var settings map[string]string
	if err := poll(ctx, func() bool {
		settings = map[string]string{}
		for _, m := range regexp.MustCompile(`export (SLACK_[A-Z_]+)=(\S+)`).FindAllStringSubmatch(emuOut.String(), -1) {
			settings[m[1]] = m[2]
		}
		return len(settings) == 3
	}); err != nil {
		t.Fatalf("the emulator never printed the three settings: %v\n%s", err, emuOut.String())
	}

	dir := t.TempDir()
	addr := freeAddr(t)
	cfgPath := filepath.Join(dir, "config.yaml")
	yaml := fmt.Sprintf("storage:\n  path: %s\nmetrics:\n  addr: %s\ndigests: []\nadmins: []\n", filepath.Join(dir, "nudgebot.db"), addr)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string { return settings[k] }
	var runErr lockedBuffer
	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan int, 1)
	go func() { runDone <- run(runCtx, []string{"run", "-config", cfgPath}, io.Discard, &runErr, getenv) }()
	t.Cleanup(func() {
		stopRun()
		if code := <-runDone; code != 0 {
			t.Errorf("run exited %d:\n%s", code, runErr.String())
		}
	})
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer closeOK(t, resp.Body)
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if err := poll(ctx, func() bool { code, _ := get("/readyz"); return code == 200 }); err != nil {
		t.Fatalf("run against the emulator never turned ready: %v\n%s", err, runErr.String())
	}

	if _, err := io.WriteString(typed, "aiko /nudge start\n"); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, func() bool { return strings.Contains(emuOut.String(), "You're subscribed") }); err != nil {
		t.Fatalf("aiko's /nudge start got no answer: %v\n%s", err, emuOut.String())
	}
	if !strings.Contains(emuOut.String(), "aiko: /nudge start") {
		t.Errorf("the transcript does not name the person:\n%s", emuOut.String())
	}
	if err := poll(ctx, func() bool {
		_, metrics := get("/metrics")
		return strings.Contains(metrics, "\nnudgebot_subscribers_active 1\n")
	}); err != nil {
		t.Errorf("/metrics never counted aiko: %v", err)
	}
	var out, errOut strings.Builder
	backup := filepath.Join(dir, "backup.db")
	if code := run(ctx, []string{"backup", "-config", cfgPath, backup}, &out, &errOut, getenv); code != 0 {
		t.Fatalf("backup of the running bot exited %d: %s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String()+errOut.String(), "streamed by the running nudgebot") {
		t.Errorf("backup did not go through the running bot: %s%s", out.String(), errOut.String())
	}
	for _, args := range [][]string{{"health", "-config", cfgPath}, {"health", "-ready", "-config", cfgPath}} {
		out.Reset()
		errOut.Reset()
		if code := run(ctx, args, &out, &errOut, getenv); code != 0 {
			t.Errorf("%v against the bot on the emulator exited %d: %s%s", args, code, out.String(), errOut.String())
		}
	}
	if _, err := io.WriteString(typed, "quit\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-emuDone:
		emuDone <- err // for the cleanup
	case <-ctx.Done():
		t.Fatal("the emulator did not end on quit")
	}
}
