package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nudgebot/nudgebot/app"
)

// Lease is the database's record of which replica leads, when several
// share one database: the leader alone runs the scheduler. Expiry is the
// database's business, by its own clock, so the replicas' clocks need
// not agree.
type Lease interface {
	// Lead renews holder's lease for ttl when it still holds it under
	// epoch, and returns epoch; takes it with the next epoch, returned,
	// when it expired or was released; and otherwise returns held 0 and
	// how long the other holder's lease still runs. From then on the
	// store refuses this process's leader writes unless the epoch last
	// won still holds the lease (fencing).
	Lead(holder string, epoch int64, ttl time.Duration) (held int64, left time.Duration, err error)
	// Release ends holder's lease under epoch now, so another replica
	// need not wait for it to expire.
	Release(holder string, epoch int64) error
}

// LeadWatcher hears when this replica starts and stops leading, for the
// metrics and for what a new leader picks up from the old one.
type LeadWatcher interface {
	LeaderChanged(epoch int64, leading bool)
}

// Census counts the replicas sharing the database, so each can take its
// share of what they share outside it: Slack's per-method limits, which
// are the app's in the workspace, whichever process calls.
type Census interface {
	// Present records holder alive for ttl from now, by the database's
	// clock, and returns how many replicas are alive, holder included.
	Present(holder string, ttl time.Duration) (replicas int, err error)
	// Depart removes holder at once, so the others count it gone at
	// their next look rather than when its record would expire.
	Depart(holder string) error
}

// ReplicaWatcher hears how many replicas share the database: the first
// count this replica learns, then each change.
type ReplicaWatcher interface {
	ReplicasChanged(replicas int)
}

// PresenceTTLs is how many lease times to live a replica's presence
// lasts unrefreshed: it is refreshed every round of the election (about
// ttl/3, or sooner), so a few missed rounds (a slow database, a pause)
// do not make the others think it gone and take more than their share,
// while one that died stops being counted a little after it would have
// lost a lease.
const PresenceTTLs = 3

// DefaultLeaseTTL is how long a lease lasts unrenewed: a leader that
// dies or stops is replaced about this long after its last renewal.
const DefaultLeaseTTL = 10 * time.Second

// Election is this replica's part in choosing the leader among the
// replicas sharing a database. It is the core's app.Leader: the core
// asks it right before each post of the leader's work.
//
// The leader renews its lease every ttl/3. Its term ends, by its own
// monotonic clock, ttl less a margin after the start of its last
// successful renewal: the database cannot have expired the lease before
// then, since it counts ttl from when it took the renewal, which was
// later. So a replica that was paused, or cut off from the database,
// stops posting before anyone else can take over, whatever the two
// machines' clocks say. Followers try again when the lease they were
// told of runs out, so a leader that dies is replaced about ttl after
// its last renewal.
//
// Every round, leader's or follower's, also refreshes this replica's
// presence in the Census, if any, and the scheduler's ReplicaWatcher
// hears the count when it changes: a replica joining or stopping is
// counted within about ttl/3, one that dies within PresenceTTLs × ttl.
type Election struct {
	lease  Lease
	census Census // nil: no count is kept
	id     string
	ttl    time.Duration
	renew  time.Duration // between two renewals
	margin time.Duration // of the term kept back for a post in flight and clock drift
	retry  time.Duration // after the database did not answer
	log    *slog.Logger

	mu       sync.Mutex
	epoch    int64     // the term held; 0 while following
	deadline time.Time // when the term ends by this replica's clock
}

// ElectionConfig configures an Election.
type ElectionConfig struct {
	// Replica names this replica in the lease; it must differ between
	// replicas (hostname, pid and a random part will do).
	Replica string
	// TTL is how long a lease lasts unrenewed; default DefaultLeaseTTL.
	TTL time.Duration
	// Census, if set, is refreshed in each round of the election and
	// counts the replicas alive for the scheduler's ReplicaWatcher.
	Census Census
	Logger *slog.Logger
}

// NewElection prepares this replica's part in the election; nothing is
// asked of the lease until the scheduler starts.
func NewElection(lease Lease, c ElectionConfig) (*Election, error) {
	if lease == nil || c.Replica == "" {
		return nil, fmt.Errorf("scheduler: an election needs a lease and a replica name")
	}
	if c.TTL <= 0 {
		c.TTL = DefaultLeaseTTL
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Election{
		lease: lease, census: c.Census, id: c.Replica, ttl: c.TTL,
		renew: c.TTL / 3, margin: c.TTL / 5, retry: min(time.Second, c.TTL/5),
		log: c.Logger,
	}, nil
}

var _ app.Leader = (*Election)(nil)

// Leading returns nil while this replica's term lasts by its own
// monotonic clock, and an error wrapping app.ErrNotLeader otherwise.
func (e *Election) Leading() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.epoch == 0 {
		return fmt.Errorf("%w: another replica leads", app.ErrNotLeader)
	}
	if !time.Now().Before(e.deadline) {
		return fmt.Errorf("%w: the lease of term %d was not renewed in time", app.ErrNotLeader, e.epoch)
	}
	return nil
}

// Epoch is the term this replica leads, 0 while it follows.
func (e *Election) Epoch() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.epoch
}

// Replica is the name this replica holds the lease under.
func (e *Election) Replica() string { return e.id }

// held records the term held from a renewal or takeover asked at began.
func (e *Election) held(epoch int64, began time.Time) {
	e.mu.Lock()
	e.epoch, e.deadline = epoch, began.Add(e.ttl-e.margin)
	e.mu.Unlock()
}

// follow records that this replica leads nothing.
func (e *Election) follow() {
	e.mu.Lock()
	e.epoch = 0
	e.mu.Unlock()
}

// untilDeadline is how long the term held still runs by this clock.
func (e *Election) untilDeadline() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return time.Until(e.deadline)
}

// term is this replica's time as leader: the jobs running under it.
type term struct {
	epoch  int64
	cancel func() // ends the work at once (the lead was lost)
	stop   func() // stops starting work and waits for what runs
}

// end stops the term's work at once: what is waiting to be posted is
// not, and posts on the wire are abandoned (the next leader reconciles
// them). It returns once the work has stopped.
func (t *term) end() {
	t.cancel()
	t.stop()
}

// minRetry keeps a follower from asking again at once when the lease it
// was told of is about to run out.
const minRetry = 10 * time.Millisecond

// changed tells the watcher, if any, that this replica started or
// stopped leading.
func (s *Scheduler) changed(epoch int64, leading bool) {
	if s.watch != nil {
		s.watch.LeaderChanged(epoch, leading)
	}
}

// present records this replica alive and tells the watcher how many are
// when that changed from last, the count last told; a count the
// database did not answer leaves the last in place.
func (s *Scheduler) present(log *slog.Logger, last int) int {
	e := s.election
	if e.census == nil {
		return last
	}
	n, err := e.census.Present(e.id, PresenceTTLs*e.ttl)
	if err != nil {
		log.Warn("counting the replicas alive; each keeps the share of Slack's limits it had until the database answers", "replicas", last, "error", err)
		return last
	}
	if n != last && s.replicas != nil {
		s.replicas.ReplicasChanged(n)
	}
	return n
}

// depart removes this replica from the count on a graceful stop.
func (s *Scheduler) depart(log *slog.Logger) {
	e := s.election
	if e.census == nil {
		return
	}
	if err := e.census.Depart(e.id); err != nil {
		log.Warn("stopping: this replica could not remove itself from the count of replicas, so the others take their share of Slack's limits as if it ran until its record expires", "expires_in", PresenceTTLs*e.ttl, "error", err)
	}
}

// elect takes part in the election until quit or ctx ends: it tries for
// the lease when the one it was told of runs out, starts the jobs when it
// wins a term (the outbox's recovery first, in the first tick), renews
// while it leads, and ends the jobs at once when the lease is lost or
// its term runs out unrenewed. On quit, a leader lets its jobs finish
// what they are doing, renewing meanwhile, then releases the lease so
// another replica takes over at its next try.
func (s *Scheduler) elect(ctx context.Context, quit <-chan struct{}) {
	e := s.election
	log := e.log.With("replica", e.id)
	var (
		cur      *term
		stopped  chan struct{} // closed once the jobs stopped after quit
		followed bool          // "following" said once per stretch
		ever     bool          // led at some time since the start
		quitting bool          // asked to stop gracefully
		replicas int           // alive, as last counted; 0 before the first count
	)
	defer func() {
		if quitting {
			s.depart(log)
		}
	}()
	lose := func(reason string) {
		epoch := cur.epoch
		e.follow()
		cur.end()
		cur = nil
		log.Warn("no longer leading: scheduler, digests and housekeeping stopped", "epoch", epoch, "reason", reason)
		s.changed(epoch, false)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			if cur != nil {
				lose("shutting down")
			}
			return
		case <-quit:
			quit, quitting = nil, true
			if cur == nil {
				return
			}
			stopped = make(chan struct{})
			go func(t *term, done chan struct{}) { t.stop(); close(done) }(cur, stopped)
			continue
		case <-stopped:
			epoch := cur.epoch
			e.follow()
			if err := e.lease.Release(e.id, epoch); err != nil {
				log.Warn("stopped leading; the lease could not be released, so another replica takes over when it expires", "epoch", epoch, "error", err)
			} else {
				log.Info("stopped leading: the lease is released for another replica", "epoch", epoch)
			}
			s.changed(epoch, false)
			return
		case <-timer.C:
		}
		var epoch int64
		if cur != nil {
			epoch = cur.epoch
		}
		began := time.Now()
		held, left, err := e.lease.Lead(e.id, epoch, e.ttl)
		wait := e.renew
		switch {
		case err != nil:
			if cur != nil && e.Leading() != nil {
				lose("the lease could not be renewed in time: " + err.Error())
			}
			log.Warn("asking the database who leads; trying again", "error", err)
			wait = e.retry
			if cur != nil {
				wait = max(min(wait, e.untilDeadline()), minRetry)
			}
		case held == 0:
			if cur != nil {
				lose("another replica holds the lease")
			}
			if !followed {
				log.Info("following: another replica leads and runs the scheduler", "lease_left", left.Round(time.Millisecond))
				followed = true
				if !ever {
					s.changed(0, false)
				}
			}
			// Try again when the lease runs out; a little later than the
			// database said, so this replica asks once, not twice.
			wait = max(min(left+minRetry, e.renew), minRetry)
		case cur != nil && held == epoch:
			e.held(held, began)
		default:
			if cur != nil {
				lose("the lease ran out before it was renewed")
			}
			if stopped != nil {
				// Stopping, and the lease ran out meanwhile: the new term
				// is not wanted.
				if err := e.lease.Release(e.id, held); err != nil {
					log.Warn("releasing the lease; another replica takes over when it expires", "epoch", held, "error", err)
				}
				return
			}
			e.held(held, began)
			log.Info("leading: this replica runs the scheduler, digests and housekeeping", "epoch", held)
			// Told before the jobs start: what a new leader picks up from
			// the last (the pace it learned) must be there for the first
			// post.
			s.changed(held, true)
			tctx, cancel := context.WithCancel(ctx)
			cur = &term{epoch: held, cancel: cancel, stop: sync.OnceFunc(s.startJobs(tctx))}
			followed, ever = false, true
		}
		if stopped != nil && cur == nil {
			return // lost the lead while stopping: nothing to release
		}
		timer.Reset(wait)
		// In the same round, once the lease is seen to and the next round
		// timed, so the count's time comes out of the wait, not on top.
		replicas = s.present(log, replicas)
	}
}
