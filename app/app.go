// Package app is nudgebot's application core: one method per thing a
// person, an admin or the scheduler can do, and every rule about who may
// do it and what it changes. It speaks in domain terms (package nudges)
// and reaches storage and Slack only through the small ports in ports.go,
// so it knows neither bbolt nor Block Kit.
//
// Every use case takes who is acting (an Actor) and the time, and goes
// through one authorization policy (policy.go) before it reads or
// changes anything.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// Actor is who is acting: a person in Slack, or the scheduler.
type Actor struct {
	UserID string
}

// Person is the actor for a Slack user id.
func Person(userID string) Actor { return Actor{UserID: userID} }

// Ports are the core's outside world.
type Ports struct {
	Subscribers Subscribers
	Settings    Settings
	Deliveries  Deliveries
	Reflections Reflections
	Digests     Digests
	Eraser      Eraser
	Exporter    Exporter
	Messenger   Messenger
	// Leader, when several replicas share the database, says whether
	// this one still leads; nil: it always does (one process).
	Leader Leader
	// Replicas, when several share the database, carries a schedule
	// change to the leader; nil: there are no others.
	Replicas Replicas
}

// Config is the product's settings.
type Config struct {
	Catalog  *nudges.Catalog
	Calendar nudges.Calendar
	Admins   []string
	// StrategyLines are the config's strategy lines, until admins set
	// their own in Slack.
	StrategyLines []string
	// Digests are the channels with a team digest, and when each runs.
	Digests []DigestPlan
	// AnonymityThreshold is the fewest people a team figure may
	// describe; 0 means nudges.DefaultThreshold, never below
	// nudges.MinGroup.
	AnonymityThreshold int
	// Senders is how many deliveries are in flight at once; default 12.
	// Each waits for its attempt to be durable, then for Slack; their
	// writes share commits, so more senders make larger groups rather
	// than more fsyncs (12 sustain over 2,000 nudges a second here).
	Senders int
	// SettleTime is how long an uncertain post is left alone before it is
	// looked for in the DM and, if absent, sent again; default 20s.
	SettleTime time.Duration
	Logger     *slog.Logger
	Observer   Observer
	// Clock reads the time inside long operations (a post's attempt is
	// stamped when it leaves, after any rate-limit wait); default
	// time.Now. Use cases take the time of the request as an argument.
	Clock func() time.Time
}

// DefaultSettleTime is longer than any request of ours can stay in
// flight.
const DefaultSettleTime = 20 * time.Second

// Service is the application core.
type Service struct {
	subs      Subscribers
	settings  Settings
	dels      Deliveries
	refls     Reflections
	digests   Digests
	eraser    Eraser
	exporter  Exporter
	slack     Messenger
	leader    Leader
	replicas  Replicas
	policy    Policy
	catalog   *nudges.Catalog
	cal       nudges.Calendar
	plans     map[string]DigestPlan
	threshold int
	previews  *gate
	// members caches who is in each digest channel for the reflection
	// form, which must open within Slack's three seconds; whether someone
	// may share is checked afresh when they save.
	members      *memberCache
	lines        []string
	senders      int
	settle       time.Duration
	log          *slog.Logger
	obs          Observer
	clock        func() time.Time
	throttledLog *throttle // for failures that repeat per person
	// wakeCh wakes the scheduler after a change that may make someone
	// due sooner than it planned to look (a new subscription, a new
	// time, a snooze); it holds one wake at most, so wake never blocks.
	wakeCh chan struct{}
	// compaction debounces compactions; background holds one running.
	compaction compactGate
	background sync.WaitGroup

	// lastTick is when the previous tick ran; zero until the first one
	// after start. Slots missed between two ticks of a running bot are
	// not "missed while away".
	lastTick time.Time

	tickMu   sync.Mutex
	inflight sync.Map // delivery id → struct{}: one sender per delivery
	marks    pending  // sent deliveries being recorded (see post)
}

// New checks the ports and config and builds the core.
func New(p Ports, c Config) (*Service, error) {
	var problems []error
	if p.Subscribers == nil || p.Settings == nil || p.Deliveries == nil || p.Reflections == nil || p.Digests == nil || p.Eraser == nil || p.Exporter == nil {
		problems = append(problems, errors.New("a storage port is missing"))
	}
	if p.Messenger == nil {
		problems = append(problems, errors.New("no messenger"))
	}
	if c.Catalog == nil || c.Catalog.Len() == 0 {
		problems = append(problems, errors.New("no catalog"))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Senders <= 0 {
		c.Senders = 12
	}
	if c.SettleTime <= 0 {
		c.SettleTime = DefaultSettleTime
	}
	if p.Leader == nil {
		p.Leader = alone{}
	}
	if c.Calendar.Fallback == nil {
		c.Calendar.Fallback = time.UTC
	}
	if c.AnonymityThreshold <= 0 {
		c.AnonymityThreshold = nudges.DefaultThreshold
	}
	return &Service{
		subs: p.Subscribers, settings: p.Settings, dels: p.Deliveries, refls: p.Reflections,
		digests: p.Digests, eraser: p.Eraser, exporter: p.Exporter, slack: p.Messenger,
		leader: p.Leader, replicas: p.Replicas,
		policy:       NewPolicy(c.Admins, p.Messenger),
		catalog:      c.Catalog,
		cal:          c.Calendar,
		plans:        plansByChannel(c.Digests),
		threshold:    max(c.AnonymityThreshold, nudges.MinGroup),
		previews:     newGate(previewEvery),
		members:      &memberCache{slack: p.Messenger, ttl: 5 * time.Minute, clock: c.Clock, seen: map[string]cachedChannel{}},
		lines:        slices.Clone(c.StrategyLines),
		senders:      c.Senders,
		settle:       c.SettleTime,
		log:          c.Logger,
		obs:          c.Observer,
		clock:        c.Clock,
		throttledLog: newThrottle(c.Logger, 10*time.Second),
		wakeCh:       make(chan struct{}, 1),
	}, nil
}

// Catalog is the nudge catalog the core chooses from; renderers use it to
// show a delivery's prompt.
func (s *Service) Catalog() *nudges.Catalog { return s.catalog }

// Location is the person's effective time zone.
func (s *Service) Location(userID string) *time.Location {
	if sub, err := s.subs.Subscriber(userID); err == nil {
		return sub.Location(s.cal.Fallback)
	}
	return s.cal.Fallback
}

// IsAdmin reports whether the person is one of the config's admins.
func (s *Service) IsAdmin(userID string) bool { return s.policy.isAdmin(userID) }

// Threshold is the fewest people a team figure may describe, so that
// what people are told about figures can name it.
func (s *Service) Threshold() int { return s.threshold }

// Fallback is the zone of people whose zone is unknown.
func (s *Service) Fallback() *time.Location { return s.cal.Fallback }

// strategyLines are the lines nudges quote: the admins' own once they set
// them in Slack, else the config's.
func (s *Service) strategyLines() []string {
	lines, set, err := s.settings.StrategyLines()
	if err != nil {
		s.log.Warn("reading the strategy lines; using the config's", "error", err)
		return s.lines
	}
	if !set {
		return s.lines
	}
	return lines
}

// wording is the nudge as the person reads it.
func (s *Service) wording(n nudges.Nudge, sub nudges.Subscriber, deliveryID string) nudges.Wording {
	return s.wordingWith(n, sub, deliveryID, s.strategyLines())
}

// wordingWith is wording with the strategy lines already read.
func (s *Service) wordingWith(n nudges.Nudge, sub nudges.Subscriber, deliveryID string, lines []string) nudges.Wording {
	return n.Worded(nudges.WordingOptions{Situation: sub.Contexts, StrategyLines: lines, Seed: deliveryID})
}

// wake tells the scheduler to look at the due index now, wherever it
// runs.
func (s *Service) wake() {
	select {
	case s.wakeCh <- struct{}{}:
	default: // a wake is already waiting
	}
	if s.replicas != nil {
		s.replicas.WakeLeader()
	}
}

// alone is the Leader of a process that has its database to itself.
type alone struct{}

func (alone) Leading() error { return nil }

// leading is beforeSend's check for the leader's posts: nil while this
// replica leads, else a refusal that marks the post as never sent.
func (s *Service) leading() error {
	if err := s.leader.Leading(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	return nil
}

// Wakes receives when a change may make someone due sooner than the
// scheduler planned to look (a new subscription, a new time, a snooze).
// It holds one wake at most: the scheduler is its one reader.
func (s *Service) Wakes() <-chan struct{} { return s.wakeCh }

func plansByChannel(ps []DigestPlan) map[string]DigestPlan {
	m := make(map[string]DigestPlan, len(ps))
	for _, p := range ps {
		m[p.Channel] = p
	}
	return m
}

// memberCache remembers a channel's members for a while.
type memberCache struct {
	slack interface {
		Channel(ctx context.Context, channel string) (Channel, error)
	}
	ttl   time.Duration
	clock func() time.Time

	mu   sync.Mutex
	seen map[string]cachedChannel
}

type cachedChannel struct {
	ch Channel
	at time.Time
}

func (m *memberCache) get(ctx context.Context, channel string) (Channel, error) {
	now := m.clock()
	m.mu.Lock()
	c, ok := m.seen[channel]
	m.mu.Unlock()
	if ok && now.Sub(c.at) < m.ttl && !now.Before(c.at) {
		return c.ch, nil
	}
	ch, err := m.slack.Channel(ctx, channel)
	if err != nil {
		return Channel{}, err
	}
	m.mu.Lock()
	m.seen[channel] = cachedChannel{ch: ch, at: now}
	m.mu.Unlock()
	return ch, nil
}
