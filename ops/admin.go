package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
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
// database is given, /backup.
func AdminHandler(d AdminDeps) http.Handler {
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
	if d.Backup != nil && d.BackupAuth.Token != "" {
		mux.Handle("GET /backup", backupHandler(d.Backup, d.BackupAuth, d.Log))
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "nudgebot "+d.Version+": /metrics /healthz /readyz /backup")
	})
	return mux
}

// notReady returns why the bot cannot serve people yet, or "" if it can.
func notReady(ctx context.Context, d AdminDeps) string {
	switch {
	case d.Bot == nil || !d.Bot.Connected():
		return "not ready: waiting for the Socket Mode Connection to Slack"
	case !d.Metrics.HasTicked():
		return "not ready: waiting for the scheduler's first tick"
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

// Admin is the operator's HTTP listener in `nudgebot run`. A nil *Admin
// (metrics.addr empty) does nothing, so the caller needs no conditionals.
type Admin struct {
	addr    string
	version string
	log     *slog.Logger
	metrics *Metrics
	srv     *http.Server
	served  chan struct{}
}

// NewAdmin prepares the listener on addr; it is nil when addr is empty.
func NewAdmin(addr, version string, log *slog.Logger) *Admin {
	if addr == "" {
		return nil
	}
	return &Admin{addr: addr, version: version, log: log.With("component", "admin"), metrics: NewMetrics(version, time.Now)}
}

// Metrics is what the bot and the core report into; nil without a
// listener.
func (a *Admin) Metrics() *Metrics {
	if a == nil {
		return nil
	}
	return a.metrics
}

// AdminDB is what the running bot's database offers the listener.
type AdminDB interface {
	HealthDB
	BackupSource
	DBStats
	WriteHealth
}

// Start listens on the address, so a port already taken stops start-up
// with a clear message rather than leaving the bot unobservable.
func (a *Admin) Start(bot Connection, db AdminDB, auth BackupAuth) error {
	if a == nil {
		return nil
	}
	a.metrics.WatchDB(db, a.log)
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return fmt.Errorf("metrics.addr %s: cannot listen: %w (pick a free port, or leave metrics.addr empty to turn the listener off)", a.addr, err)
	}
	a.srv = &http.Server{
		Handler: AdminHandler(AdminDeps{Version: a.version, Metrics: a.metrics, Bot: bot, DB: db, Backup: db, BackupAuth: auth, Log: a.log, Writes: db}),
		// /backup sends a copy already on disk, so even a large database
		// goes out over loopback well inside the write timeout; a client
		// that stalls is cut off rather than kept forever.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      backupWriteTimeout,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	a.served = make(chan struct{})
	go func() {
		defer close(a.served)
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin listener stopped; /metrics, /healthz and /backup are unavailable until restart", "error", err)
		}
	}()
	a.log.Info("admin endpoints listening", "addr", ln.Addr().String(), "paths", "/metrics /healthz /readyz /backup")
	return nil
}

// Stop shuts the listener down before the database closes, letting a
// backup in progress finish for a few seconds.
func (a *Admin) Stop() {
	if a == nil || a.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		a.log.Warn("admin listener did not stop in time; closing its connections", "error", err)
		_ = a.srv.Close()
	}
	<-a.served
}
