package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// lockWait is how long a data tool waits for the database's lock before
// concluding that a running nudgebot holds it. A bot holds it for its
// whole life, so waiting longer would not help.
const lockWait = 500 * time.Millisecond

// The /backup response carries the database size up front (for progress)
// and, as trailers, what was actually written: a stream cut short by a
// crash would otherwise look like a complete, merely smaller, file.
const (
	headerSizeHint = "Nudgebot-Database-Size"
	trailerBytes   = "Nudgebot-Backup-Bytes"
	trailerError   = "Nudgebot-Backup-Error"
)

// backupSource is the database as /backup sees it.
type backupSource interface {
	WriteTo(w io.Writer) (int64, error)
	Size() (int64, error)
}

// backupAuth is what /backup asks of a client: the token, and where to
// keep the copy while it is sent.
type backupAuth struct {
	Token string // required: /backup is off without one
	Dir   string // for the temporary copy; the database's own directory
}

// backupHandler serves a consistent copy of the live database to one
// client at a time. Only a client on the same machine (by address and by
// Host header) with the token gets it. The copy is first written to an
// unlinked temporary file under one read transaction, as fast as the
// disk allows, and only then streamed: a slow or stalled client must not
// hold a read transaction, which would stall writes that need the file
// to grow (and a compaction queued behind them would then stall reads).
func backupHandler(db backupSource, auth backupAuth, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var busy atomic.Bool
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case !fromLoopback(r.RemoteAddr):
			log.Warn("refused a backup request from another machine", "remote", r.RemoteAddr)
			plain(w, http.StatusForbidden, "backups are served only to clients on the same machine: run `nudgebot backup` where nudgebot runs")
			return
		case !loopbackHost(r.Host):
			log.Warn("refused a backup request naming another host; a web page may be trying DNS rebinding", "remote", r.RemoteAddr)
			plain(w, http.StatusForbidden, "backups are served only to requests addressed to this machine by a loopback address: run `nudgebot backup` where nudgebot runs")
			return
		case !bearerMatches(r, auth.Token):
			log.Warn("refused a backup request without the backup token", "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="nudgebot backup"`)
			plain(w, http.StatusUnauthorized, "a backup needs the backup token: run `nudgebot backup`, which reads it from "+backupTokenFileName+" beside the key file, or NUDGEBOT_BACKUP_TOKEN")
			return
		}
		if !busy.CompareAndSwap(false, true) {
			plain(w, http.StatusServiceUnavailable, "a backup is already in progress: try again when it has finished")
			return
		}
		defer busy.Store(false)
		serveCopy(w, db, auth.Dir, log)
	})
}

// serveCopy copies the database to a temporary file, then streams it.
func serveCopy(w http.ResponseWriter, db backupSource, dir string, log *slog.Logger) {
	start := time.Now()
	f, err := os.CreateTemp(dir, ".nudgebot-backup-*")
	if err != nil {
		log.Error("serving a backup failed: no room for its temporary copy", "dir", dir, "error", err)
		plain(w, http.StatusInternalServerError, "the bot could not make a temporary copy of the database: see its log")
		return
	}
	// Unlinked at once where the platform allows, so a crash leaves no
	// copy of everyone's data behind; the open file stays readable.
	removed := os.Remove(f.Name()) == nil
	defer func() {
		_ = f.Close()
		if !removed {
			_ = os.Remove(f.Name())
		}
	}()
	n, err := db.WriteTo(f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		log.Error("serving a backup failed while copying the database", "bytes", n, "error", err)
		plain(w, http.StatusInternalServerError, "the bot could not copy the database: see its log")
		return
	}
	copied := time.Since(start)

	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="nudgebot.db"`)
	h.Set("Cache-Control", "no-store")
	h.Set("Trailer", trailerBytes+", "+trailerError)
	h.Set(headerSizeHint, strconv.FormatInt(n, 10))
	w.WriteHeader(http.StatusOK)
	sent, err := io.Copy(w, f)
	if err != nil {
		h.Set(trailerError, oneLine(err.Error()))
		log.Warn("a backup was cut short while being sent; the database was not held meanwhile", "bytes", sent, "of", n, "error", err)
		return
	}
	h.Set(trailerBytes, strconv.FormatInt(sent, 10))
	log.Info("served a backup", "bytes", sent, "copy_duration", copied.Round(time.Millisecond), "duration", time.Since(start).Round(time.Millisecond))
}

func fromLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// backupURL is where a bot listening on addr serves /backup. A bot
// listening on every interface is asked on loopback, which is the only
// place it answers.
func backupURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("metrics.addr %q is not host:port: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/backup", nil
}

// fetchBackup asks the nudgebot listening on addr for a backup and
// writes it to w. It fails unless the bot confirms, after the last byte,
// that it sent exactly what arrived.
func fetchBackup(ctx context.Context, addr, token string, w io.Writer, stderr io.Writer) (int64, error) {
	u, err := backupURL(addr)
	if err != nil {
		return 0, err
	}
	client := &http.Client{Transport: &http.Transport{
		Proxy:                 nil, // the database must never travel through a proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("backup request to %s: %w", u, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("no nudgebot answered at %s (%w): check that the running nudgebot uses this config's metrics.addr, or stop it and back up the file directly", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("the running nudgebot at %s refused the backup: %s: %s", u, resp.Status, oneLine(string(body)))
	}
	total, _ := strconv.ParseInt(resp.Header.Get(headerSizeHint), 10, 64)
	prog := newProgress(stderr, "backing up", total, byteSize)
	n, err := io.Copy(io.MultiWriter(w, prog), resp.Body)
	prog.Done()
	if err != nil {
		return n, fmt.Errorf("receiving the backup from %s after %s: %w", u, byteSize(n), err)
	}
	if e := resp.Trailer.Get(trailerError); e != "" {
		return n, fmt.Errorf("the running nudgebot failed while writing the backup: %s", e)
	}
	if sent := resp.Trailer.Get(trailerBytes); sent != strconv.FormatInt(n, 10) {
		return n, fmt.Errorf("the backup from %s ended early: received %d bytes but the bot confirmed %q; try again", u, n, sent)
	}
	return n, nil
}

// ---- the commands ----

const backupHelp = `Usage: nudgebot backup [-config FILE] OUT

Writes a consistent copy of the database to OUT while nudgebot keeps
running, then checks that the copy opens and passes the consistency check.
If a running nudgebot holds the database, the copy comes from its
/backup endpoint, which needs metrics.addr set in the config and the
backup token (NUDGEBOT_BACKUP_TOKEN, or the file nudgebot.backup-token
beside the key file, or metrics.backup_token_file); otherwise the file is
read directly. OUT appears only once complete and checked (it is written
to a fresh temporary file beside it first), with mode 0600: it holds
everyone's data.`

func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, pos, code := opsSetup("backup", backupHelp, args, stderr, getenv, nil)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "nudgebot backup: give the one file to write the backup to, e.g. nudgebot backup -config config.yaml nudgebot-backup.db")
		return exitUsage
	}
	res, err := backup(ctx, cfg, getenv, pos[0], stderr)
	if err != nil {
		fmt.Fprintf(stderr, "nudgebot backup: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "backed up %s to %s (%s, %s); the copy passed the consistency check\n",
		cfg.Storage.Path, pos[0], byteSize(res.bytes), res.source)
	return exitOK
}

type backupResult struct {
	bytes  int64
	source string // how the copy was taken, for the operator
}

func backup(ctx context.Context, cfg config.Config, getenv func(string) string, out string, stderr io.Writer) (backupResult, error) {
	path := cfg.Storage.Path
	if sameFile(out, path) {
		return backupResult{}, fmt.Errorf("%s is the database itself: name a different file for the backup", out)
	}
	db, err := openReadOnly(path)
	switch {
	case err == nil:
		defer db.Close()
		total, _ := db.Size()
		var n int64
		err := writeAtomic(out, func(f *os.File) error {
			prog := newProgress(stderr, "backing up", total, byteSize)
			defer prog.Done()
			var err error
			n, err = db.WriteTo(io.MultiWriter(f, prog))
			return err
		}, verifyDatabase)
		return backupResult{bytes: n, source: "read directly: no nudgebot was running"}, err
	case errors.Is(err, storage.ErrInUse):
		if cfg.Metrics.Addr == "" {
			return backupResult{}, fmt.Errorf("%s is in use by a running nudgebot, and metrics.addr is not set, so it cannot hand out a backup: set metrics.addr (e.g. 127.0.0.1:9090) in the config and restart nudgebot, or stop nudgebot and run backup again", path)
		}
		token, err := backupToken(cfg, getenv, false)
		if err != nil {
			return backupResult{}, err
		}
		var n int64
		err = writeAtomic(out, func(f *os.File) error {
			var err error
			n, err = fetchBackup(ctx, cfg.Metrics.Addr, token, f, stderr)
			return err
		}, verifyDatabase)
		return backupResult{bytes: n, source: "streamed by the running nudgebot"}, err
	default:
		return backupResult{}, err
	}
}

const restoreHelp = `Usage: nudgebot restore [-config FILE] IN

Replaces the database with the backup IN. Stop nudgebot first: restore
refuses a database in use. IN must open and pass the consistency check
before anything is touched; the database it replaces is kept as
<storage.path>.before-restore. A backup from an older nudgebot is
migrated when nudgebot next starts; one from a newer nudgebot is refused.`

func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, pos, code := opsSetup("restore", restoreHelp, args, stderr, getenv, nil)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "nudgebot restore: give the one backup file to restore, e.g. nudgebot restore -config config.yaml nudgebot-backup.db")
		return exitUsage
	}
	kept, err := restore(cfg, getenv, pos[0], stderr)
	if err != nil {
		fmt.Fprintf(stderr, "nudgebot restore: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "restored %s into %s", pos[0], cfg.Storage.Path)
	if kept != "" {
		fmt.Fprintf(stdout, "; the database it replaced is kept at %s", kept)
	}
	fmt.Fprintln(stdout, ". Start nudgebot again.")
	return exitOK
}

// restore puts the backup in into place and returns where the replaced
// database was kept ("" if there was none).
func restore(cfg config.Config, getenv func(string) string, in string, stderr io.Writer) (kept string, err error) {
	path := cfg.Storage.Path
	if sameFile(in, path) {
		return "", fmt.Errorf("%s is the database itself: name the backup file to restore from", in)
	}
	if err := verifyDatabase(in); err != nil {
		return "", fmt.Errorf("%s is not a usable backup, so nothing was changed: %w", in, err)
	}
	warnIfKeysDiffer(cfg, getenv, in, stderr)

	// Hold the current file open (a shared lock) until it is replaced, so
	// a nudgebot starting meanwhile waits rather than writes to it.
	live, err := openReadOnly(path)
	exists := true
	switch {
	case err == nil:
		defer live.Close()
	case errors.Is(err, storage.ErrInUse):
		return "", fmt.Errorf("%s is in use by a running nudgebot: stop nudgebot first (e.g. systemctl stop nudgebot), then run restore again; nothing was changed", path)
	case errors.Is(err, fs.ErrNotExist):
		exists = false
	case errors.Is(err, storage.ErrCorrupt), errors.Is(err, storage.ErrNewerSchema):
		// Restoring over a damaged file is what restore is for.
		fmt.Fprintf(stderr, "nudgebot restore: the current database cannot be used (%v); it will be kept\n", err)
	default:
		return "", fmt.Errorf("cannot check the current database, so nothing was changed: %w", err)
	}

	before := path + ".before-restore"
	if exists {
		if _, err := os.Lstat(before); err == nil {
			return "", fmt.Errorf("%s already exists, left by an earlier restore: move it somewhere safe or delete it, then run restore again; nothing was changed", before)
		}
	}

	var liveInfo os.FileInfo
	if exists {
		liveInfo, _ = os.Stat(path)
	}
	tmp, err := writeTempChecked(path, func(f *os.File) error {
		keepOwner(f.Name(), liveInfo, stderr)
		return copyBackup(f, in, stderr)
	}, verifyDatabase)
	if err != nil {
		return "", fmt.Errorf("%w; nothing was changed", err)
	}

	if exists {
		// A hard link keeps the old file under its new name while the
		// rename below swaps the new one in atomically, so the path is
		// never missing; two renames are the fallback where links fail.
		if err := os.Link(path, before); err != nil {
			if err := os.Rename(path, before); err != nil {
				_ = os.Remove(tmp)
				return "", fmt.Errorf("keep the current database as %s: %w; nothing was changed", before, err)
			}
		}
		kept = before
		if err := keepSecrets(path, before); err != nil {
			_ = os.Remove(tmp)
			return kept, fmt.Errorf("keep the current database's secrets file beside %s: %w; nothing else was changed", before, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return kept, fmt.Errorf("put the backup in place at %s: %w (the previous database is at %s)", path, err, before)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return kept, err
	}
	return kept, nil
}

// copyBackup writes the database at in to f through storage, not byte
// by byte: a database copied with its secrets file beside it becomes one
// self-contained file.
func copyBackup(f *os.File, in string, stderr io.Writer) error {
	src, err := openReadOnly(in)
	if err != nil {
		return fmt.Errorf("open %s: %w", in, err)
	}
	defer src.Close()
	total, _ := src.Size()
	prog := newProgress(stderr, "restoring", total, byteSize)
	defer prog.Done()
	if _, err := src.WriteTo(io.MultiWriter(f, prog)); err != nil {
		return fmt.Errorf("copy %s: %w", in, err)
	}
	return nil
}

// keepSecrets moves the secrets file of the database at path to go with
// its kept copy at before; the restored file carries its own secrets,
// which its first Open moves out beside it.
func keepSecrets(path, before string) error {
	from, to := storage.SecretsPath(path), storage.SecretsPath(before)
	if _, err := os.Lstat(from); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("%s already exists, left by an earlier restore: move it somewhere safe or delete it", to)
	}
	return os.Rename(from, to)
}

// warnIfKeysDiffer tells the operator, before the swap, if the backup's
// reflections need a key nudgebot is not configured with: it would then
// refuse to start. It only warns, since the old key may be on its way
// into the configuration.
func warnIfKeysDiffer(cfg config.Config, getenv func(string) string, in string, stderr io.Writer) {
	keys, err := opsKeys(cfg, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "nudgebot restore: warning: %v\n", err)
		return
	}
	if err := keysCover(in, keys); errors.Is(err, storage.ErrKeyMissing) {
		fmt.Fprintf(stderr, "nudgebot restore: warning: nudgebot will not start with this backup until its key is configured: %v\n", err)
	}
}

// keysCover reports, without writing to the file, whether keys open the
// reflections in the database at path: storage's ErrKeyMissing error
// names the keys it lacks. With no keys configured, a throwaway key makes
// the read-only open check at all, as it skips the check without keys.
func keysCover(path string, keys *storage.Keys) error {
	if keys == nil {
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		var err error
		if keys, err = storage.NewKeys(raw); err != nil {
			return fmt.Errorf("throwaway key: %w", err)
		}
	}
	db, err := storage.Open(path, storage.Options{ReadOnly: true, Timeout: lockWait, Keys: keys})
	if err != nil {
		return err
	}
	return db.Close()
}

const exportHelp = `Usage: nudgebot export [-config FILE] [-o OUT] [-strict]

Writes every record people own as JSON lines, one object per line, each
with a "kind": "subscriber", "delivery" or "reflection". It walks the
records themselves, so someone who only ever wrote reflections is there
too; pulse answers are anonymous and never exported. Reflections are
decrypted with the configured key (NUDGEBOT_SECRET_KEY, storage.key_file,
or nudgebot.key beside the database); a configured key that is not the
one they were sealed with stops the export, naming the key it needs. A
record that cannot be read (no key for it, or damaged) is left out and
named on standard error, and the closing line counts what was written
and what was left out, and why; with -strict, any record left out makes
the exit status 1. Works while nudgebot runs (through its /backup
endpoint, which needs metrics.addr) or when it is stopped. Without -o the
lines go to standard output. The export holds everyone's data: store it
as carefully as the database.`

func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	var out *string
	var strict *bool
	cfg, pos, code := opsSetup("export", exportHelp, args, stderr, getenv, func(fs *flag.FlagSet) {
		out = fs.String("o", "", "write to this file (created with mode 0600) instead of standard output")
		strict = fs.Bool("strict", false, "exit with status 1 if any record was left out (no key for it, or damaged); what could be read is still written")
	})
	if code >= 0 {
		return code
	}
	if len(pos) != 0 {
		fmt.Fprintf(stderr, "nudgebot export: unexpected argument %q: to write to a file, use -o FILE\n", pos[0])
		return exitUsage
	}
	var counts exportCounts
	var err error
	if *out == "" {
		counts, err = export(ctx, cfg, getenv, stdout, stderr)
	} else {
		err = writeAtomic(*out, func(f *os.File) error {
			var err error
			counts, err = export(ctx, cfg, getenv, f, stderr)
			return err
		}, nil)
	}
	if err != nil {
		fmt.Fprintf(stderr, "nudgebot export: %v\n", err)
		return exitFailed
	}
	counts.report(stderr, *out)
	if *strict && counts.leftOut() > 0 {
		fmt.Fprintf(stderr, "nudgebot export: -strict: %d %s left out\n", counts.leftOut(), plural(counts.leftOut(), "record was", "records were"))
		return exitFailed
	}
	return exitOK
}

// exportCounts is what an export wrote and what it left out.
type exportCounts struct {
	subscribers, deliveries, reflections int

	noKey      int      // reflections whose key is not configured
	noKeyWhy   []string // each different reason once
	damaged    []string // records that do not decode or decrypt, by name
	damagedWhy []string // the same, with why
	keyed      bool     // a key was configured
}

func (c *exportCounts) leftOut() int { return c.noKey + len(c.damaged) }

// leaveOut counts a record the walk could not open.
func (c *exportCounts) leaveOut(u nudges.Unreadable) {
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

// report tells the operator what was written and what was left out and
// why: every damaged record by name, then one closing line with counts.
func (c *exportCounts) report(w io.Writer, out string) {
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
	if c.leftOut() == 0 {
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
	fmt.Fprintf(w, "; left out %d %s: %s\n", c.leftOut(), plural(c.leftOut(), "record", "records"), strings.Join(why, "; "))
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

// export writes every record the storage walk hands out, and counts
// what it could not open: the walk goes over the records themselves,
// the same walk /reflect export uses for one person.
func export(ctx context.Context, cfg config.Config, getenv func(string) string, w io.Writer, stderr io.Writer) (exportCounts, error) {
	keys, err := opsKeys(cfg, getenv)
	if err != nil {
		return exportCounts{}, err
	}
	db, cleanup, err := openSnapshot(ctx, cfg, getenv, keys, stderr)
	if err != nil {
		return exportCounts{}, err
	}
	defer cleanup()

	counts := exportCounts{keyed: keys != nil}
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
func openSnapshot(ctx context.Context, cfg config.Config, getenv func(string) string, keys *storage.Keys, stderr io.Writer) (*storage.DB, func(), error) {
	path := cfg.Storage.Path
	db, err := storage.Open(path, storage.Options{ReadOnly: true, Timeout: lockWait, Keys: keys})
	if err == nil {
		return db, func() { _ = db.Close() }, nil
	}
	if !errors.Is(err, storage.ErrInUse) {
		return nil, nil, err
	}
	if cfg.Metrics.Addr == "" {
		return nil, nil, fmt.Errorf("%s is in use by a running nudgebot, and metrics.addr is not set, so it cannot hand out a copy: set metrics.addr (e.g. 127.0.0.1:9090) and restart nudgebot, or stop nudgebot and run this again", path)
	}
	token, err := backupToken(cfg, getenv, false)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "nudgebot-snapshot-") // mode 0700
	if err != nil {
		return nil, nil, fmt.Errorf("temporary directory for a copy of the database: %w", err)
	}
	removeDir := func() { _ = os.RemoveAll(dir) }
	snap := filepath.Join(dir, "nudgebot.db")
	err = writeAtomic(snap, func(f *os.File) error {
		_, err := fetchBackup(ctx, cfg.Metrics.Addr, token, f, stderr)
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

const compactHelp = `Usage: nudgebot compact [-config FILE]

Rewrites the database without its free pages, which bbolt never gives
back, and without the remains of deleted data. Stop nudgebot first:
compact refuses a database in use. Prints the size before and after.`

func cmdCompact(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, pos, code := opsSetup("compact", compactHelp, args, stderr, getenv, nil)
	if code >= 0 {
		return code
	}
	if len(pos) != 0 {
		fmt.Fprintf(stderr, "nudgebot compact: unexpected argument %q: the database is the config's storage.path\n", pos[0])
		return exitUsage
	}
	before, after, err := compact(cfg, getenv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "nudgebot compact: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "compacted %s: %s before, %s after\n", cfg.Storage.Path, byteSize(before), byteSize(after))
	return exitOK
}

func compact(cfg config.Config, getenv func(string) string, stderr io.Writer) (before, after int64, err error) {
	path := cfg.Storage.Path
	// Open would create a missing file; compacting nothing is a mistake
	// in storage.path worth reporting.
	if _, err := os.Stat(path); err != nil {
		return 0, 0, fmt.Errorf("no database at %s: check storage.path (or %s): %w", path, config.EnvStoragePath, err)
	}
	// Opening read-write checks that the configured keys open every
	// reflection, so a database with reflections needs them here too.
	keys, err := opsKeys(cfg, getenv)
	if err != nil {
		return 0, 0, err
	}
	inUse := fmt.Errorf("%s is in use by a running nudgebot: stop nudgebot first (e.g. systemctl stop nudgebot), then run compact again", path)
	// A read-write open migrates and stamps the file before it checks the
	// keys, so check them first: a refused compact must leave the file
	// exactly as it was.
	if err := keysCover(path, keys); errors.Is(err, storage.ErrInUse) {
		return 0, 0, inUse
	} else if err != nil {
		return 0, 0, err
	}
	db, err := storage.Open(path, storage.Options{Timeout: lockWait, Keys: keys})
	if errors.Is(err, storage.ErrInUse) {
		return 0, 0, inUse
	}
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if before, err = db.Size(); err != nil {
		return 0, 0, err
	}
	info, _ := os.Stat(path)
	fmt.Fprintf(stderr, "compacting %s (%s)…\n", path, byteSize(before))
	if err := db.Compact(); err != nil {
		return before, 0, err
	}
	keepOwner(path, info, stderr)
	if after, err = db.Size(); err != nil {
		return before, 0, err
	}
	return before, after, nil
}

// ---- shared by the tools ----

// opsSetup parses a data tool's flags and positional arguments, in any
// order, and loads the configuration. The tools never talk to Slack, so
// the tokens are not required: the shell an operator runs them from
// rarely has them, and demanding them would only push people to paste
// tokens onto command lines.
func opsSetup(name, help string, args []string, stderr io.Writer, getenv func(string) string, define func(*flag.FlagSet)) (config.Config, []string, int) {
	fs := flag.NewFlagSet("nudgebot "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the YAML config file nudgebot runs with; without it, defaults and environment variables are used")
	if define != nil {
		define(fs)
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, help)
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return config.Config{}, nil, exitOK
			}
			return config.Config{}, nil, exitUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	env := withoutTokens(getenv)
	cfg, code := readConfig(name, *path, env, stderr)
	if code >= 0 {
		return cfg, nil, code
	}
	return cfg, pos, -1
}

// withoutTokens answers the token variables with placeholders of the
// right shape, so validation passes without the real tokens; the data
// tools never use them.
func withoutTokens(getenv func(string) string) func(string) string {
	return func(k string) string {
		switch k {
		case config.EnvBotToken:
			return "xoxb-(unused)"
		case config.EnvAppToken:
			return "xapp-(unused)"
		}
		if getenv == nil {
			return ""
		}
		return getenv(k)
	}
}

// opsKeys loads the reflection keys as the bot does, except that it never
// creates a key file: a key a tool made up would open nothing and would
// only leave a misleading file beside the database. nil means no key is
// configured.
func opsKeys(cfg config.Config, getenv func(string) string) (*storage.Keys, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if strings.TrimSpace(getenv(storage.EnvSecretKey)) == "" && cfg.Storage.KeyFile == "" {
		beside := filepath.Join(filepath.Dir(cfg.Storage.Path), storage.KeyFileName)
		if _, err := os.Stat(beside); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	keys, err := storage.LoadKeys(getenv, cfg.Storage.KeyFile, cfg.Storage.Path, nil)
	if err != nil {
		return nil, fmt.Errorf("reflection keys: %w", err)
	}
	return keys, nil
}

func openReadOnly(path string) (*storage.DB, error) {
	return storage.Open(path, storage.Options{ReadOnly: true, Timeout: lockWait})
}

// verifyDatabase checks that the file at path is a database nudgebot
// would open and that it passes the consistency check.
func verifyDatabase(path string) error {
	db, err := openReadOnly(path)
	if err != nil {
		return err
	}
	return errors.Join(db.Check(), db.Close())
}

// writeAtomic writes path through a fresh temporary file beside it
// (os.CreateTemp: a new name, created exclusively, never a link someone
// planted): fill writes it, it is synced, verify (if any) checks it, and
// only then does it replace path. Nothing is left behind on failure.
func writeAtomic(path string, fill func(*os.File) error, verify func(tmp string) error) error {
	tmp, err := writeTempChecked(path, fill, verify)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("move %s into place: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// writeTempChecked creates a temporary file with mode 0600 beside path,
// lets fill write it, syncs it to disk and runs verify; it returns the
// file's name, or removes the file on any failure.
func writeTempChecked(path string, fill func(*os.File) error, verify func(string) error) (_ string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("create a temporary file beside %s: %w (check the directory exists and is writable)", path, err)
	}
	name := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(name)
		}
	}()
	// CreateTemp makes it 0600 already; say so in case of an odd umask
	// or platform.
	if err := f.Chmod(0o600); err != nil {
		return "", fmt.Errorf("restrict %s to its owner: %w", name, err)
	}
	if err := fill(f); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("flush %s to disk: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", name, err)
	}
	if verify != nil {
		if err := verify(name); err != nil {
			return "", fmt.Errorf("the copy failed its check, so it was discarded: %w", err)
		}
	}
	return name, nil
}

// syncDir makes a rename in dir survive a power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// keepOwner gives the file at path the owner of was, the file it
// replaces. An operator running a tool as root would otherwise hand the
// bot's own user (a systemd DynamicUser, say) a database it cannot open.
// Without the right to chown, it says what to run instead.
func keepOwner(path string, was os.FileInfo, stderr io.Writer) {
	if was == nil {
		return
	}
	uid, gid, ok := fileOwner(was)
	if !ok {
		return // not Unix
	}
	now, err := os.Stat(path)
	if err != nil {
		return
	}
	if u, g, _ := fileOwner(now); u == uid && g == gid {
		return
	}
	if err := os.Chown(path, uid, gid); err != nil {
		fmt.Fprintf(stderr, "warning: %s is now owned by you, not by the user nudgebot runs as (%d:%d): run `chown %d:%d %s` before starting nudgebot\n", path, uid, gid, uid, gid, path)
	}
}

// fileOwner returns a file's uid and gid where the platform has them.
// Reflection keeps this free of per-platform files: syscall.Stat_t only
// exists on Unix.
func fileOwner(info os.FileInfo) (uid, gid int, ok bool) {
	v := reflect.ValueOf(info.Sys())
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return 0, 0, false
	}
	u, g := v.Elem().FieldByName("Uid"), v.Elem().FieldByName("Gid")
	if !u.IsValid() || !g.IsValid() || !u.CanUint() || !g.CanUint() {
		return 0, 0, false
	}
	return int(u.Uint()), int(g.Uint()), true
}

// sameFile reports whether a and b name the same file or directory,
// existing or not.
func sameFile(a, b string) bool {
	ia, errA := os.Stat(a)
	ib, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(ia, ib)
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// progress reports a long copy on stderr: redrawn in place at most ten
// times a second on a terminal, and as a plain line at each quarter
// otherwise, so logs and cron mail stay short.
type progress struct {
	w      io.Writer
	tty    bool
	what   string
	total  int64
	format func(int64) string

	n        int64
	drawn    time.Time
	quarters int64
	started  bool
}

func newProgress(w io.Writer, what string, total int64, format func(int64) string) *progress {
	return &progress{w: w, tty: isTerminal(w), what: what, total: total, format: format}
}

func (p *progress) Write(b []byte) (int, error) {
	p.Add(int64(len(b)))
	return len(b), nil
}

func (p *progress) Add(n int64) {
	p.n += n
	if p.tty {
		if now := time.Now(); now.Sub(p.drawn) >= 100*time.Millisecond {
			p.drawn = now
			p.draw()
		}
		return
	}
	if p.total <= 0 {
		return
	}
	if q := min(p.n*4/p.total, 3); q > p.quarters {
		p.quarters = q
		fmt.Fprintf(p.w, "%s: %d%% (%s of %s)\n", p.what, q*25, p.format(p.n), p.format(p.total))
	}
}

func (p *progress) draw() {
	p.started = true
	if p.total > 0 {
		pct := min(p.n*100/p.total, 100)
		fmt.Fprintf(p.w, "\r\033[K%s: %s of %s (%d%%)", p.what, p.format(p.n), p.format(p.total), pct)
		return
	}
	fmt.Fprintf(p.w, "\r\033[K%s: %s", p.what, p.format(p.n))
}

// Done ends the terminal line, if one was drawn.
func (p *progress) Done() {
	if p.tty && p.started {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

// isTerminal reports whether w is a terminal, where redrawing a line in
// place reads well.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func count(n int64) string { return strconv.FormatInt(n, 10) }
