package scheduler_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/app/scheduler"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/nudges/cronspec"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

const ttl = scheduler.DefaultLeaseTTL

// fakeLease is the database's lease in memory, on the bubble's clock,
// with pgstore's rules: one holder per epoch, expiry by the lease's own
// clock, renewal only under the epoch held. It also plays the store's
// fence for the writes that claim due slots.
type fakeLease struct {
	mu      sync.Mutex
	holder  string
	epoch   int64
	expires time.Time
	won     map[string]int64         // the epoch each holder last won
	cut     map[string]bool          // holders whose calls fail (cut off, or dead)
	paused  map[string]chan struct{} // holders whose calls hang until it closes
	alive   map[string]time.Time     // each replica's presence, until when
}

func newFakeLease() *fakeLease {
	return &fakeLease{won: map[string]int64{}, cut: map[string]bool{}, paused: map[string]chan struct{}{}, alive: map[string]time.Time{}}
}

// Present is pgstore's census: holder alive for ttl, and a count of
// those whose presence has not run out.
func (l *fakeLease) Present(holder string, ttl time.Duration) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut[holder] {
		return 0, errors.New("dial tcp 127.0.0.1:5432: connection refused")
	}
	now := time.Now()
	l.alive[holder] = now.Add(ttl)
	n := 0
	for _, until := range l.alive {
		if now.Before(until) {
			n++
		}
	}
	return n, nil
}

func (l *fakeLease) Depart(holder string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.alive, holder)
	return nil
}

func (l *fakeLease) Lead(holder string, epoch int64, ttl time.Duration) (int64, time.Duration, error) {
	l.mu.Lock()
	p := l.paused[holder]
	l.mu.Unlock()
	if p != nil {
		<-p
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut[holder] {
		return 0, 0, errors.New("dial tcp 127.0.0.1:5432: connection refused")
	}
	now := time.Now()
	switch valid := now.Before(l.expires); {
	case valid && l.holder == holder && l.epoch == epoch && epoch > 0:
	case valid:
		l.won[holder] = 0
		return 0, l.expires.Sub(now), nil
	default:
		l.epoch++
		l.holder = holder
	}
	l.expires = now.Add(ttl)
	l.won[holder] = l.epoch
	return l.epoch, ttl, nil
}

func (l *fakeLease) Release(holder string, epoch int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.won[holder] = 0
	if l.holder == holder && l.epoch == epoch && time.Now().Before(l.expires) {
		l.expires = time.Now()
	}
	return nil
}

// expire ends the lease now, as the database's clock reaching its end.
func (l *fakeLease) expire() {
	l.mu.Lock()
	l.expires = time.Now()
	l.mu.Unlock()
}

func (l *fakeLease) setCut(holder string, cut bool) {
	l.mu.Lock()
	l.cut[holder] = cut
	l.mu.Unlock()
}

// pause makes holder's calls hang, as a stopped process's; resume lets
// them go on.
func (l *fakeLease) pause(holder string) (resume func()) {
	ch := make(chan struct{})
	l.mu.Lock()
	l.paused[holder] = ch
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.paused, holder)
		l.mu.Unlock()
		close(ch)
	}
}

// fence is the store's check: holder's last won epoch still holds an
// unexpired lease.
func (l *fakeLease) fence(holder string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.won[holder]; e == 0 || e != l.epoch || l.holder != holder || !time.Now().Before(l.expires) {
		return fencedError{}
	}
	return nil
}

type fencedError struct{}

func (fencedError) Error() string { return "fenced: no longer holds the lease" }
func (fencedError) Fenced() bool  { return true }

// fencedStore is the database as one replica reaches it: its leader
// writes are refused once its epoch no longer holds the lease, as
// pgstore refuses them.
type fencedStore struct {
	*storage.DB
	lease   *fakeLease
	holder  string
	mu      sync.Mutex
	refused int
}

func (f *fencedStore) StartDeliveries(starts []nudges.DeliveryStart) ([]bool, []error) {
	if err := f.lease.fence(f.holder); err != nil {
		f.mu.Lock()
		f.refused++
		f.mu.Unlock()
		errs := make([]error, len(starts))
		for i := range errs {
			errs[i] = err
		}
		return make([]bool, len(starts)), errs
	}
	return f.DB.StartDeliveries(starts)
}

func (f *fencedStore) refusals() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

func (f *fencedStore) RecordMissed(userID string, slots []time.Time, expect time.Time, advance func(*nudges.Subscriber) error) error {
	if err := f.lease.fence(f.holder); err != nil {
		return err
	}
	return f.DB.RecordMissed(userID, slots, expect, advance)
}

// cluster is replicas sharing one database and one lease; it checks,
// each time one starts leading, that no other still thinks it leads.
type cluster struct {
	t     *testing.T
	logs  *syncBuffer // every replica's core logs here
	db    *storage.DB
	lease *fakeLease
	now   func() time.Time
	cat   *nudges.Catalog
	cal   nudges.Calendar
	plans []app.DigestPlan
	tick  time.Duration // the due loop's longest sleep; 0: the default
	wakes wakeBus

	mu       sync.Mutex
	replicas []*replica
}

type replica struct {
	name     string
	core     *app.Service
	slack    *clockedSlack
	store    *fencedStore
	election *scheduler.Election
	sched    *scheduler.Scheduler
	stop     func()
	// kill ends the replica as a killed process ends: at once, without
	// releasing its lease.
	kill func()

	mu     sync.Mutex
	events []leadEvent
	counts []int // the replicas alive, as heard
}

type leadEvent struct {
	at      time.Time
	epoch   int64
	leading bool
}

func newCluster(t *testing.T, base time.Time, digests ...app.DigestPlan) *cluster {
	t.Helper()
	start := time.Now()
	now := func() time.Time { return base.Add(time.Since(start)) }
	cat, err := nudges.DefaultCatalog()
	if err != nil {
		t.Fatal(err)
	}
	daily, err := cronspec.Parse("0 9 * * *")
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, logs: &syncBuffer{}, db: storagetest.Open(t, storage.Options{Now: now}), lease: newFakeLease(), now: now, cat: cat,
		cal: nudges.Calendar{Default: daily, CatchUp: 2 * time.Hour, Fallback: time.UTC}, plans: digests}
}

// start starts a replica's scheduler, as `nudgebot run` does, with a
// messenger of its own.
func (c *cluster) start(name string, slack *clockedSlack) *replica {
	c.t.Helper()
	if slack == nil {
		slack = newClockedSlack(c.now)
	}
	return c.startWith(name, slack, slack)
}

// startWith starts a replica posting through m, whose posts slack
// counts.
func (c *cluster) startWith(name string, m app.Messenger, slack *clockedSlack) *replica {
	c.t.Helper()
	r := &replica{name: name, slack: slack, store: &fencedStore{DB: c.db, lease: c.lease, holder: name}}
	wakes := c.wakes.join(name)
	var err error
	if r.election, err = scheduler.NewElection(c.lease, scheduler.ElectionConfig{Replica: name, Census: c.lease}); err != nil {
		c.t.Fatal(err)
	}
	r.core, err = app.New(
		app.Ports{Subscribers: c.db, Settings: c.db, Deliveries: r.store, Reflections: c.db, Digests: c.db, Eraser: c.db, Exporter: c.db,
			Messenger: m, Leader: r.election, Replicas: wakes},
		app.Config{Catalog: c.cat, Calendar: c.cal, Clock: c.now, Digests: c.plans, Logger: slog.New(slog.NewTextHandler(c.logs, nil))})
	if err != nil {
		c.t.Fatal(err)
	}
	r.sched = scheduler.New(r.core, scheduler.Config{Clock: c.now, Tick: c.tick, Election: r.election, Wakeups: wakes, Watch: leadWatch{c, r}, Replicas: r})
	c.mu.Lock()
	c.replicas = append(c.replicas, r)
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = r.sched.Start(ctx)
	r.kill = func() { cancel(); r.stopOnce() }
	c.t.Cleanup(func() { r.stopOnce() })
	return r
}

func (r *replica) stopOnce() {
	r.mu.Lock()
	stop := r.stop
	r.stop = nil
	r.mu.Unlock()
	if stop != nil {
		stop()
		r.core.Flush()
	}
}

type leadWatch struct {
	c *cluster
	r *replica
}

func (w leadWatch) LeaderChanged(epoch int64, leading bool) {
	w.r.mu.Lock()
	w.r.events = append(w.r.events, leadEvent{at: time.Now(), epoch: epoch, leading: leading})
	w.r.mu.Unlock()
	if !leading {
		return
	}
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	for _, o := range w.c.replicas {
		if o != w.r && o.election.Leading() == nil {
			w.c.t.Errorf("%s started leading (epoch %d) while %s still thinks it leads (epoch %d)", w.r.name, epoch, o.name, o.election.Epoch())
		}
	}
}

func (r *replica) ReplicasChanged(n int) {
	r.mu.Lock()
	r.counts = append(r.counts, n)
	r.mu.Unlock()
}

// heard is the counts of replicas alive the replica was told, in order.
func (r *replica) heard() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.counts...)
}

func (r *replica) history() []leadEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]leadEvent(nil), r.events...)
}

// gained is when the replica last started leading; zero if never.
func (r *replica) gained() (time.Time, int64) {
	for _, e := range r.history() {
		if e.leading {
			return e.at, e.epoch
		}
	}
	return time.Time{}, 0
}

func (c *cluster) subscribe(t *testing.T, via *replica, id, clock string) {
	t.Helper()
	via.slack.mu.Lock()
	via.slack.profiles[id] = app.Profile{TZ: "UTC", DisplayName: id}
	via.slack.mu.Unlock()
	who := app.Person(id)
	if _, err := via.core.Subscribe(context.Background(), who, c.now()); err != nil {
		t.Fatal(err)
	}
	if _, err := via.core.ChangeSettings(context.Background(), who, c.now(), app.SetTime(clock)); err != nil {
		t.Fatal(err)
	}
}

// Ensure the first replica takes the free lease and keeps it for hours
// by renewing, while the other follows; and that a leader stopping
// hands over at the follower's next try, not a whole lease later.
func TestElectionRenewsAndHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC))
		a := c.start("a", nil)
		synctest.Wait()
		b := c.start("b", nil)
		time.Sleep(3 * time.Hour)
		if ev := a.history(); len(ev) != 1 || !ev[0].leading || ev[0].epoch != 1 {
			t.Fatalf("a's changes of lead over 3 hours: %+v, want one, to leading under epoch 1", ev)
		}
		if ev := b.history(); len(ev) != 1 || ev[0].leading || ev[0].epoch != 0 {
			t.Fatalf("b's changes of lead while a renews: %+v, want one, to following from its start", ev)
		}
		if a.election.Leading() != nil || b.election.Leading() == nil {
			t.Fatalf("a leading: %v, b leading: %v; want a alone", a.election.Leading(), b.election.Leading())
		}
		stopped := time.Now()
		a.stopOnce()
		time.Sleep(ttl)
		at, epoch := b.gained()
		if epoch != 2 {
			t.Fatalf("b after a stopped: epoch %d, want 2 (events %+v)", epoch, b.history())
		}
		if took := at.Sub(stopped); took > ttl/3+time.Second {
			t.Errorf("b took over %s after a stopped and released the lease, want within a renewal interval (%s)", took, ttl/3)
		}
	})
}

// Ensure that when the leader dies (its renewals stop arriving), another
// replica leads within 15 s of its death, and not before the dead one's
// own clock says its term is over, wherever in its renewal interval it
// died.
func TestElectionTakeoverWhenTheLeaderDies(t *testing.T) {
	for _, after := range []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 3300 * time.Millisecond} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t, time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC))
				a := c.start("a", nil)
				synctest.Wait()
				b := c.start("b", nil)
				time.Sleep(time.Minute) // a renewal lands on the minute
				time.Sleep(after)
				died := time.Now()
				c.lease.setCut("a", true)
				time.Sleep(2 * ttl)
				at, epoch := b.gained()
				if epoch != 2 {
					t.Fatalf("b's changes of lead after a died: %+v, want it leading under epoch 2", b.history())
				}
				took := at.Sub(died)
				t.Logf("takeover %s after the leader died %s after a renewal", took, after)
				if took > 15*time.Second || took > ttl+100*time.Millisecond {
					t.Errorf("takeover %s after the leader died, want within the lease's %s (and 15s)", took, ttl)
				}
				if a.election.Leading() == nil {
					t.Errorf("a still thinks it leads, cut off for %s", 2*ttl)
				}
				ev := a.history()
				if len(ev) != 2 || ev[1].leading || ev[1].at.After(at) {
					t.Errorf("a's changes of lead: %+v; want it to have stopped leading by b's takeover at %s", ev, at)
				}
			})
		})
	}
}

// gatedSlack holds each nudge post, after the rate limit's wait and
// before its beforeSend, until the gate opens: a replica stopped there.
type gatedSlack struct {
	*clockedSlack
	gate    chan struct{}
	waiting chan struct{}
	mu      sync.Mutex
	refused []error
}

func (g *gatedSlack) PostNudge(ctx context.Context, channel string, m app.NudgeMessage, beforeSend func() error) (string, error) {
	g.waiting <- struct{}{}
	<-g.gate
	ts, err := g.clockedSlack.PostNudge(ctx, channel, m, beforeSend)
	if err != nil {
		g.mu.Lock()
		g.refused = append(g.refused, err)
		g.mu.Unlock()
	}
	return ts, err
}

// Ensure a leader stopped (SIGSTOP) in the middle of sending, past its
// term, posts nothing when it resumes: the check right before the post
// leaves reads its own monotonic clock, though its elector never got to
// notice. The replica that took over sends the nudge, once.
func TestPausedLeaderPostsNothingAfterItsTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 09:00 comes 60 s in; a's renewals fall at 0, 3.3, … 60 s.
		c := newCluster(t, time.Date(2026, 5, 4, 8, 59, 0, 0, time.UTC))
		gated := &gatedSlack{clockedSlack: newClockedSlack(c.now), gate: make(chan struct{}), waiting: make(chan struct{}, 1)}
		a := c.startWith("a", gated, gated.clockedSlack)
		synctest.Wait()
		b := c.start("b", nil)
		c.subscribe(t, a, "UPAUSE", "09:00")
		<-gated.waiting // a's sender holds the nudge, about to post
		stopped := c.now()
		resume := c.lease.pause("a") // and a's elector stops with it
		// Past a's term by its own clock, before the lease expires by the
		// database's: nobody else leads yet, so only a's clock stops it.
		time.Sleep(ttl - ttl/5 + 10*time.Millisecond)
		if _, epoch := b.gained(); epoch != 0 {
			t.Fatalf("b leads already (epoch %d): the test would show the claim, not the clock", epoch)
		}
		if a.election.Epoch() != 1 {
			t.Fatalf("a's elector noticed (epoch %d): the test would show the elector, not the post's own check", a.election.Epoch())
		}
		close(gated.gate)
		synctest.Wait()
		gated.mu.Lock()
		refused := append([]error(nil), gated.refused...)
		gated.mu.Unlock()
		if len(refused) != 1 || !app.NotLeader(refused[0]) {
			t.Errorf("a's post after its term: refusals %v, want one, not leading", refused)
		}
		time.Sleep(ttl)
		resume()
		time.Sleep(time.Minute)
		if n := len(gated.nudgesTo("DUPAUSE")); n != 0 {
			t.Errorf("a, stopped past its term, posted %d nudges", n)
		}
		if got := b.slack.nudgesTo("DUPAUSE"); len(got) != 1 {
			t.Errorf("b, which took over, posted %d nudges, want 1", len(got))
		} else {
			t.Logf("a stopped %s, b posted the nudge at %s", stopped.Format("15:04:05.000"), got[0].Format("15:04:05.000"))
		}
		ds, err := c.db.Deliveries("UPAUSE", time.Time{})
		if err != nil || len(ds) != 1 || ds[0].State != nudges.StateSent {
			t.Errorf("deliveries %+v (%v), want one, sent", ds, err)
		}
	})
}

// Ensure a leader whose lease the database gave to another while its own
// clock still counts its term (skew, an operator's hand) plans nothing:
// the store refuses its claim of the due slot, so nothing is recorded,
// nobody's due time moves and nothing is posted.
func TestStaleLeaderPlansNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 09:00 comes 53 s in: after the lease passes to b at 49 s, before
		// a's own clock ends its term (its renewal at 46.7 s, plus 8 s).
		c := newCluster(t, time.Date(2026, 5, 4, 8, 59, 7, 0, time.UTC))
		a := c.start("a", nil)
		c.subscribe(t, a, "USTALE", "09:00")
		time.Sleep(49 * time.Second)
		resume := c.lease.pause("a")
		c.lease.expire()
		if epoch, _, _ := c.lease.Lead("b", 0, ttl); epoch != 2 {
			t.Fatalf("b took the lease under epoch %d, want 2", epoch)
		}
		time.Sleep(5 * time.Second) // 09:00 comes and goes
		if a.election.Leading() != nil {
			t.Fatal("a's term ended by its own clock: the test would show the clock, not the store's fence")
		}
		if a.store.refusals() == 0 {
			t.Error("the store never refused a's claim: a did not plan the due slot, so the test shows nothing")
		}
		if errs := c.logs.errors(); errs != "" {
			t.Errorf("a former leader's refused claim logged as an error, as if something failed:\n%s", errs)
		}
		if n := len(a.slack.nudgesTo("DUSTALE")); n != 0 {
			t.Errorf("a posted %d nudges", n)
		}
		ds, err := c.db.Deliveries("USTALE", time.Time{})
		if err != nil || len(ds) != 0 {
			t.Errorf("deliveries recorded by a former leader: %+v (%v)", ds, err)
		}
		sub, err := c.db.Subscriber("USTALE")
		if err != nil || sub.NextDue.IsZero() || sub.NextDue.After(c.now()) {
			t.Errorf("due time moved by a former leader: %v (%v)", sub.NextDue, err)
		}
		resume()
		synctest.Wait()
	})
}

// syncBuffer collects log lines from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// errors are the lines logged at level ERROR.
func (b *syncBuffer) errors() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for line := range strings.Lines(b.buf.String()) {
		if strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// Ensure a digest whose time comes while the leader is dead is posted by
// the replica taking over, at once and not a week later, and that one the
// dead leader posted before it died is not posted again.
func TestTakeoverPostsTheDigestOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		diesAt time.Duration // from the digest's time
	}{
		{"dies just before the digest", -2 * time.Second},
		{"dies just after posting it", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				berlin, _ := time.LoadLocation("Europe/Berlin")
				fri, err := cronspec.Parse("0 16 * * FRI")
				if err != nil {
					t.Fatal(err)
				}
				plan, err := scheduler.Digest(team, fri, berlin)
				if err != nil {
					t.Fatal(err)
				}
				// robfig/cron fires on the bubble's clock (Saturday 1
				// January 2000), so the jobs' clock starts there too. The
				// last digest was Friday's; the replicas start a minute
				// before the next.
				c := newCluster(t, time.Now(), plan)
				last := time.Date(1999, 12, 31, 16, 0, 0, 0, berlin)
				if err := c.db.RecordDigest(team, nudges.PostedDigest{At: last}); err != nil {
					t.Fatal(err)
				}
				due := plan.When.Next(last)
				time.Sleep(due.Add(-time.Minute).Sub(c.now()))
				slacks := []*clockedSlack{newClockedSlack(c.now), newClockedSlack(c.now)}
				for _, s := range slacks {
					s.members[team] = []string{"UOWNER001"}
				}
				a := c.start("a", slacks[0])
				synctest.Wait()
				b := c.start("b", slacks[1])
				time.Sleep(due.Add(tc.diesAt).Sub(c.now()))
				a.kill()
				time.Sleep(time.Minute)
				got := append(a.slack.digestsIn(team), b.slack.digestsIn(team)...)
				if len(got) != 1 {
					t.Fatalf("digests at %v, want one, due at %v", got, due)
				}
				if late := got[0].Sub(due); late < 0 || late > 15*time.Second {
					t.Errorf("the digest posted %s after its time, want within a takeover (15s)", late)
				}
				t.Logf("digest %s after its time, by %s", got[0].Sub(due), map[bool]string{true: "b", false: "a"}[len(b.slack.digestsIn(team)) == 1])
			})
		})
	}
}

// wakeBus carries wakes between the replicas of a cluster, as
// PostgreSQL's LISTEN/NOTIFY does between processes.
type wakeBus struct {
	mu    sync.Mutex
	chans map[string]chan struct{}
}

// join is a replica's end of the bus: WakeLeader wakes every other
// replica's listener, ListenWakes is its own.
func (b *wakeBus) join(name string) busEnd {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.chans == nil {
		b.chans = map[string]chan struct{}{}
	}
	b.chans[name] = make(chan struct{}, 1)
	return busEnd{b, name}
}

type busEnd struct {
	bus  *wakeBus
	name string
}

func (e busEnd) WakeLeader() {
	e.bus.mu.Lock()
	defer e.bus.mu.Unlock()
	for name, ch := range e.bus.chans {
		if name == e.name {
			continue
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (e busEnd) ListenWakes(context.Context) <-chan struct{} {
	e.bus.mu.Lock()
	defer e.bus.mu.Unlock()
	return e.bus.chans[e.name]
}

// Ensure a schedule changed on a replica that does not lead wakes the
// leader's due loop: a person subscribing through the follower, while
// the leader's loop sleeps for up to an hour, gets their nudge within a
// second of its time, 20 minutes later, not at the leader's next look.
func TestFollowersChangeWakesTheLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC))
		c.tick = time.Hour
		a := c.start("a", nil)
		synctest.Wait()
		b := c.start("b", nil)
		time.Sleep(10 * time.Minute) // a's loop sleeps until 11:00
		c.subscribe(t, b, "UWAKE", "10:30")
		time.Sleep(time.Hour)
		posts := a.slack.nudgesTo("DUWAKE")
		if len(posts) != 1 {
			t.Fatalf("the leader posted %d nudges (at %v), want 1", len(posts), posts)
		}
		slot := time.Date(2026, 5, 4, 10, 30, 0, 0, time.UTC)
		if late := posts[0].Sub(slot); late < 0 || late >= time.Second {
			t.Errorf("nudge %s after its slot, want under a second: the leader did not hear the follower's change", late)
		}
	})
}

// Ensure each replica hears how many are alive: its first count, then
// each change and no repeat, over hours of rounds. One stopping
// gracefully is counted gone at the others' next round; one killed when
// its presence runs out (three lease times); a count the database does
// not give (cut off) leaves the last one in place.
func TestReplicasHearTheCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC))
		a := c.start("a", nil)
		time.Sleep(time.Hour)
		b := c.start("b", nil)
		time.Sleep(time.Hour)
		if got := b.heard(); !slices.Equal(got, []int{2}) {
			t.Errorf("b, joining a: heard %v, want [2]", got)
		}
		k := c.start("k", nil)
		time.Sleep(time.Hour)
		k.kill()
		time.Sleep(4 * ttl)
		if got := a.heard(); !slices.Equal(got, []int{1, 2, 3, 2}) {
			t.Fatalf("a, as b and k joined and k was killed: heard %v, want [1 2 3 2]", got)
		}
		// Cut off past its presence's end: b counts a gone; a, told
		// nothing, keeps the count it had.
		c.lease.setCut("a", true)
		time.Sleep(4 * ttl)
		c.lease.setCut("a", false)
		time.Sleep(time.Hour)
		if got := a.heard(); !slices.Equal(got, []int{1, 2, 3, 2}) {
			t.Fatalf("a, cut off from the database for a while: heard %v, want [1 2 3 2] still", got)
		}
		if got := b.heard(); !slices.Equal(got, []int{2, 3, 2, 1, 2}) {
			t.Errorf("b, as k was killed and a was cut off and back: heard %v, want [2 3 2 1 2]", got)
		}
		b.stopOnce()
		time.Sleep(ttl / 2) // a round of a's, well before b's presence would run out
		if got := a.heard(); !slices.Equal(got, []int{1, 2, 3, 2, 1}) {
			t.Fatalf("a after b stopped: heard %v, want [1 2 3 2 1]", got)
		}
	})
}
