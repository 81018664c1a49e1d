package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
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

// backupHandler serves a consistent copy of the live database over
// TCP. Only a client on the same machine (by address and by Host header)
// with the token gets it.
func backupHandler(db BackupSource, auth BackupAuth, log *slog.Logger) http.Handler {
	return guardBackup(newCopier(db, auth.Dir, log), auth.Token, log)
}

// guardBackup lets through to next only a request from this machine,
// addressed to it by a loopback name, with the token: any local process,
// a sidecar, a port-forward or a web page using DNS rebinding can reach
// a loopback port.
func guardBackup(next http.Handler, token string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
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
		case !bearerMatches(r, token):
			log.Warn("refused a backup request without the backup token", "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="nudgebot backup"`)
			plain(w, http.StatusUnauthorized, "a backup needs the backup token: run `nudgebot backup`, which reads it from "+backupTokenFileName+" beside the key file, or NUDGEBOT_BACKUP_TOKEN")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// copier serves a consistent copy of the live database to one client at
// a time, whichever way it came (the Unix socket or /backup). The copy is
// first written to an unlinked temporary file under one read
// transaction, as fast as the disk allows, and only then streamed: a slow
// or stalled client must not hold a read transaction, which would stall
// writes that need the file to grow (and a compaction queued behind them
// would then stall reads).
type copier struct {
	db   BackupSource
	dir  string
	log  *slog.Logger
	busy atomic.Bool
}

func newCopier(db BackupSource, dir string, log *slog.Logger) *copier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &copier{db: db, dir: dir, log: log}
}

func (c *copier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !c.busy.CompareAndSwap(false, true) {
		plain(w, http.StatusServiceUnavailable, "a backup is already in progress: try again when it has finished")
		return
	}
	defer c.busy.Store(false)
	serveCopy(w, c.db, c.dir, c.log)
}

// copyFailure says why a backup's copy failed in words an operator can
// act on. The error is the file system's, which holds a path at most and
// nothing of the data, so it may be shown to whoever asked for the backup.
func copyFailure(err error) string {
	if errors.Is(err, syscall.ENOSPC) {
		return "the disk is full; free some space there and try again"
	}
	return oneLine(err.Error())
}

// serveCopy copies the database to a temporary file, then streams it.
func serveCopy(w http.ResponseWriter, db BackupSource, dir string, log *slog.Logger) {
	start := time.Now()
	f, err := os.CreateTemp(dir, ".nudgebot-backup-*")
	if err != nil {
		log.Error("serving a backup failed: no room for its temporary copy", "dir", dir, "error", err)
		plain(w, http.StatusInternalServerError, "the bot could not make a temporary copy of the database in "+dir+": "+copyFailure(err))
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
		plain(w, http.StatusInternalServerError, "the bot could not copy the database into its temporary file in "+dir+": "+copyFailure(err))
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

// remote is a running bot's backup endpoint: its Unix socket, or its
// /backup over HTTP.
type remote struct {
	client *http.Client
	url    string
	token  string // "" over the socket, whose mode is its guard
	where  string // for messages: the socket's path or the URL
}

// runningBot finds how to ask the nudgebot holding the database for a
// copy: the socket beside the database, which every bot serves, else
// /backup when metrics.addr is set. The error says what to do when
// neither is there.
func (t Tool) runningBot() (remote, error) {
	cfg := t.Config
	sock := SocketPath(cfg)
	if info, err := os.Stat(sock); err == nil && info.Mode()&fs.ModeSocket != 0 {
		return remote{client: socketClient(sock), url: "http://nudgebot/backup", where: sock}, nil
	}
	if cfg.Metrics.Addr == "" {
		return remote{}, Mark(storage.ErrInUse, fmt.Errorf("%s is in use by a running nudgebot, but there is no socket at %s to ask it for a copy (a nudgebot older than this one, or one run with another storage.path) and metrics.addr is not set: restart nudgebot with this version, or stop it and run this again", cfg.Storage.Path, sock))
	}
	u, err := backupURL(cfg.Metrics.Addr)
	if err != nil {
		return remote{}, Mark(ErrConfig, err)
	}
	token, err := BackupToken(cfg, t.Getenv, false)
	if err != nil {
		return remote{}, err
	}
	client := &http.Client{Transport: &http.Transport{
		Proxy:                 nil, // the database must never travel through a proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
	return remote{client: client, url: u, token: token, where: u}, nil
}

// fetch asks the running bot for a copy and writes it to w, reporting
// progress as what. It fails unless the bot confirms, after the last
// byte, that it sent exactly what arrived.
func (r remote) fetch(ctx context.Context, w io.Writer, stderr io.Writer, what string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return 0, fmt.Errorf("backup request to %s: %w", r.where, err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("no nudgebot answered at %s (%w): check that the running nudgebot uses this config, or stop it and run this again", r.where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("the running nudgebot at %s refused the backup: %s: %s", r.where, resp.Status, oneLine(string(body)))
	}
	total, _ := strconv.ParseInt(resp.Header.Get(headerSizeHint), 10, 64)
	prog := newProgress(stderr, what, total, ByteSize)
	n, err := io.Copy(io.MultiWriter(w, prog), resp.Body)
	prog.Done()
	if err != nil {
		return n, fmt.Errorf("receiving the backup from %s after %s: %w", r.where, ByteSize(n), err)
	}
	if e := resp.Trailer.Get(trailerError); e != "" {
		return n, fmt.Errorf("the running nudgebot failed while writing the backup: %s", e)
	}
	if sent := resp.Trailer.Get(trailerBytes); sent != strconv.FormatInt(n, 10) {
		return n, fmt.Errorf("the backup from %s ended early: received %d bytes but the bot confirmed %q; try again", r.where, n, sent)
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
// bot through its socket (or /backup).
func (t Tool) Backup(ctx context.Context, out string) (BackupResult, error) {
	cfg, stderr := t.Config, t.stderr()
	path := cfg.Storage.Path
	if err := t.checkOutput(out, t.Force); err != nil {
		return BackupResult{}, err
	}
	db, err := openReadOnly(path)
	switch {
	case err == nil:
		defer db.Close()
		total, _ := db.Size()
		var n int64
		err := writeAtomic(out, t.Force, func(f *os.File) error {
			prog := newProgress(stderr, "backing up", total, ByteSize)
			defer prog.Done()
			var err error
			// The copy is made in f itself (see storage.DB.WriteTo),
			// counted as it is written.
			n, err = db.WriteTo(progressFile{f, prog})
			return err
		}, VerifyDatabase)
		return BackupResult{Bytes: n, Source: "read directly: no nudgebot was running"}, err
	case errors.Is(err, storage.ErrInUse):
		bot, err := t.runningBot()
		if err != nil {
			return BackupResult{}, err
		}
		var n int64
		err = writeAtomic(out, t.Force, func(f *os.File) error {
			var err error
			n, err = bot.fetch(ctx, f, stderr, "backing up")
			return err
		}, VerifyDatabase)
		return BackupResult{Bytes: n, Source: "streamed by the running nudgebot through " + bot.where}, err
	default:
		return BackupResult{}, err
	}
}

// progressFile is the backup's output file, whose writes the progress
// line counts too. It stays a storage.BackupFile, so the copy is made in
// it without a second temporary copy.
type progressFile struct {
	*os.File
	prog io.Writer
}

func (p progressFile) Write(b []byte) (int, error) {
	n, err := p.File.Write(b)
	_, _ = p.prog.Write(b[:n])
	return n, err
}
