package slackemu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Identifiers of the one workspace, app and bot the emulator hosts.
const (
	TeamID     = "T0EMU"
	TeamDomain = "emu"
	AppID      = "A0EMU"
	BotID      = "B0EMU"
	BotUserID  = "U0EMUBOT"
	BotName    = "nudgebot"
)

// ErrClosed is returned by waits that end because the server was closed.
var ErrClosed = errors.New("slackemu: server closed")

// Option configures a Server.
type Option func(*config)

type config struct {
	addr            string
	botToken        string
	appToken        string
	now             func() time.Time
	pingEvery       time.Duration
	triggerTTL      time.Duration
	disconnectGrace time.Duration
	maxConns        int
	redeliver       bool
	ackTimeout      time.Duration
	maxRetries      int
	logger          *slog.Logger
	onEvent         func(Event)
}

// WithAddr sets the listen address; the default is "127.0.0.1:0" (a free port).
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithBotToken makes the bot token token the only one accepted for Web API
// calls. Without it any token starting "xoxb-" is accepted.
func WithBotToken(token string) Option { return func(c *config) { c.botToken = token } }

// WithAppToken makes token the only app-level token apps.connections.open
// accepts. Without it any token starting "xapp-" is accepted.
func WithAppToken(token string) Option { return func(c *config) { c.appToken = token } }

// WithClock sets the clock used for message timestamps, trigger expiry,
// response_url expiry and rate limits, so tests can move time by hand.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithPingInterval sets how often WebSocket PINGs are sent (default 5s).
// slack-go reconnects when it sees none for 30s.
func WithPingInterval(d time.Duration) Option { return func(c *config) { c.pingEvery = d } }

// WithTriggerTTL sets how long a trigger_id stays usable (default 3s, as Slack).
func WithTriggerTTL(d time.Duration) Option { return func(c *config) { c.triggerTTL = d } }

// WithDisconnectGrace sets how long Disconnect waits for the client to
// reconnect before it closes the old socket (default 2s).
func WithDisconnectGrace(d time.Duration) Option { return func(c *config) { c.disconnectGrace = d } }

// WithMaxConnections sets how many Socket Mode connections may be open at
// once (default 10, Slack's limit per app); a connection beyond it is
// refused with a too_many_websockets disconnect frame.
func WithMaxConnections(n int) Option { return func(c *config) { c.maxConns = max(n, 1) } }

// WithRedelivery makes the emulator resend an envelope nobody acked, as
// Slack does: after ackTimeout without an ack (Slack: 3s; 0 or less: never
// on a timer, only through [Server.ExpireAcks]), and at once when the
// connection it went out on closes first. Each resend carries the same
// envelope_id and payload, retry_attempt one higher and retry_reason
// "timeout" (or "connection_failed" for a closed connection), and goes to
// another open connection when there is one. After maxRetries resends
// (Slack's Events API: 3) Send gives up with ErrNotAcked, and an ack that
// comes later is recorded but not applied.
//
// Without this option the emulator never resends by itself.
func WithRedelivery(ackTimeout time.Duration, maxRetries int) Option {
	return func(c *config) {
		c.redeliver, c.ackTimeout, c.maxRetries = true, ackTimeout, max(maxRetries, 0)
	}
}

// WithLogger sets where the emulator logs; the default discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// OnEvent registers f to be told about every person-visible thing: a DM or
// channel message posted, updated or deleted, an ephemeral message shown, a
// modal opened, updated or closed, a home tab published, a file shared, and
// every action a person took through the drivers. Use [Event.String] for a
// readable transcript line.
//
// f is called from the emulator's goroutines, one call at a time and after
// the state change is visible through the inspectors. It may call the
// inspectors, but must not block and must not call the drivers
// (SlashCommand, ClickButton, Send…) itself, since they report events and
// wait for acks: to react as a person, start a goroutine.
func OnEvent(f func(Event)) Option { return func(c *config) { c.onEvent = f } }

// Server is a running emulator. All methods are safe for concurrent use.
type Server struct {
	cfg      config
	listener net.Listener
	http     *http.Server
	url      string
	methods  map[string]endpoint // apiMethods

	ctx    context.Context // cancelled by Close; bounds every wait inside the emulator
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the emulator started

	eventMu sync.Mutex // serialises OnEvent calls

	mu      sync.Mutex
	closed  bool
	changed chan struct{} // closed and replaced on every change, see bump
	ids     idGen
	lastTS  int64 // the newest message timestamp handed out, in microseconds

	users      map[string]*User
	userOrder  []string
	channels   map[string]*channel
	calls      []Call
	triggers   map[string]*trigger
	responses  map[string]*responseURL
	views      map[string]*View
	modals     map[string][]string // user -> modal view ids, root first
	homes      map[string]string   // user -> home view id
	ephemerals map[string][]*Message
	files      map[string]*File
	fileOrder  []string

	// Socket Mode
	tickets     map[string]bool
	conns       []*wsConn // live connections, oldest first
	connections int       // successful connects so far
	refused     int       // connections refused as too many
	turn        int       // round-robin position among open connections
	envelopes   map[string]*sentEnvelope
	deliveries  []Delivery
	expire      chan struct{} // closed and replaced by ExpireAcks
	acks        []Ack
	pongs       int

	// Faults
	limiters     map[string]*rate.Limiter
	rateLimited  map[string]int
	chanLimit    *limitSpec
	chanLimiters map[string]*rate.Limiter
	faults       map[string][]Fault
	latency      map[string]time.Duration
	afterApply   map[string]time.Duration // delay between applying a call and answering it
}

// New starts an emulator on 127.0.0.1 and panics if it cannot listen; use
// [Listen] to get the error instead.
func New(opts ...Option) *Server {
	s, err := Listen(opts...)
	if err != nil {
		panic(err)
	}
	return s
}

// Listen starts an emulator. Close it when done.
func Listen(opts ...Option) (*Server, error) {
	cfg := config{
		addr:            "127.0.0.1:0",
		now:             time.Now,
		pingEvery:       5 * time.Second,
		triggerTTL:      3 * time.Second,
		disconnectGrace: 2 * time.Second,
		maxConns:        10,
		logger:          slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("slackemu: listen on %s: %w (choose a free address with WithAddr)", cfg.addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:          cfg,
		listener:     ln,
		url:          "http://" + ln.Addr().String() + "/",
		methods:      apiMethods(),
		ctx:          ctx,
		cancel:       cancel,
		changed:      make(chan struct{}),
		users:        map[string]*User{},
		channels:     map[string]*channel{},
		triggers:     map[string]*trigger{},
		responses:    map[string]*responseURL{},
		views:        map[string]*View{},
		modals:       map[string][]string{},
		homes:        map[string]string{},
		ephemerals:   map[string][]*Message{},
		files:        map[string]*File{},
		tickets:      map[string]bool{},
		envelopes:    map[string]*sentEnvelope{},
		expire:       make(chan struct{}),
		limiters:     map[string]*rate.Limiter{},
		rateLimited:  map[string]int{},
		chanLimiters: map[string]*rate.Limiter{},
		faults:       map[string][]Fault{},
		latency:      map[string]time.Duration{},
	}
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(cfg.logger.Handler(), slog.LevelDebug),
	}
	s.wg.Go(func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.logger.Error("slackemu: serve", "err", err)
		}
	})
	return s, nil
}

// URL is the Web API base URL, ending in "/", for slack.OptionAPIURL.
func (s *Server) URL() string { return s.url }

// Close stops the emulator: it closes every socket, ends hung calls, and
// waits for the goroutines it started. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := append([]*wsConn(nil), s.conns...)
	s.bumpLocked()
	s.mu.Unlock()

	s.cancel()
	var errs []error
	for _, c := range conns {
		c.close()
	}
	if err := s.http.Close(); err != nil {
		errs = append(errs, fmt.Errorf("slackemu: close http server: %w", err))
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// serveHTTP routes one request. Handlers are counted in wg so Close can wait
// for hung or slow calls to finish.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "slackemu is shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	path := strings.TrimPrefix(r.URL.Path, "/")
	switch {
	case path == "link" || strings.HasPrefix(path, "link/"):
		s.serveSocket(w, r)
	case strings.HasPrefix(path, "response/"):
		s.serveCall(w, r, endpoint{name: methodResponseURL, auth: authNone, id: strings.TrimPrefix(path, "response/"), handler: (*Server).respond})
	case strings.HasPrefix(path, "upload/"):
		s.serveCall(w, r, endpoint{name: methodUpload, auth: authNone, id: strings.TrimPrefix(path, "upload/"), handler: (*Server).upload})
	default:
		// Slack's own base URL ends in /api/, so a config that copies
		// it for the emulator works too: /api/auth.test is auth.test.
		if method, ok := strings.CutPrefix(path, "api/"); ok {
			path = method
		}
		ep, ok := s.methods[path]
		if !ok {
			ep = endpoint{auth: authNone, handler: (*Server).unknownMethod}
		}
		ep.name = path
		s.serveCall(w, r, ep)
	}
}

func (s *Server) now() time.Time { return s.cfg.now() }

// bumpLocked wakes every WaitFor. s.mu must be held.
func (s *Server) bumpLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// update runs fn under the lock, wakes waiters and then reports the events
// fn produced, outside the lock so OnEvent may call back into the Server.
func (s *Server) update(fn func() []Event) {
	s.mu.Lock()
	evs := fn()
	s.bumpLocked()
	s.mu.Unlock()
	s.emit(evs)
}

func (s *Server) emit(evs []Event) {
	if s.cfg.onEvent == nil || len(evs) == 0 {
		return
	}
	s.eventMu.Lock()
	defer s.eventMu.Unlock()
	for _, e := range evs {
		s.cfg.onEvent(e)
	}
}

// WaitFor blocks until cond returns true, re-checking it after every
// recorded call, ack and state change. cond runs without the Server's lock
// held, so it may call any inspector.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("slackemu: condition not met: %w", ctx.Err())
		}
	}
}

// sleep waits for d unless ctx ends or the server closes first.
func (s *Server) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrClosed
	}
}
