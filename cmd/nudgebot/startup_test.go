package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/slackemu"
	"github.com/nudgebot/nudgebot/storage"
)

// slackEnv is an emulated Slack accepting testBotToken and testAppToken,
// and the environment pointing nudgebot at it.
func slackEnv(t *testing.T) map[string]string {
	t.Helper()
	emu := slackemu.New(slackemu.WithBotToken(testBotToken), slackemu.WithAppToken(testAppToken))
	t.Cleanup(func() { closeOK(t, emu) })
	return map[string]string{config.EnvBotToken: testBotToken, config.EnvAppToken: testAppToken, config.EnvAPIURL: emu.URL()}
}

// sealedSite is a database holding sealed reflections, its key's id, and
// a config naming it, with the key itself nowhere nudgebot looks: lost.
func sealedSite(t *testing.T) (opsSite, string) {
	t.Helper()
	rs := newReflectionSite(t) // sealed with a key given in the environment
	keys, err := storage.NewKeys(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return rs.opsSite, keys.CurrentID()
}

// Ensure `check` tries what `run` does at start, without changing
// anything, and that each problem ends in its own exit code: a missing
// directory, a lost key, a running bot holding the file (fine), wrong
// tokens.
func TestCheck_TriesWhatRunDoes(t *testing.T) {
	env := slackEnv(t)
	t.Run("MissingDirectory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "not-made-yet")
		cfg := filepath.Join(t.TempDir(), "c.yaml")
		writeFile(t, cfg, "storage:\n  path: "+filepath.Join(dir, "nudgebot.db")+"\n")
		code, stdout, stderr := toolEnv(t, env, "check", "-config", cfg)
		if code != ops.ExitDatabase || !strings.Contains(stderr, "database directory "+dir+" does not exist") || strings.Contains(stdout, "\nready") {
			t.Errorf("exit %d\nstdout %s\nstderr %s\nwant exit %d naming the directory", code, stdout, stderr, ops.ExitDatabase)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("check created %s", dir)
		}
	})
	t.Run("ReadOnlyDirectory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes to a read-only directory anyway")
		}
		site := newOpsSite(t, "")
		if err := os.Chmod(site.dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(site.dir, 0o700) })
		code, _, stderr := toolEnv(t, env, "check", "-config", site.cfg)
		if code != ops.ExitFailed || !strings.Contains(stderr, "cannot create files in "+site.dir) {
			t.Errorf("exit %d, stderr %s; want %d and the directory named", code, stderr, ops.ExitFailed)
		}
	})
	t.Run("HeldByRunningBot", func(t *testing.T) {
		site := newOpsSite(t, "")
		db := openDB(t, site.db) // holds the lock, as the bot does
		seed(t, db, "U", 2)
		code, stdout, stderr := toolEnv(t, env, "check", "-config", site.cfg)
		if code != ops.ExitOK || !strings.Contains(stdout, "held by a running nudgebot") || !strings.HasSuffix(stdout, "ready\n") || strings.Contains(stderr, "not ready") {
			t.Errorf("exit %d\nstdout %s\nstderr %s\nwant ready, saying a running bot holds the file", code, stdout, stderr)
		}
	})
	t.Run("NoKeyYet", func(t *testing.T) {
		site := newOpsSite(t, "")
		code, stdout, stderr := toolEnv(t, env, "check", "-config", site.cfg)
		key := filepath.Join(site.dir, storage.KeyFileName)
		if code != ops.ExitOK || !strings.Contains(stdout, "`nudgebot run` will create "+key) {
			t.Errorf("exit %d\nstdout %s\nstderr %s\nwant ready, saying run will create %s", code, stdout, stderr, key)
		}
		if _, err := os.Stat(key); !errors.Is(err, os.ErrNotExist) {
			t.Error("check created the key")
		}
	})
	t.Run("LostKey", func(t *testing.T) {
		site, keyID := sealedSite(t)
		code, _, stderr := toolEnv(t, env, "check", "-config", site.cfg)
		if code != ops.ExitKey || !strings.Contains(stderr, "sealed with key "+keyID) || !strings.Contains(stderr, filepath.Join(site.dir, storage.KeyFileName)+" does not exist") {
			t.Errorf("exit %d, stderr %s; want %d naming key %s and where it looked", code, stderr, ops.ExitKey, keyID)
		}
		if _, err := os.Stat(filepath.Join(site.dir, storage.KeyFileName)); !errors.Is(err, os.ErrNotExist) {
			t.Error("check created a key file")
		}
	})
	t.Run("WrongTokens", func(t *testing.T) {
		site := newOpsSite(t, "")
		bad := map[string]string{config.EnvBotToken: "xoxb-wrong-token", config.EnvAppToken: "xapp-wrong-token", config.EnvAPIURL: env[config.EnvAPIURL]}
		code, _, stderr := toolEnv(t, bad, "check", "-config", site.cfg)
		if code != ops.ExitSlackAuth || !strings.Contains(stderr, "invalid_auth") {
			t.Errorf("exit %d, stderr %s; want %d", code, stderr, ops.ExitSlackAuth)
		}
	})
}

// Ensure `run` with the key lost creates no new key beside a database
// sealed with another: it refuses at once with the key exit code, names
// the key the database wants and where it looked, and leaves the
// directory as it was.
func TestRun_LostKeyCreatesNoKey(t *testing.T) {
	site, keyID := sealedSite(t)
	env := slackEnv(t)
	before := readFile(t, site.db)
	code, _, stderr := toolEnv(t, env, "run", "-config", site.cfg)
	if code != ops.ExitKey {
		t.Errorf("run: exit %d, want %d\n%s", code, ops.ExitKey, stderr)
	}
	for _, want := range []string{"sealed with key " + keyID, storage.EnvSecretKey + " is not set", filepath.Join(site.dir, storage.KeyFileName) + " does not exist"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("run's refusal lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(site.dir, storage.KeyFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Error("run created a key beside a database sealed with another")
	}
	if !bytes.Equal(readFile(t, site.db), before) {
		t.Error("run changed the database it refused")
	}
}

// Ensure each kind of failure ends in its own documented exit code, for
// the commands an operator runs.
func TestExitCodes(t *testing.T) {
	env := slackEnv(t)
	damaged := newOpsSite(t, "")
	writeFile(t, damaged.db, strings.Repeat("not a database ", 1000))
	held := newOpsSite(t, "")
	seed(t, openDB(t, held.db), "U", 1)
	good := filepath.Join(t.TempDir(), "good.db")
	gdb := openDB(t, good)
	seed(t, gdb, "B", 1)
	closeOK(t, gdb)
	badCfg := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, badCfg, "storage:\n  pth: x.db\n")
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"BadConfig", []string{"run", "-config", badCfg}, ops.ExitConfig},
		{"BadFlag", []string{"backup", "-nope"}, ops.ExitConfig},
		{"RunDamaged", []string{"run", "-config", damaged.cfg}, ops.ExitDatabase},
		{"CheckDamaged", []string{"check", "-config", damaged.cfg}, ops.ExitDatabase},
		{"ExportDamaged", []string{"export", "-config", damaged.cfg}, ops.ExitDatabase},
		{"CompactHeld", []string{"compact", "-config", held.cfg}, ops.ExitDatabase},
		{"RestoreHeld", []string{"restore", "-config", held.cfg, good}, ops.ExitDatabase},
		{"RestoreDamagedInput", []string{"restore", "-config", held.cfg, damaged.db}, ops.ExitDatabase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := toolEnv(t, env, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, stderr)
			}
		})
	}
}

// Ensure a panic in a command comes out as a clear message and exit 1,
// not a Go stack trace alone with exit 2 (which systemd reads as bad
// config).
func TestPanicAtCommandBoundary(t *testing.T) {
	var stderr bytes.Buffer
	err := guard("boom", &stderr, func() error { panic("index out of range [3] with length 2") })
	code := exitCode("boom", err, &stderr)
	if code != ops.ExitFailed {
		t.Errorf("exit %d, want %d", code, ops.ExitFailed)
	}
	if !strings.Contains(stderr.String(), "nudgebot boom: internal error (a bug in nudgebot; please report it with the log): index out of range") {
		t.Errorf("stderr lacks the clear message:\n%s", stderr.String())
	}
}

// Ensure a second `run` against a database another bot holds fails with
// the database exit code and makes no key beside it, even when it could
// not look inside.
func TestRun_SecondBotMakesNoKey(t *testing.T) {
	site := newOpsSite(t, "")
	seed(t, openDB(t, site.db), "U", 1) // held, as by a running bot
	code, _, stderr := toolEnv(t, slackEnv(t), "run", "-config", site.cfg)
	if code != ops.ExitDatabase || !strings.Contains(stderr, "in use") {
		t.Errorf("second run: exit %d, want %d\n%s", code, ops.ExitDatabase, stderr)
	}
	if _, err := os.Stat(filepath.Join(site.dir, storage.KeyFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a second run made a key beside a database another bot holds")
	}
}

// Ensure `run` with a token Slack refuses stops at once with the Slack
// exit code, for the bot token as for the app token: a wrong bot token
// used to leave a bot connected, healthy to every probe, and failing
// every post.
func TestRun_RefusedTokenExits(t *testing.T) {
	for _, which := range []string{config.EnvBotToken, config.EnvAppToken} {
		t.Run(which, func(t *testing.T) {
			env := slackEnv(t)
			env[which] = env[which][:5] + "wrong-token"
			site := newOpsSite(t, "")
			done := make(chan struct{})
			var code int
			var stderr string
			go func() {
				defer close(done)
				code, _, stderr = toolEnv(t, env, "run", "-config", site.cfg)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("run kept running with a refused token")
			}
			if code != ops.ExitSlackAuth || !strings.Contains(stderr, "invalid_auth") || strings.Contains(stderr, "wrong-token") {
				t.Errorf("exit %d, want %d, naming invalid_auth and not the token:\n%s", code, ops.ExitSlackAuth, stderr)
			}
		})
	}
}
