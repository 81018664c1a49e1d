package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// Moving a whole database between engines (`nudgebot migrate`): Dump
// streams this database as storage's engine-neutral records, BeginLoad
// writes such records into an empty one in a single transaction. See
// storage/records.go for what the records are and what is left out.

// dataTables are the tables that hold records; a database is empty when
// none has a row. A table added by a migration must be listed here (and
// dumped and loaded) or in schemaTables (TestDataTablesListed).
var dataTables = []string{"meta", "subscribers", "deliveries", "seen", "digests", "pulses", "pulse_voters",
	"pulse_history", "data_keys", "reflections", "reflection_seq", "forgetting"}

// schemaTables are the schema's own and the replicas': the migrations
// applied, and the scheduler's lease (a row from the start). They hold no
// record of the bot's, and are neither copied nor counted.
var schemaTables = []string{"schema_migrations", "leases"}

// metaSettings are the meta keys a Settings record carries.
var metaSettings = []string{keyPausedAll, keyStrategy, keyLearnedPace}

// Dump calls fn with every record of the database, kind by kind in the
// order of storage.Kinds, each in key order (deliveries by slot, as the
// bbolt file keys them), all from one snapshot (a repeatable-read, read-only transaction). People
// whose Forget is unfinished are left out but for their mark. A row that
// does not decode stops the dump with an error wrapping
// storage.ErrDamaged; an error from fn stops it and is returned as it is.
func (s *Store) Dump(ctx context.Context, fn func(storage.Record) error) error {
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := longTransaction(ctx, tx); err != nil {
			return err
		}
		return dumpWith(ctx, tx, fn)
	})
	if fe := (fnError{}); errors.As(err, &fe) {
		return fe.err
	}
	if err != nil {
		return fmt.Errorf("pgstore: dump: %w", err)
	}
	return nil
}

// fnError carries an error of Dump's caller through the walk unwrapped.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// damagedRow marks a row that does not decode.
func damagedRow(what string, err error) error {
	return fmt.Errorf("%s: %w: %w", what, err, storage.ErrDamaged)
}

func dumpWith(ctx context.Context, q querier, fn func(storage.Record) error) error {
	emit := func(r storage.Record) error {
		if err := fn(r); err != nil {
			return fnError{err}
		}
		return nil
	}
	if err := dumpSettings(ctx, q, emit); err != nil {
		return err
	}
	gone := map[string]bool{} // forgetting comes first: their records are left out
	for _, st := range dumpSteps {
		rows, err := q.Query(ctx, st.sql)
		if err != nil {
			return err
		}
		for rows.Next() {
			rec, owner, err := st.scan(rows)
			if err == nil && rec.Forgetting != nil {
				gone[rec.Forgetting.UserID] = true
			}
			if err == nil && (owner == "" || !gone[owner]) {
				err = emit(rec)
			}
			if err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// dumpSteps read each kind of record after the settings, in the order of
// storage.Kinds; scan returns the record, and its owner if a person's.
var dumpSteps = []struct {
	sql  string
	scan func(rows pgx.Rows) (storage.Record, string, error)
}{
	{"SELECT user_id, since FROM forgetting ORDER BY user_id", scanForgetting},
	{"SELECT user_id, record FROM subscribers ORDER BY user_id", scanSubscriber},
	// In slot order, as the bbolt file keys them, so a load into
	// one appends.
	{"SELECT id, record FROM deliveries ORDER BY slot, id", scanDelivery},
	{"SELECT user_id, key_id, master, sealed FROM data_keys ORDER BY user_id", scanDataKey},
	{"SELECT " + reflectionColumns + " FROM reflections ORDER BY user_id, seq", scanReflection},
	{"SELECT user_id, last FROM reflection_seq ORDER BY user_id", scanReflectionSeq},
	{"SELECT channel, state FROM digests ORDER BY channel", scanDigest},
	{"SELECT id, channel, opened, closed, totals, voter_key, voters FROM pulses ORDER BY id", scanPulse},
	{"SELECT pulse_id, marker, voted, hear_more FROM pulse_voters ORDER BY pulse_id, marker", scanPulseVoter},
	{"SELECT channel, closed, pulse_id, summary FROM pulse_history ORDER BY channel, closed, pulse_id", scanPulseSummary},
}

func scanForgetting(rows pgx.Rows) (storage.Record, string, error) {
	var (
		f     storage.Forgetting
		since int64
	)
	err := rows.Scan(&f.UserID, &since)
	f.Since = time.Unix(0, since).UTC()
	return storage.Record{Forgetting: &f}, "", err
}

func scanSubscriber(rows pgx.Rows) (storage.Record, string, error) {
	var (
		id  string
		raw []byte
		sub nudges.Subscriber
	)
	if err := rows.Scan(&id, &raw); err != nil {
		return storage.Record{}, "", err
	}
	if err := json.Unmarshal(raw, &sub); err != nil {
		return storage.Record{}, "", damagedRow("subscriber "+id, err)
	}
	if sub.UserID == "" {
		sub.UserID = id
	}
	return storage.Record{Subscriber: &sub}, id, nil
}

func scanDelivery(rows pgx.Rows) (storage.Record, string, error) {
	var (
		id  string
		raw []byte
		d   nudges.Delivery
	)
	if err := rows.Scan(&id, &raw); err != nil {
		return storage.Record{}, "", err
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return storage.Record{}, "", damagedRow("delivery "+id, err)
	}
	return storage.Record{Delivery: &d}, d.UserID, nil
}

func scanDataKey(rows pgx.Rows) (storage.Record, string, error) {
	var k storage.PersonDataKey
	err := rows.Scan(&k.UserID, &k.Key.ID, &k.Key.Master, &k.Key.Sealed)
	return storage.Record{DataKey: &k}, k.UserID, err
}

func scanReflection(rows pgx.Rows) (storage.Record, string, error) {
	rw, err := scanRow(rows)
	if err != nil {
		return storage.Record{}, "", damagedRow("a reflection", err)
	}
	r := rw.r
	r.Text, r.Commitment = "", ""
	return storage.Record{Reflection: &storage.SealedReflection{Reflection: r, DataKey: rw.dataKey, Sealed: rw.sealed}}, r.UserID, nil
}

func scanReflectionSeq(rows pgx.Rows) (storage.Record, string, error) {
	var q storage.ReflectionSeq
	err := rows.Scan(&q.UserID, &q.Last)
	return storage.Record{ReflectionSeq: &q}, q.UserID, err
}

func scanDigest(rows pgx.Rows) (storage.Record, string, error) {
	var (
		d   storage.ChannelDigest
		raw []byte
	)
	if err := rows.Scan(&d.Channel, &raw); err != nil {
		return storage.Record{}, "", err
	}
	if err := json.Unmarshal(raw, &d.Record); err != nil {
		return storage.Record{}, "", damagedRow("the digest record of "+d.Channel, err)
	}
	return storage.Record{Digest: &d}, "", nil
}

func scanPulse(rows pgx.Rows) (storage.Record, string, error) {
	var (
		p              storage.Pulse
		opened         int64
		closed         *int64
		totals, voters []byte
	)
	if err := rows.Scan(&p.ID, &p.Channel, &opened, &closed, &totals, &p.VoterKey, &voters); err != nil {
		return storage.Record{}, "", err
	}
	p.Opened = time.Unix(0, opened).UTC()
	if closed != nil {
		p.Closed, p.VoterKey = time.Unix(0, *closed).UTC(), nil
		return storage.Record{Pulse: &p}, "", nil
	}
	if err := json.Unmarshal(totals, &p.Totals); err != nil {
		return storage.Record{}, "", damagedRow("the totals of pulse "+p.ID, err)
	}
	if voters != nil {
		if err := json.Unmarshal(voters, &p.Voters); err != nil {
			return storage.Record{}, "", damagedRow("the voters of pulse "+p.ID, err)
		}
	}
	return storage.Record{Pulse: &p}, "", nil
}

func scanPulseVoter(rows pgx.Rows) (storage.Record, string, error) {
	var v storage.PulseVoter
	err := rows.Scan(&v.PulseID, &v.Marker, &v.Voted, &v.HearMore)
	return storage.Record{PulseVoter: &v}, "", err
}

func scanPulseSummary(rows pgx.Rows) (storage.Record, string, error) {
	var (
		f      storage.FiledSummary
		closed int64
		raw    []byte
	)
	if err := rows.Scan(&f.Channel, &closed, &f.PulseID, &raw); err != nil {
		return storage.Record{}, "", err
	}
	f.Closed = time.Unix(0, closed).UTC()
	if err := json.Unmarshal(raw, &f.Summary); err != nil {
		return storage.Record{}, "", damagedRow("a summary of pulse "+f.PulseID, err)
	}
	return storage.Record{PulseSummary: &f}, "", nil
}

func dumpSettings(ctx context.Context, q querier, emit func(storage.Record) error) error {
	rows, err := q.Query(ctx, "SELECT key, value FROM meta WHERE key = ANY($1)", metaSettings)
	if err != nil {
		return err
	}
	var (
		set  storage.Settings
		pace learnedPace
		key  string
		raw  []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &raw}, func() error {
		var err error
		switch key {
		case keyPausedAll:
			err = json.Unmarshal(raw, &set.PausedAll)
			set.PausedAll = set.PausedAll.UTC()
		case keyStrategy:
			set.StrategySet, err = true, json.Unmarshal(raw, &set.StrategyLines)
		case keyLearnedPace:
			err = json.Unmarshal(raw, &pace)
			set.LearnedPace = pace.PerMinute
		}
		if err != nil {
			return damagedRow("setting "+key, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return emit(storage.Record{Settings: &set})
}

// loadLock is the advisory lock's first key ("nl") that keeps two loads
// into one schema apart.
const loadLock = 0x6e6c

// loadBatch is how many rows a Load buffers before it copies them in.
const loadBatch = 10_000

// Load is a load into an empty database, in one transaction: until
// Commit nobody else sees a row of it, and if it never commits
// (an error, a crash, a lost connection) the database stays empty.
type Load struct {
	s    *Store
	ctx  context.Context
	tx   pgx.Tx
	bufs map[string][][]any
	n    int
	done bool
}

// loadTables are the tables a Load fills, in the order they are copied
// (a pulse before its voters), with their columns.
var loadTables = []struct {
	name string
	cols []string
}{
	{"meta", []string{"key", "value"}},
	{"forgetting", []string{"user_id", "since"}},
	{"subscribers", []string{"user_id", "next_due", "active", "record"}},
	{"deliveries", deliveryColumns},
	{"data_keys", []string{"user_id", "master", "key_id", "sealed"}},
	{"reflections", []string{"user_id", "seq", "created", "data_key", "sealed", "share", "message_ts", "follow_up_due", "record"}},
	{"reflection_seq", []string{"user_id", "last"}},
	{"digests", []string{"channel", "state"}},
	{"pulses", []string{"id", "channel", "opened", "closed", "totals", "voter_key", "voters"}},
	{"pulse_voters", []string{"pulse_id", "marker", "voted", "hear_more"}},
	{"pulse_history", []string{"channel", "closed", "pulse_id", "summary"}},
}

// BeginLoad starts a load: in a transaction that holds the schema's load
// lock and locks every data table against writers, it checks that none
// has a row (storage.ErrNotEmpty otherwise). ctx bounds the whole load.
func (s *Store) BeginLoad(ctx context.Context) (*Load, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgstore: begin load: %w", err)
	}
	l := &Load{s: s, ctx: ctx, tx: tx, bufs: map[string][][]any{}}
	if err := l.begin(); err != nil {
		_ = tx.Rollback(context.Background())
		return nil, fmt.Errorf("pgstore: begin load: %w", err)
	}
	return l, nil
}

// longTransaction lifts, for tx alone, the limits meant for the bot's
// short writes: on a session idle in a transaction (idleInTransaction),
// as a dump or a load waits on the other engine between statements, and
// any statement_timeout the role sets, as reading a million deliveries
// back is one statement.
func longTransaction(ctx context.Context, tx pgx.Tx) error {
	for _, set := range []string{"idle_in_transaction_session_timeout", "statement_timeout"} {
		if _, err := tx.Exec(ctx, "SET LOCAL "+set+" = 0"); err != nil {
			return fmt.Errorf("lift %s for the transaction: %w", set, err)
		}
	}
	return nil
}

func (l *Load) begin() error {
	ctx, tx := l.ctx, l.tx
	if err := longTransaction(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", loadLock); err != nil {
		return fmt.Errorf("take the load lock: %w", err)
	}
	// Readers go on; a bot's write waits until the load commits or
	// rolls back, and so never mixes its rows with the load's.
	if _, err := tx.Exec(ctx, "LOCK TABLE "+identifiers(dataTables)+" IN EXCLUSIVE MODE"); err != nil {
		return fmt.Errorf("lock the tables: %w", err)
	}
	var full []string
	for _, t := range dataTables {
		var has bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+pgx.Identifier{t}.Sanitize()+")").Scan(&has); err != nil {
			return fmt.Errorf("look at %s: %w", t, err)
		}
		if has {
			full = append(full, t)
		}
	}
	if len(full) > 0 {
		return fmt.Errorf("table %v has rows: %w", full, storage.ErrNotEmpty)
	}
	return nil
}

func identifiers(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += pgx.Identifier{n}.Sanitize()
	}
	return out
}

// Add queues r, copying the queued rows in when a batch is full.
func (l *Load) Add(r storage.Record) error {
	if l.done {
		return errors.New("pgstore: load: Add after Commit or Rollback")
	}
	table, rows, err := loadRows(r)
	if err != nil {
		return fmt.Errorf("pgstore: load %s: %w", r.Kind(), err)
	}
	l.bufs[table] = append(l.bufs[table], rows...)
	l.n += len(rows)
	if l.n >= loadBatch {
		return l.flush()
	}
	return nil
}

// loadRows are r's rows, checked as the engine's own writes check them.
func loadRows(r storage.Record) (string, [][]any, error) {
	switch {
	case r.Settings != nil:
		var rows [][]any
		s := r.Settings
		if !s.PausedAll.IsZero() {
			raw, _ := json.Marshal(s.PausedAll.UTC())
			rows = append(rows, []any{keyPausedAll, raw})
		}
		if s.StrategySet {
			lines := s.StrategyLines
			if lines == nil {
				lines = []string{}
			}
			raw, _ := json.Marshal(lines)
			rows = append(rows, []any{keyStrategy, raw})
		}
		if s.LearnedPace != 0 {
			raw, _ := json.Marshal(learnedPace{PerMinute: s.LearnedPace})
			rows = append(rows, []any{keyLearnedPace, raw})
		}
		return "meta", rows, nil
	case r.Forgetting != nil:
		f := r.Forgetting
		return "forgetting", [][]any{{f.UserID, nanos(f.Since)}}, checkUserID(f.UserID)
	case r.Subscriber != nil:
		if err := storage.CheckSubscriber(nudges.Subscriber{}, *r.Subscriber); err != nil {
			return "", nil, fmt.Errorf("subscriber %s: %w", r.Subscriber.UserID, err)
		}
		return "subscribers", [][]any{subscriberArgs(*r.Subscriber)}, nil
	case r.Delivery != nil:
		d := *r.Delivery
		if err := storage.ValidateDelivery(d); err != nil {
			return "", nil, err
		}
		return "deliveries", [][]any{deliveryArgs(d)}, nil
	case r.DataKey != nil:
		k := r.DataKey
		return "data_keys", [][]any{{k.UserID, k.Key.Master, k.Key.ID, k.Key.Sealed}}, checkUserID(k.UserID)
	case r.Reflection != nil:
		sr := r.Reflection
		if err := storage.CheckSealedReflection(*sr); err != nil {
			return "", nil, err
		}
		return "reflections", [][]any{reflectionArgs(sr.Reflection, sr.DataKey, sr.Sealed)}, nil
	case r.ReflectionSeq != nil:
		q := r.ReflectionSeq
		return "reflection_seq", [][]any{{q.UserID, q.Last}}, checkUserID(q.UserID)
	case r.Digest != nil:
		raw, err := json.Marshal(r.Digest.Record)
		if err == nil {
			err = storage.CheckKeyPart("channel", r.Digest.Channel)
		}
		return "digests", [][]any{{r.Digest.Channel, raw}}, err
	case r.Pulse != nil:
		p := r.Pulse
		if err := errors.Join(storage.CheckKeyPart("pulse id", p.ID), storage.CheckKeyPart("channel", p.Channel)); err != nil {
			return "", nil, err
		}
		if !p.Closed.IsZero() {
			return "pulses", [][]any{{p.ID, p.Channel, nanos(p.Opened), nanos(p.Closed), []byte(`{}`), nil, nil}}, nil
		}
		totals, _ := json.Marshal(p.Totals)
		var voters []byte // NULL: none kept
		if len(p.Voters) > 0 {
			voters, _ = json.Marshal(p.Voters)
		}
		return "pulses", [][]any{{p.ID, p.Channel, nanos(p.Opened), nil, totals, p.VoterKey, voters}}, nil
	case r.PulseVoter != nil:
		v := r.PulseVoter
		return "pulse_voters", [][]any{{v.PulseID, v.Marker, v.Voted, v.HearMore}}, storage.CheckKeyPart("pulse id", v.PulseID)
	case r.PulseSummary != nil:
		f := r.PulseSummary
		raw, _ := json.Marshal(f.Summary)
		return "pulse_history", [][]any{{f.Channel, nanos(f.Closed), f.PulseID, raw}}, storage.CheckKeyPart("channel", f.Channel)
	}
	return "", nil, errors.New("an empty record")
}

// flush copies every queued row in, table by table in loadTables' order.
func (l *Load) flush() error {
	for _, t := range loadTables {
		rows := l.bufs[t.name]
		if len(rows) == 0 {
			continue
		}
		if _, err := l.tx.CopyFrom(l.ctx, pgx.Identifier{t.name}, t.cols, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("pgstore: load %s: %w", t.name, err)
		}
		l.bufs[t.name] = rows[:0]
	}
	l.n = 0
	return nil
}

// Finish copies in what is still queued; the rows are then in the
// transaction, for Dump and Reflection to read back before Commit.
func (l *Load) Finish() error { return l.flush() }

// Dump is Store.Dump of what the load wrote, read through its
// transaction.
func (l *Load) Dump(fn func(storage.Record) error) error {
	if err := l.flush(); err != nil {
		return err
	}
	err := dumpWith(l.ctx, l.tx, fn)
	if fe := (fnError{}); errors.As(err, &fe) {
		return fe.err
	}
	if err != nil {
		return fmt.Errorf("pgstore: read back the load: %w", err)
	}
	return nil
}

// Reflection is Store.Reflection read through the load's transaction:
// the reflection opened with the store's keys.
func (l *Load) Reflection(userID string, seq int) (nudges.Reflection, error) {
	se := l.s.session(l.tx)
	rows, err := se.rows(l.ctx, "SELECT "+reflectionColumns+" FROM reflections WHERE user_id = $1 AND seq = $2", userID, seq)
	if err != nil {
		return nudges.Reflection{}, fmt.Errorf("pgstore: reflection %d of %s: %w", seq, userID, err)
	}
	if len(rows) == 0 {
		return nudges.Reflection{}, fmt.Errorf("pgstore: reflection %d of %s: %w", seq, userID, nudges.ErrNotFound)
	}
	r, err := se.open(l.ctx, rows[0])
	if err != nil {
		return nudges.Reflection{}, fmt.Errorf("pgstore: reflection %d of %s: %w", seq, userID, err)
	}
	return r, nil
}

// Commit makes the load visible, then gathers the planner's statistics
// for the tables it filled, as the bulk imports do.
func (l *Load) Commit() error {
	if l.done {
		return errors.New("pgstore: load: already committed or rolled back")
	}
	if err := l.flush(); err != nil {
		return err
	}
	l.done = true
	if err := l.tx.Commit(l.ctx); err != nil {
		return fmt.Errorf("pgstore: commit the load: %w", err)
	}
	for _, t := range loadTables {
		if _, err := l.s.pool.Exec(l.ctx, "ANALYZE "+pgx.Identifier{t.name}.Sanitize()); err != nil {
			return fmt.Errorf("pgstore: analyze %s after the load: %w", t.name, err)
		}
	}
	return nil
}

// Rollback abandons the load: the database is as it was. It is harmless
// after Commit.
func (l *Load) Rollback() {
	if l.done {
		return
	}
	l.done = true
	_ = l.tx.Rollback(context.Background())
}
