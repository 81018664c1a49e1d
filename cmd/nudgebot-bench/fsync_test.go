package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Ensure the probe times every synced write and leaves nothing behind.
func TestProbeFsync(t *testing.T) {
	dir := t.TempDir()
	r := probeFsync(dir, 5)
	if r.Err != "" {
		t.Fatalf("probe failed: %s", r.Err)
	}
	if r.Sync.N != 5 || r.Sync.P50 <= 0 || r.Sync.P99 < r.Sync.P50 {
		t.Errorf("Sync=%+v, want 5 positive timings", r.Sync)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the probe left %d files behind", len(entries))
	}
	if s := r.String(); !strings.Contains(s, "p50") || !strings.Contains(s, "p99") {
		t.Errorf("String()=%q, want p50 and p99", s)
	}
}

// Ensure a directory the probe cannot write in is reported, not fatal.
func TestProbeFsync_Unwritable(t *testing.T) {
	r := probeFsync(filepath.Join(t.TempDir(), "missing"), 5)
	if r.Err == "" || !strings.Contains(r.String(), "not measured") {
		t.Errorf("probe in a missing directory: %+v, want an error", r)
	}
}
