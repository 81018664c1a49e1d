package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseStorageCounts(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    storageCounts
		wantErr bool
	}{
		{"all", "# HELP nudgebot_storage_writes_total x\n# TYPE nudgebot_storage_writes_total counter\nnudgebot_storage_writes_total 2008\nnudgebot_storage_commits_total 417\nnudgebot_storage_pages_written_total 3900\nnudgebot_subscribers 3\n", storageCounts{2008, 417, 3900}, false},
		{"exponent", "nudgebot_storage_writes_total 1.2e+06\nnudgebot_storage_commits_total 3e+05\nnudgebot_storage_pages_written_total 1e+06\n", storageCounts{1.2e6, 3e5, 1e6}, false},
		{"one missing", "nudgebot_storage_writes_total 5\nnudgebot_storage_commits_total 1\n", storageCounts{}, true},
		{"not a number", "nudgebot_storage_writes_total x\nnudgebot_storage_commits_total 1\nnudgebot_storage_pages_written_total 1\n", storageCounts{}, true},
		{"a longer name is not it", "nudgebot_storage_writes_total_extra 9\nnudgebot_storage_writes_total 1\nnudgebot_storage_commits_total 1\nnudgebot_storage_pages_written_total 2\n", storageCounts{1, 1, 2}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStorageCounts(strings.NewReader(tt.text))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err=%v, want error %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDiskUse(t *testing.T) {
	d := between(storageCounts{10, 5, 0}, storageCounts{2010, 505, 3000}, 1000, 2*time.Second)
	if d.perNudge() != 0.5 || d.fsyncsPerSecond() != 500 {
		t.Errorf("perNudge %v, fsyncs/s %v; want 0.5 and 500", d.perNudge(), d.fsyncsPerSecond())
	}
	if s := d.String(); !strings.Contains(s, "500 commits for 2000 writes") || !strings.Contains(s, "0.50 commits") || !strings.Contains(s, "500 fsyncs/s") || !strings.Contains(s, "3.0 pages") {
		t.Errorf("String()=%q", s)
	}
	if s := (diskUse{Err: "no metrics"}).String(); !strings.Contains(s, "not measured") {
		t.Errorf("String() of a failed reading = %q", s)
	}
}
