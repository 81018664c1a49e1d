package ops

import (
	"context"
	"io"
	"os"

	"github.com/nudgebot/nudgebot/config"
)

// Tool is one data tool's view of an installation: the config nudgebot
// runs with, the environment it reads the key and the backup token from,
// and where progress and warnings go.
type Tool struct {
	Config config.Config
	Getenv func(string) string // nil: an empty environment
	Stderr io.Writer           // progress and warnings; nil discards them
	// Force lets a backup or an export replace an existing file; never
	// the database, the key file or the backup token file.
	Force bool
	// Database, when set, checks the database instead of the bbolt file
	// (PostgreSQL: the caller wires its engine's check).
	Database func(ctx context.Context, stdout io.Writer) []error
}

func (t Tool) stderr() io.Writer {
	if t.Stderr == nil {
		return io.Discard
	}
	return t.Stderr
}

func (t Tool) getenv(k string) string {
	if t.Getenv == nil {
		return ""
	}
	return t.Getenv(k)
}

// ExportFile writes the export to the file out, which appears only once
// complete.
func (t Tool) ExportFile(ctx context.Context, out string) (ExportCounts, error) {
	if err := t.checkOutput(out, t.Force); err != nil {
		return ExportCounts{}, err
	}
	var counts ExportCounts
	err := writeAtomic(out, t.Force, func(f *os.File) error {
		var err error
		counts, err = t.Export(ctx, f)
		return err
	}, nil)
	return counts, err
}
