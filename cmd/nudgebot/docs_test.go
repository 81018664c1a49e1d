package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/ops"
)

// Ensure what the docs promise an operator matches the code: every exit
// code is in docs/operations.md's table, with the situations table; the
// README's anonymity threshold is the default; the key never gets
// committed; the example config says what an empty key_file does.
func TestDocs_SayWhatTheCodeDoes(t *testing.T) {
	read := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	opsDoc, readme := read("../../docs/operations.md"), read("../../README.md")
	example, ignore := read("../../config.example.yaml"), read("../../.gitignore")
	for _, code := range []int{ops.ExitOK, ops.ExitFailed, ops.ExitConfig, ops.ExitDatabase, ops.ExitKey, ops.ExitSlackAuth} {
		if !strings.Contains(opsDoc, fmt.Sprintf("\n| %d | ", code)) {
			t.Errorf("docs/operations.md's exit code table lacks %d", code)
		}
	}
	for _, fault := range []string{"Disk full", "Damaged database file", "Lost key", "Wrong key", "File held by another process", "Slack down"} {
		if !strings.Contains(opsDoc, "| **"+fault) {
			t.Errorf("docs/operations.md's table of what can go wrong lacks %q", fault)
		}
	}
	words := map[int]string{3: "three", 4: "four", 5: "five", 6: "six"}
	if w := words[nudges.DefaultThreshold]; w == "" || !strings.Contains(readme, "fewer than "+w+" people") {
		t.Errorf("README does not give the default anonymity threshold, %d", nudges.DefaultThreshold)
	}
	if !strings.Contains(readme, "C compiler") {
		t.Error("README does not say go test -race needs a C compiler")
	}
	if !strings.Contains(ignore, "\nnudgebot.key\n") {
		t.Error(".gitignore does not keep nudgebot.key out of commits")
	}
	if !strings.Contains(example, "nudgebot.key beside the database") || strings.Contains(example, "leave empty for none") {
		t.Error("config.example.yaml does not say an empty key_file means nudgebot.key beside the database")
	}
	// distroless has no shell: the check must be the exec form, and its
	// storage path the one the image sets.
	if docker := read("../../Dockerfile"); !strings.Contains(docker, `CMD ["/usr/local/bin/nudgebot", "health"]`) || !strings.Contains(docker, "ENV NUDGEBOT_STORAGE_PATH=") {
		t.Error("the Dockerfile has no HEALTHCHECK running nudgebot health without a shell")
	}
	if unit := read("../../deploy/nudgebot.service"); !strings.Contains(unit, fmt.Sprintf("RestartPreventExitStatus=%d %d %d %d", ops.ExitConfig, ops.ExitDatabase, ops.ExitKey, ops.ExitSlackAuth)) {
		t.Error("the systemd unit restarts on exit codes a restart cannot fix")
	}
	if strings.Contains(example, "compacted afterwards") {
		t.Error("config.example.yaml says retention compacts at once; it is weekly")
	}
}
