package nudges

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// The blind rating of the built-in catalog lives beside it. It is only
// evidence while it rates the catalog as it is, so any change to
// catalog.yaml fails this test until a reviewer who did not write the
// change rates the whole catalog again (docs/writing-nudges.md says how).
const ratingFile = "catalog-rating.tsv"

// minGoodShare is the share of nudges the last rating must call good.
const minGoodShare = 0.90

type ratingRow struct {
	id       string
	criteria [4]bool
	good     bool
	reason   string
}

func readRating(t *testing.T) (catalogSum string, rows []ratingRow) {
	t.Helper()
	f, err := os.Open(ratingFile)
	if err != nil {
		t.Fatalf("opening the committed rating: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if sum, ok := strings.CutPrefix(text, "# catalog.yaml sha256 "); ok {
			catalogSum = strings.Fields(sum)[0]
			continue
		}
		if text == "" || strings.HasPrefix(text, "#") || strings.HasPrefix(text, "id\t") {
			continue
		}
		f := strings.Split(text, "\t")
		if len(f) < 6 {
			t.Fatalf("%s:%d: %d fields, want id, a, b, c, d, good, reason", ratingFile, line, len(f))
		}
		r := ratingRow{id: f[0]}
		for i := range 5 {
			switch f[1+i] {
			case "1":
				if i < 4 {
					r.criteria[i] = true
				} else {
					r.good = true
				}
			case "0":
			default:
				t.Fatalf("%s:%d: field %d is %q, want 0 or 1", ratingFile, line, i+2, f[1+i])
			}
		}
		if len(f) > 6 {
			r.reason = strings.TrimSpace(strings.Join(f[6:], " "))
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return catalogSum, rows
}

func TestCatalogRating_RatesThisCatalog(t *testing.T) {
	sum, rows := readRating(t)
	h := sha256.Sum256([]byte(defaultCatalogYAML))
	if want := hex.EncodeToString(h[:]); sum != want {
		t.Fatalf("%s rates a catalog with sha256 %q; catalog.yaml is now %s. Have a reviewer who did not write the change rate the whole catalog again and commit the rating with the new sum", ratingFile, sum, want)
	}
	c, err := DefaultCatalog()
	if err != nil {
		t.Fatal(err)
	}
	rated := make(map[string]bool, len(rows))
	for _, r := range rows {
		if rated[r.id] {
			t.Errorf("%s rates %s twice", ratingFile, r.id)
		}
		rated[r.id] = true
		if _, ok := c.Get(r.id); !ok {
			t.Errorf("%s rates %s, which is not in the catalog", ratingFile, r.id)
		}
	}
	for _, n := range c.All() {
		if !rated[n.ID] {
			t.Errorf("%s has no row for %s", ratingFile, n.ID)
		}
	}
}

func TestCatalogRating_GoodEnough(t *testing.T) {
	_, rows := readRating(t)
	good := 0
	for _, r := range rows {
		all := r.criteria[0] && r.criteria[1] && r.criteria[2] && r.criteria[3]
		if r.good != all {
			t.Errorf("%s: good is %v but the criteria say %v", r.id, r.good, all)
		}
		if !r.good && r.reason == "" {
			t.Errorf("%s: rated not good with no reason", r.id)
		}
		if r.good {
			good++
		}
	}
	if len(rows) == 0 {
		t.Fatal("the rating has no rows")
	}
	if share := float64(good) / float64(len(rows)); share < minGoodShare {
		t.Errorf("the last rating calls %d of %d nudges good (%.1f%%); the catalog must reach %.0f%%", good, len(rows), 100*share, 100*minGoodShare)
	}
}
