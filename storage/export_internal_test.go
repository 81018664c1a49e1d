package storage

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure every bucket of the layout is either walked by the export or
// says why it holds no record of a person of its own: a bucket added
// without a word here could hold what an export silently leaves out.
func TestExport_CoversEveryBucket(t *testing.T) {
	why := map[string]string{
		bucketSubscribers: "walked",
		bucketRecords:     "walked, through the person index",
		bucketReflections: "walked",

		bucketMeta:           "the file's own settings",
		bucketDue:            "index of subscribers",
		bucketOutbox:         "index of deliveries",
		bucketByPerson:       "index of deliveries, walked to find them",
		bucketSeen:           "Slack's envelope ids, not a person's",
		bucketSeenByTime:     "index of seen",
		bucketDigests:        "channels, not people",
		bucketPulses:         "pulse totals: anonymous by design",
		bucketPulseHistory:   "pulse summaries: anonymous by design",
		bucketReflectionSeq:  "numbers reflections",
		bucketFollowUps:      "index of reflections' follow-ups",
		bucketSharedByPerson: "index of reflections' share settings",
		bucketForgetting:     "people on their way out, whom the walk leaves out",
	}
	for _, b := range allBuckets() {
		if why[b] == "" {
			t.Errorf("bucket %s: say whether ExportAll walks it, and if not why (see doc.go)", b)
		}
	}
	for b := range why {
		if !slices.Contains(allBuckets(), b) {
			t.Errorf("bucket %s is not in the layout any more", b)
		}
	}
}

// Ensure the walk reads in pages yet hands out each record once, in
// order, across page boundaries and from one person among others.
func TestExport_Pages(t *testing.T) {
	const many = 2*scanPageSize + 7
	db := openWithReflections(t, "", many+3, func(i int) nudges.Reflection {
		user := "U1"
		if i >= many {
			user = []string{"U0", "U2", "U10"}[i-many] // one each, around U1 and extending its id
		}
		return nudges.Reflection{UserID: user, Text: fmt.Sprintf("note %d", i)}
	})
	tests := []struct {
		name string
		walk func(func(nudges.PersonRecord) error) error
		want int
	}{
		{"All", db.ExportAll, many + 3},
		{"Person", func(fn func(nudges.PersonRecord) error) error { return db.ExportPerson("U1", fn) }, many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := tt.walk(func(r nudges.PersonRecord) error {
				if r.Reflection == nil {
					return fmt.Errorf("walked %s, want only reflections", r.Kind())
				}
				got = append(got, fmt.Sprintf("%s/%d", r.Reflection.UserID, r.Reflection.Seq))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Fatalf("walked %d reflections, want %d", len(got), tt.want)
			}
			var ones []string
			for _, g := range got {
				if strings.HasPrefix(g, "U1/") {
					ones = append(ones, g)
				}
			}
			for i := range many {
				if want := fmt.Sprintf("U1/%d", i+1); i >= len(ones) || ones[i] != want {
					t.Fatalf("U1's reflections walked as %d, the %dth not %s", len(ones), i+1, want)
				}
			}
		})
	}
}

// BenchmarkExportPerson walks one person's 5,000 reflections, as
// /reflect export does, decryption included.
func BenchmarkExportPerson(b *testing.B) {
	db := openWithReflections(b, "U1", benchReflections, benchText)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := db.ExportPerson("U1", func(r nudges.PersonRecord) error {
			if r.Reflection != nil {
				n++
			}
			return nil
		})
		if err != nil || n != benchReflections {
			b.Fatalf("ExportPerson: %d, %v", n, err)
		}
	}
}
