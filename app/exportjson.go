package app

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// ExportJSON is the ExportSink that writes a person's export as one JSON
// object, a record at a time, so ten thousand reflections never sit in
// memory at once. It is the one definition of the export's shape:
//
//	{"exported_at": …, "user_id": …, "settings": {…},
//	 "nudges": [ExportedNudge…], "reflections": [nudges.Reflection…]}
//
// with "settings" left out for someone never subscribed and the two
// arrays always present. Close ends the object.
type ExportJSON struct {
	w            io.Writer
	section      string // "", "nudges", "reflections": the array open
	nudges, refl int
	err          error
}

// NewExportJSON starts the export of userID, taken at at, on w.
func NewExportJSON(w io.Writer, userID string, at time.Time) *ExportJSON {
	e := &ExportJSON{w: w}
	e.write(`{"exported_at":`)
	e.value(at)
	e.write(`,"user_id":`)
	e.value(userID)
	return e
}

func (e *ExportJSON) write(s string) {
	if e.err == nil {
		_, e.err = io.WriteString(e.w, s)
	}
}

func (e *ExportJSON) value(v any) {
	b, err := json.Marshal(v)
	if err != nil && e.err == nil {
		e.err = fmt.Errorf("encoding an export: %w", err)
	}
	e.write(string(b))
}

// open starts the array of a section, closing the one before.
func (e *ExportJSON) open(section string) {
	if e.section == section {
		e.write(",")
		return
	}
	if e.section != "" {
		e.write("]")
	}
	e.section = section
	e.write(fmt.Sprintf(",%q:[", section))
}

// Settings writes the person's settings; the walk gives them first.
func (e *ExportJSON) Settings(s nudges.Subscriber) error {
	e.write(`,"settings":`)
	e.value(s)
	return e.err
}

// Nudge writes one nudge.
func (e *ExportJSON) Nudge(n ExportedNudge) error {
	e.open("nudges")
	e.value(n)
	e.nudges++
	return e.err
}

// Reflection writes one reflection.
func (e *ExportJSON) Reflection(r nudges.Reflection) error {
	e.open("reflections")
	e.value(r)
	e.refl++
	return e.err
}

// Close ends the JSON object, with an empty array for a section that had
// nothing; it reports the first error met while writing.
func (e *ExportJSON) Close() error {
	if e.section != "" {
		e.write("]")
	}
	if e.nudges == 0 {
		e.write(`,"nudges":[]`)
	}
	if e.refl == 0 {
		e.write(`,"reflections":[]`)
	}
	e.write("}\n")
	return e.err
}
