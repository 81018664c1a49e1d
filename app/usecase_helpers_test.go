package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/nudges/cronspec"
)

// refusal is Slack refusing a call for good, as the messenger reports it.
type refusal string

func (r refusal) Error() string     { return "slack refused: " + string(r) }
func (r refusal) SlackCode() string { return string(r) }

// errSlackDown is a Slack failure that says nothing about the request.
var errSlackDown = errors.New("slack is unreachable")

// faultySlack is the fake messenger with failures to inject per call;
// a nil error field lets the call through to the fake.
type faultySlack struct {
	*fakeSlack
	mu         sync.Mutex
	profileErr map[string]error // by user id
	channelErr error
	digestErr  error
	openErr    error
	updateErr  error
	digests    []nudges.Digest // what each posted digest showed
}

func (f *faultySlack) fault(which *error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *which
}

func (f *faultySlack) Profile(ctx context.Context, userID string) (app.Profile, error) {
	f.mu.Lock()
	err := f.profileErr[userID]
	f.mu.Unlock()
	if err != nil {
		return app.Profile{}, err
	}
	return f.fakeSlack.Profile(ctx, userID)
}

func (f *faultySlack) Channel(ctx context.Context, channel string) (app.Channel, error) {
	if err := f.fault(&f.channelErr); err != nil {
		return app.Channel{}, err
	}
	return f.fakeSlack.Channel(ctx, channel)
}

func (f *faultySlack) PostDigest(ctx context.Context, channel, name string, d nudges.Digest, pulseID string, beforeSend func() error) error {
	if err := f.fault(&f.digestErr); err != nil {
		return err
	}
	if err := beforeSend(); err != nil {
		return err
	}
	f.mu.Lock()
	f.digests = append(f.digests, d)
	f.mu.Unlock()
	return f.fakeSlack.PostDigest(ctx, channel, name, d, pulseID, beforeSend)
}

func (f *faultySlack) OpenDM(ctx context.Context, userID string) (string, error) {
	if err := f.fault(&f.openErr); err != nil {
		return "", err
	}
	return f.fakeSlack.OpenDM(ctx, userID)
}

func (f *faultySlack) UpdateNudge(ctx context.Context, channel, ts string, m app.NudgeMessage) error {
	if err := f.fault(&f.updateErr); err != nil {
		return err
	}
	return f.fakeSlack.UpdateNudge(ctx, channel, ts, m)
}

// lastDigest is what the latest digest posted showed.
func (f *faultySlack) lastDigest(t *testing.T) nudges.Digest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.digests) == 0 {
		t.Fatal("no digest posted")
	}
	return f.digests[len(f.digests)-1]
}

func (f *faultySlack) set(fn func(f *faultySlack)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// outcomes is an Observer that counts delivery outcomes.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) Ticked(time.Duration) {}
func (o *outcomes) Delivered(outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[outcome]++
}

func (o *outcomes) count(outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[outcome]
}

// coreOptions change the test core's config before it is rebuilt.
type coreOptions struct {
	messenger app.Messenger
	edit      func(*app.Config)
	ports     func(*app.Ports)
}

// rebuild replaces the test core's service with one over the same file,
// the same clock and the given messenger and config changes, as the bot
// would run it after a restart.
func (tc *testCore) rebuild(t *testing.T, o coreOptions) {
	t.Helper()
	sched, err := cronspec.Parse("0 9 * * *")
	if err != nil {
		t.Fatal(err)
	}
	m := o.messenger
	if m == nil {
		m = tc.slack
	}
	cfg := app.Config{
		Catalog: tc.Catalog(), Calendar: nudges.Calendar{Default: sched, CatchUp: 2 * time.Hour, Fallback: time.UTC},
		Admins: []string{admin}, Digests: []app.DigestPlan{{Channel: team}},
		Clock: func() time.Time { return tc.now },
	}
	if o.edit != nil {
		o.edit(&cfg)
	}
	ports := app.Ports{Subscribers: tc.db, Settings: tc.db, Deliveries: tc.db, Reflections: tc.db, Digests: tc.db, Eraser: tc.db, Exporter: tc.db, Messenger: m}
	if o.ports != nil {
		o.ports(&ports)
	}
	svc, err := app.New(ports, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tc.Service = svc
}

// newFaultyCore is the test core with a messenger whose calls can be
// made to fail.
func newFaultyCore(t *testing.T) (*testCore, *faultySlack) {
	t.Helper()
	tc := newTestCore(t)
	fs := &faultySlack{fakeSlack: tc.slack, profileErr: map[string]error{}}
	tc.rebuild(t, coreOptions{messenger: fs})
	return tc, fs
}

// sub is the person's stored record.
func (tc *testCore) sub(t *testing.T, who string) nudges.Subscriber {
	t.Helper()
	s, err := tc.db.Subscriber(who)
	if err != nil {
		t.Fatalf("subscriber %s: %v", who, err)
	}
	return s
}

// delivery is the stored delivery.
func (tc *testCore) delivery(t *testing.T, id string) nudges.Delivery {
	t.Helper()
	d, err := tc.db.Delivery(id)
	if err != nil {
		t.Fatalf("delivery %s: %v", id, err)
	}
	return d
}

// berlin is the zone the fake gives everyone without a profile of their
// own.
func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// zone loads an IANA zone.
func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// at is the wall time h:m on the day of base, in loc.
func at(base time.Time, loc *time.Location, h, m int) time.Time {
	b := base.In(loc)
	return time.Date(b.Year(), b.Month(), b.Day(), h, m, 0, 0, loc)
}

// fmtAll is every field of v, for checking that some text is nowhere in
// it.
func fmtAll(v any) string { return fmt.Sprintf("%+v", v) }
