package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// Ensure the edit distance behind "did you mean" counts edits correctly.
func TestLevenshtein(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"shedule", "schedule", 1},
		{"fromat", "format", 2},
		{"levl", "level", 1},
		{"colour", "log", 4},
		{"zöne", "zone", 1},
	}
	for _, tt := range tests {
		if got := levenshtein(tt.a, tt.b); got != tt.want {
			t.Errorf("levenshtein(%q, %q)=%d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := levenshtein(tt.b, tt.a); got != tt.want {
			t.Errorf("levenshtein(%q, %q)=%d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}

// Ensure only close names are suggested.
func TestSuggest(t *testing.T) {
	keys := []string{"level", "format", "log", "schedule"}
	tests := map[string]string{
		"levle":    "level",
		"fromat":   "format",
		"shedule":  "schedule",
		"foo":      "", // two edits from "log", but that is most of the word
		"timezone": "",
	}
	for key, want := range tests {
		if got := suggest(key, keys); got != want {
			t.Errorf("suggest(%q)=%q, want %q", key, got, want)
		}
	}
}

// Ensure every field of nudges.Holiday, which has no yaml tags, has a key,
// so a field added there cannot silently become unsettable.
func TestHolidayKeys(t *testing.T) {
	for i, name := range yamlNames(holidayType) {
		if name == "" {
			t.Errorf("nudges.Holiday.%s has no YAML key; add it to holidayKey", holidayType.Field(i).Name)
		}
	}
}

// Ensure every key Config reads is set in config.example.yaml, where it
// is documented.
func TestExample_EveryKey(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Keep only what YAML reads, so a key named in a comment alone does
	// not count.
	var code strings.Builder
	comment := regexp.MustCompile(`(^|\s)#.*$`)
	for _, l := range strings.Split(string(data), "\n") {
		code.WriteString(comment.ReplaceAllString(l, "") + "\n")
	}
	paths := leafPaths(reflect.TypeFor[Config](), "")
	if len(paths) < 15 {
		t.Fatalf("found only %d keys in Config: %q", len(paths), paths)
	}
	for _, p := range paths {
		for _, k := range strings.Split(strings.ReplaceAll(p, "[]", ""), ".") {
			if !regexp.MustCompile(`(^|[\s{,])` + regexp.QuoteMeta(k) + `:`).MatchString(code.String()) {
				t.Errorf("config.example.yaml does not set %q (from %s)", k, p)
			}
		}
	}
}
