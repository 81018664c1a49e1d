package ops

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

type fakeBot bool

func (b fakeBot) Connected() bool { return bool(b) }

// toolAt is a Tool for a database at dir/nudgebot.db.
func toolAt(dir string) Tool {
	return Tool{Config: config.Config{Storage: config.StorageConfig{Path: filepath.Join(dir, "nudgebot.db")}}}
}

// countSubscribers opens path read-only and counts who is in it.
func countSubscribers(t *testing.T, path string) int {
	t.Helper()
	db, err := storage.Open(path, storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer closeOK(t, db)
	n := 0
	if err := db.ForEachSubscriber(func(nudges.Subscriber) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// Ensure the tools' round trip works as a package, without the command:
// back up a stopped bot's file, compact it, export it, restore the
// backup over it, keeping what it replaced.
func TestTool_RoundTrip(t *testing.T) {
	dir := t.TempDir()
	tool := toolAt(dir)
	db := openDB(t, tool.Config.Storage.Path)
	seed(t, db, "U", 7)
	closeOK(t, db)

	out := filepath.Join(t.TempDir(), "backup.db")
	res, err := tool.Backup(context.Background(), out)
	if err != nil || !strings.Contains(res.Source, "read directly") || res.Bytes == 0 {
		t.Fatalf("Backup = %+v, %v", res, err)
	}
	if _, err := tool.Backup(context.Background(), out); ExitCode(err) != ExitConfig {
		t.Errorf("a second backup to the same file: %v, want a refusal", err)
	}
	if before, after, err := tool.Compact(); err != nil || after > before {
		t.Errorf("Compact = %d → %d, %v", before, after, err)
	}
	var lines bytes.Buffer
	counts, err := tool.Export(context.Background(), &lines)
	if err != nil || counts.LeftOut() != 0 || strings.Count(lines.String(), `"kind":"subscriber"`) != 7 {
		t.Errorf("Export: %v, %d left out, %q", err, counts.LeftOut(), lines.String())
	}
	kept, err := tool.Restore(out)
	if err != nil || kept != tool.Config.Storage.Path+".before-restore" {
		t.Fatalf("Restore = %q, %v", kept, err)
	}
	if n := countSubscribers(t, tool.Config.Storage.Path); n != 7 {
		t.Errorf("after restore: %d subscribers, want 7", n)
	}
	if _, err := tool.Restore(filepath.Join(dir, "missing.db")); ExitCode(err) != ExitConfig || !strings.Contains(err.Error(), "missing.db cannot be read") {
		t.Errorf("Restore of a missing file: %v", err)
	}
}

// Ensure a running bot serves backups and health on its socket with no
// setting, that the tools find it there, and that Stop removes it.
func TestTool_ThroughTheSocket(t *testing.T) {
	dir := t.TempDir()
	tool := toolAt(dir)
	db := openDB(t, tool.Config.Storage.Path) // held, as by the bot
	seed(t, db, "U", 3)
	sock := SocketPath(tool.Config)
	adm := NewAdmin(AdminConfig{Socket: sock, Version: "test"}, slog.New(slog.DiscardHandler))
	if err := adm.Start(fakeBot(true), db, BackupAuth{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adm.Stop)
	info, err := os.Lstat(sock)
	if err != nil || info.Mode()&fs.ModeSocket == 0 || info.Mode().Perm() != 0o600 {
		t.Fatalf("socket %s: %v, %v; want a socket with mode 0600", sock, info, err)
	}
	if left, _ := filepath.Glob(sock + ".*"); len(left) > 0 {
		t.Errorf("the socket's temporary name is left behind: %q", left)
	}
	if answer, err := tool.Health(context.Background(), false); err != nil || answer != "ok" {
		t.Errorf("Health = %q, %v; want ok", answer, err)
	}
	// The scheduler has not ticked: not ready, exit 1.
	if answer, err := tool.Health(context.Background(), true); ExitCode(err) != ExitFailed || !strings.Contains(answer, "first tick") {
		t.Errorf("Health(ready) = %q, %v; want not ready", answer, err)
	}
	out := filepath.Join(t.TempDir(), "backup.db")
	res, err := tool.Backup(context.Background(), out)
	if err != nil || !strings.Contains(res.Source, sock) {
		t.Fatalf("Backup of the running bot = %+v, %v", res, err)
	}
	if n := countSubscribers(t, out); n != 3 {
		t.Errorf("backup holds %d subscribers, want 3", n)
	}
	var stderr bytes.Buffer
	tool.Stderr = &stderr
	var lines bytes.Buffer
	if _, err := tool.Export(context.Background(), &lines); err != nil || strings.Count(lines.String(), `"kind":"subscriber"`) != 3 {
		t.Errorf("Export of the running bot: %v, %q", err, lines.String())
	}
	if strings.Contains(stderr.String(), "backing up") {
		t.Errorf("export speaks of a backup: %q", stderr.String())
	}
	adm.Stop()
	if _, err := os.Lstat(sock); err == nil {
		t.Error("Stop left the socket")
	}
	if _, err := tool.Health(context.Background(), false); err == nil || !strings.Contains(err.Error(), "no nudgebot is running") {
		t.Errorf("Health with no bot: %v", err)
	}
}
