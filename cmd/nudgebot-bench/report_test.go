package main

import (
	"strings"
	"testing"
)

func TestRenderReport(t *testing.T) {
	full := renderReport("", map[string]string{
		"ack":         "## ack\n\nold ack figures\n",
		"burst":       "## burst\n\nold burst figures\n",
		"subscribers": "## subs\n\nold subs figures\n",
		"tick":        "## tick\n\nold tick figures\n",
		"nine":        "## nine\n\nold nine figures\n",
		"faults":      "## faults\n\nold faults figures\n",
		"retention":   "## retention\n\nold retention figures\n",
		"startup":     "## startup\n\nold startup figures\n",
		"setup":       "## setup\n\nold setup\n",
		"pace":        "## pace\n\nold pace figures\n",
		"migrate":     "## migrate\n\nold migrate figures\n",
		"weight":      "## weight\n\nold weight figures\n",
		"ack-pg":      "## ack-pg\n\nold ack-pg figures\n",
		"burst-pg":    "## burst-pg\n\nold burst-pg figures\n",
		"size-pg":     "## size-pg\n\nold size-pg figures\n",
		"failover-pg": "## failover-pg\n\nold failover-pg figures\n",
	})
	tests := map[string]struct {
		previous string
		fresh    map[string]string
		want     []string // in this order
		notWant  []string
	}{
		"full run from nothing": {
			previous: "",
			fresh:    map[string]string{"ack": "## ack\n\nnew ack\n"},
			want:     []string{"# nudgebot performance", "new ack", "Not measured yet: run `go run ./cmd/nudgebot-bench -scenarios burst`", "-scenarios tick"},
		},
		"partial run keeps the other sections": {
			previous: full,
			fresh:    map[string]string{"burst": "## burst\n\nnew burst figures\n"},
			want: []string{"old ack figures", "new burst figures", "old subs figures", "old tick figures", "old nine figures", "old faults figures", "old retention figures", "old startup figures", "old setup", "old pace figures",
				"old migrate figures", "old weight figures", "old ack-pg figures", "old burst-pg figures", "old size-pg figures", "old failover-pg figures"},
			notWant: []string{"old burst figures", "Not measured yet"},
		},
		"hand edits outside sections are dropped": {
			previous: "# mine\n\nhand-written text\n" + full,
			fresh:    map[string]string{},
			want:     []string{"# nudgebot performance", "old ack figures"},
			notWant:  []string{"hand-written text"},
		},
		"unterminated section is replaced by a placeholder": {
			previous: beginMarker("tick") + "\nhalf a section\n",
			fresh:    map[string]string{},
			want:     []string{"-scenarios tick"},
			notWant:  []string{"half a section"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := renderReport(tt.previous, tt.fresh)
			at := 0
			for _, w := range tt.want {
				i := strings.Index(got[at:], w)
				if i < 0 {
					t.Fatalf("report lacks %q after offset %d:\n%s", w, at, got)
				}
				at += i + len(w)
			}
			for _, nw := range tt.notWant {
				if strings.Contains(got, nw) {
					t.Errorf("report still has %q:\n%s", nw, got)
				}
			}
			for _, key := range reportKeys {
				if strings.Count(got, beginMarker(key)) != 1 || strings.Count(got, endMarker(key)) != 1 {
					t.Errorf("section %s is not delimited exactly once", key)
				}
			}
			// Rendering what was rendered changes nothing: reruns are stable.
			if again := renderReport(got, nil); again != got {
				t.Errorf("re-rendering changed the report:\n%s\n---\n%s", got, again)
			}
		})
	}
}

// Ensure every scenario has its section and title, once, so a new
// scenario cannot run without a place in the report.
func TestEveryScenarioHasASection(t *testing.T) {
	for _, name := range append(append([]string(nil), scenarioOrder...), "setup") {
		n := 0
		for _, k := range reportKeys {
			if k == name {
				n++
			}
		}
		if n != 1 {
			t.Errorf("scenario %q appears %d times in reportKeys, want once", name, n)
		}
		if reportTitles[name] == "" {
			t.Errorf("scenario %q has no title", name)
		}
	}
	if len(reportKeys) != len(scenarioOrder)+1 {
		t.Errorf("reportKeys has %d sections, want the %d scenarios and the setup", len(reportKeys), len(scenarioOrder))
	}
}
