package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// leaseName is the one lease replicas contend for: the scheduler's.
const leaseName = "scheduler"

// ErrNotLeader is a leader's write refused because this process no longer
// holds the scheduler's lease under the epoch it won: another replica
// took over, or the lease ran out while this one was paused or cut off.
// Nothing of the write was saved.
var ErrNotLeader error = notLeaderError{}

type notLeaderError struct{}

func (notLeaderError) Error() string {
	return "this replica no longer holds the scheduler's lease (it expired, or another replica took over): the leader's write was refused and nothing was written"
}

// Fenced tells the core this is a stale leader's write refused, not a
// failure (app.Fenced).
func (notLeaderError) Fenced() bool { return true }

// term is the lease this process last won: its leader's writes are
// fenced by it. holder with epoch 0 is a replica that leads nothing.
type term struct {
	holder string
	epoch  int64
}

// leaseLockWait bounds how long Lead waits for the lease row. It waits
// for the leader's writes in flight, which hold the row shared (see
// fence); a replica paused inside one holds it until the server ends its
// session (idleInTransaction), and Lead tries again meanwhile.
const leaseLockWait = 2 * time.Second

// Lead makes holder the leader, or keeps it the leader, for ttl by the
// database's clock. When holder still holds the lease under epoch, it is
// renewed and epoch returned. When the lease has expired (or was
// released), holder takes it with the next epoch, which is returned. When
// another replica holds it, held is 0 and left is how long its lease
// still runs. From the first call on, the store's leader writes
// (StartDeliveries of scheduled slots, RecordMissed, the digest and pulse
// records, retention) are fenced: each checks, in its own transaction,
// that the epoch last won here still holds an unexpired lease, and is
// refused with ErrNotLeader otherwise.
//
// Expiry is decided by the database's clock alone (clock_timestamp()), so
// replicas whose clocks disagree still agree on who leads. Two replicas
// taking an expired lease at once queue on its row, and the second finds
// it taken: each epoch has exactly one holder.
func (s *Store) Lead(holder string, epoch int64, ttl time.Duration) (held int64, left time.Duration, err error) {
	if holder == "" || ttl < time.Millisecond {
		return 0, 0, fmt.Errorf("pgstore: lead: a holder and a time to live of at least 1ms are needed (got %q, %s)", holder, ttl)
	}
	err = s.tx(func(ctx context.Context, tx pgx.Tx) error {
		held, left = 0, 0
		if _, err := tx.Exec(ctx, "SELECT set_config('lock_timeout', $1, true)", fmt.Sprintf("%dms", leaseLockWait.Milliseconds())); err != nil {
			return err
		}
		// The row is made by migration 0003; made again if someone
		// deleted it, rather than failing every replica for ever.
		if _, err := tx.Exec(ctx, "INSERT INTO leases (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", leaseName); err != nil {
			return err
		}
		var (
			cur      string
			curEpoch int64
			valid    bool
			leftSecs float64
		)
		err := tx.QueryRow(ctx, `SELECT holder, epoch, expires_at > t,
				CASE WHEN expires_at > t THEN extract(epoch FROM expires_at - t)::float8 ELSE 0 END
			FROM leases, clock_timestamp() AS t WHERE name = $1 FOR UPDATE OF leases`, leaseName).Scan(&cur, &curEpoch, &valid, &leftSecs)
		if err != nil {
			return err
		}
		switch {
		case valid && cur == holder && curEpoch == epoch && epoch > 0:
			held = epoch
		case valid:
			left = time.Duration(leftSecs * float64(time.Second))
			return nil
		default:
			held = curEpoch + 1
		}
		_, err = tx.Exec(ctx, "UPDATE leases SET holder = $2, epoch = $3, expires_at = clock_timestamp() + make_interval(secs => $4) WHERE name = $1",
			leaseName, holder, held, ttl.Seconds())
		if err == nil {
			left = ttl
		}
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("pgstore: lead: %w", err)
	}
	s.term.Store(&term{holder: holder, epoch: held})
	return held, left, nil
}

// Release ends holder's lease under epoch at once, so another replica
// takes over at its next try instead of when the lease would have
// expired; from then on this store's leader writes are refused.
func (s *Store) Release(holder string, epoch int64) error {
	s.term.Store(&term{holder: holder})
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE leases SET expires_at = clock_timestamp() WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()",
			leaseName, holder, epoch)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: release the lease: %w", err)
	}
	return nil
}

// presencePrefix begins the names of the leases rows that say a replica
// is alive: one row per replica, "replica:" and its holder name, beside
// the scheduler's row. They share its table and its use of the database's
// clock; nobody contends for them and they carry no epoch.
const presencePrefix = "replica:"

// Present records holder alive for ttl from now by the database's clock,
// and returns how many replicas are alive, holder included: those whose
// rows have not expired. Rows expired are deleted meanwhile, so the
// names of replicas long gone (each start names itself anew) do not pile
// up.
func (s *Store) Present(holder string, ttl time.Duration) (replicas int, err error) {
	if holder == "" || ttl < time.Millisecond {
		return 0, fmt.Errorf("pgstore: present: a holder and a time to live of at least 1ms are needed (got %q, %s)", holder, ttl)
	}
	err = s.tx(func(ctx context.Context, tx pgx.Tx) error {
		// One statement: the count reads the rows as they were before it
		// (a data-modifying WITH does not show its changes to the rest of
		// the query), so it counts the others alive and adds holder.
		return tx.QueryRow(ctx, `WITH up AS (
				INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))
				ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			), gone AS (
				DELETE FROM leases WHERE starts_with(name, $4) AND name <> $1 AND expires_at <= clock_timestamp()
			)
			SELECT 1 + count(*) FROM leases WHERE starts_with(name, $4) AND name <> $1 AND expires_at > clock_timestamp()`,
			presencePrefix+holder, holder, ttl.Seconds(), presencePrefix).Scan(&replicas)
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: record this replica alive: %w", err)
	}
	return replicas, nil
}

// Depart removes holder's presence at once, so the other replicas count
// it gone at their next look rather than when its row would expire.
func (s *Store) Depart(holder string) error {
	err := s.tx(func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "DELETE FROM leases WHERE name = $1", presencePrefix+holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: remove this replica's presence: %w", err)
	}
	return nil
}

// fence refuses a leader's write, inside its transaction, unless the
// epoch this process last won still holds an unexpired lease. It holds
// the lease row shared until the transaction ends, so a takeover (which
// updates the row) waits for the write and the write never lands after
// it. A store no elector ever used (one process, the tools, the tests)
// is not fenced.
func (s *Store) fence(ctx context.Context, tx pgx.Tx) error {
	t := s.term.Load()
	if t == nil {
		return nil
	}
	if t.epoch == 0 {
		return ErrNotLeader
	}
	var ok bool
	err := tx.QueryRow(ctx, "SELECT expires_at > clock_timestamp() FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3 FOR SHARE",
		leaseName, t.holder, t.epoch).Scan(&ok)
	switch {
	case errors.Is(err, pgx.ErrNoRows), err == nil && !ok:
		return ErrNotLeader
	case err != nil:
		return fmt.Errorf("checking the scheduler's lease: %w", err)
	}
	return nil
}

// idleInTransaction is how long the server lets one of our sessions sit
// idle inside a transaction before ending it. Our transactions never
// wait on anything but the database, so only a stopped process (SIGSTOP,
// a VM paused) sits that long; ending its session releases the lease row
// it may hold shared, which would otherwise hold up a takeover for as
// long as the process stays stopped. It is below the lease's time to
// live less a renewal interval, so it does not delay a takeover.
const idleInTransaction = 5 * time.Second

// wakeChannel names the NOTIFY channel of the database's schema, so
// nudgebots sharing a server in different schemas do not wake each other.
func wakeChannel(schema string) string {
	h := uint32(2166136261)
	for i := range len(schema) {
		h = (h ^ uint32(schema[i])) * 16777619
	}
	return fmt.Sprintf("nudgebot_wake_%08x", h)
}

// WakeLeader tells the replica running the scheduler, wherever it runs,
// that a schedule changed here, so its due loop looks now rather than at
// its next tick. It is best effort: a wake lost costs at most a tick.
func (s *Store) WakeLeader() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", s.wakes, s.instance); err != nil {
		s.log.Warn("telling the other replicas a schedule changed; the leader finds it at its next look", "error", err)
	}
}

// ListenWakes delivers the wakes other replicas send (WakeLeader) until
// ctx ends, on a connection of its own (LISTEN holds a session, so it
// must be a direct connection, not one through a transaction-pooling
// proxy). The channel holds one wake at most. A wake is also delivered
// each time the connection is made again, since one sent meanwhile was
// lost; until then the due loop still looks every tick.
func (s *Store) ListenWakes(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	go func() {
		const retry = time.Second
		for {
			err := s.listen(ctx, out)
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("listening for schedule changes made by other replicas; trying again (until then the due loop looks every tick)", "error", err)
			t := time.NewTimer(retry)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	return out
}

func (s *Store) listen(ctx context.Context, out chan<- struct{}) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.wakes}.Sanitize()); err != nil {
		return err
	}
	wake(out)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload != s.instance {
			wake(out)
		}
	}
}

func wake(out chan<- struct{}) {
	select {
	case out <- struct{}{}:
	default:
	}
}
