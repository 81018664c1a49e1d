package pgstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// EnvDatabaseURL names the database when storage.url is not set.
const EnvDatabaseURL = "NUDGEBOT_DATABASE_URL"

// Options configure Open.
type Options struct {
	// URL is a PostgreSQL connection string (postgres://user@host/db or
	// key=value form).
	URL string
	// Schema, when set, is the schema the tables live in (created if
	// missing); empty means the connection's default search_path.
	Schema string
	// Keys seal reflections (storage.LoadKeys). Open refuses a database
	// whose data keys are sealed under a master key Keys lacks.
	Keys *storage.Keys
	// Logger receives what an operator should know; nil discards it.
	Logger *slog.Logger
	// Now stamps records the store creates itself; nil means time.Now.
	Now func() time.Time
	// Retention is how long ApplyRetention keeps deliveries, closed
	// pulses and handled envelopes; zero keeps them for ever.
	Retention time.Duration
	// Timeout bounds each call; zero means 30s. The ports take no
	// context, and a call must not hang when the server does.
	Timeout time.Duration
	// MaxConns bounds the pool; zero means pgxpool's default.
	MaxConns int32
	// ApplicationName names the connections in pg_stat_activity; empty
	// means a bot's name (botName). A tool sets its own, so its
	// connections are not taken for a running bot's (BotConnections).
	ApplicationName string
}

// Store is nudgebot's state in PostgreSQL. It is safe for concurrent
// use, also by several processes sharing one database.
type Store struct {
	pool      *pgxpool.Pool
	keys      *storage.Keys
	log       *slog.Logger
	now       func() time.Time
	timeout   time.Duration
	retention time.Duration
	schema    string
	// needsVacuum: a Forget or a deleted reflection left dead row
	// versions that Compact should vacuum.
	needsVacuum atomic.Bool
	health      health
	// term is the lease won last (Lead); nil while no elector uses the
	// store, which leaves its leader writes unfenced.
	term atomic.Pointer[term]
	// wakes is the schema's NOTIFY channel, instance this store's name
	// on it (its own wakes are not heard back).
	wakes, instance string
}

// Open connects, applies the embedded migrations under an advisory lock,
// refuses a database sealed under keys it lacks, and finishes any Forget
// that was cut short.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if strings.TrimSpace(opts.URL) == "" {
		return nil, fmt.Errorf("no database URL given: set storage.url or %s to a PostgreSQL URL such as postgres://nudgebot@db.example:5432/nudgebot", EnvDatabaseURL)
	}
	if opts.Retention > 0 && opts.Retention < nudges.MinRetention {
		return nil, fmt.Errorf("retention %s is shorter than %d days: set storage.retention to at least %dd",
			opts.Retention, nudges.MinRetention/(24*time.Hour), nudges.MinRetention/(24*time.Hour))
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		// pgx's message may quote the URL, password included: say what
		// is wrong without it.
		return nil, errors.New("storage.url is not a PostgreSQL connection string: use postgres://user@host:5432/dbname")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	bot := botName(cfg.ConnConfig.RuntimeParams, opts.Schema)
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = bot
	if opts.ApplicationName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = opts.ApplicationName
	}
	if _, set := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !set {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(idleInTransaction.Milliseconds(), 10)
	}
	s := &Store{keys: opts.Keys, log: opts.Logger, now: opts.Now, timeout: opts.Timeout, retention: opts.Retention, schema: opts.Schema}
	s.health.checkDone = make(chan struct{})
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	s.pool, err = pgxpool.NewWithConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL at %s: %w", cfg.ConnConfig.Host, err)
	}
	if err := s.pool.Ping(cctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s:%d (is it running, and does storage.url name it?): %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if err := s.start(cctx); err != nil {
		s.pool.Close()
		return nil, err
	}
	return s, nil
}

// botName is the application_name a bot's connections carry, so an
// operator sees them in pg_stat_activity, and which schema when several
// share a database: the URL's own, else "nudgebot" and the schema (the
// option, or the URL's search_path).
func botName(params map[string]string, schema string) string {
	if name := params["application_name"]; name != "" {
		return name
	}
	if schema == "" {
		schema = params["search_path"]
	}
	if schema == "" {
		return "nudgebot"
	}
	return "nudgebot/" + schema
}

func (s *Store) start(ctx context.Context) error {
	version, err := s.migrate(ctx)
	if err != nil {
		return err
	}
	if err := s.checkKeys(ctx); err != nil {
		return err
	}
	if err := s.finishForgets(ctx); err != nil {
		return err
	}
	var schema string
	if err := s.pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return fmt.Errorf("pgstore: read the current schema: %w", err)
	}
	s.wakes, s.instance = wakeChannel(schema), rand.Text()
	s.log.Info("opened PostgreSQL database", "schema_version", version)
	return nil
}

// Close releases the pool's connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// migration is one numbered .sql file.
type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s is not named NNNN_what.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must run 1, 2, 3… without gaps", m.name)
		}
	}
	return ms, nil
}

// SchemaVersion is the newest schema this nudgebot knows.
func SchemaVersion() int {
	ms, _ := migrations()
	return len(ms)
}

// migrationLock is the advisory lock's first key ("nb"); the second is
// the schema's hash, so databases and schemas migrate independently.
const migrationLock = 0x6e62

// migrate applies the migrations the database lacks, all in one
// transaction under an advisory lock, so replicas starting together
// migrate once and a failure leaves the schema as it was.
func (s *Store) migrate(ctx context.Context) (int, error) {
	ms, err := migrations()
	if err != nil {
		return 0, err
	}
	var version int
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if s.schema != "" {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{s.schema}.Sanitize()); err != nil {
				return fmt.Errorf("create schema %s: %w", s.schema, err)
			}
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", migrationLock); err != nil {
			return fmt.Errorf("take the migration lock: %w", err)
		}
		if err := notCopying(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&version); err != nil {
			return fmt.Errorf("read the schema version: %w", err)
		}
		if version > len(ms) {
			return fmt.Errorf("the database's schema is version %d, this nudgebot knows %d: run the newer nudgebot, or restore a backup taken before the upgrade: %w",
				version, len(ms), storage.ErrNewerSchema)
		}
		for _, m := range ms[version:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
			s.log.Info("applied database migration", "migration", m.name)
		}
		version = len(ms)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: migrate: %w", err)
	}
	return version, nil
}

// checkKeys refuses to start when data keys are sealed under a master
// key that is not configured: every reflection of theirs would fail.
func (s *Store) checkKeys(ctx context.Context) error { return s.checkKeysWith(ctx, s.pool) }

func (s *Store) checkKeysWith(ctx context.Context, q querier) error {
	rows, err := q.Query(ctx, "SELECT DISTINCT master FROM data_keys ORDER BY master")
	if err != nil {
		return fmt.Errorf("pgstore: read master key ids: %w", err)
	}
	masters, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("pgstore: read master key ids: %w", err)
	}
	var missing []string
	for _, m := range masters {
		if !s.keys.HasMaster(m) {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("reflections in the database were sealed with key(s) %s, not configured: set %s (or storage.key_file) to them; to rotate, list the new key first and the old one after it: %w",
			strings.Join(missing, ", "), storage.EnvSecretKey, storage.ErrKeyMissing)
	}
	return nil
}

// ctx is the context of one port call.
func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// maxAttempts bounds how often a transaction runs again after a
// serialization failure, a deadlock or a lost race to insert.
const maxAttempts = 8

// tx runs fn in a transaction, again from the start when PostgreSQL
// says it lost a race (the funcs the ports take may run more than once).
func (s *Store) tx(fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := s.ctx()
	defer cancel()
	var err error
	for range maxAttempts {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(ctx, tx) })
		if !retryable(err) {
			break
		}
	}
	s.observe(err)
	return err
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "40001", "40P01", "23505": // serialization failure, deadlock, unique violation
		return true
	}
	return false
}

// Time columns are Unix nanoseconds; times beyond what that holds clamp,
// which only ever widens a range asked for.
var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

func nanos(t time.Time) int64 {
	switch {
	case t.Before(minNano):
		return math.MinInt64
	case t.After(maxNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// nullNanos is NULL for the zero time.
func nullNanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := nanos(t)
	return &n
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "unset"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Keys are the master keys the store seals with.
func (s *Store) Keys() *storage.Keys { return s.keys }

// connect opens one plain connection for a look that writes nothing,
// named as a tool's (opts.ApplicationName, else "nudgebot-tool") so it
// is not taken for a bot's; where names the database for messages,
// without the URL's password.
func connect(ctx context.Context, opts Options) (conn *pgx.Conn, where string, err error) {
	cfg, err := connConfig(opts.URL)
	if err != nil {
		return nil, "", err
	}
	if opts.Schema != "" {
		cfg.RuntimeParams["search_path"] = opts.Schema
	}
	cfg.RuntimeParams["application_name"] = cmp.Or(opts.ApplicationName, "nudgebot-tool")
	conn, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("cannot reach PostgreSQL at %s:%d (is it running, and does storage.url name it?): %w", cfg.Host, cfg.Port, err)
	}
	return conn, fmt.Sprintf("PostgreSQL database %s at %s:%d", cfg.Database, cfg.Host, cfg.Port), nil
}

// look runs fn on a plain connection of its own (connect), the whole
// of it bounded by 10 s: a tool's look that writes nothing.
func look(ctx context.Context, opts Options, fn func(ctx context.Context, conn *pgx.Conn, where string) error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, where, err := connect(ctx, opts)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return fn(ctx, conn, where)
}

// connConfig parses url as the pool does, so the pool's own settings
// (pool_max_conns and the like) are taken out rather than sent to the
// server as parameters it does not know.
func connConfig(url string) (*pgx.ConnConfig, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("storage.url is not a PostgreSQL connection string: use postgres://user@host:5432/dbname")
	}
	return cfg.ConnConfig, nil
}

// Where names the database opts.URL points at, host, port and database
// (and schema), never the password.
func Where(opts Options) string {
	cfg, err := connConfig(opts.URL)
	if err != nil {
		return "an unparsable PostgreSQL URL"
	}
	where := fmt.Sprintf("PostgreSQL database %s at %s:%d", cfg.Database, cfg.Host, cfg.Port)
	if schema := cmp.Or(opts.Schema, cfg.RuntimeParams["search_path"]); schema != "" {
		where += " (schema " + schema + ")"
	}
	return where
}

// BotConnections counts the connections of running nudgebots to the
// database and schema opts name (by the application_name a bot opened
// with opts gives its connections), writing nothing.
func BotConnections(ctx context.Context, opts Options) (n int, err error) {
	err = look(ctx, opts, func(ctx context.Context, conn *pgx.Conn, where string) error {
		cfg, _ := connConfig(opts.URL) // connect parsed it
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()`,
			botName(cfg.RuntimeParams, opts.Schema)).Scan(&n)
		if err != nil {
			return fmt.Errorf("%s: look for running nudgebots: %w", where, err)
		}
		return nil
	})
	return n, err
}

// Leader says which replica holds the scheduler's lease of the database
// opts name, and for how much longer by the database's clock; holder is
// "" when none does (never held, released, or expired). It writes
// nothing, and answers "" for a database without the lease table.
func Leader(ctx context.Context, opts Options) (holder string, left time.Duration, err error) {
	err = look(ctx, opts, func(ctx context.Context, conn *pgx.Conn, where string) error {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass('leases') IS NOT NULL").Scan(&exists); err != nil || !exists {
			return err
		}
		var ms float64
		err := conn.QueryRow(ctx, `SELECT holder, extract(epoch FROM expires_at - clock_timestamp()) * 1000 FROM leases
			WHERE name = 'scheduler' AND expires_at > clock_timestamp()`).Scan(&holder, &ms)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: read the scheduler's lease: %w", where, err)
		}
		left = time.Duration(ms * float64(time.Millisecond))
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	return holder, left, nil
}

// LiveReplicas counts the replicas of the database opts name whose
// presence has not expired by the database's clock (Present), followers
// included, whatever name their connections go by. It writes nothing,
// and answers 0 for a database without the lease table.
func LiveReplicas(ctx context.Context, opts Options) (n int, err error) {
	err = look(ctx, opts, func(ctx context.Context, conn *pgx.Conn, where string) error {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass('leases') IS NOT NULL").Scan(&exists); err != nil || !exists {
			return err
		}
		err := conn.QueryRow(ctx, "SELECT count(*) FROM leases WHERE starts_with(name, $1) AND expires_at > clock_timestamp()", presencePrefix).Scan(&n)
		if err != nil {
			return fmt.Errorf("%s: count the replicas alive: %w", where, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Empty reports whether the database opts name holds no record, writing
// nothing: no nudgebot tables yet, or none with a row.
func Empty(ctx context.Context, opts Options) (empty bool, err error) {
	err = look(ctx, opts, func(ctx context.Context, conn *pgx.Conn, where string) error {
		for _, t := range dataTables {
			var exists bool
			if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", t).Scan(&exists); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			if !exists {
				continue
			}
			var has bool
			if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+pgx.Identifier{t}.Sanitize()+")").Scan(&has); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			if has {
				return nil
			}
		}
		empty = true
		return nil
	})
	return empty && err == nil, err
}

// Inspect connects and says what `nudgebot check` should know, writing
// nothing: whether the server answers, the schema version against this
// binary's, and whether keys opens the data keys already stored.
func Inspect(ctx context.Context, opts Options) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, where, err := connect(ctx, opts)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	if !exists {
		return where + " answers and holds no nudgebot tables yet: `nudgebot run` creates them", nil
	}
	var version int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&version); err != nil {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	if version > SchemaVersion() {
		return "", fmt.Errorf("%s has schema version %d, newer than this nudgebot's %d: run the newer nudgebot: %w", where, version, SchemaVersion(), storage.ErrNewerSchema)
	}
	s := &Store{keys: opts.Keys}
	if err := s.checkKeysWith(ctx, conn); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s answers, schema version %d (this nudgebot: %d), every data key opens with the configured key", where, version, SchemaVersion()), nil
}
