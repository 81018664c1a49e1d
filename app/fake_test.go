package app_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/nudges/cronspec"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// fakeSlack is the core's messenger in memory: people, channels and what
// the core posted, with errors to inject.
type fakeSlack struct {
	mu       sync.Mutex
	members  map[string][]string
	profiles map[string]app.Profile
	posts    []fakePost // nudges, by DM channel
	updates  int
	channel  []string          // digest, pulse and update posts, by channel
	texts    []string          // team update texts
	told     []string          // "person channel reason-or-seq" for each digest note
	postErr  error             // returned by the next PostNudge
	opens    int               // conversations.open calls
	dms      map[string]string // a person's DM channel when not "D"+id
}

type fakePost struct {
	channel, deliveryID, ts string
	round                   int
	followUp                *nudges.Reflection
}

func newFakeSlack() *fakeSlack {
	return &fakeSlack{members: map[string][]string{}, profiles: map[string]app.Profile{}, dms: map[string]string{}}
}

func (f *fakeSlack) OpenDM(_ context.Context, userID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens++
	if ch, ok := f.dms[userID]; ok {
		return ch, nil
	}
	return "D" + userID, nil
}

func (f *fakeSlack) PostNudge(_ context.Context, channel string, m app.NudgeMessage, beforeSend func() error) (string, error) {
	if err := beforeSend(); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.postErr; err != nil {
		f.postErr = nil
		return "", err
	}
	ts := fmt.Sprintf("%d.000100", len(f.posts)+1)
	f.posts = append(f.posts, fakePost{channel: channel, deliveryID: m.Delivery.ID, ts: ts, round: m.Delivery.Round, followUp: m.FollowUp})
	return ts, nil
}

func (f *fakeSlack) UpdateNudge(context.Context, string, string, app.NudgeMessage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates++
	return nil
}

func (f *fakeSlack) FindNudge(_ context.Context, channel, deliveryID string, round int, _ time.Time) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.posts {
		if p.channel == channel && p.deliveryID == deliveryID && p.round == round {
			return p.ts, true, nil
		}
	}
	return "", false, nil
}

func (f *fakeSlack) Profile(_ context.Context, userID string) (app.Profile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.profiles[userID]
	if !ok {
		return app.Profile{TZ: "Europe/Berlin", DisplayName: userID}, nil
	}
	return p, nil
}

func (f *fakeSlack) Channel(_ context.Context, channel string) (app.Channel, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return app.Channel{Name: "team", Members: slices.Clone(f.members[channel])}, nil
}

func (f *fakeSlack) PostDigest(_ context.Context, channel, _ string, _ nudges.Digest, _ string, beforeSend func() error) error {
	if err := beforeSend(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.channel = append(f.channel, channel)
	return nil
}

func (f *fakeSlack) PostPulse(_ context.Context, channel, _ string, beforeSend func() error) error {
	if err := beforeSend(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.channel = append(f.channel, channel)
	return nil
}

func (f *fakeSlack) PostUpdate(_ context.Context, channel, _, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.channel = append(f.channel, channel)
	f.texts = append(f.texts, text)
	return nil
}

func (f *fakeSlack) TellAboutDigest(_ context.Context, userID string, note app.DigestNote) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.told = append(f.told, fmt.Sprintf("%s %s %s%d", userID, note.Channel, note.Broken, note.HeldBack))
	return nil
}

func (f *fakeSlack) postsTo(channel string) []fakePost {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakePost
	for _, p := range f.posts {
		if p.channel == channel {
			out = append(out, p)
		}
	}
	return out
}

// testCore is the core over a real bbolt file and the fake messenger.
type testCore struct {
	*app.Service
	db    *storage.DB
	slack *fakeSlack
	now   time.Time
}

const (
	owner    = "UOWNER001"
	other    = "UOTHER002"
	member   = "UMEMBER03"
	outsider = "UOUTSID04"
	admin    = "UADMIN005"
	team     = "CTEAM0001"
)

func newTestCore(t *testing.T) *testCore {
	t.Helper()
	db := storagetest.Open(t, storage.Options{Keys: storagetest.Keys(t, 7)})
	cat, err := nudges.DefaultCatalog()
	if err != nil {
		t.Fatal(err)
	}
	sched, err := cronspec.Parse("0 9 * * *")
	if err != nil {
		t.Fatal(err)
	}
	fs := newFakeSlack()
	fs.members[team] = []string{owner, member}
	tc := &testCore{db: db, slack: fs, now: time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)} // Monday, 08:00 in Berlin
	svc, err := app.New(
		app.Ports{Subscribers: db, Settings: db, Deliveries: db, Reflections: db, Digests: db, Eraser: db, Exporter: db, Messenger: fs},
		app.Config{
			Catalog: cat, Calendar: nudges.Calendar{Default: sched, CatchUp: 2 * time.Hour, Fallback: time.UTC},
			Admins: []string{admin}, Digests: []app.DigestPlan{{Channel: team}},
			Clock: func() time.Time { return tc.now },
		})
	if err != nil {
		t.Fatal(err)
	}
	tc.Service = svc
	return tc
}

func (tc *testCore) subscribe(t *testing.T, who string) {
	t.Helper()
	if _, err := tc.Subscribe(context.Background(), app.Person(who), tc.now); err != nil {
		t.Fatal(err)
	}
}

// deliver subscribes who and runs the scheduler at their first slot, so
// they have one nudge sent.
func (tc *testCore) deliver(t *testing.T, who string) nudges.Delivery {
	t.Helper()
	tc.subscribe(t, who)
	sub, err := tc.db.Subscriber(who)
	if err != nil {
		t.Fatal(err)
	}
	tc.now = sub.NextDue
	tc.Tick(context.Background(), tc.now)
	ds, err := tc.db.Deliveries(who, time.Time{})
	if err != nil || len(ds) == 0 {
		t.Fatalf("no delivery for %s: %v", who, err)
	}
	return ds[len(ds)-1]
}
