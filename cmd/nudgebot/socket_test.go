package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/slackemu"
)

// Ensure a running bot, installed with no setting beyond the database's
// path (no metrics.addr), can be backed up, exported and health-checked
// by the tools through the socket beside its database, which only its
// user can open; and that the socket goes when the bot stops.
func TestSocket_BackupAndHealthWithNoSetting(t *testing.T) {
	emu := slackemu.New(slackemu.WithBotToken(testBotToken), slackemu.WithAppToken(testAppToken))
	t.Cleanup(func() { closeOK(t, emu) })
	emu.AddUser(slackemu.User{ID: "USOCK0001", Name: "sock", RealName: "Sock", TZ: "Europe/Berlin"})
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "nudgebot.db")
	cfgPath := filepath.Join(dir, "config.yaml")
	writeFile(t, cfgPath, fmt.Sprintf("storage:\n  path: %q\ndigests: []\nadmins: []\n", dbPath))
	env := map[string]string{config.EnvBotToken: testBotToken, config.EnvAppToken: testAppToken, config.EnvAPIURL: emu.URL()}
	cfg, err := config.Load(cfgPath, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.MultiWriter(&allLogs, testWriter{t}), nil))
	go func() { done <- serve(ctx, cfg, log, func(k string) string { return env[k] }, nil) }()

	sock := dbPath + ".sock"
	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	if err := poll(wctx, func() bool {
		code, _, _ := toolEnv(t, env, "health", "-ready", "-config", cfgPath)
		return code == ops.ExitOK
	}); err != nil {
		t.Fatalf("nudgebot health -ready never answered ready: %v", err)
	}
	info, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode()&fs.ModeSocket == 0 || info.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want a socket with mode 0600", sock, info.Mode())
	}
	code, stdout, stderr := toolEnv(t, env, "health", "-config", cfgPath)
	if code != ops.ExitOK || stdout != "ok\n" {
		t.Errorf("health: exit %d, %q %q; want 0 and ok", code, stdout, stderr)
	}
	// As the container's HEALTHCHECK runs it: no config file, no tokens,
	// only the storage path from the image's environment.
	code, stdout, stderr = toolEnv(t, map[string]string{config.EnvStoragePath: dbPath}, "health")
	if code != ops.ExitOK || stdout != "ok\n" {
		t.Errorf("health as a HEALTHCHECK: exit %d, %q %q; want 0 and ok", code, stdout, stderr)
	}
	if _, err := emu.SlashCommand(wctx, "USOCK0001", "", "/nudge", "start"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backup.db")
	code, stdout, stderr = toolEnv(t, nil, "backup", "-config", cfgPath, out)
	if code != ops.ExitOK || !strings.Contains(stdout, "streamed by the running nudgebot through "+sock) {
		t.Fatalf("backup of the running bot with no metrics.addr: exit %d\n%s%s", code, stdout, stderr)
	}
	assertPrivate(t, out)
	code, stdout, stderr = toolEnv(t, nil, "export", "-config", cfgPath)
	if code != ops.ExitOK || !strings.Contains(stdout, `"kind":"subscriber"`) || strings.Contains(stderr, "backing up") {
		t.Errorf("export of the running bot: exit %d\nstdout %s\nstderr %s\nwant the subscriber, and no word of a backup", code, stdout, stderr)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Error("the socket is still there after the bot stopped")
	}
	code, _, stderr = toolEnv(t, env, "health", "-config", cfgPath)
	if code != ops.ExitFailed || !strings.Contains(stderr, "no nudgebot is running") {
		t.Errorf("health with no bot: exit %d, %q; want %d", code, stderr, ops.ExitFailed)
	}
}

// Ensure a stale socket left by a bot that died is replaced, and any
// other file where the socket goes is left alone.
func TestSocket_StaleAndSquatted(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, filepath.Join(dir, "nudgebot.db"))
	cfg := config.Config{Storage: config.StorageConfig{Path: db.Path()}}
	sock := ops.SocketPath(cfg)
	writeFile(t, sock, "an operator's file")
	var logs strings.Builder
	adm := ops.NewAdmin(ops.AdminConfig{Socket: sock, Version: "test"}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := adm.Start(fakeConn(true), db, ops.BackupAuth{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	adm.Stop()
	if got := string(readFile(t, sock)); got != "an operator's file" || !strings.Contains(logs.String(), "exists and is not a socket") {
		t.Errorf("the file where the socket goes: %q; logs %s", got, logs.String())
	}
	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	// A socket left behind by a bot that was killed.
	adm = ops.NewAdmin(ops.AdminConfig{Socket: sock, Version: "test"}, slog.New(slog.DiscardHandler))
	if err := adm.Start(fakeConn(true), db, ops.BackupAuth{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	killed := ops.NewAdmin(ops.AdminConfig{Socket: sock, Version: "test"}, slog.New(slog.NewTextHandler(&logs, nil)))
	// The first one's socket, seen by a second start, is replaced.
	logs.Reset()
	if err := killed.Start(fakeConn(true), db, ops.BackupAuth{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "no socket") {
		t.Errorf("a stale socket was not replaced: %s", logs.String())
	}
	killed.Stop()
	adm.Stop()
}
