package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HealthDB is what /healthz asks the database: the first entry of the
// due index, one short read transaction however large the database is,
// and what the full check started after start-up found.
type HealthDB interface {
	OldestDue() (time.Time, bool, error)
	CheckResult() (done bool, err error)
}

// Connection is the part of bot.Bot the health checks ask.
type Connection interface {
	Connected() bool
}

// backupWriteTimeout bounds how long one response, a whole backup
// included, may take to write.
const backupWriteTimeout = 10 * time.Minute

// healthTimeout bounds /healthz's database read: a stuck disk must turn
// into a 503, not a hung probe.
const healthTimeout = 2 * time.Second

// AdminDeps are what the admin endpoints read.
type AdminDeps struct {
	Version string // shown at /
	Metrics *Metrics
	Bot     Connection
	DB      HealthDB
	Backup  BackupSource // nil: no /backup
	// BackupAuth guards /backup; without a token there is no /backup.
	BackupAuth BackupAuth
	Log        *slog.Logger
	// Writes says whether the disk takes writes; nil: /readyz does not ask.
	Writes WriteHealth
}

// AdminHandler serves /metrics, /healthz, /readyz and, when the
// database and a token are given, /backup.
func AdminHandler(d AdminDeps) http.Handler {
	return adminHandler(d, newCopier(d.Backup, d.BackupAuth.Dir, d.Log))
}

func adminHandler(d AdminDeps, c *copier) http.Handler {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Metrics.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(d.Log.Handler(), slog.LevelWarn),
		// One failing storage gauge must not hide the bot's counters.
		ErrorHandling:     promhttp.ContinueOnError,
		Timeout:           10 * time.Second,
		EnableOpenMetrics: true,
	}))
	healthRoutes(mux, d)
	if d.Backup != nil && d.BackupAuth.Token != "" {
		mux.Handle("GET /backup", guardBackup(c, d.BackupAuth.Token, d.Log))
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "nudgebot "+d.Version+": /metrics /healthz /readyz /backup")
	})
	return mux
}

// socketHandler serves the tools on the Unix socket: /healthz, /readyz
// and /backup. The socket's mode (0600, owner only) is its guard: a
// process that can connect could read the database file itself.
func socketHandler(d AdminDeps, c *copier) http.Handler {
	mux := http.NewServeMux()
	healthRoutes(mux, d)
	if d.Backup != nil {
		mux.Handle("GET /backup", c)
	}
	return mux
}

// healthRoutes adds /healthz and /readyz.
func healthRoutes(mux *http.ServeMux, d AdminDeps) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if reason := unhealthy(r.Context(), d); reason != "" {
			plain(w, http.StatusServiceUnavailable, reason)
			return
		}
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if reason := notReady(r.Context(), d); reason != "" {
			plain(w, http.StatusServiceUnavailable, reason)
			return
		}
		plain(w, http.StatusOK, "ready")
	})
}

// notReady returns why the bot cannot serve people yet, or "" if it can.
func notReady(ctx context.Context, d AdminDeps) string {
	switch {
	case d.Bot == nil || !d.Bot.Connected():
		return "not ready: waiting for the Socket Mode connection to Slack"
	case !d.Metrics.HasTicked() && !d.Metrics.Following():
		// A replica that follows serves people without a scheduler.
		return "not ready: waiting for the scheduler's first tick, or to learn that another replica leads"
	}
	return writesRefused(ctx, d.Writes)
}

// unhealthy returns why the bot cannot do its work, or "" if it can.
func unhealthy(ctx context.Context, d AdminDeps) string {
	if d.Bot == nil || !d.Bot.Connected() {
		return "unhealthy: not connected to Slack over Socket Mode; the bot keeps retrying, see its log (network, SLACK_APP_TOKEN)"
	}
	if d.DB == nil {
		return "unhealthy: no database"
	}
	if _, err := d.DB.CheckResult(); err != nil {
		return "unhealthy: the database is damaged (the full check after start-up failed): stop nudgebot, keep the file and restore a backup with `nudgebot restore`: " + oneLine(err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := d.DB.OldestDue()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return "unhealthy: the database does not answer reads: " + oneLine(err.Error())
		}
		return ""
	case <-ctx.Done():
		return fmt.Sprintf("unhealthy: the database did not answer a read within %s; check the disk", healthTimeout)
	}
}

// oneLine flattens joined errors so a probe's reason stays one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

// Admin is what a running bot offers operators: the Unix socket beside
// the database (backups and health for the tools on this machine, with no
// setting needed) and, when metrics.addr is set, the HTTP listener
// (/metrics, /healthz, /readyz, /backup).
type Admin struct {
	cfg     AdminConfig
	log     *slog.Logger
	metrics *Metrics
	srvs    []*http.Server
	served  sync.WaitGroup
	socket  string // the socket's path once listening, to remove at Stop
}

// AdminConfig says where Admin listens.
type AdminConfig struct {
	Addr    string // metrics.addr: the HTTP listener; "" for none
	Socket  string // SocketPath(cfg); "" for none
	Version string
}

// NewAdmin prepares the listeners; nothing listens until Start.
func NewAdmin(cfg AdminConfig, log *slog.Logger) *Admin {
	return &Admin{cfg: cfg, log: log.With("component", "admin"), metrics: NewMetrics(cfg.Version, time.Now)}
}

// Metrics is what the bot and the core report into.
func (a *Admin) Metrics() *Metrics { return a.metrics }

// AdminDB is what the running bot's database offers the listeners.
type AdminDB interface {
	HealthDB
	BackupSource
	DBStats
	WriteHealth
}

// Start listens. A taken metrics.addr stops start-up with a clear message
// rather than leaving the bot unobservable; a socket that cannot be made
// is logged and the bot runs on, as everything but a backup of the
// running bot still works.
func (a *Admin) Start(bot Connection, db AdminDB, auth BackupAuth) error {
	a.metrics.WatchDB(db, a.log)
	d := AdminDeps{Version: a.cfg.Version, Metrics: a.metrics, Bot: bot, DB: db, Backup: db, BackupAuth: auth, Log: a.log, Writes: db}
	c := newCopier(db, auth.Dir, a.log)
	if a.cfg.Addr != "" {
		ln, err := net.Listen("tcp", a.cfg.Addr)
		if err != nil {
			return fmt.Errorf("metrics.addr %s: cannot listen: %w (pick a free port, or leave metrics.addr empty to turn the listener off)", a.cfg.Addr, err)
		}
		a.serve(ln, adminHandler(d, c))
		a.log.Info("admin endpoints listening", "addr", ln.Addr().String(), "paths", "/metrics /healthz /readyz /backup")
	}
	if a.cfg.Socket != "" {
		ln, err := listenSocket(a.cfg.Socket)
		if err != nil {
			a.log.Error("no socket for backups and health checks: `nudgebot backup` of the running bot needs metrics.addr instead", "socket", a.cfg.Socket, "error", err)
			return nil
		}
		a.socket = a.cfg.Socket
		a.serve(ln, socketHandler(d, c))
		a.log.Info("serving backups and health on a socket only this user can open", "socket", a.cfg.Socket)
	}
	return nil
}

func (a *Admin) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{
		Handler: h,
		// /backup sends a copy already on disk, so even a large database
		// goes out over loopback well inside the write timeout; a client
		// that stalls is cut off rather than kept forever.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      backupWriteTimeout,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	a.srvs = append(a.srvs, srv)
	a.served.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin listener stopped; its endpoints are unavailable until restart", "addr", ln.Addr().String(), "error", err)
		}
	})
}

// Stop shuts the listeners down before the database closes, letting a
// backup in progress finish for a few seconds, and removes the socket.
func (a *Admin) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range a.srvs {
		if err := srv.Shutdown(ctx); err != nil {
			a.log.Warn("admin listener did not stop in time; closing its connections", "error", err)
			_ = srv.Close()
		}
	}
	a.served.Wait()
	if a.socket != "" {
		_ = os.Remove(a.socket)
	}
}
