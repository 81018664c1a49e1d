package bot

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure the spooled export is valid JSON and readable Markdown whatever
// a person has: nothing, settings only, nudges only, reflections only,
// or everything.
func TestExportFiles(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	sub := nudges.Subscriber{UserID: "U1", Subscribed: true}
	n := app.ExportedNudge{Delivery: nudges.Delivery{ID: "d1", Slot: at}, Prompt: "Ask first"}
	r := nudges.Reflection{UserID: "U1", Seq: 1, Created: at, Text: "I asked <first> & listened", Commitment: "again"}
	for name, tc := range map[string]struct {
		settings           bool
		nudges, refls      int
		wantNudge, wantRef int
	}{
		"nothing":     {},
		"settings":    {settings: true},
		"nudges":      {nudges: 2, wantNudge: 2},
		"reflections": {refls: 3, wantRef: 3},
		"everything":  {settings: true, nudges: 1, refls: 2, wantNudge: 1, wantRef: 2},
	} {
		t.Run(name, func(t *testing.T) {
			e, err := newExportFiles("U1", at, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			defer e.close()
			if tc.settings {
				if err := e.Settings(sub); err != nil {
					t.Fatal(err)
				}
			}
			for range tc.nudges {
				if err := e.Nudge(n); err != nil {
					t.Fatal(err)
				}
			}
			for range tc.refls {
				if err := e.Reflection(r); err != nil {
					t.Fatal(err)
				}
			}
			jsFile, mdFile, err := e.finish()
			if err != nil {
				t.Fatal(err)
			}
			js, err := io.ReadAll(jsFile.data)
			if err != nil {
				t.Fatal(err)
			}
			md, err := io.ReadAll(mdFile.data)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(js)) != jsFile.size || int64(len(md)) != mdFile.size {
				t.Errorf("sizes %d/%d, read %d/%d", jsFile.size, mdFile.size, len(js), len(md))
			}
			var got struct {
				UserID      string              `json:"user_id"`
				Settings    *nudges.Subscriber  `json:"settings"`
				Nudges      []app.ExportedNudge `json:"nudges"`
				Reflections []nudges.Reflection `json:"reflections"`
			}
			if err := json.Unmarshal(js, &got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, js)
			}
			if len(got.Nudges) != tc.wantNudge || len(got.Reflections) != tc.wantRef || (got.Settings != nil) != tc.settings || got.UserID != "U1" {
				t.Errorf("decoded %+v", got)
			}
			if tc.refls > 0 && !strings.Contains(string(md), "I asked <first> & listened") {
				t.Errorf("markdown lacks the reflection:\n%s", md)
			}
		})
	}
}
