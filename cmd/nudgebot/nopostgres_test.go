//go:build nopostgres

package main

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/storage"
)

// Ensure a build without PostgreSQL support says so, with the exit code
// of a configuration to fix, wherever PostgreSQL is asked for.
func TestNoPostgresBuild(t *testing.T) {
	dir := t.TempDir()
	pgCfg := filepath.Join(dir, "postgres.yaml")
	writeFile(t, pgCfg, "storage:\n  driver: postgres\n  url: \"postgres://nudgebot@127.0.0.1:1/nudgebot\"\n")
	fileCfg := filepath.Join(dir, "file.yaml")
	writeFile(t, fileCfg, "storage:\n  path: "+filepath.Join(dir, "nudgebot.db")+"\n")
	env := map[string]string{
		storage.EnvSecretKey: base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"SLACK_BOT_TOKEN":    testBotToken, "SLACK_APP_TOKEN": testAppToken, "SLACK_API_URL": "http://127.0.0.1:1/api/",
	}
	for _, args := range [][]string{
		{"run", "-config", pgCfg},
		{"migrate", "-config", pgCfg, "-to-file", filepath.Join(dir, "out.db")},
		{"migrate", "-config", fileCfg, "-to-postgres", "postgres://nudgebot@127.0.0.1:1/nudgebot"},
	} {
		code, stdout, stderr := toolEnv(t, env, args...)
		if code != ops.ExitConfig || !strings.Contains(stdout+stderr, "no PostgreSQL support") {
			t.Errorf("%v: exit %d, %q; want %d and no PostgreSQL support", args, code, stdout+stderr, ops.ExitConfig)
		}
	}
}
