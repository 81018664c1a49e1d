package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure the fast path reads the sealed payload exactly as JSON encodes
// it, and declines a record it does not recognise rather than misread it.
func TestSealedField(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 28, 331, 4096} {
		sealed := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, n)[:n] // bytes that encode to + and /
		raw, err := json.Marshal(reflectionRecord{Sealed: sealed, DataKey: "abcd1234", UserID: "U1", Seq: 1, Created: dueBase})
		if err != nil {
			t.Fatal(err)
		}
		got, _, ok := sealedField(raw, nil)
		if !ok || !bytes.Equal(got, sealed) {
			t.Errorf("%d bytes: sealedField=%x, %v; want %x, true", n, got, ok, sealed)
		}
	}
	for _, raw := range []string{
		`{"data_key":"x","sealed":"AAAA"}`,
		`{"sealed":"AAAA`,
		`{"sealed":"A*AA"}`,
		`{"sealed": "AAAA"}`,
	} {
		if _, _, ok := sealedField([]byte(raw), nil); ok {
			t.Errorf("sealedField(%s) took the fast path", raw)
		}
	}
}

func TestContainsFold(t *testing.T) {
	tests := []struct {
		s, sub string
		want   bool
	}{
		{"The Roadmap", "roadmap", true},
		{"The Roadmap", "ROADMAP", true},
		{"The Roadmap", "road map", false},
		{"ÄRGER", "ärger", true},
		{"Straße", "STRASSE", false}, // simple folding, like strings.EqualFold
		{"ﬁx", "fix", false},
		{"Mark \u212aelvin", "k kelvin", true}, // the Kelvin sign folds to k
		{"\u212aelvin", "KELVIN", true},
		{"\u212aelvin", "\u212aELVIN", true},
		{"Kelvin", "\u212aelvin", true},
		{"σοφία", "ΣΟΦΊΑ", true},
		{"abc", "", true},
		{"", "a", false},
		{"ab", "abc", false},
		{"\xff\xfeabc", "ABC", true},
		{"aaab", "aab", true},
	}
	for _, tt := range tests {
		if got := containsFold([]byte(tt.s), []byte(tt.sub)); got != tt.want {
			t.Errorf("containsFold(%q, %q)=%v, want %v", tt.s, tt.sub, got, tt.want)
		}
	}
}

func TestPayload(t *testing.T) {
	for _, tt := range []struct{ text, commitment string }{
		{"", ""}, {"text", ""}, {"", "commitment"}, {strings.Repeat("é", 3000), "c"},
	} {
		text, commitment, err := splitPayload(appendPayload(nil, tt.text, tt.commitment))
		if err != nil || string(text) != tt.text || string(commitment) != tt.commitment {
			t.Errorf("round trip of %d+%d bytes: %d+%d bytes, %v", len(tt.text), len(tt.commitment), len(text), len(commitment), err)
		}
	}
	for _, p := range [][]byte{nil, {2, 0}, {1}, {1, 5, 'a'}, {1, 0xff}} {
		if _, _, err := splitPayload(p); err == nil {
			t.Errorf("splitPayload(%x) succeeded", p)
		}
	}
}

// openWithReflections opens a database in which user has n reflections
// made by make, written in large transactions for speed.
func openWithReflections(tb testing.TB, user string, n int, make func(i int) nudges.Reflection) *DB {
	tb.Helper()
	sum := sha256.Sum256([]byte("bench"))
	keys, err := NewKeys(sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	db := openTest(tb, "", Options{Keys: keys})
	const batch = 1_000
	for start := 0; start < n; start += batch {
		err := db.update(func(tx *bolt.Tx) error {
			for i := start; i < min(start+batch, n); i++ {
				r := make(i)
				r.UserID = cmpOr(r.UserID, user)
				if r.Created.IsZero() {
					r.Created = dueBase.Add(time.Duration(i) * time.Minute)
				}
				if err := validateReflection(r); err != nil {
					return err
				}
				if _, err := db.saveReflection(tx, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// benchText is about 300 characters; every hundredth mentions zephyr.
func benchText(i int) nudges.Reflection {
	word := "breeze"
	if i%100 == 0 {
		word = "Zephyr"
	}
	text := fmt.Sprintf("Day %d: I asked the team which decision they were waiting on from me and the answer surprised me. "+
		"Two people said the %s of priorities is unclear since the reorg, and one said the planning doc is out of date. "+
		"Next time I will start the week by restating the three outcomes we are aiming for.", i, word)
	return nudges.Reflection{Text: text, Commitment: "restate the outcomes on Monday"}
}

const benchReflections = 5_000

// BenchmarkListReflections lists the newest 5 of 5,000 reflections, as
// /reflect list does, decryption included.
func BenchmarkListReflections(b *testing.B) {
	db := openWithReflections(b, "U1", benchReflections, benchText)
	b.ReportAllocs()
	for b.Loop() {
		rs, err := db.Reflections("U1", 5)
		if err != nil || len(rs) != 5 {
			b.Fatalf("Reflections: %d, %v", len(rs), err)
		}
	}
}

// BenchmarkSearchReflections searches 5,000 reflections for a word in 1%
// of them, as /reflect search does: every one is decrypted.
func BenchmarkSearchReflections(b *testing.B) {
	db := openWithReflections(b, "U1", benchReflections, benchText)
	b.ReportAllocs()
	for b.Loop() {
		rs, err := db.SearchReflections("U1", "zephyr", 0)
		if err != nil || len(rs) != benchReflections/100 {
			b.Fatalf("SearchReflections: %d, %v", len(rs), err)
		}
	}
}

// Ensure DueFollowUps reads what is due, not every pending follow-up:
// the same due set costs about the same among 100 or 2,000 pending.
func TestDueFollowUps_CostIndependentOfTotal(t *testing.T) {
	const due = 10
	allocs := map[int]float64{}
	for _, total := range []int{100, 2_000} {
		db := openWithReflections(t, "", total, func(i int) nudges.Reflection {
			at := dueBase.Add(-time.Duration(i) * time.Minute)
			if i >= due {
				at = dueBase.Add(time.Duration(i) * time.Minute)
			}
			return nudges.Reflection{UserID: fmt.Sprintf("U%d", i%50), Text: "t", Commitment: "c", FollowUpDue: at}
		})
		var err error
		allocs[total] = testing.AllocsPerRun(10, func() {
			var rs []nudges.Reflection
			rs, err = db.DueFollowUps(dueBase, 0)
			if err == nil && len(rs) != due {
				err = fmt.Errorf("DueFollowUps returned %d, want %d", len(rs), due)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if allocs[2_000] > allocs[100]*1.2+5 {
		t.Errorf("DueFollowUps allocated %v among 100 pending but %v among 2,000; want about the same", allocs[100], allocs[2_000])
	}
}
