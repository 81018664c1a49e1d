package bot

import (
	"slices"
	"testing"
)

// Ensure an empty id never becomes a key: "trg:" or "env:" alone would
// swallow every later envelope without one.
func TestDedupeKeys(t *testing.T) {
	tests := []struct {
		name     string
		envelope string
		extra    []string
		want     []string
	}{
		{"envelope and trigger", "E1", []string{keyed("trg:", "T1")}, []string{"env:E1", "trg:T1"}},
		{"empty trigger", "E1", []string{keyed("trg:", "")}, []string{"env:E1"}},
		{"empty event id", "E2", []string{keyed("evt:", "")}, []string{"env:E2"}},
		{"empty envelope", "", []string{keyed("trg:", "T2")}, []string{"trg:T2"}},
		{"nothing", "", []string{keyed("trg:", "")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dedupeKeys(tt.envelope, tt.extra...); !slices.Equal(got, tt.want) {
				t.Errorf("dedupeKeys = %q, want %q", got, tt.want)
			}
		})
	}
}
