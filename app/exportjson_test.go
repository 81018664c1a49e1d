package app_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure the export's JSON shape: exported_at and user_id, settings only
// for someone who has them, and both arrays always present, in the order
// the records came, with people's text as they typed it.
func TestExportJSONShape(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		settings      bool
		nudges, refls int
		wantKeys      []string
	}{
		{"nothing", false, 0, 0, []string{"exported_at", "nudges", "reflections", "user_id"}},
		{"everything", true, 2, 3, []string{"exported_at", "nudges", "reflections", "settings", "user_id"}},
		{"reflections only", false, 0, 1, []string{"exported_at", "nudges", "reflections", "user_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			e := app.NewExportJSON(&buf, "U1", at)
			if tt.settings {
				if err := e.Settings(nudges.Subscriber{UserID: "U1", Time: "08:30"}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range tt.nudges {
				if err := e.Nudge(app.ExportedNudge{Delivery: nudges.Delivery{ID: "d" + string(rune('0'+i))}, Prompt: "Ask first"}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range tt.refls {
				if err := e.Reflection(nudges.Reflection{UserID: "U1", Seq: i + 1, Text: "I asked <first> & listened"}); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
				t.Fatalf("not one JSON object: %v\n%s", err, buf.Bytes())
			}
			var keys []string
			for k := range raw {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tt.wantKeys) {
				t.Errorf("keys %v, want %v", keys, tt.wantKeys)
			}
			var got struct {
				ExportedAt  time.Time           `json:"exported_at"`
				UserID      string              `json:"user_id"`
				Nudges      []app.ExportedNudge `json:"nudges"`
				Reflections []nudges.Reflection `json:"reflections"`
			}
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if !got.ExportedAt.Equal(at) || got.UserID != "U1" || len(got.Nudges) != tt.nudges || len(got.Reflections) != tt.refls {
				t.Errorf("decoded %+v", got)
			}
			for i, r := range got.Reflections {
				if r.Seq != i+1 || r.Text != "I asked <first> & listened" {
					t.Errorf("reflection %d reads %d %q", i, r.Seq, r.Text)
				}
			}
			for _, k := range []string{"nudges", "reflections"} {
				if string(raw[k]) == "null" {
					t.Errorf("%s is null, want []", k)
				}
			}
		})
	}
}
