package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/storage"
)

// Ensure no tool writes over the database, the key or the backup token,
// even with -force and whatever name reaches them (a symlink, a hard
// link, a relative path), nor over any other existing file without
// -force; and that what they refuse is left byte for byte as it was.
func TestTools_NeverWriteOverWhatTheyKeep(t *testing.T) {
	site := newOpsSite(t, "")
	db := openDB(t, site.db)
	seed(t, db, "U", 5)
	closeOK(t, db)
	key := filepath.Join(site.dir, storage.KeyFileName)
	writeFileMode(t, key, "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=\n")
	token := filepath.Join(site.dir, "nudgebot.backup-token")
	writeFileMode(t, token, "a-backup-token-of-enough-length\n")
	other := filepath.Join(site.dir, "notes.txt")
	writeFileMode(t, other, "an operator's notes\n")
	link := filepath.Join(t.TempDir(), "looks-harmless.db")
	if err := os.Symlink(site.db, link); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(site.dir, "hardlink.db")
	if err := os.Link(site.db, hard); err != nil {
		t.Fatal(err)
	}
	linkedDir := filepath.Join(t.TempDir(), "data")
	if err := os.Symlink(site.dir, linkedDir); err != nil {
		t.Fatal(err)
	}
	kept := map[string][]byte{}
	for _, p := range []string{site.db, key, token, other} {
		kept[p] = readFile(t, p)
	}

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"ExportOverDatabase", []string{"export", "-o", site.db}, ops.ExitConfig, "is the database (storage.path)"},
		{"ExportOverDatabaseForced", []string{"export", "-force", "-o", site.db}, ops.ExitConfig, "-force never writes over it"},
		{"ExportOverKey", []string{"export", "-force", "-o", key}, ops.ExitConfig, "is the reflection key file"},
		{"ExportOverToken", []string{"export", "-force", "-o", token}, ops.ExitConfig, "is the backup token file"},
		{"ExportThroughSymlink", []string{"export", "-force", "-o", link}, ops.ExitConfig, "is the database"},
		{"ExportThroughHardLink", []string{"export", "-force", "-o", hard}, ops.ExitConfig, "is the database"},
		{"ExportThroughLinkedDir", []string{"export", "-force", "-o", filepath.Join(linkedDir, "nudgebot.db")}, ops.ExitConfig, "is the database"},
		{"ExportOverOtherFile", []string{"export", "-o", other}, ops.ExitConfig, "already exists: nothing was written; choose a new name, or add -force"},
		{"BackupOverKey", []string{"backup", "-force", key}, ops.ExitConfig, "is the reflection key file"},
		{"BackupOverToken", []string{"backup", "-force", token}, ops.ExitConfig, "is the backup token file"},
		{"BackupOverDatabase", []string{"backup", "-force", site.db}, ops.ExitConfig, "is the database"},
		{"BackupOverOtherFile", []string{"backup", other}, ops.ExitConfig, "already exists"},
		{"BackupIntoDirectory", []string{"backup", "-force", site.dir}, ops.ExitConfig, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := tool(t, append(tt.args, "-config", site.cfg)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.want)
			}
			for p, was := range kept {
				if now := readFile(t, p); !bytes.Equal(now, was) {
					t.Fatalf("%s was written over", p)
				}
			}
			if left, _ := filepath.Glob(filepath.Join(site.dir, ".*tmp-*")); len(left) > 0 {
				t.Errorf("temporary files left behind: %q", left)
			}
		})
	}

	// -force replaces an ordinary file, through a temporary file renamed
	// into place.
	code, _, stderr := tool(t, "export", "-force", "-o", other, "-config", site.cfg)
	if code != ops.ExitOK || !strings.Contains(string(readFile(t, other)), `"kind":"subscriber"`) {
		t.Errorf("export -force over an ordinary file: exit %d, %s", code, stderr)
	}
	out := filepath.Join(site.dir, "fresh-backup.db")
	if code, _, stderr := tool(t, "backup", out, "-config", site.cfg); code != ops.ExitOK {
		t.Fatalf("backup to a new file: exit %d, %s", code, stderr)
	}
	if code, _, stderr := tool(t, "backup", "-force", out, "-config", site.cfg); code != ops.ExitOK {
		t.Errorf("backup -force over the earlier backup: exit %d, %s", code, stderr)
	}
}

func writeFileMode(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Ensure compact never leaves a file larger than it found it. A backup
// (or a restored one) is exactly as long as its data, while bbolt grows
// a file it writes in doubling steps, so compacting a restored 48 KiB
// database used to leave 64 KiB.
func TestCompact_NeverGrowsAFile(t *testing.T) {
	for _, n := range []int{1, 8, 20, 60, 120} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			site := newOpsSite(t, "")
			db := openDB(t, site.db)
			seed(t, db, "U", n)
			closeOK(t, db)
			// The database becomes a backup of itself: its data's length.
			backup := filepath.Join(t.TempDir(), "backup.db")
			if code, _, stderr := tool(t, "backup", "-config", site.cfg, backup); code != ops.ExitOK {
				t.Fatalf("backup: exit %d, %s", code, stderr)
			}
			if err := os.Rename(backup, site.db); err != nil {
				t.Fatal(err)
			}
			before := fileSize(t, site.db)
			for range 2 { // and again, on the compacted file
				if code, _, stderr := tool(t, "compact", "-config", site.cfg); code != ops.ExitOK {
					t.Fatalf("compact: exit %d, %s", code, stderr)
				}
				if after := fileSize(t, site.db); after > before {
					t.Errorf("compact grew %d people's database from %d to %d bytes", n, before, after)
				}
			}
			if got := subscriberIDs(t, site.db); len(got) != n {
				t.Errorf("after compact: %d subscribers, want %d", len(got), n)
			}
			if err := ops.VerifyDatabase(site.db); err != nil {
				t.Error(err)
			}
		})
	}
}
