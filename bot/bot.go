package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/app"
)

// HandledEnvelopes remembers which Socket Mode envelopes were handled,
// so that one Slack re-sends, even after a restart, is handled once.
// (The core's scheduler forgets them after two days.)
type HandledEnvelopes interface {
	// MarkSeen records an envelope or event key; first is false when it
	// was recorded before.
	MarkSeen(key string, at time.Time) (first bool, err error)
}

// Scheduler is the core's clock-driven side (package app/scheduler):
// Start runs its jobs under ctx until stop is called.
type Scheduler interface {
	Start(ctx context.Context) (stop func())
}

// Options configure a Bot. Slack, Core, Handled and the app token are
// required.
type Options struct {
	AppToken string // xapp-…
	Slack    *Slack
	Core     *app.Service
	Handled  HandledEnvelopes
	// Scheduler, if set, runs while the bot does: it is started once Run
	// begins and stopped within ShutdownTimeout when it ends.
	Scheduler Scheduler

	Logger  *slog.Logger
	Metrics Metrics
	Now     func() time.Time
	// ShutdownTimeout bounds how long in-flight work may take to finish
	// once the bot is told to stop; default 10s.
	ShutdownTimeout time.Duration
	// PingInterval is how long Slack may stay silent before the socket
	// is considered dead; default slack-go's 30s.
	PingInterval time.Duration
	// MaxWork bounds the work running after acks at once; default 64.
	// Past it, the ack still goes out at once and the person is asked to
	// try again in a moment.
	MaxWork int
	// Budget is each person's allowance of commands and clicks per
	// minute, with bursts of BudgetBurst; default 30 and 10. Past it the
	// person is asked to slow down and nothing runs.
	Budget, BudgetBurst int
	// ReadyFunc, if set, is called once the first Socket Mode connection
	// says hello. The demo and the tests use it to start driving.
	ReadyFunc func()
}

// Bot is nudgebot's Slack adapter: one Socket Mode connection and the
// handlers that turn Slack payloads into calls to the core and its
// answers into Block Kit.
type Bot struct {
	opts    Options
	log     *slog.Logger
	core    *app.Service
	slack   *Slack
	handled HandledEnvelopes
	now     func() time.Time
	metrics Metrics

	smc    *socketmode.Client
	seen   *recentSet
	budget *budget

	// workCtx carries the work done after acks and by the scheduler. It
	// outlives the Run context on purpose: a shutdown stops new work at
	// once but lets a post already on the wire finish, up to
	// ShutdownTimeout, since abandoning it would leave Slack's answer
	// unknown.
	workCtx  context.Context
	stopWork context.CancelFunc
	work     sync.WaitGroup
	workSem  chan struct{}
	busySem  chan struct{}
	running  atomic.Int64 // work started after acks and not yet done
	ready    sync.Once

	connected sync.Mutex
	isUp      bool
}

// New checks the options and builds a Bot; it does not connect.
func New(opts Options) (*Bot, error) {
	var problems []error
	if !strings.HasPrefix(opts.AppToken, "xapp-") {
		problems = append(problems, errors.New("app token must start with xapp-"))
	}
	if opts.Slack == nil || opts.Core == nil || opts.Handled == nil {
		problems = append(problems, errors.New("slack client, core and handled-envelope store are all required"))
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
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.MaxWork <= 0 {
		opts.MaxWork = 64
	}
	if opts.Budget <= 0 {
		opts.Budget = 30
	}
	if opts.BudgetBurst <= 0 {
		opts.BudgetBurst = 10
	}
	smOpts := []socketmode.Option{socketmode.OptionLog(slogPrinter{opts.Logger})}
	if opts.PingInterval > 0 {
		smOpts = append(smOpts, socketmode.OptionPingInterval(opts.PingInterval))
	}
	return &Bot{
		opts:    opts,
		log:     opts.Logger,
		core:    opts.Core,
		slack:   opts.Slack,
		handled: opts.Handled,
		now:     opts.Now,
		metrics: opts.Metrics,
		smc:     socketmode.New(opts.Slack.client, smOpts...),
		seen:    newRecentSet(4096),
		budget:  newBudget(opts.Budget, opts.BudgetBurst),
		workSem: make(chan struct{}, opts.MaxWork),
		busySem: make(chan struct{}, 8),
	}, nil
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

	stopSched := func() {}
	if b.opts.Scheduler != nil {
		stopSched = b.opts.Scheduler.Start(b.workCtx)
	}

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
				runErr = fmt.Errorf("socket mode: %w (check SLACK_APP_TOKEN and that the app is installed)", scrubError(err))
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
	schedDone := make(chan struct{})
	go func() { stopSched(); close(schedDone) }()
	workDone := make(chan struct{})
	go func() { b.work.Wait(); b.core.Flush(); close(workDone) }()
	for _, done := range []<-chan struct{}{schedDone, workDone} {
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

// goWork runs fn after the ack, counted for a graceful shutdown. It
// reports false, and runs nothing, when the bot is already doing as much
// as it may.
func (b *Bot) goWork(fn func()) bool {
	if !b.reserve() {
		return false
	}
	b.goReserved(fn)
	return true
}

// reserve takes a work slot without waiting, before the goroutine starts,
// so a flood cannot start unbounded goroutines.
func (b *Bot) reserve() bool {
	select {
	case b.workSem <- struct{}{}:
		return true
	default:
		b.log.Warn("too much work in flight; asking the person to try again")
		return false
	}
}

// goReserved runs fn in the slot reserve took.
func (b *Bot) goReserved(fn func()) {
	b.work.Add(1)
	b.running.Add(1)
	go func() {
		defer b.work.Done()
		defer b.running.Add(-1)
		defer func() { <-b.workSem }()
		defer func() {
			if r := recover(); r != nil {
				b.log.Error("handler panicked; the envelope was acked and the bot goes on", "panic", fmt.Sprint(r))
			}
		}()
		fn()
	}()
}

// busyText is what a person is told when the bot is too busy to start
// their request.
const busyText = "I'm a little busy this second, so I didn't start that. Please try again in a moment."

// tellBusy answers a click the bot was too busy to start, through its
// response_url, from a small pool of its own; past that, the click is
// only logged.
func (b *Bot) tellBusy(url string) { b.tellClick(url, busyText) }

// tellClick answers a click it will not act on.
func (b *Bot) tellClick(url, text string) {
	b.fromBusyPool(func(ctx context.Context) { b.slack.respond(ctx, url, reply(text)) })
}

// fromBusyPool runs an answer to work the bot would not start, in a
// small pool of its own so that answering a flood is bounded too; past
// that, the answer is dropped.
func (b *Bot) fromBusyPool(answer func(ctx context.Context)) {
	select {
	case b.busySem <- struct{}{}:
	default:
		return
	}
	b.work.Add(1)
	go func() {
		defer b.work.Done()
		defer func() { <-b.busySem }()
		answer(b.ctx())
	}()
}

// ctx is the context work runs under; outside Run (tests), a plain one.
func (b *Bot) ctx() context.Context {
	if b.workCtx != nil {
		return b.workCtx
	}
	return context.Background()
}

// Quiet reports whether no work started by an envelope is still running:
// the demo waits for it before moving simulated time on, so what it
// prints reads in cause-and-effect order.
func (b *Bot) Quiet() bool { return b.running.Load() == 0 }

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
