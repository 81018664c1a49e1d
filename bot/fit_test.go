package bot

import (
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

// Ensure long user text is split into sections that each fit Slack's
// limit after escaping, and that nothing is lost or cut inside an entity.
func TestEscapedSections(t *testing.T) {
	tests := []struct {
		name string
		text string
		max  int
		want int // sections
	}{
		{"short", "a & b", 3000, 1},
		{"ampersands", strings.Repeat("&", 3000), 3000, 5},
		{"angles and words", strings.Repeat("x <y> & z ", 300), 3000, 2},
		{"emoji", strings.Repeat("😀", 2000), 3000, 2},
		{"empty", "", 3000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks := escapedSections(tt.text, tt.max)
			if len(blocks) != tt.want {
				t.Errorf("%d sections, want %d", len(blocks), tt.want)
			}
			var joined strings.Builder
			for _, b := range blocks {
				text := b.(*slack.SectionBlock).Text.Text
				if n := textLen(text); n > tt.max {
					t.Errorf("a section is %d long once escaped, over %d", n, tt.max)
				}
				joined.WriteString(text)
			}
			if joined.String() != Escape(tt.text) {
				t.Error("the sections do not add up to the escaped text")
			}
		})
	}
}
