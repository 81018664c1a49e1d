package ops

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// ExportCounts is what an export wrote and what it left out.
type ExportCounts struct {
	subscribers, deliveries, reflections int

	noKey      int      // reflections whose key is not configured
	noKeyWhy   []string // each different reason once
	damaged    []string // records that do not decode or decrypt, by name
	damagedWhy []string // the same, with why
	keyed      bool     // a key was configured
}

func (c *ExportCounts) LeftOut() int { return c.noKey + len(c.damaged) }

// leaveOut counts a record the walk could not open.
func (c *ExportCounts) leaveOut(u nudges.Unreadable) {
	if u.Reason == nudges.UnreadableNoKey {
		c.noKey++
		if !slices.Contains(c.noKeyWhy, u.Detail) {
			c.noKeyWhy = append(c.noKeyWhy, u.Detail)
		}
		return
	}
	c.damaged = append(c.damaged, u.Name())
	c.damagedWhy = append(c.damagedWhy, u.Name()+": "+u.Detail)
}

// maxNamed bounds how many left-out records the closing line names; each
// is also named on a line of its own above it.
const maxNamed = 10

// Report tells the operator what was written and what was left out and
// why: every damaged record by name, then one closing line with counts.
func (c *ExportCounts) Report(w io.Writer, out string) {
	for _, why := range c.damagedWhy {
		fmt.Fprintf(w, "nudgebot export: left out %s\n", why)
	}
	if c.noKey > 0 {
		if c.keyed {
			for _, why := range c.noKeyWhy {
				fmt.Fprintf(w, "nudgebot export: left out reflections: %s\n", why)
			}
		} else {
			fmt.Fprintf(w, "reflections were left out: no key is configured to open them (set %s or storage.key_file, or keep %s beside the database)\n", storage.EnvSecretKey, storage.KeyFileName)
		}
	}
	fmt.Fprintf(w, "exported %d %s, %d %s and %d %s", c.subscribers, plural(c.subscribers, "subscriber", "subscribers"),
		c.deliveries, plural(c.deliveries, "delivery", "deliveries"), c.reflections, plural(c.reflections, "reflection", "reflections"))
	if out != "" {
		fmt.Fprintf(w, " to %s", out)
	}
	if c.LeftOut() == 0 {
		fmt.Fprintln(w, "; nothing was left out")
		return
	}
	var why []string
	if c.noKey > 0 {
		why = append(why, fmt.Sprintf("%d %s no key to open %s", c.noKey, plural(c.noKey, "reflection with", "reflections with"), plural(c.noKey, "it", "them")))
	}
	if n := len(c.damaged); n > 0 {
		named := strings.Join(c.damaged[:min(n, maxNamed)], ", ")
		if n > maxNamed {
			named += fmt.Sprintf(" and %d more, named above", n-maxNamed)
		}
		why = append(why, fmt.Sprintf("%d damaged, failing to decrypt or decode (%s)", n, named))
	}
	fmt.Fprintf(w, "; left out %d %s: %s\n", c.LeftOut(), plural(c.LeftOut(), "record", "records"), strings.Join(why, "; "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// The export's line types: the domain record with its kind beside it.
type (
	exportSubscriber struct {
		Kind string `json:"kind"`
		nudges.Subscriber
	}
	exportDelivery struct {
		Kind string `json:"kind"`
		nudges.Delivery
	}
	exportReflection struct {
		Kind string `json:"kind"`
		nudges.Reflection
	}
)

// Export writes every record the storage walk hands out, and counts
// what it could not open: the walk goes over the records themselves,
// the same walk /reflect export uses for one person.
func (t Tool) Export(ctx context.Context, w io.Writer) (ExportCounts, error) {
	cfg, getenv, stderr := t.Config, t.Getenv, t.stderr()
	keys, err := toolKeys(cfg, getenv)
	if err != nil {
		return ExportCounts{}, err
	}
	db, cleanup, err := t.openSnapshot(ctx, keys)
	if err != nil {
		return ExportCounts{}, err
	}
	defer cleanup()

	counts := ExportCounts{keyed: keys != nil}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false) // people's text stays readable: <, > and & as typed
	prog := newProgress(stderr, "exporting records", 0, count)
	err = db.ExportAll(func(r nudges.PersonRecord) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped after %d records: %w", prog.n, err)
		}
		prog.Add(1)
		var line any
		switch {
		case r.Subscriber != nil:
			counts.subscribers++
			line = exportSubscriber{Kind: nudges.KindSubscriber, Subscriber: *r.Subscriber}
		case r.Delivery != nil:
			counts.deliveries++
			line = exportDelivery{Kind: nudges.KindDelivery, Delivery: *r.Delivery}
		case r.Reflection != nil:
			counts.reflections++
			line = exportReflection{Kind: nudges.KindReflection, Reflection: *r.Reflection}
		case r.Unreadable != nil:
			counts.leaveOut(*r.Unreadable)
			return nil
		default:
			return nil
		}
		if err := enc.Encode(line); err != nil {
			return fmt.Errorf("write the export: %w", err)
		}
		return nil
	})
	prog.Done()
	if err != nil {
		return counts, err // storage's errors and fn's say what failed
	}
	if err := bw.Flush(); err != nil {
		return counts, fmt.Errorf("write the export: %w", err)
	}
	return counts, nil
}

// openSnapshot opens the configured database for reading: the file
// itself when no nudgebot holds it, else a copy the running nudgebot
// streams, kept in a private temporary directory that cleanup removes.
func (t Tool) openSnapshot(ctx context.Context, keys *storage.Keys) (*storage.DB, func(), error) {
	path := t.Config.Storage.Path
	db, err := storage.Open(path, storage.Options{ReadOnly: true, Timeout: lockWait, Keys: keys})
	if err == nil {
		return db, func() { _ = db.Close() }, nil
	}
	if !errors.Is(err, storage.ErrInUse) {
		return nil, nil, err
	}
	bot, err := t.runningBot()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "nudgebot-snapshot-") // mode 0700
	if err != nil {
		return nil, nil, fmt.Errorf("temporary directory for a copy of the database: %w", err)
	}
	removeDir := func() { _ = os.RemoveAll(dir) }
	snap := filepath.Join(dir, "nudgebot.db")
	err = writeAtomic(snap, false, func(f *os.File) error {
		_, err := bot.fetch(ctx, f, t.stderr(), "copying the database from the running nudgebot")
		return err
	}, nil)
	if err != nil {
		removeDir()
		return nil, nil, err
	}
	db, err = storage.Open(snap, storage.Options{ReadOnly: true, Timeout: lockWait, Keys: keys})
	if err != nil {
		removeDir()
		return nil, nil, fmt.Errorf("the copy the running nudgebot sent does not open: %w", err)
	}
	return db, func() { _ = db.Close(); removeDir() }, nil
}
