package bot

import (
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
	json         *app.ExportJSON // writes jw
	loc          *time.Location
	section      string // "", "nudges", "reflections": the Markdown section open
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
	e.json = app.NewExportJSON(e.jw, userID, at)
	e.write(e.mw, fmt.Sprintf("# My nudgebot journal\n\nExported %s.\n", at.In(loc).Format("Mon 2 Jan 2006 15:04 MST")))
	return e, nil
}

func (e *exportFiles) write(w io.Writer, s string) {
	if e.err == nil {
		_, e.err = io.WriteString(w, s)
	}
}

// open starts a Markdown section, once.
func (e *exportFiles) open(section, mdHead string) {
	if e.section != section {
		e.section = section
		e.write(e.mw, "\n## "+mdHead+"\n\n")
	}
}

// fail keeps the first error.
func (e *exportFiles) fail(err error) error {
	if e.err == nil {
		e.err = err
	}
	return e.err
}

func (e *exportFiles) Settings(s nudges.Subscriber) error {
	return e.fail(e.json.Settings(s))
}

func (e *exportFiles) Nudge(n app.ExportedNudge) error {
	e.fail(e.json.Nudge(n))
	e.open("nudges", "Nudges")
	e.nudges++
	e.write(e.mw, fmt.Sprintf("- %s · %s · %s\n", n.Slot.In(e.loc).Format("2006-01-02 15:04"), nudges.OutcomeText(n.Outcome), n.Prompt))
	return e.err
}

func (e *exportFiles) Reflection(r nudges.Reflection) error {
	e.fail(e.json.Reflection(r))
	e.open("reflections", "Reflections")
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
	data io.ReadSeeker
}

// finish closes the JSON and returns both files for the upload.
func (e *exportFiles) finish() (js, md spooled, err error) {
	e.fail(e.json.Close())
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
