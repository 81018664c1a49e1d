package bot

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// exportFiles spools a person's export to two temporary files, JSON and
// Markdown, a record at a time: ten thousand reflections never sit in
// memory at once. The files are unlinked at once and sealed under a key
// held only in memory (sealedSpool), so no reflection lies on disk in
// plaintext, even while the upload waits.
type exportFiles struct {
	js, md       *sealedSpool
	jw, mw       io.Writer
	loc          *time.Location
	section      string // "", "nudges", "reflections": the JSON array open
	nudges, refl int
	err          error
}

func newExportFiles(userID string, at time.Time, loc *time.Location) (*exportFiles, error) {
	js, err := newSealedSpool()
	if err != nil {
		return nil, err
	}
	md, err := newSealedSpool()
	if err != nil {
		_ = js.Close()
		return nil, err
	}
	e := &exportFiles{js: js, md: md, jw: js, mw: md, loc: loc}
	head, _ := json.Marshal(map[string]any{"exported_at": at, "user_id": userID})
	e.write(e.jw, string(head[:len(head)-1]))
	e.write(e.mw, fmt.Sprintf("# My nudgebot journal\n\nExported %s.\n", at.In(loc).Format("Mon 2 Jan 2006 15:04 MST")))
	return e, nil
}

func (e *exportFiles) write(w io.Writer, s string) {
	if e.err == nil {
		_, e.err = io.WriteString(w, s)
	}
}

// open starts the JSON array of a section, closing the one before.
func (e *exportFiles) open(section, mdHead string) {
	if e.section == section {
		e.write(e.jw, ",")
		return
	}
	if e.section != "" {
		e.write(e.jw, "]")
	}
	e.section = section
	e.write(e.jw, fmt.Sprintf(",%q:[", section))
	e.write(e.mw, "\n## "+mdHead+"\n\n")
}

func (e *exportFiles) value(v any) {
	b, err := json.Marshal(v)
	if err != nil && e.err == nil {
		e.err = err
	}
	e.write(e.jw, string(b))
}

func (e *exportFiles) Settings(s nudges.Subscriber) error {
	e.write(e.jw, `,"settings":`)
	e.value(s)
	return e.err
}

func (e *exportFiles) Nudge(n app.ExportedNudge) error {
	e.open("nudges", "Nudges")
	e.value(n)
	e.nudges++
	e.write(e.mw, fmt.Sprintf("- %s · %s · %s\n", n.Slot.In(e.loc).Format("2006-01-02 15:04"), nudges.OutcomeText(n.Outcome), n.Prompt))
	return e.err
}

func (e *exportFiles) Reflection(r nudges.Reflection) error {
	e.open("reflections", "Reflections")
	e.value(r)
	e.refl++
	e.write(e.mw, fmt.Sprintf("### #%d · %s\n\n%s\n\n", r.Seq, r.Created.In(e.loc).Format("Mon 2 Jan 2006"), r.Text))
	if r.Commitment != "" {
		e.write(e.mw, fmt.Sprintf("Next step: %s\n\n", r.Commitment))
	}
	return e.err
}

// spooled is a finished export file: its size, which Slack's upload asks
// for first, and its content.
type spooled struct {
	size int64
	data io.Reader
}

// finish closes the JSON and returns both files for the upload.
func (e *exportFiles) finish() (js, md spooled, err error) {
	if e.section != "" {
		e.write(e.jw, "]")
	}
	if e.nudges == 0 {
		e.write(e.jw, `,"nudges":[]`)
	}
	if e.refl == 0 {
		e.write(e.jw, `,"reflections":[]`)
	}
	e.write(e.jw, "}\n")
	if e.refl == 0 {
		e.write(e.mw, "\n## Reflections\n\nNone yet.\n")
	}
	if e.err != nil {
		return spooled{}, spooled{}, e.err
	}
	if js.size, js.data, err = e.js.finish(); err != nil {
		return spooled{}, spooled{}, err
	}
	if md.size, md.data, err = e.md.finish(); err != nil {
		return spooled{}, spooled{}, err
	}
	return js, md, nil
}

func (e *exportFiles) close() {
	_ = e.js.Close()
	_ = e.md.Close()
}
