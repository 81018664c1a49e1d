package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/app/scheduler"
	"github.com/nudgebot/nudgebot/bot"
	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/nudges/cronspec"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/storage"
)

// newLogger builds the one logger every component gets a child of.
func newLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// loadConfig parses flags common to the config-reading commands.
func loadConfig(name string, args []string, stderr io.Writer, getenv func(string) string) (config.Config, error) {
	fs := flag.NewFlagSet("nudgebot "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "path to the YAML config file (see config.example.yaml); without it, defaults and SLACK_* environment variables are used")
	if err := fs.Parse(args); err != nil {
		return config.Config{}, flagError(err)
	}
	return readConfig(name, *path, getenv, stderr)
}

// flagError is what a command returns when its flags do not parse: the
// flag package has already said what was wrong, or printed the help.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return errHelp
	}
	return shown{ops.Mark(ops.ErrConfig, err)}
}

// readConfig loads the file at path (or only defaults and the
// environment, without one) and prints every problem.
func readConfig(name, path string, getenv func(string) string, stderr io.Writer) (cfg config.Config, err error) {
	if path == "" {
		cfg, err = config.Parse("(no config file)", nil, getenv)
	} else {
		cfg, err = config.Load(path, getenv)
	}
	if err != nil {
		fmt.Fprintf(stderr, "nudgebot %s: the configuration has problems:\n%v\n", name, err)
		return cfg, shown{ops.Mark(ops.ErrConfig, err)}
	}
	return cfg, nil
}

// domain builds the catalog and calendar the config describes.
func domain(cfg config.Config) (*nudges.Catalog, nudges.Calendar, error) {
	cat, err := nudges.DefaultCatalog()
	if err != nil {
		return nil, nudges.Calendar{}, fmt.Errorf("built-in catalog: %w", err)
	}
	if cfg.Nudges.Catalog != "" {
		cat, err = nudges.LoadCatalogFile(cat, cfg.Nudges.Catalog)
		if err != nil {
			return nil, nudges.Calendar{}, err
		}
	}
	cal, err := cfg.Calendar()
	if err != nil {
		return nil, nudges.Calendar{}, err
	}
	return cat, cal, nil
}

// wiring is everything `run` and `demo` share.
type wiring struct {
	Bot   *bot.Bot
	Store runStore
	// DB is Store when it is the bbolt file, for what only the file does
	// (the demo, the tests); nil on PostgreSQL.
	DB *storage.DB
	// Scheduler runs while the bot does; with knobs.ManualTicks the
	// caller ticks it.
	Scheduler *scheduler.Scheduler
	// Election is this replica's part in choosing the leader, on
	// PostgreSQL; nil on the bbolt file, whose one process always leads.
	Election *scheduler.Election
}

func (w wiring) Close() error {
	if w.Store == nil {
		return nil
	}
	return w.Store.Close()
}

// metricsSink hears what the Slack adapter measures, what the core did
// and when this replica leads.
type metricsSink interface {
	bot.Metrics
	app.Observer
	scheduler.LeadWatcher
	scheduler.ReplicaWatcher
}

// The admin listener's metrics hear both.
var _ metricsSink = (*ops.Metrics)(nil)

// knobs are what the demo, the tests and the metrics adjust on top of the
// config, without a second wiring.
type knobs struct {
	Now  func() time.Time // the one clock of the bot and the core
	Tick time.Duration
	// ManualTicks: the caller drives the scheduler (a fake clock).
	ManualTicks bool
	SettleTime  time.Duration
	ReadyFunc   func()
	Metrics     metricsSink
	// ShutdownTimeout, when set, replaces the config's.
	ShutdownTimeout time.Duration
	// Budget and BudgetBurst, when set, replace each person's allowance
	// of commands and clicks (the tests type faster than people do).
	Budget, BudgetBurst int
	// LeaseTTL, when set, replaces how long a replica's lease lasts
	// unrenewed (the tests take over sooner).
	LeaseTTL time.Duration
	// Replica, when set, names this replica in the lease.
	Replica string
}

// wire opens the database and builds the core and the bot from cfg.
func wire(cfg config.Config, log *slog.Logger, getenv func(string) string, tune func(*knobs)) (wiring, error) {
	cat, cal, err := domain(cfg)
	if err != nil {
		return wiring{}, err
	}
	db, err := openStore(cfg, log.With("component", "storage"), getenv)
	if err != nil {
		return wiring{}, err
	}
	file, _ := db.(*storage.DB)
	plans, err := digestPlans(cfg)
	if err != nil {
		return wiring{}, errors.Join(err, db.Close())
	}
	k := knobs{Now: time.Now, ShutdownTimeout: cfg.ShutdownTimeout}
	if tune != nil {
		tune(&k)
	}
	var m metricsSink = nopSink{}
	if k.Metrics != nil {
		m = k.Metrics
	}
	blog := log.With("component", "bot")
	sl := bot.NewSlack(bot.SlackOptions{
		BotToken: cfg.Slack.BotToken.Reveal(), AppToken: cfg.Slack.AppToken.Reveal(), APIURL: cfg.Slack.APIURL,
		Limits: cfg.SlackLimits, Logger: blog, Metrics: m, PaceMemory: db,
	})
	ports := app.Ports{Subscribers: db, Settings: db, Deliveries: db, Reflections: db, Digests: db, Eraser: db, Exporter: db, Messenger: sl}
	var (
		election *scheduler.Election
		wakeups  scheduler.Wakeups
	)
	if shared, ok := db.(sharedStore); ok {
		// PostgreSQL: other replicas may share the database, and only the
		// one holding the lease runs the scheduler.
		if k.Replica == "" {
			k.Replica = replicaName()
		}
		election, err = scheduler.NewElection(shared, scheduler.ElectionConfig{Replica: k.Replica, TTL: k.LeaseTTL, Census: shared, Logger: log.With("component", "election")})
		if err != nil {
			return wiring{}, errors.Join(err, db.Close())
		}
		ports.Leader, ports.Replicas, wakeups = election, shared, shared
	}
	core, err := app.New(
		ports,
		app.Config{
			Catalog: cat, Calendar: cal, Admins: cfg.Admins, Digests: plans, StrategyLines: cfg.Strategy.Lines,
			AnonymityThreshold: cfg.AnonymityThreshold,
			SettleTime:         k.SettleTime, Logger: log.With("component", "core"), Observer: m, Clock: k.Now,
		})
	if err != nil {
		return wiring{}, errors.Join(fmt.Errorf("core: %w", err), db.Close())
	}
	// The bot's answers to a person go to the DM the core keeps for them.
	sl.UseDMs(core)
	sched := scheduler.New(core, scheduler.Config{
		Housekeeping: db, Tick: k.Tick, Manual: k.ManualTicks, Clock: k.Now, Logger: log.With("component", "scheduler"),
		Election: election, Wakeups: wakeups, Watch: leadWatch{metrics: m, slack: sl}, Replicas: leadWatch{metrics: m, slack: sl},
	})
	b, err := bot.New(bot.Options{
		AppToken: cfg.Slack.AppToken.Reveal(), Slack: sl, Core: core, Handled: db, Scheduler: sched,
		Logger: blog, Metrics: m, Now: k.Now, ShutdownTimeout: k.ShutdownTimeout, ReadyFunc: k.ReadyFunc,
		Budget: k.Budget, BudgetBurst: k.BudgetBurst,
	})
	if err != nil {
		return wiring{}, errors.Join(err, db.Close())
	}
	return wiring{Bot: b, Store: db, DB: file, Scheduler: sched, Election: election}, nil
}

// leadWatch is what hears that this replica started or stopped leading,
// and how many replicas share the database: the metrics, and the Slack
// client, which takes up the pace the last leader learned before it
// posts the bulk, and takes its share of each method's limit.
type leadWatch struct {
	metrics interface {
		scheduler.LeadWatcher
		scheduler.ReplicaWatcher
	}
	slack *bot.Slack
}

func (w leadWatch) LeaderChanged(epoch int64, leading bool) {
	w.metrics.LeaderChanged(epoch, leading)
	if leading && epoch > 0 {
		w.slack.RecallPace()
	}
}

func (w leadWatch) ReplicasChanged(replicas int) {
	w.metrics.ReplicasChanged(replicas)
	w.slack.SetReplicas(replicas)
}

// replicaName names this process in the lease: the host and pid say
// which it is in a log, the random part keeps two apart that share both
// (containers with the same hostname, a pid reused after a restart).
func replicaName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "nudgebot"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), strings.ToLower(rand.Text()[:6]))
}

// digestPlans reads the configured digests for the core, which runs them
// and tells people when the next one comes.
func digestPlans(cfg config.Config) ([]app.DigestPlan, error) {
	plans := make([]app.DigestPlan, 0, len(cfg.Digests))
	for _, d := range cfg.Digests {
		loc, err := time.LoadLocation(d.Timezone)
		if err != nil {
			return nil, fmt.Errorf("digest %s: %w", d.Channel, err)
		}
		spec, err := cronspec.Parse(d.Schedule)
		if err != nil {
			return nil, fmt.Errorf("digest %s: %w", d.Channel, err)
		}
		plan, err := scheduler.Digest(d.Channel, spec, loc)
		if err != nil {
			return nil, err
		}
		plans = append(plans, plan)
	}
	return plans, nil
}

// openStore loads the keys and opens the database the config names (the
// bbolt file, or PostgreSQL); when an older key is still configured, a
// key rotation is under way, and re-sealing the data keys now lets the
// old key be dropped next.
func openStore(cfg config.Config, log *slog.Logger, getenv func(string) string) (runStore, error) {
	var (
		db   runStore
		keys *storage.Keys
	)
	if cfg.Storage.Postgres() {
		var err error
		if db, keys, err = openPostgres(cfg, log, getenv); err != nil {
			return nil, err
		}
	} else {
		var err error
		if keys, err = ops.RunKeys(cfg, getenv, log); err != nil {
			return nil, err
		}
		warnKeyBesideDB(cfg, getenv, log)
		file, err := storage.Open(cfg.Storage.Path, storage.Options{Logger: log, Keys: keys, Retention: cfg.Storage.Retention})
		if err != nil {
			return nil, err
		}
		db = file
	}
	if len(keys.IDs()) > 1 {
		n, err := db.RotateKeys()
		if err != nil {
			return nil, errors.Join(fmt.Errorf("rotating to the new secret key: %w", err), db.Close())
		}
		log.Info("secret key rotation: data keys re-sealed under the current key; the old key can now be removed", "count", n, "key_id", keys.CurrentID())
	}
	return db, nil
}

// warnKeyBesideDB warns when the master key is a file in the database's
// directory: whoever copies that directory or volume (a snapshot, a
// careless backup) then holds both the sealed reflections and the key
// that opens them.
func warnKeyBesideDB(cfg config.Config, getenv func(string) string, log *slog.Logger) {
	if getenv != nil && strings.TrimSpace(getenv(storage.EnvSecretKey)) != "" {
		return
	}
	keyPath := cfg.Storage.KeyFile
	if keyPath == "" {
		keyPath = filepath.Join(filepath.Dir(cfg.Storage.Path), storage.KeyFileName)
	}
	if !ops.SameFile(filepath.Dir(keyPath), filepath.Dir(cfg.Storage.Path)) {
		return
	}
	log.Warn("the reflection key file is in the same directory as the database, so a copy of that directory or volume can read every reflection: set "+storage.EnvSecretKey+" or point storage.key_file at a file elsewhere (see docs/security.md)",
		"key_file", keyPath, "database", cfg.Storage.Path)
}

// nopSink discards every measurement.
type nopSink struct{ bot.NopMetrics }

func (nopSink) Ticked(time.Duration)      {}
func (nopSink) Delivered(string)          {}
func (nopSink) LeaderChanged(int64, bool) {}
func (nopSink) ReplicasChanged(int)       {}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := loadConfig("run", args, stderr, getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	if err := serve(ctx, cfg, log, getenv, nil); err != nil {
		return shown{err} // logged
	}
	return nil
}

// serve runs the bot until ctx ends, then closes the database. Its
// errors are logged as they happen.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, getenv func(string) string, tune func(*knobs)) error {
	if err := ops.BotTokenRefused(ctx, cfg); err != nil {
		log.Error("cannot start", "error", err)
		return err
	}
	adm := ops.NewAdmin(ops.AdminConfig{Addr: cfg.Metrics.Addr, Socket: ops.SocketPath(cfg), Version: version}, log)
	w, err := wire(cfg, log, getenv, func(k *knobs) {
		k.Metrics = adm.Metrics()
		if tune != nil {
			tune(k) // after, so tests can still override
		}
	})
	if err != nil {
		log.Error("cannot start", "error", err)
		return err
	}
	auth, err := ops.BackupAuthFor(cfg, getenv)
	if err != nil {
		log.Error("cannot start", "error", err)
		return errors.Join(ops.Mark(ops.ErrConfig, err), w.Close())
	}
	if err := adm.Start(w.Bot, w.Store, auth); err != nil {
		log.Error("cannot start", "error", err)
		return errors.Join(err, w.Close())
	}
	log.Info("nudgebot starting", "version", version, "database", databaseName(cfg), "api_url", cfg.Slack.APIURL)
	checkCtx, stopCheck := context.WithCancel(ctx)
	go checkOnceConnected(checkCtx, w.Bot, w.Store)
	runErr := w.Bot.Run(ctx)
	stopCheck()
	adm.Stop() // before the database closes: a backup may be streaming
	if err := w.Close(); err != nil {
		log.Error("closing the database", "error", err)
		runErr = errors.Join(runErr, err)
	}
	if runErr != nil {
		log.Error("nudgebot stopped", "error", runErr)
		return runErr
	}
	log.Info("nudgebot stopped")
	return nil
}

// checkStartDelay bounds how long the full database check waits for the
// Socket Mode connection before it starts anyway.
const checkStartDelay = 30 * time.Second

// checkOnceConnected starts the database's full check once the bot is
// connected, or after checkStartDelay. Open walked the file's pages
// before bbolt mapped it; the full check also reads the records and their
// indexes, from a read-only snapshot writers do not wait for, but its
// reading competes for the disk, so it waits for the connection rather
// than slow the start down. /healthz reports damage it finds. On
// PostgreSQL the check is pgstore's (its indexes and schema).
func checkOnceConnected(ctx context.Context, b ops.Connection, db interface{ StartCheck() <-chan struct{} }) {
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	deadline := time.NewTimer(checkStartDelay)
	defer deadline.Stop()
	for !b.Connected() {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			db.StartCheck()
			return
		case <-poll.C:
		}
	}
	db.StartCheck()
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := loadConfig("check", args, stderr, getenv)
	if err != nil {
		return err
	}
	var problems []error
	if _, _, err := domain(cfg); err != nil {
		problems = append(problems, ops.Mark(ops.ErrConfig, err))
	}
	tool := ops.Tool{Config: cfg, Getenv: getenv, Stderr: stderr}
	if cfg.Storage.Postgres() {
		tool.Database = func(ctx context.Context, stdout io.Writer) []error { return checkPostgres(ctx, cfg, getenv, stdout) }
	}
	problems = append(problems, tool.Check(ctx, stdout)...)
	if len(problems) == 0 {
		fmt.Fprintln(stdout, "ready")
		return nil
	}
	fmt.Fprintln(stderr, "not ready:")
	for _, p := range problems {
		fmt.Fprintln(stderr, "  - "+p.Error())
	}
	// The exit code is the first problem's kind: fix that one first.
	return shown{problems[0]}
}

func cmdManifest(_ context.Context, args []string, stdout, stderr io.Writer, _ func(string) string) error {
	fs := flag.NewFlagSet("nudgebot manifest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: nudgebot manifest\n\nPrints the Slack app manifest. Paste it at api.slack.com/apps → Create New App → From a manifest.")
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	fmt.Fprint(stdout, config.Manifest())
	return nil
}

func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer, _ func(string) string) error {
	fmt.Fprintln(stdout, "nudgebot", version)
	return nil
}
