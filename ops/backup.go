package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

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

// BackupSource is the database as /backup sees it.
type BackupSource interface {
	WriteTo(w io.Writer) (int64, error)
	Size() (int64, error)
}

// BackupAuth is what /backup asks of a client: the token, and where to
// keep the copy while it is sent.
type BackupAuth struct {
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
func backupHandler(db BackupSource, auth BackupAuth, log *slog.Logger) http.Handler {
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
func serveCopy(w http.ResponseWriter, db BackupSource, dir string, log *slog.Logger) {
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
	prog := newProgress(stderr, "backing up", total, ByteSize)
	n, err := io.Copy(io.MultiWriter(w, prog), resp.Body)
	prog.Done()
	if err != nil {
		return n, fmt.Errorf("receiving the backup from %s after %s: %w", u, ByteSize(n), err)
	}
	if e := resp.Trailer.Get(trailerError); e != "" {
		return n, fmt.Errorf("the running nudgebot failed while writing the backup: %s", e)
	}
	if sent := resp.Trailer.Get(trailerBytes); sent != strconv.FormatInt(n, 10) {
		return n, fmt.Errorf("the backup from %s ended early: received %d bytes but the bot confirmed %q; try again", u, n, sent)
	}
	return n, nil
}

// BackupResult is what a backup wrote and how.
type BackupResult struct {
	Bytes  int64
	Source string // how the copy was taken, for the operator
}

// Backup writes a consistent, checked copy of the database to out: read
// directly when no nudgebot holds the file, else streamed by the running
// bot.
func (t Tool) Backup(ctx context.Context, out string) (BackupResult, error) {
	cfg, getenv, stderr := t.Config, t.Getenv, t.stderr()
	path := cfg.Storage.Path
	if SameFile(out, path) {
		return BackupResult{}, fmt.Errorf("%s is the database itself: name a different file for the backup", out)
	}
	db, err := openReadOnly(path)
	switch {
	case err == nil:
		defer db.Close()
		total, _ := db.Size()
		var n int64
		err := writeAtomic(out, func(f *os.File) error {
			prog := newProgress(stderr, "backing up", total, ByteSize)
			defer prog.Done()
			var err error
			n, err = db.WriteTo(io.MultiWriter(f, prog))
			return err
		}, VerifyDatabase)
		return BackupResult{Bytes: n, Source: "read directly: no nudgebot was running"}, err
	case errors.Is(err, storage.ErrInUse):
		if cfg.Metrics.Addr == "" {
			return BackupResult{}, fmt.Errorf("%s is in use by a running nudgebot, and metrics.addr is not set, so it cannot hand out a backup: set metrics.addr (e.g. 127.0.0.1:9090) in the config and restart nudgebot, or stop nudgebot and run backup again", path)
		}
		token, err := BackupToken(cfg, getenv, false)
		if err != nil {
			return BackupResult{}, err
		}
		var n int64
		err = writeAtomic(out, func(f *os.File) error {
			var err error
			n, err = fetchBackup(ctx, cfg.Metrics.Addr, token, f, stderr)
			return err
		}, VerifyDatabase)
		return BackupResult{Bytes: n, Source: "streamed by the running nudgebot"}, err
	default:
		return BackupResult{}, err
	}
}
