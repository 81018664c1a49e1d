package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// `nudgebot migrate` copies a whole database from one engine into the
// other as storage's engine-neutral records (storage/records.go), then
// verifies the copy before it counts: the same records of every kind on
// both sides (counts, and a digest of every record), and a sample of
// reflections opened with the key on both sides and compared. Which
// engines are involved is the caller's business: the bbolt file comes
// from here (OpenMigrateSource, NewFileTarget), PostgreSQL from the
// wiring that links its driver.

// MigrateSource is the database being copied.
type MigrateSource interface {
	// Dump calls fn with every record; see storage.DB.Dump.
	Dump(fn func(storage.Record) error) error
	// Reflection opens one reflection with the key.
	Reflection(userID string, seq int) (nudges.Reflection, error)
}

// MigrateTarget is the empty database being filled. Nothing of it counts
// until the caller commits it, after Migrate verified it.
type MigrateTarget interface {
	Add(storage.Record) error
	// Finish writes what Add queued, so Dump and Reflection see it.
	Finish() error
	Dump(fn func(storage.Record) error) error
	Reflection(userID string, seq int) (nudges.Reflection, error)
}

// DefaultMigrateSample is how many reflections a migration opens on
// both sides, all of them when there are fewer.
const DefaultMigrateSample = 100

// MigrateSummary is what a migration copied and how it verified it.
type MigrateSummary struct {
	Source, Target storage.Tally
	// Forgotten is how many people's records were left out because
	// their Forget is unfinished (their mark is copied).
	Forgotten int
	// Opened is how many reflections were opened on both sides and
	// found equal, of Reflections.
	Opened, Reflections int
	Copy, Verify        time.Duration
}

// ErrMigrateMismatch means the copy does not hold what the source does;
// it is never committed.
var ErrMigrateMismatch = errors.New("the copy differs from the source")

// Migrate copies every record of src into dst and verifies dst: each
// kind's records equal on both sides, and sample reflections (all when
// fewer) open under the key on both sides with the same content.
// Progress goes to progress. ctx stops the copy between records. The
// plain text of the sampled reflections is only compared in memory,
// never written anywhere.
func Migrate(ctx context.Context, src MigrateSource, dst MigrateTarget, sample int, progress io.Writer) (MigrateSummary, error) {
	var sum MigrateSummary
	if progress == nil {
		progress = io.Discard
	}
	start := time.Now()
	var picked []reflectionRef
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	prog := newProgress(progress, "copying", 0, func(n int64) string { return fmt.Sprintf("%d records", n) })
	n := 0
	err := src.Dump(func(r storage.Record) error {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("stopped: %w", err)
			}
		}
		if err := sum.Source.Add(r); err != nil {
			return err
		}
		if r.Reflection != nil {
			// Reservoir sampling: each reflection is equally likely to be
			// among the sample, whatever their number.
			ref := reflectionRef{r.Reflection.Reflection.UserID, r.Reflection.Reflection.Seq}
			sum.Reflections++
			if len(picked) < sample {
				picked = append(picked, ref)
			} else if i := rng.IntN(sum.Reflections); i < sample {
				picked[i] = ref
			}
		}
		if r.Forgetting != nil {
			sum.Forgotten++
		}
		prog.Add(1)
		return dst.Add(r)
	})
	prog.Done()
	if err == nil {
		err = dst.Finish()
	}
	if err != nil {
		return sum, fmt.Errorf("copying: %w; nothing of the copy counts", err)
	}
	sum.Copy = time.Since(start)

	start = time.Now()
	fmt.Fprintln(progress, "verifying the copy")
	if err := dst.Dump(sum.Target.Add); err != nil {
		return sum, fmt.Errorf("reading the copy back: %w", err)
	}
	var differ []string
	for _, k := range storage.Kinds() {
		if !sum.Source.Same(&sum.Target, k) {
			differ = append(differ, fmt.Sprintf("%s (%d in the source, %d in the copy)", k, sum.Source.Count(k), sum.Target.Count(k)))
		}
	}
	if len(differ) > 0 {
		return sum, fmt.Errorf("%w: %s differ", ErrMigrateMismatch, strings.Join(differ, "; "))
	}
	for _, ref := range picked {
		if err := sameReflection(src, dst, ref); err != nil {
			return sum, err
		}
		sum.Opened++
	}
	sum.Verify = time.Since(start)
	return sum, nil
}

type reflectionRef struct {
	userID string
	seq    int
}

// sameReflection opens ref on both sides and compares everything, text
// included; its errors never quote a reflection.
func sameReflection(src MigrateSource, dst MigrateTarget, ref reflectionRef) error {
	a, err := src.Reflection(ref.userID, ref.seq)
	if err != nil {
		return fmt.Errorf("opening reflection %d of %s in the source: %w", ref.seq, ref.userID, err)
	}
	b, err := dst.Reflection(ref.userID, ref.seq)
	if err != nil {
		return fmt.Errorf("opening reflection %d of %s in the copy: %w", ref.seq, ref.userID, err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		return fmt.Errorf("%w: reflection %d of %s opens in both, but differently", ErrMigrateMismatch, ref.seq, ref.userID)
	}
	return nil
}

// Report writes the summary table: each kind's records on both sides,
// and what the verification opened.
func (s MigrateSummary) Report(w io.Writer) {
	row := func(kind string, src, dst any) { fmt.Fprintf(w, "  %-20s %12v %12v\n", kind, src, dst) }
	row("kind", "source", "copy")
	for _, k := range storage.Kinds() {
		row(string(k), s.Source.Count(k), s.Target.Count(k))
	}
	row("total", s.Source.Total(), s.Target.Total())
	fmt.Fprintf(w, "every kind holds the same records on both sides (counts and contents); %d of %d reflections opened with the key on both sides and equal\n",
		s.Opened, s.Reflections)
	if s.Forgotten > 0 {
		fmt.Fprintf(w, "%d people being forgotten were left out (their marks are copied; the erasure finishes when nudgebot next opens either database)\n", s.Forgotten)
	}
	fmt.Fprintf(w, "copied %d records in %s (%.0f records/s), verified in %s; handled Slack envelopes are not copied\n",
		s.Source.Total(), s.Copy.Round(time.Millisecond), RecordsPerSecond(s.Source.Total(), s.Copy), s.Verify.Round(time.Millisecond))
}

// RecordsPerSecond is n records in d as a rate.
func RecordsPerSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// KeyBeside says where the key came from when it was the key file beside
// the database, which only the bbolt engine reads: "" when the key is
// configured (NUDGEBOT_SECRET_KEY or storage.key_file).
func (t Tool) KeyBeside() string {
	beside, configured := keySource(t.Config, func(k string) string { return t.getenv(k) })
	if configured {
		return ""
	}
	return beside
}

// OpenMigrateSource opens the bbolt file the config names, read-only, to
// migrate from, with the configured key: it refuses a file a running
// nudgebot holds (ErrInUse: stop it first, or it would go on writing
// what the copy misses), and a file with sealed data but no key.
func (t Tool) OpenMigrateSource() (*storage.DB, *storage.Keys, error) {
	cfg := t.Config
	path := cfg.Storage.Path
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil, Mark(ErrNoDatabase, fmt.Errorf("there is no database at %s (storage.path) to migrate from", path))
	}
	keys, err := toolKeys(cfg, t.Getenv)
	if err != nil {
		return nil, nil, err
	}
	if keys == nil {
		return nil, nil, Mark(ErrKey, fmt.Errorf("no reflection key is configured: set %s or storage.key_file to the key %s was sealed with (the copy is sealed with it too, so every nudgebot using the copy needs it)", storage.EnvSecretKey, path))
	}
	db, err := storage.Open(path, storage.Options{ReadOnly: true, Timeout: lockWait, Keys: keys})
	if errors.Is(err, storage.ErrInUse) {
		return nil, nil, Mark(storage.ErrInUse, fmt.Errorf("%s is in use by a running nudgebot: stop it first, so nothing is written to it that the copy would miss", path))
	}
	if err != nil {
		return nil, nil, err
	}
	return db, keys, nil
}

// FileTarget is a new bbolt database written for a migration: in a
// fresh directory beside path (.<name>.migrate-*), both files, moved
// into place by Commit once verified. Until then path does not exist,
// so nothing can take a half-written copy for a database; a crash leaves
// only that directory, which Commit never reads.
type FileTarget struct {
	path, dir string
	db        *storage.DB
	load      *storage.Loader
}

// NewFileTarget starts a bbolt file at path for the records sealed with
// keys. It refuses a path that exists, or whose secrets file does: a
// migration writes a new database and never replaces one.
func NewFileTarget(path string, keys *storage.Keys) (*FileTarget, error) {
	for _, p := range []string{path, storage.SecretsPath(path)} {
		if _, err := os.Lstat(p); err == nil {
			return nil, Mark(ErrConfig, fmt.Errorf("%s exists: migrate writes a new database and never replaces one; nothing was written: move it away, or name another file", p))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("cannot look at %s: %w", p, err)
		}
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), "."+filepath.Base(path)+".migrate-*")
	if err != nil {
		return nil, fmt.Errorf("create a directory beside %s for the copy: %w (check the directory exists and is writable)", path, err)
	}
	t := &FileTarget{path: path, dir: dir}
	t.db, err = storage.Open(filepath.Join(dir, filepath.Base(path)), storage.Options{Keys: keys, Timeout: lockWait})
	if err == nil {
		t.load, err = t.db.NewLoader()
	}
	if err != nil {
		t.Abort()
		return nil, err
	}
	return t, nil
}

// Add queues r; see storage.Loader.
func (t *FileTarget) Add(r storage.Record) error { return t.load.Add(r) }

// Finish writes what is queued and syncs both files.
func (t *FileTarget) Finish() error { return t.load.Finish() }

// Dump reads the copy back.
func (t *FileTarget) Dump(fn func(storage.Record) error) error { return t.db.Dump(fn) }

// Reflection opens a reflection of the copy.
func (t *FileTarget) Reflection(userID string, seq int) (nudges.Reflection, error) {
	return t.db.Reflection(userID, seq)
}

// Check runs the full consistency check on the copy: every page, every
// index against its records, every reflection's seal.
func (t *FileTarget) Check() error { return t.db.Check() }

// Commit closes the copy and moves it into place: the main file first,
// then its secrets file. Each is linked under its name, which fails
// rather than replace a file that appeared meanwhile (and then the main
// file is taken back). A crash between the two leaves a main file
// without its secrets file, which nudgebot refuses to open if it needed
// them: never a database that looks complete and is not.
func (t *FileTarget) Commit() error {
	if err := t.db.Close(); err != nil {
		t.Abort()
		return fmt.Errorf("close the copy: %w", err)
	}
	t.db = nil
	tmp := filepath.Join(t.dir, filepath.Base(t.path))
	if err := placeNew(tmp, t.path); err != nil {
		t.Abort()
		return err
	}
	if err := placeNew(storage.SecretsPath(tmp), storage.SecretsPath(t.path)); err != nil {
		_ = os.Remove(t.path)
		t.Abort()
		return err
	}
	if err := syncDir(filepath.Dir(t.path)); err != nil {
		return err
	}
	return os.RemoveAll(t.dir)
}

// placeNew gives the file tmp the name path, which must not exist.
func placeNew(tmp, path string) error {
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return Mark(ErrConfig, fmt.Errorf("%s appeared while the copy was written: nothing was written over it", path))
	case !linkUnsupported(err):
		return fmt.Errorf("move the copy to %s: %w", path, err)
	}
	if _, err := os.Lstat(path); err == nil {
		return Mark(ErrConfig, fmt.Errorf("%s appeared while the copy was written: nothing was written over it", path))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("move the copy to %s: %w", path, err)
	}
	return nil
}

// Abort discards the copy.
func (t *FileTarget) Abort() {
	if t.db != nil {
		_ = t.db.Close()
		t.db = nil
	}
	_ = os.RemoveAll(t.dir)
}
