package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage/boltwalk"
)

// Errors that Open and the data methods return, always wrapped with the
// path or the record concerned.
var (
	// ErrInUse means another process (or another DB in this process)
	// holds the file's lock.
	ErrInUse = errors.New("database is in use by another process")

	// ErrDamaged means the file is not a usable database: empty when data
	// was expected, truncated, damaged, or not a bbolt file at all. Open
	// returns it having changed nothing; cmd maps it to its exit code for
	// a damaged database.
	ErrDamaged = errors.New("database is damaged")

	// ErrCorrupt is ErrDamaged, by its older name.
	ErrCorrupt = ErrDamaged

	// ErrNewerSchema means the file was written by a newer nudgebot.
	ErrNewerSchema = errors.New("database schema is newer than this nudgebot")

	// ErrConflict means the subscriber changed since the caller read it,
	// typically because another worker already advanced their schedule.
	ErrConflict = errors.New("conflicting update: the subscriber changed since it was read")
)

// SchemaVersion is the layout this package reads and writes.
const SchemaVersion = 5

// schemaSealedShare is the first schema whose reflections bind their
// share setting into the seal, and whose pulses keep keyed voter markers.
const schemaSealedShare = 2

// schemaCompactDeliveries is the first schema that keeps deliveries as
// binary records keyed by slot, with a person index (doc.go).
const schemaCompactDeliveries = 5

// schemaSecretsFile is the first schema that keeps data keys and open
// pulses' secrets in the secrets file (SecretsPath) instead of the main
// file.
const schemaSecretsFile = 4

const (
	defaultTimeout = time.Second
	fileMode       = 0o600
)

// Options configure Open. The zero value is ready to use.
type Options struct {
	// Timeout bounds the wait for the file lock; zero means 1s. bbolt
	// itself would wait forever, hanging a second nudgebot silently.
	Timeout time.Duration

	// Logger receives the few things worth telling an operator about the
	// file; nil discards them.
	Logger *slog.Logger

	// ReadOnly opens with a shared lock for check and backup tools. The
	// file must exist, and no migration runs.
	ReadOnly bool

	// Now stamps records that storage creates itself (missed deliveries);
	// nil means time.Now.
	Now func() time.Time

	// Retention is how long ApplyRetention keeps deliveries, closed
	// pulses and handled envelopes; zero keeps them for ever.
	Retention time.Duration

	// Keys seal reflections (see LoadKeys). Open refuses a file whose
	// reflections were sealed with a key Keys lacks (ErrKeyMissing); nil
	// is only enough while no reflection was ever saved, or for a
	// ReadOnly open that never reads one (or exports, and so learns that
	// each reflection has no key).
	Keys *Keys

	// For tests: migrateBatch replaces the 4 → 5 migration's batch size
	// when positive, and afterMigrateBatch is called after each of its
	// committed batches with the number moved so far.
	migrateBatch      int
	afterMigrateBatch func(moved int)

	// For tests: afterSecretsStep is called as moving the secrets out of
	// the main file passes each step (secretsWritten, secretsCommitted).
	afterSecretsStep func(step string)
}

// DB is nudgebot's state file. It is safe for concurrent use.
type DB struct {
	// mu guards the bolt handle, which Compact replaces: every
	// transaction runs under the read lock (view, update), Compact and
	// Close take the write lock.
	mu      sync.RWMutex
	bolt    *bolt.DB
	closed  bool
	closing atomic.Bool // set by Close before it waits for mu

	path      string
	log       *slog.Logger
	now       func() time.Time
	keys      *Keys
	timeout   time.Duration // for Compact's reopen
	readOnly  bool
	retention time.Duration

	// fileVersion is the schema of the open file: SchemaVersion unless
	// an older file was opened read-only.
	fileVersion int

	// secretsEmbedded is set for a backup of schema 5 or later whose
	// secrets are still in the main file (keySecretsEmbedded): a
	// read-only open reads them there, a read-write one moves them out.
	secretsEmbedded bool

	// needsCompaction mirrors the meta flag so NeedsCompaction costs no
	// transaction.
	needsCompaction atomic.Bool

	// secrets is the secrets file; nil only in a read-only open of a
	// file whose secrets are in the main file (older than
	// schemaSecretsFile, or a backup), or whose secrets file is missing.
	// secretsMu orders the changes that span both files (forget,
	// pulses) against snapshots of both (backup, check).
	secrets   *secretsFile
	secretsMu sync.Mutex
	// movedSecrets is set by the migration that moved the secrets out,
	// movedDeliveries by the one that rewrote the deliveries: Open then
	// compacts the main file once, so the secrets leave it, and the old
	// records' pages.
	movedSecrets, movedDeliveries bool

	migrateBatch      int               // see Options
	afterMigrateBatch func(moved int)   // see Options
	afterSecretsStep  func(step string) // see Options

	bgCheck checkState  // StartCheck's
	group   groupCommit // see write
	stats   stats
	health  writeHealth // whether the disk is refusing writes
}

// Open opens the database at path, creating it with mode 0600 if it does
// not exist. It refuses files that are in use (ErrInUse), empty, truncated
// or damaged (ErrDamaged) or from a newer nudgebot (ErrNewerSchema), and
// never writes to a file it refuses. Older schemas are migrated.
//
// Before bbolt maps an existing file, Open walks every page of it
// (package boltwalk, in time linear in its size and bounded memory,
// reading with pread): bbolt panics, loops or faults on some damaged
// files, and none of that can be caught once it has begun. A damaged
// file is refused with ErrDamaged. The records themselves are checked by
// Check, which StartCheck runs in the background.
func Open(path string, opts Options) (*DB, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	if path == "" {
		return nil, errors.New("no database path given: set storage.path to the file nudgebot should keep its state in")
	}
	if opts.Retention > 0 && opts.Retention < nudges.MinRetention {
		return nil, fmt.Errorf("retention %s is shorter than %d days: status and digests look back %d days, so set storage.retention to at least %dd",
			opts.Retention, nudges.MinRetention/(24*time.Hour), nudges.HistoryWindow/(24*time.Hour), nudges.MinRetention/(24*time.Hour))
	}
	if err := checkFile(path, opts.ReadOnly, log); err != nil {
		return nil, err
	}
	walked, err := walkFile(path, opts)
	if err != nil {
		return nil, err
	}

	bdb, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	if err := sameSnapshot(bdb, path, walked); err != nil {
		return nil, errors.Join(err, closeRefused(bdb))
	}
	db := &DB{bolt: bdb, path: path, log: log, now: now, keys: opts.Keys, timeout: opts.Timeout, readOnly: opts.ReadOnly, retention: opts.Retention,
		migrateBatch: opts.migrateBatch, afterMigrateBatch: opts.afterMigrateBatch, afterSecretsStep: opts.afterSecretsStep}

	version, err := db.inspect()
	if err != nil {
		return nil, errors.Join(err, closeRefused(bdb))
	}
	if version, err = db.openFiles(version); err != nil {
		return nil, errors.Join(err, db.closeRefusedBoth())
	}
	log.Info("opened database", "path", path, "schema_version", version, "read_only", opts.ReadOnly)
	return db, nil
}

// openFiles opens the secrets file, migrates a read-write open, and
// readies the reflections; it returns the schema the open file has.
func (db *DB) openFiles(version int) (int, error) {
	// A backup's own secrets are the ones that go with it: any secrets
	// file beside it is not read, and a read-write open replaces it.
	if version >= schemaSecretsFile && !db.secretsEmbedded {
		if err := db.openSecretsFile(); err != nil {
			return 0, err
		}
	}
	if !db.readOnly {
		// A missing key is refused before anything migrates or writes.
		if err := db.checkKeys(); err != nil {
			return 0, err
		}
		if err := db.prepare(version); err != nil {
			return 0, err
		}
		if db.secrets == nil {
			if err := db.openSecretsFile(); err != nil {
				return 0, err
			}
		}
		version = SchemaVersion
	} else if version < SchemaVersion {
		db.log.Warn("database schema is older than this nudgebot; open it read-write once to migrate it",
			"path", db.path, "schema_version", version, "current", SchemaVersion)
	}
	db.fileVersion = version
	if err := db.openReflections(); err != nil {
		return 0, err
	}
	if db.movedSecrets || db.movedDeliveries || (!db.readOnly && db.needsCompaction.Load()) {
		// Once, after the move: the secrets must leave the main file's
		// free pages too, and the pages the old deliveries held (most of
		// the file) go back to the disk. Open has not returned, so no
		// write waits for it, where the hourly compaction check would
		// hold every write for its copy: the bot connects after
		// (docs/operations.md, Upgrade). The flag alone means an Open
		// that moved the secrets was cut short before this.
		if db.movedSecrets {
			db.secretsStep(secretsCommitted)
		}
		size, _ := db.Size()
		db.log.Info("compacting the database once after migrating it; the bot connects once it is done",
			"path", db.path, "bytes", size)
		began := time.Now()
		if err := db.Compact(); err != nil {
			return 0, err
		}
		db.log.Info("compacted the database", "path", db.path, "took", time.Since(began).Round(time.Millisecond).String())
	}
	return version, nil
}

// checkFile refuses what bbolt would mishandle before bbolt sees it: an
// existing 0-byte file would be silently initialised as a new database.
func checkFile(path string, readOnly bool, log *slog.Logger) error {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && readOnly:
		return fmt.Errorf("database %s does not exist: check storage.path: %w", path, err)
	case errors.Is(err, fs.ErrNotExist):
		return nil // a fresh database
	case err != nil:
		return fmt.Errorf("database %s cannot be read: %w: check its permissions and storage.path", path, err)
	case info.IsDir():
		return fmt.Errorf("database %s is a directory: point storage.path at a file", path)
	case info.Size() == 0:
		return &openError{
			msg:   fmt.Sprintf("database %s is empty (0 bytes) but a database was expected: restore it from a backup, or delete the file to start afresh", path),
			kinds: []error{ErrDamaged},
		}
	}
	if info.Mode().Perm()&0o077 != 0 {
		log.Warn("database file is readable by other users; it holds people's reflections, so run chmod 600 on it",
			"path", path, "mode", info.Mode().Perm().String())
	}
	return nil
}

// openBolt calls bolt.Open, turning its panics, memory faults and errors
// into errors that tell the operator what to do.
func openBolt(path string, opts Options) (bdb *bolt.DB, err error) {
	// bbolt panics (or faults reading past a truncated mmap) on some damaged
	// files before it hands us a DB we could close, so keep the file
	// ourselves and close it to release the lock.
	var file *os.File
	openFile := func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				releaseLock(file)
				_ = file.Close()
			}
			bdb, err = nil, corruptError(path, fmt.Errorf("bbolt panicked while opening: %v", r))
		}
	}()

	bdb, err = bolt.Open(path, fileMode, &bolt.Options{
		Timeout:  opts.Timeout,
		ReadOnly: opts.ReadOnly,
		OpenFile: openFile,
		// The quick check at Open asks which pages are free; a
		// read-write open reads the free list anyway.
		PreLoadFreelist: true,
	})
	switch {
	case err == nil:
		return bdb, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, inUseError(path, err)
	case isCorruption(err):
		return nil, corruptError(path, err)
	default:
		return nil, fmt.Errorf("open database %s: %w: check that its directory exists and nudgebot may read and write there, or point storage.path elsewhere", path, err)
	}
}

func isCorruption(err error) bool {
	return errors.Is(err, bolterrors.ErrInvalid) ||
		errors.Is(err, bolterrors.ErrChecksum) ||
		errors.Is(err, bolterrors.ErrVersionMismatch) ||
		errors.Is(err, bolterrors.ErrInvalidMapping) ||
		strings.Contains(err.Error(), "file size too small")
}

func corruptError(path string, cause error) error {
	return &openError{
		msg:   fmt.Sprintf("database %s is damaged (%v): keep the damaged file, then restore a backup with `nudgebot restore`, or inspect it with `bbolt check %s`", path, cause, path),
		kinds: []error{ErrDamaged, cause},
	}
}

// openError lets the message read as one sentence for the operator while
// errors.Is still finds our sentinel and bbolt's cause.
type openError struct {
	msg   string
	kinds []error
}

func (e *openError) Error() string   { return e.msg }
func (e *openError) Unwrap() []error { return e.kinds }

// closeRefused closes a database we refuse to serve. bbolt's Close only
// unmaps and unlocks; it writes nothing.
func closeRefused(bdb *bolt.DB) error {
	if err := bdb.Close(); err != nil {
		return fmt.Errorf("close refused database: %w", err)
	}
	return nil
}

// inspect validates the file before anything writes to it and returns its
// schema version (SchemaVersion for a fresh file).
func (db *DB) inspect() (version int, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corruptError(db.path, fmt.Errorf("reading the file panicked: %v", r))
		}
	}()
	err = db.bolt.View(func(tx *bolt.Tx) error {
		// A file shorter than its meta page claims is truncated; reading
		// its pages would fault, so refuse before tx.Check touches them.
		info, err := os.Stat(db.path)
		if err != nil {
			return fmt.Errorf("database %s: %w", db.path, err)
		}
		if info.Size() < tx.Size() {
			return corruptError(db.path, fmt.Errorf("file is %d bytes but holds %d bytes of data: it was truncated", info.Size(), tx.Size()))
		}
		version, err = readSchemaVersion(tx)
		if err == nil {
			db.secretsEmbedded, err = readSecretsEmbedded(tx, version)
		}
		if err != nil {
			return corruptError(db.path, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if version > SchemaVersion {
		return 0, &openError{
			msg:   fmt.Sprintf("database schema version %d is newer than this nudgebot understands (%d): upgrade nudgebot or restore a backup made by this version", version, SchemaVersion),
			kinds: []error{ErrNewerSchema},
		}
	}
	return version, nil
}

func checkTx(tx *bolt.Tx) error {
	var errs []error
	for err := range tx.Check() {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

const keySchemaVersion = "schema_version"

// readSchemaVersion says which layout the file has. A file without a meta
// bucket but with other buckets predates versioning (version 0); a file
// with no buckets at all is fresh and gets the current layout.
func readSchemaVersion(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		empty := true
		err := tx.ForEach(func([]byte, *bolt.Bucket) error {
			empty = false
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("list buckets: %w", err)
		}
		if empty {
			return SchemaVersion, nil
		}
		return 0, nil
	}
	raw := meta.Get([]byte(keySchemaVersion))
	if raw == nil {
		return 0, fmt.Errorf("the meta bucket has no %s", keySchemaVersion)
	}
	var v int
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("decode %s %q: %w", keySchemaVersion, raw, err)
	}
	if v < 0 {
		return 0, fmt.Errorf("%s is %d", keySchemaVersion, v)
	}
	return v, nil
}

// readSecretsEmbedded says whether the file of schema version is a
// backup whose secrets are still in it (keySecretsEmbedded). Before
// schema 4 they are always there, and the 3 → 4 migration moves them.
func readSecretsEmbedded(tx *bolt.Tx, version int) (bool, error) {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil || version < schemaSecretsFile {
		return false, nil
	}
	switch raw := meta.Get([]byte(keySecretsEmbedded)); {
	case raw == nil:
		return false, nil
	case string(raw) == "true":
		return true, nil
	default:
		return false, fmt.Errorf("%s is %q, not true", keySecretsEmbedded, raw)
	}
}

// migration turns a file of version i into version i+1.
type migration func(tx *bolt.Tx) error

// migrations is indexed by the version it migrates from; they run in
// one transaction, and the 4 → 5 migration (moveDeliveries), which
// rewrites every delivery, runs after them in transactions of its own.
func (db *DB) migrations() []migration {
	return []migration{
		0: rebuildIndexes, // files from before versioning may lack the indexes
		1: db.sealShareAndKeyVoters,
		2: buildSlotIndex, // retention finds old deliveries through it
		3: db.moveSecrets, // erasing a secret compacts a small file, not this one
	}
}

// prepare migrates the file to SchemaVersion and creates every bucket.
// The migrations up to schema 4 run in one transaction, so that a crash
// leaves the old version intact; the 4 → 5 migration then moves the
// deliveries in bounded transactions, each leaving the file whole, and
// carries on after a crash (see moveDeliveries). A backup's embedded
// secrets are moved out in the first transaction too.
func (db *DB) prepare(version int) error {
	single := db.migrations()
	reached := max(version, len(single))
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for v := version; v < len(single); v++ {
			if err := single[v](tx); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
			}
		}
		if db.secretsEmbedded {
			db.log.Info("moving the secrets out of the restored backup into their own file", "path", db.path, "secrets", SecretsPath(db.path))
			if err := db.moveSecrets(tx); err != nil {
				return fmt.Errorf("move the backup's secrets to their own file: %w", err)
			}
		}
		for _, name := range allBuckets() {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return putSchemaVersion(tx, reached)
	})
	if err == nil && reached < SchemaVersion {
		db.log.Info("migrating database schema; it may take a while on a large file, and the bot connects once it is done",
			"path", db.path, "from", version, "to", SchemaVersion)
		err = db.moveDeliveries()
	}
	if err != nil {
		return fmt.Errorf("prepare database %s: %w", db.path, err)
	}
	if version < SchemaVersion {
		db.log.Info("migrated database schema", "path", db.path, "from", version, "to", SchemaVersion)
	}
	return nil
}

// view runs fn in a read transaction of the current handle.
func (db *DB) view(fn func(*bolt.Tx) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.bolt.View(fn)
}

// update runs fn in a write transaction of its own; write shares one.
func (db *DB) update(fn func(*bolt.Tx) error) error {
	db.stats.writes.Add(1)
	return db.refusedBy(db.commit(fn))
}

// commit runs fn in a write transaction of the current handle. Taking
// only the read lock is right: bbolt serialises writers itself; the lock
// only keeps Compact from swapping the handle underneath.
//
// When fn succeeded but the commit did not, the disk refused the write:
// the error is a *WriteError and the fault stands (see WriteFault) until
// a commit succeeds again.
func (db *DB) commit(fn func(*bolt.Tx) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	built := false
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		built = false
		if err := fn(tx); err != nil {
			return err
		}
		built = true
		return nil
	})
	switch {
	case err == nil:
		db.stats.commits.Add(1)
		db.health.committed(db.log, db.now(), filepath.Dir(db.path))
	case built:
		err = &WriteError{Path: db.path, Err: err}
		db.health.failed(db.log, db.now(), err)
	}
	return err
}

// Close releases the file. Calling it again is harmless.
func (db *DB) Close() error {
	db.closing.Store(true) // a background check gives way rather than hold the lock
	db.mu.Lock()
	defer db.mu.Unlock()
	db.closed = true
	var serr error
	if db.secrets != nil {
		serr = db.secrets.close()
	}
	if err := db.bolt.Close(); err != nil {
		return errors.Join(fmt.Errorf("close database %s: %w", db.path, err), serr)
	}
	return serr
}

// Path is the file the database lives in.
func (db *DB) Path() string { return db.path }

// Check walks every page of the file (boltwalk.Walk) and, on a tree the
// walk found sound, runs bbolt's own consistency check too (two readings
// of the same structure, so a gap in one is not a gap in both; bbolt's
// follows page ids through its mapping, where damage the walk names
// could fault). Then it checks that the due, outbox and seen
// indexes agree with their records and, when the keys were given, that
// every reflection opens under its seal (a record whose share setting
// was altered does not). It returns every problem found, joined and
// wrapped in ErrDamaged. It holds the writer lock throughout (a
// read-only open holds the file's shared lock instead), so it belongs in
// tools and tests; StartCheck is the check a running bot does.
func (db *DB) Check() error { return db.fullCheck(nil) }

// fullCheck is Check, or, given stop, StartCheck's background check: the
// snapshot walk and the record checks in a read transaction, holding the
// writer lock only to begin it, and giving back the mapped pages the
// record checks read as they go (see dropResident). The background check
// calls stop as it goes and ends with its error (errCheckStopped).
//
// bbolt's own check (tx.Check) reads the in-memory free list, which
// writers change, so it is only safe beside them inside a write
// transaction: on a 1 GB file that held every writer for 14–25 s. A
// snapshot walk needs no lock: a read transaction is begun while the
// writer lock is held for a moment, and the meta page naming that
// transaction is read from the file then, before any commit can
// overwrite it (pinSnapshot). Once the lock is released, bbolt reuses no
// page that the read transaction can reach, nor the free-list page its
// meta names, until the transaction ends, so the snapshot stays as it was
// while writers go on, and boltwalk reads it with pread.
func (db *DB) fullCheck(stop func() error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return fmt.Errorf("check database %s: %w", db.path, bolterrors.ErrDatabaseNotOpen)
	}
	f, err := os.Open(db.path)
	if err != nil {
		return fmt.Errorf("check database: %w", err)
	}
	defer f.Close()
	return db.checkVerdict(db.checkSnapshot(f, stop))
}

// checkVerdict wraps what a check found in ErrDamaged, and leaves a
// check that did not finish as it is.
func (db *DB) checkVerdict(err error) error {
	switch {
	case err == nil, errors.Is(err, errCheckStopped):
		return err
	case errors.Is(err, bolterrors.ErrDatabaseNotOpen):
		return fmt.Errorf("check database %s: %w", db.path, err)
	default:
		return corruptError(db.path, err)
	}
}

// checkSnapshot checks the file f holds: the snapshot walk, then in the
// foreground (stop is nil) bbolt's own check too; then, if the trees are
// sound, the records.
func (db *DB) checkSnapshot(f *os.File, stop func() error) error {
	background := stop != nil
	if !background {
		stop = func() error { return nil }
	}
	// The data keys are read as of the snapshot: no forget or pulse
	// change spanning both files is half done meanwhile.
	db.secretsMu.Lock()
	wtx, rtx, meta, err := db.pinSnapshot(f)
	var keys map[string]dataKeyRecord
	if err == nil {
		if keys, err = db.snapshotDataKeys(); err != nil {
			rollback(rtx)
			rollback(wtx)
		}
	}
	db.secretsMu.Unlock()
	if err != nil {
		return err
	}
	defer rollback(rtx)
	if background {
		rollback(wtx) // writers go on; the snapshot stays pinned by rtx
	} else {
		defer rollback(wtx)
	}
	if err := boltwalk.Walk(f, meta, stop); err != nil {
		if errors.Is(err, errCheckStopped) {
			return err
		}
		// bbolt's own check, and decoding records, follow page ids
		// through its mapping, and could fault on what the walk found.
		return fmt.Errorf("snapshot walk: %w", err)
	}
	if !background {
		tx := wtx
		if tx == nil { // read-only: the file's shared lock keeps writers out, so rtx is safe
			tx = rtx
		}
		if err := checkTx(tx); err != nil {
			return fmt.Errorf("bbolt's check: %w", err)
		}
	}
	pace := stop
	if background {
		// The mapping cannot move meanwhile: bbolt remaps only with no
		// read transaction open, and db.mu keeps Close and Compact out.
		addr, size, n := db.bolt.Info().Data, rtx.Size(), 0
		defer dropResident(addr, size)
		pace = func() error {
			if n++; n%dropEveryRecords != 0 {
				return nil
			}
			dropResident(addr, size)
			return stop()
		}
	}
	return db.checkRecords(rtx, keys, pace)
}

// pinSnapshot takes the writer lock, begins a read transaction and reads
// its meta page from f while no commit can overwrite it. The caller ends
// both transactions; until it ends the read one, bbolt keeps every page
// of the snapshot as it is. A read-only open has no writer lock to take
// (wtx is nil) and needs none: it holds the file's shared lock, which
// keeps any writing process out.
func (db *DB) pinSnapshot(f *os.File) (wtx, rtx *bolt.Tx, meta boltwalk.Meta, err error) {
	if !db.bolt.IsReadOnly() {
		if wtx, err = db.bolt.Begin(true); err != nil {
			return nil, nil, meta, err
		}
	}
	if rtx, err = db.bolt.Begin(false); err != nil {
		rollback(wtx)
		return nil, nil, meta, err
	}
	var info os.FileInfo
	if info, err = f.Stat(); err == nil {
		meta, err = boltwalk.SnapshotMeta(f, db.bolt.Info().PageSize, info.Size(), uint64(rtx.ID()))
	}
	if err != nil {
		rollback(rtx)
		rollback(wtx)
		return nil, nil, meta, err
	}
	return wtx, rtx, meta, nil
}

// rollback ends tx, if there is one; it only read.
func rollback(tx *bolt.Tx) {
	if tx != nil {
		_ = tx.Rollback()
	}
}

// checkRecords checks what bbolt cannot: the indexes against their
// records, the reflections' own indexes and their seals. pace is called
// once per record read; an error from it ends the check.
func (db *DB) checkRecords(tx *bolt.Tx, keys map[string]dataKeyRecord, pace func() error) error {
	if err := checkIndexes(tx, pace); err != nil {
		return err
	}
	return errors.Join(checkReflections(tx, keys, pace), db.checkSeals(tx, keys, pace))
}

// Size is the size of the file in bytes. bbolt never shrinks its file;
// Compact does.
func (db *DB) Size() (int64, error) {
	info, err := os.Stat(db.path)
	if err != nil {
		return 0, fmt.Errorf("size of database %s: %w", db.path, err)
	}
	return info.Size(), nil
}

// WriteTo writes a consistent copy of the whole database, both files,
// to w while others keep reading and writing: a hot backup. The copy is
// one database file that Open accepts: the secrets file's contents ride
// in it the way schema 3 kept them, marked as embedded (keySecretsEmbedded)
// under the file's own schema version, so the first read-write Open of a
// restored copy moves them out to a secrets file of its own again, and a
// nudgebot older than the file refuses it as newer.
//
// Embedding the secrets means writing into the copy after the snapshot,
// so when w is a file opened for reading and writing (a BackupFile,
// such as an *os.File from os.CreateTemp, even one already unlinked)
// the copy is made in it directly; any other writer gets the copy
// through a temporary file beside the database, which costs the disk
// space and the time of a second copy.
func (db *DB) WriteTo(w io.Writer) (int64, error) {
	if db.secrets == nil { // a file not yet migrated holds everything
		var n int64
		err := db.view(func(tx *bolt.Tx) error {
			var err error
			n, err = tx.WriteTo(w)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("back up database %s: %w", db.path, err)
		}
		return n, nil
	}
	if f, ok := w.(BackupFile); ok && inPlaceBackups {
		n, err := db.writeBackup(f)
		if err != nil {
			return n, fmt.Errorf("back up database %s: %w", db.path, err)
		}
		return n, nil
	}
	tmp, err := db.writeBackupFile()
	if err != nil {
		return 0, fmt.Errorf("back up database %s: %w", db.path, err)
	}
	defer os.Remove(tmp)
	f, err := os.Open(tmp)
	if err != nil {
		return 0, fmt.Errorf("back up database %s: %w", db.path, err)
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return n, fmt.Errorf("back up database %s: %w", db.path, err)
	}
	return n, nil
}

// BackupFile is a file WriteTo can make its copy in directly: empty,
// opened for reading and writing, written from its start. An *os.File
// is one; a type embedding one can add to Write (to count progress).
type BackupFile interface {
	io.Writer
	Fd() uintptr
	Name() string
}
