package bot

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// exportFiles spools a person's export to two temporary files, JSON and
// Markdown, a record at a time: ten thousand reflections never sit in
// memory at once. The files are unlinked at once, so nothing of a
// person's journal outlives the upload on disk, whatever happens.
type exportFiles struct {
	js, md  *os.File
	jw, mw  *bufio.Writer
	json    *app.ExportJSON // writes jw
	loc     *time.Location
	section string // "", "nudges", "reflections": the Markdown section open
	nudges  int
	refl    int
	err     error
}

func newExportFiles(userID string, at time.Time, loc *time.Location) (*exportFiles, error) {
	js, err := spool()
	if err != nil {
		return nil, err
	}
	md, err := spool()
	if err != nil {
		_ = js.Close() // already unlinked
		return nil, err
	}
	e := &exportFiles{js: js, md: md, jw: bufio.NewWriter(js), mw: bufio.NewWriter(md), loc: loc}
	e.json = app.NewExportJSON(e.jw, userID, at)
	e.write(e.mw, fmt.Sprintf("# My nudgebot journal\n\nExported %s.\n", at.In(loc).Format("Mon 2 Jan 2006 15:04 MST")))
	return e, nil
}

// spool makes an unlinked temporary file.
func spool() (*os.File, error) {
	f, err := os.CreateTemp("", "nudgebot-export-*")
	if err != nil {
		return nil, fmt.Errorf("spooling an export: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("spooling an export: %w", err)
	}
	return f, nil
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

// finish closes the JSON and rewinds both files for the upload; sizes
// are what Slack's upload asks for first.
func (e *exportFiles) finish() (jsSize, mdSize int64, err error) {
	e.fail(e.json.Close())
	if e.refl == 0 {
		e.write(e.mw, "\n## Reflections\n\nNone yet.\n")
	}
	if e.err != nil {
		return 0, 0, e.err
	}
	for _, w := range []*bufio.Writer{e.jw, e.mw} {
		if err := w.Flush(); err != nil {
			return 0, 0, err
		}
	}
	if jsSize, err = e.js.Seek(0, io.SeekCurrent); err == nil {
		mdSize, err = e.md.Seek(0, io.SeekCurrent)
	}
	if err == nil {
		_, err = e.js.Seek(0, io.SeekStart)
	}
	if err == nil {
		_, err = e.md.Seek(0, io.SeekStart)
	}
	return jsSize, mdSize, err
}

func (e *exportFiles) close() {
	_ = e.js.Close() // unlinked spool files: nothing to keep
	_ = e.md.Close()
}
