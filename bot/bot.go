package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/nudges"
)

// Options configure a Bot. Store, Catalog and both tokens are required.
type Options struct {
	BotToken string // xoxb-…
	AppToken string // xapp-…
	APIURL   string // Web API base URL ending in "/"; empty means Slack's own

	Store    Store
	Catalog  *nudges.Catalog
	Calendar nudges.Calendar
	Admins   []string
	Digests  []DigestTarget

	Logger  *slog.Logger
	Metrics Metrics
	Now     func() time.Time

	// Limits override DefaultLimits(), in requests per minute per method.
	Limits map[string]int
	// Tick is how often the scheduler looks for due nudges; default 15s.
	Tick time.Duration
	// Senders is how many deliveries are in flight at once; default 8.
	// Each waits for its attempt to be durable, then for Slack; their
	// database writes share commits, so more senders make larger groups
	// rather than more fsyncs, but also leave more posts uncertain, to be
	// looked up in the DM history, when the process is killed.
	Senders int
	// ShutdownTimeout bounds how long in-flight work may take to finish
	// once the bot is told to stop; default 10s.
	ShutdownTimeout time.Duration
	// SettleTime is how long an uncertain post is left alone before it is
	// looked for in the DM and, if absent, sent again; default 20s.
	SettleTime time.Duration
	// HTTPClient carries Web API calls; nil means a client with sane
	// timeouts.
	HTTPClient *http.Client
	// PingInterval is how long Slack may stay silent before the socket
	// is considered dead; default slack-go's 30s.
	PingInterval time.Duration
	// api replaces the Web API client; tests under synctest use it.
	api slackAPI
	// ReadyFunc, if set, is called once the first Socket Mode connection
	// says hello. The demo and the tests use it to start driving.
	ReadyFunc func()
}

// Bot is a running nudgebot: one Socket Mode connection, a scheduler and
// the handlers behind them.
type Bot struct {
	opts    Options
	log     *slog.Logger
	store   Store
	catalog *nudges.Catalog
	cal     nudges.Calendar
	now     func() time.Time
	metrics Metrics

	api  slackAPI
	smc  *socketmode.Client
	web  *webAPI
	seen *recentSet
	// noisy rate-limits the log lines a failure repeated for every
	// delivery would otherwise flood the log with.
	noisy *throttle

	// workCtx carries the work done after acks and by cron. It outlives
	// the Run context on purpose: a shutdown stops new work at once but
	// lets a post already on the wire finish, up to ShutdownTimeout, since
	// abandoning it would leave Slack's answer unknown.
	workCtx  context.Context
	stopWork context.CancelFunc
	work     sync.WaitGroup
	workSem  chan struct{}
	inflight sync.Map // delivery id → struct{}: one sender per delivery
	marks    pending  // sent deliveries being recorded (see send)
	tickMu   sync.Mutex
	ready    sync.Once

	connected sync.Mutex
	isUp      bool
}

// New checks the options and builds a Bot; it does not connect.
func New(opts Options) (*Bot, error) {
	var problems []error
	if !strings.HasPrefix(opts.BotToken, "xoxb-") {
		problems = append(problems, errors.New("bot token must start with xoxb-"))
	}
	if !strings.HasPrefix(opts.AppToken, "xapp-") {
		problems = append(problems, errors.New("app token must start with xapp-"))
	}
	if opts.Store == nil {
		problems = append(problems, errors.New("no store"))
	}
	if opts.Catalog == nil || opts.Catalog.Len() == 0 {
		problems = append(problems, errors.New("no catalog"))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("bot: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NopMetrics{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Tick <= 0 {
		opts.Tick = 15 * time.Second
	}
	if opts.Senders <= 0 {
		opts.Senders = 8
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.SettleTime <= 0 {
		opts.SettleTime = defaultSettleTime
	}
	if opts.HTTPClient == nil {
		// Keep a connection per sender: the default transport keeps two
		// idle, so the other senders would dial (and, for Slack, shake
		// hands over TLS) for every post.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = opts.Senders + 4
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: t}
	}
	if opts.Calendar.Fallback == nil {
		opts.Calendar.Fallback = time.UTC
	}

	slackOpts := []slack.Option{
		slack.OptionAppLevelToken(opts.AppToken),
		slack.OptionHTTPClient(opts.HTTPClient),
		// No OptionRetry: the bot's own webAPI layer decides what is safe
		// to repeat, and a blind retry of a post can send it twice.
	}
	if opts.APIURL != "" {
		slackOpts = append(slackOpts, slack.OptionAPIURL(opts.APIURL))
	}
	api := slack.New(opts.BotToken, slackOpts...)
	smOpts := []socketmode.Option{socketmode.OptionLog(slogPrinter{opts.Logger})}
	if opts.PingInterval > 0 {
		smOpts = append(smOpts, socketmode.OptionPingInterval(opts.PingInterval))
	}
	var webClient slackAPI = api
	if opts.api != nil {
		webClient = opts.api
	}
	b := &Bot{
		opts:    opts,
		log:     opts.Logger,
		store:   opts.Store,
		catalog: opts.Catalog,
		cal:     opts.Calendar,
		now:     opts.Now,
		metrics: opts.Metrics,
		api:     webClient,
		smc:     socketmode.New(api, smOpts...),
		web:     newWebAPI(opts.Logger, opts.Limits, opts.Metrics),
		seen:    newRecentSet(4096),
		noisy:   newThrottle(opts.Logger, 10*time.Second),
		workSem: make(chan struct{}, 64),
	}
	return b, nil
}

// Run connects to Slack and serves until ctx is cancelled or Slack
// refuses the tokens. On cancellation it stops taking new work, lets what
// is in flight finish within ShutdownTimeout, and returns nil.
func (b *Bot) Run(ctx context.Context) error {
	sockCtx, stopSocket := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSocket()
	b.workCtx, b.stopWork = context.WithCancel(context.WithoutCancel(ctx))
	defer b.stopWork()

	sockErr := make(chan error, 1)
	go func() { sockErr <- b.smc.RunContext(sockCtx) }()

	sched := b.startCron()

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-sockErr:
			// RunContext returns only for fatal auth errors (invalid_auth,
			// token_revoked, …): retrying would spin, so stop and say why.
			if err != nil && !errors.Is(err, context.Canceled) {
				runErr = fmt.Errorf("socket mode: %w (check SLACK_APP_TOKEN and that the app is installed)", err)
			}
			break loop
		case evt, ok := <-b.smc.Events:
			if !ok {
				break loop
			}
			b.handleEvent(b.workCtx, evt)
		}
	}

	b.log.Info("shutting down: no new work accepted", "deadline", b.opts.ShutdownTimeout)
	deadline, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.ShutdownTimeout)
	defer cancel()
	stopSocket()
	cronDone := sched.Stop()
	workDone := make(chan struct{})
	go func() { b.work.Wait(); b.marks.Wait(); close(workDone) }()
	for _, done := range []<-chan struct{}{cronDone.Done(), workDone} {
		select {
		case <-done:
		case <-deadline.Done():
			b.log.Warn("shutdown deadline passed with work still running; pending deliveries will be reconciled at next start")
			return runErr
		}
	}
	b.log.Info("shutdown complete")
	return runErr
}

// startCron registers the global jobs. Each person's own schedule is kept
// in storage, not in cron: one tick asks storage who is due.
func (b *Bot) startCron() *cron.Cron {
	cl := cronLogger{b.log}
	c := cron.New(cron.WithChain(cron.Recover(cl), cron.SkipIfStillRunning(cl)))
	ctx := b.workCtx
	if ctx == nil {
		ctx = context.Background() // scheduler tests start cron without Run
	}
	mustAdd := func(spec string, job func()) {
		if _, err := c.AddFunc(spec, job); err != nil {
			// The specs are constants; failing here is a programming error.
			panic(fmt.Sprintf("cron spec %q: %v", spec, err))
		}
	}
	mustAdd(fmt.Sprintf("@every %s", b.opts.Tick), func() { b.Tick(ctx) })
	mustAdd("@hourly", func() { b.housekeeping(); b.compactSoon() })
	mustAdd("@daily", func() { b.RefreshProfiles(ctx) })
	// Digest specs come from the config, which validated them; one that
	// still fails is logged and skipped rather than stopping the others.
	b.addDigestJobs(func(spec string, job func()) {
		if _, err := c.AddFunc(spec, job); err != nil {
			b.log.Error("digest schedule refused; that digest will not run", "spec", spec, "error", err)
		}
	})
	c.Start()
	// Deliver whatever came due while we were down without waiting a
	// whole tick.
	b.goWork(func() { b.Tick(ctx) })
	return c
}

func (b *Bot) housekeeping() {
	n, err := b.store.PruneSeen(b.now().Add(-48 * time.Hour))
	if err != nil {
		b.log.Error("pruning handled-envelope records", "error", err)
		return
	}
	if n > 0 {
		b.log.Debug("pruned handled-envelope records", "count", n)
	}
}

// goWork runs fn after the ack, counted for a graceful shutdown and
// bounded so a flood cannot start unbounded goroutines' worth of work at
// once.
func (b *Bot) goWork(fn func()) {
	b.work.Add(1)
	go func() {
		defer b.work.Done()
		b.workSem <- struct{}{}
		defer func() { <-b.workSem }()
		defer func() {
			if r := recover(); r != nil {
				b.log.Error("handler panicked; the envelope was acked and the bot goes on", "panic", fmt.Sprint(r))
			}
		}()
		fn()
	}()
}

// Connected reports whether the Socket Mode connection is up.
func (b *Bot) Connected() bool {
	b.connected.Lock()
	defer b.connected.Unlock()
	return b.isUp
}

func (b *Bot) setConnected(up bool) {
	b.connected.Lock()
	b.isUp = up
	b.connected.Unlock()
	b.metrics.Connected(up)
}

// slogPrinter lets slack-go's socketmode client log through slog at debug
// level. slack-go's own debug output redacts tokens.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Output(_ int, s string) error {
	p.log.Debug(strings.TrimSpace(s), "component", "socketmode")
	return nil
}

// cronLogger adapts slog to robfig/cron's logr-style Logger.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug(msg, append(kv, "component", "cron")...) }
func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error(msg, append(kv, "component", "cron", "error", err)...)
}

// recentSet remembers recently handled keys in memory, so a re-sent
// envelope is recognised without touching the database on the ack path.
type recentSet struct {
	mu   sync.Mutex
	keys map[string]struct{}
	ring []string
	next int
}

func newRecentSet(n int) *recentSet {
	return &recentSet{keys: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add returns false if key was already there.
func (s *recentSet) add(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[key]; ok {
		return false
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.keys, old)
	}
	s.ring[s.next] = key
	s.next = (s.next + 1) % len(s.ring)
	s.keys[key] = struct{}{}
	return true
}
