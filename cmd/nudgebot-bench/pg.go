package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/pgstore"
)

// defaultPGURL is the server the PostgreSQL scenarios make their
// databases on when neither -pg-url nor NUDGEBOT_TEST_DATABASE_URL says
// otherwise: the same local server the PostgreSQL tests use.
const defaultPGURL = "postgres://postgres@127.0.0.1:5432/test"

// envTestDatabase is the tests' variable; the bench follows it so that
// one setting points both at the same server.
const envTestDatabase = "NUDGEBOT_TEST_DATABASE_URL"

// pgSettings are the server settings that move the delivery figures:
// how a commit reaches the disk, and how much the server may cache.
var pgSettings = []string{"shared_buffers", "synchronous_commit", "fsync", "wal_sync_method", "full_page_writes",
	"commit_delay", "wal_buffers", "max_wal_size", "checkpoint_timeout", "max_connections"}

// pgServer is the PostgreSQL server the PostgreSQL scenarios run on. Each
// run gets a database of its own (createDB), so parallel runs and the
// tests on the same server do not meet.
type pgServer struct {
	adminURL string // a database on it to connect to for CREATE DATABASE
	Version  string
	Settings [][2]string // name, value, in pgSettings' order
	DataDir  string      // "" when the server would not say (not a superuser)
	SameDisk string      // whether DataDir is on the work directory's file system, in words
}

// pgServer connects to -pg-url once and reads what the report says of
// the server; later calls return the same.
func (b *bench) pgServer(ctx context.Context) (*pgServer, error) {
	if b.pg != nil {
		return b.pg, nil
	}
	s := &pgServer{adminURL: b.opts.pgURL}
	if _, err := dbURL(s.adminURL, "x"); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, s.adminURL)
	if err != nil {
		return nil, fmt.Errorf("the PostgreSQL scenarios need a server: cannot reach %s (%w); start one, or point -pg-url (or %s) at one",
			redactURL(s.adminURL), err, envTestDatabase)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(cctx, "SHOW server_version").Scan(&s.Version); err != nil {
		return nil, fmt.Errorf("read the PostgreSQL server's version: %w", err)
	}
	for _, name := range pgSettings {
		var v string
		if err := conn.QueryRow(cctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			v = "?"
		}
		s.Settings = append(s.Settings, [2]string{name, v})
	}
	// Only a superuser (or pg_read_all_settings) may read it; without it
	// the report says the disk is unknown rather than guessing.
	_ = conn.QueryRow(cctx, "SELECT current_setting('data_directory')").Scan(&s.DataDir)
	s.SameDisk = sameDisk(s.DataDir, b.work)
	b.pg = s
	b.progress("PostgreSQL %s at %s; %s", s.Version, redactURL(s.adminURL), s.settingsLine())
	return s, nil
}

// sameDisk says whether the server's data directory shares a file system
// with the work directory, where the fsync latency was measured.
func sameDisk(dataDir, work string) string {
	if dataDir == "" {
		return "the data directory's disk is unknown (the server did not say where it is)"
	}
	var a, b syscall.Stat_t
	if syscall.Stat(dataDir, &a) != nil || syscall.Stat(work, &b) != nil {
		return "the data directory (" + dataDir + ") is not on this machine, or not readable here"
	}
	if a.Dev == b.Dev {
		return "the data directory (" + dataDir + ") is on the same file system as the fsync probe"
	}
	return "the data directory (" + dataDir + ") is on another file system than the fsync probe"
}

func (s *pgServer) settingsLine() string {
	var parts []string
	for _, kv := range s.Settings {
		parts = append(parts, kv[0]+"="+kv[1])
	}
	return strings.Join(parts, ", ")
}

// describe is the line the PostgreSQL sections put under "Measured on".
func (s *pgServer) describe() string {
	return fmt.Sprintf("PostgreSQL %s on the same machine, settings: %s; %s", s.Version, s.settingsLine(), s.SameDisk)
}

// dbURL is admin with its database replaced by name. Only the URL form is
// taken: the key=value form would need a parser of its own for a knob
// only the bench has.
func dbURL(admin, name string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return "", errors.New("-pg-url must be a URL such as postgres://postgres@127.0.0.1:5432/test (the server the bench creates its databases on)")
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// redactURL is a URL fit for a log: no password.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the -pg-url server"
	}
	if u.User != nil {
		if _, set := u.User.Password(); set {
			u.User = url.UserPassword(u.User.Username(), "xxx")
		}
	}
	return u.String()
}

// pgDB is a database the bench created for one run, and the master key
// every bot on it is given (replicas sharing a database share the key).
type pgDB struct {
	srv  *pgServer
	Name string
	URL  string
	Key  string // base64, as NUDGEBOT_SECRET_KEY takes it
}

// createDB makes an empty database named for the run, with a random part
// so that runs at the same time on the same server do not collide.
func (s *pgServer) createDB(ctx context.Context, tag string) (*pgDB, error) {
	rnd := make([]byte, 4)
	_, _ = rand.Read(rnd)
	name := "nudgebot_bench_" + strings.ReplaceAll(tag, "-", "_") + "_" + hex.EncodeToString(rnd)
	u, err := dbURL(s.adminURL, name)
	if err != nil {
		return nil, err
	}
	if err := s.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create the database %s: %w", name, err)
	}
	return &pgDB{srv: s, Name: name, URL: u, Key: newPGKey()}, nil
}

// drop removes the database, closing whatever connections a killed bot
// left behind.
func (d *pgDB) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.srv.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.Name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop the database %s: %w", d.Name, err)
	}
	return nil
}

func (s *pgServer) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// release drops db unless -keep asks for the databases to stay; a
// database the bench cannot drop is said, with the command that would.
func (b *bench) release(db *pgDB) {
	if b.opts.keep {
		b.progress("database kept: %s (drop it with: DROP DATABASE %s WITH (FORCE))", db.Name, db.Name)
		return
	}
	if err := db.drop(); err != nil {
		b.progress("%v; drop it by hand: DROP DATABASE %s WITH (FORCE)", err, db.Name)
	}
}

// newPGKey is a master key for one database's bots.
func newPGKey() string {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// keysFor loads key the way the bot does, so the seeding and the bot
// agree on it.
func keysFor(key string) (*storage.Keys, error) {
	k, err := storage.LoadKeys(func(name string) string {
		if name == storage.EnvSecretKey {
			return key
		}
		return ""
	}, "", "", nil)
	if err != nil {
		return nil, fmt.Errorf("load the bench's key: %w", err)
	}
	return k, nil
}

// openPG opens the run's database through pgstore, as the bot would.
func openPG(ctx context.Context, db *pgDB) (*pgstore.Store, error) {
	keys, err := keysFor(db.Key)
	if err != nil {
		return nil, err
	}
	s, err := pgstore.Open(ctx, pgstore.Options{URL: db.URL, Keys: keys, Timeout: time.Minute})
	if err != nil {
		return nil, fmt.Errorf("open the database %s: %w", db.Name, err)
	}
	return s, nil
}

// How a PostgreSQL database was seeded, as the report names it.
const seedPGImport = "`pgstore.ImportSubscribers` (COPY, one transaction)"

// pgSeed writes n subscribers into db through pgstore.ImportSubscribers,
// fill setting each one's fields: the schema is pgstore's own migrations,
// and the rows are what the bot itself would write.
func pgSeed(ctx context.Context, db *pgDB, n int, fill func(i int, s *nudges.Subscriber)) (seedResult, error) {
	subs := make([]nudges.Subscriber, n)
	for i := range subs {
		subs[i].UserID = benchUserID(i)
		fill(i, &subs[i])
	}
	s, err := openPG(ctx, db)
	if err != nil {
		return seedResult{}, err
	}
	defer s.Close()
	start := time.Now()
	if err := s.ImportSubscribers(subs); err != nil {
		return seedResult{}, fmt.Errorf("seed %d subscribers: %w", n, err)
	}
	took := time.Since(start)
	size, err := s.Size()
	if err != nil {
		return seedResult{}, fmt.Errorf("size of the seeded database: %w", err)
	}
	return seedResult{N: n, Method: seedPGImport, Took: took, FileSize: size}, nil
}

// deliveryCounter is what countDeliveriesIn reads, from either engine.
type deliveryCounter interface {
	DeliveriesBetween(from, to time.Time, fn func(nudges.Delivery) error) error
	Pending() ([]nudges.Delivery, error)
}

// countDeliveriesIn counts the deliveries for the slot that are sent, and
// what is left in the outbox.
func countDeliveriesIn(db deliveryCounter, slot time.Time) (sent, pending int, err error) {
	err = db.DeliveriesBetween(slot.Add(-time.Minute), slot.Add(time.Hour), func(d nudges.Delivery) error {
		if d.State == nudges.StateSent {
			sent++
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read deliveries: %w", err)
	}
	p, err := db.Pending()
	if err != nil {
		return 0, 0, fmt.Errorf("read the outbox: %w", err)
	}
	return sent, len(p), nil
}

// countDeliveriesPG is countDeliveries for the run's PostgreSQL database,
// once every bot on it has stopped.
func countDeliveriesPG(ctx context.Context, db *pgDB, slot time.Time) (sent, pending int, err error) {
	s, err := openPG(ctx, db)
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	return countDeliveriesIn(s, slot)
}

// pgActivity is the database's own count of what was asked of it, from
// pg_stat_database: per database, so other work on the server does not
// show in it.
type pgActivity struct {
	Commits, Rollbacks                int64
	Inserted, Updated, Deleted        int64
	BlocksRead, BlocksHit             int64
	DatabaseSize, DeliveriesTotalSize int64 // bytes
	Tables                            map[string]tableActivity
}

// tableActivity is one table's line in pg_stat_user_tables: the scans
// that read it and the rows written to it.
type tableActivity struct {
	Scans, Written int64
}

// activity reads db's statistics. The server publishes a backend's
// counts when it ends or goes idle, so this is read once the bots
// stopped, after a moment.
func (d *pgDB) activity(ctx context.Context) (pgActivity, error) {
	var a pgActivity
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		return a, fmt.Errorf("read the statistics of %s: %w", d.Name, err)
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(ctx, `SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, blks_read, blks_hit,
		pg_database_size(current_database()), COALESCE(pg_total_relation_size(to_regclass('deliveries')), 0)
		FROM pg_stat_database WHERE datname = current_database()`).Scan(
		&a.Commits, &a.Rollbacks, &a.Inserted, &a.Updated, &a.Deleted, &a.BlocksRead, &a.BlocksHit, &a.DatabaseSize, &a.DeliveriesTotalSize)
	if err != nil {
		return a, fmt.Errorf("read the statistics of %s: %w", d.Name, err)
	}
	rows, err := conn.Query(ctx, `SELECT relname, COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0), n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables`)
	if err != nil {
		return a, fmt.Errorf("read the table statistics of %s: %w", d.Name, err)
	}
	a.Tables = map[string]tableActivity{}
	for rows.Next() {
		var name string
		var t tableActivity
		if err := rows.Scan(&name, &t.Scans, &t.Written); err != nil {
			return a, fmt.Errorf("read the table statistics of %s: %w", d.Name, err)
		}
		a.Tables[name] = t
	}
	if err := rows.Err(); err != nil {
		return a, fmt.Errorf("read the table statistics of %s: %w", d.Name, err)
	}
	return a, nil
}

// clockTicks is the unit of /proc/PID/stat's CPU times: USER_HZ, 100
// on every Linux the bench runs on (reading sysconf would need cgo).
const clockTicks = 100

// backendCPU is the CPU time used so far by the server processes that
// serve db's connections, from /proc: the server runs on this machine.
// It misses backends that already ended, and the server's own writers.
func (d *pgDB) backendCPU(ctx context.Context) (time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		return 0, 0, fmt.Errorf("list the server's processes for %s: %w", d.Name, err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	if err != nil {
		return 0, 0, fmt.Errorf("list the server's processes for %s: %w", d.Name, err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0, 0, fmt.Errorf("list the server's processes for %s: %w", d.Name, err)
	}
	var total time.Duration
	n := 0
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // ended meanwhile, or the server is elsewhere
		}
		ticks, err := statCPU(data)
		if err != nil {
			return 0, 0, err
		}
		total += time.Duration(ticks) * time.Second / clockTicks
		n++
	}
	return total, n, nil
}

// statCPU is utime + stime from /proc/PID/stat, in clock ticks. The
// command name (field 2) may hold spaces, so fields count from its ')'.
func statCPU(data []byte) (int64, error) {
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat %q: no command name", clip(s, 80))
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat %q: too few fields", clip(s, 80))
	}
	var sum int64
	for _, v := range f[11:13] { // fields 14 and 15: utime, stime
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc stat %q: %w", clip(s, 80), err)
		}
		sum += n
	}
	return sum, nil
}

// pgUse is the database's work between two reads, for nudges nudges.
type pgUse struct {
	Before, After pgActivity
	Nudges        int
	Err           string
}

func (u pgUse) String() string {
	if u.Err != "" {
		return "not measured: " + u.Err
	}
	n := float64(max(1, u.Nudges))
	c := u.After.Commits - u.Before.Commits
	rows := (u.After.Inserted - u.Before.Inserted) + (u.After.Updated - u.Before.Updated) + (u.After.Deleted - u.Before.Deleted)
	s := fmt.Sprintf("%d transactions (%.2f per nudge, reads included), %d rolled back, %d rows written (%.2f per nudge); database %.1f MB at the end, deliveries table %.1f MB with indexes",
		c, float64(c)/n, u.After.Rollbacks-u.Before.Rollbacks, rows, float64(rows)/n, float64(u.After.DatabaseSize)/1e6, float64(u.After.DeliveriesTotalSize)/1e6)
	if t := u.tables(); t != "" {
		s += "; per nudge, table scans / rows written: " + t
	}
	return s
}

// tables lists the tables the run touched, per nudge, busiest first.
func (u pgUse) tables() string {
	type row struct {
		name           string
		scans, written int64
	}
	var rs []row
	for name, a := range u.After.Tables {
		b := u.Before.Tables[name]
		if r := (row{name, a.Scans - b.Scans, a.Written - b.Written}); r.scans > 0 || r.written > 0 {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, func(x, y row) int {
		if c := cmp.Compare(y.scans+y.written, x.scans+x.written); c != 0 {
			return c
		}
		return strings.Compare(x.name, y.name)
	})
	n := float64(max(1, u.Nudges))
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s %.2f / %.2f", r.name, float64(r.scans)/n, float64(r.written)/n))
	}
	return strings.Join(parts, ", ")
}

// pgStatsSettle is how long after the bots stopped the statistics are
// read: the server publishes an ended backend's counts within a second.
const pgStatsSettle = 1500 * time.Millisecond

// pgEnv is where a bot's database settings come from: the environment,
// as in production, so neither the URL nor the key is written to a file.
func pgEnv(db *pgDB) map[string]string {
	return map[string]string{config.EnvDatabaseURL: db.URL, storage.EnvSecretKey: db.Key}
}

// defaultPGServer is -pg-url's default: the tests' server when
// NUDGEBOT_TEST_DATABASE_URL names one, else the local one.
func defaultPGServer(getenv func(string) string) string {
	if u := getenv(envTestDatabase); u != "" {
		return u
	}
	return defaultPGURL
}
