package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nudgebot/nudgebot/storage"
)

// What the running bot's admin endpoints and metrics ask of the
// database (ops.AdminDB), answered for PostgreSQL.

// ErrFileOnly is what the file-only operations answer: PostgreSQL is
// backed up, restored and checked with its own tools.
var ErrFileOnly = errors.New("on PostgreSQL (storage.driver: postgres) back up and restore with the database's own tools: pg_dump and pg_restore, or your provider's base backups and point-in-time recovery; nudgebot backup, restore and compact work on the bbolt file only")

// health is the state of writes and of the background check.
type health struct {
	writes, failures atomic.Uint64

	mu        sync.Mutex
	faultErr  error // the latest refused write while writes are refused
	faultFrom time.Time

	checkOnce    sync.Once
	checkStarted atomic.Bool
	checkDone    chan struct{} // made by Open
	checkErr     error         // written before checkDone closes
}

// observe records the outcome of a write transaction: a failure of the
// server or the connection starts (or continues) a fault, a success
// ends it. Refusals by the rules (a conflict, a missing record) are
// neither.
func (s *Store) observe(err error) {
	h := &s.health
	h.writes.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		if h.faultErr != nil {
			s.log.Info("the database takes writes again", "refused_since", h.faultFrom)
		}
		h.faultErr = nil
	case infrastructure(err):
		h.failures.Add(1)
		if h.faultErr == nil {
			h.faultFrom = s.now()
			s.log.Error("the database refuses writes: people's changes are not saved", "error", err)
		}
		h.faultErr = err
	}
}

// infrastructure says whether err is the database or the network
// failing, rather than a write refused by the rules.
func infrastructure(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:2] {
		case "08", "53", "57", "58", "XX": // connection, resources, operator intervention, system, internal
			return true
		}
		return false
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ne) || errors.As(err, &ce) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF)
}

// WriteFault reports whether the database is refusing writes: the latest
// refusal and since when, or a nil error once a write has succeeded.
func (s *Store) WriteFault() (since time.Time, err error) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return s.health.faultFrom, s.health.faultErr
}

// ProbeWrite, while writes are refused, tries one small write to see
// whether the database takes them again; it returns the fault that
// stands afterwards.
func (s *Store) ProbeWrite() error {
	if _, err := s.WriteFault(); err == nil {
		return nil
	}
	_ = s.tx(func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('write_probe', to_jsonb(now()))
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`)
		return err
	})
	_, err := s.WriteFault()
	return err
}

// Stats counts write transactions (each its own commit: PostgreSQL
// groups the WAL flushes of concurrent commits itself) and those the
// database refused.
func (s *Store) Stats() storage.Stats {
	w := s.health.writes.Load()
	return storage.Stats{Writes: w, Commits: w, WriteErrors: s.health.failures.Load()}
}

// Size is the bytes nudgebot's tables take, indexes and TOAST included.
func (s *Store) Size() (int64, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("pgstore: size: %w", err)
	}
	return n, nil
}

// WriteTo refuses: a copy of a PostgreSQL database is pg_dump's job.
func (s *Store) WriteTo(io.Writer) (int64, error) { return 0, ErrFileOnly }

// StartCheck checks in the background, once, that every index of
// nudgebot's tables is valid (an index build that failed leaves one that
// is not, and the due index or the outbox would then be wrong) and that
// the schema is the one this binary knows. Page-level checks are the
// database's own (amcheck, data checksums). The channel closes when done.
func (s *Store) StartCheck() <-chan struct{} {
	h := &s.health
	h.checkOnce.Do(func() {
		h.checkStarted.Store(true)
		go func() {
			defer close(h.checkDone)
			h.checkErr = s.check()
			if h.checkErr != nil {
				s.log.Error("the database check found a problem", "error", h.checkErr)
			}
		}()
	})
	return h.checkDone
}

func (s *Store) check() error {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND NOT (i.indisvalid AND i.indisready)`)
	if err != nil {
		return fmt.Errorf("pgstore: check indexes: %w", err)
	}
	bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("pgstore: check indexes: %w", err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("pgstore: index(es) %v are not valid: run REINDEX INDEX on each: %w", bad, storage.ErrCorrupt)
	}
	var v int
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return fmt.Errorf("pgstore: check schema: %w", err)
	}
	if v != SchemaVersion() {
		return fmt.Errorf("pgstore: the schema is version %d but this nudgebot runs %d: another version migrated the database: %w", v, SchemaVersion(), storage.ErrNewerSchema)
	}
	return nil
}

// CheckResult reports whether the background check finished and what it
// found; err is nil while it runs and before StartCheck.
func (s *Store) CheckResult() (done bool, err error) {
	h := &s.health
	if !h.checkStarted.Load() {
		return false, nil
	}
	select {
	case <-h.checkDone:
		return true, h.checkErr
	default:
		return false, nil
	}
}
