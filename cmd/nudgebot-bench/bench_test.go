package main

import (
	"strings"
	"testing"
)

func TestParseLoad(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    loadAvg
		wantErr bool
	}{
		"ok":        {"1.33 5.94 4.56 1/87 31349\n", loadAvg{1.33, 5.94, 4.56}, false},
		"short":     {"1.33 5.94", loadAvg{}, true},
		"not float": {"a b c 1/2 3", loadAvg{}, true},
		"empty":     {"", loadAvg{}, true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseLoad([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseLoad(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseLoad(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestCPUModel(t *testing.T) {
	tests := map[string]struct {
		in        string
		wantModel string
		wantN     int
	}{
		"two cores": {"processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n",
			"Intel(R) Xeon(R) Processor", 2},
		// arm64 kernels list no model name.
		"no model": {"processor\t: 0\nBogoMIPS\t: 50.00\n", "unknown CPU", 1},
		"empty":    {"", "unknown CPU", 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			model, n := cpuModel(strings.NewReader(tt.in))
			if model != tt.wantModel || n != tt.wantN {
				t.Errorf("cpuModel = %q, %d, want %q, %d", model, n, tt.wantModel, tt.wantN)
			}
		})
	}
}

func TestMeminfoTotal(t *testing.T) {
	tests := map[string]struct {
		in     string
		want   uint64
		wantOK bool
	}{
		"ok":      {"MemTotal:       24684084 kB\nMemFree:        23000000 kB\n", 24684084, true},
		"missing": {"MemFree:        23000000 kB\n", 0, false},
		"garbled": {"MemTotal: lots\n", 0, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := meminfoTotal(strings.NewReader(tt.in))
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("meminfoTotal = %d, %v, want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
