package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// migrateRun is one `nudgebot migrate` run, as it reported itself.
type migrateRun struct {
	Direction string
	Wall      time.Duration // the process, start to exit
	Records   int
	Copy      time.Duration // the copy, as migrate timed it
	Verify    time.Duration
	Load      loadSpan
	Table     string // migrate's summary table
}

func (r migrateRun) copyRate() float64 { return float64(r.Records) / r.Copy.Seconds() }
func (r migrateRun) wallRate() float64 { return float64(r.Records) / r.Wall.Seconds() }

// migrateScenario seeds a bbolt file (-migrate-subscribers people, about
// -migrate-deliveries deliveries, -migrate-reflections reflections),
// runs the real `nudgebot migrate -to-postgres` into a fresh schema, then
// `-to-file` back out of it, and reports records a second both ways.
func (b *bench) migrateScenario(ctx context.Context) (string, error) {
	dir, err := b.dir("migrate")
	if err != nil {
		return "", err
	}
	rawKey := make([]byte, 32)
	_, _ = rand.Read(rawKey)
	keys, err := storage.NewKeys(rawKey)
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "source.db")
	seedStart := time.Now()
	b.progress("migrate: seeding %d subscribers, %d deliveries and %d reflections", b.opts.migSubs, b.opts.migDeliveries, b.opts.migReflections)
	deliveries, err := seedMigrateFile(ctx, src, keys, b.opts.migSubs, b.opts.migDeliveries, b.opts.migReflections)
	if err != nil {
		return "", err
	}
	srcSize := fileSizeOf(src)
	b.progress("migrate: seeded in %s, %.1f MB", time.Since(seedStart).Round(time.Second), float64(srcSize)/1e6)

	url, schema, drop, err := freshPGSchema(ctx, b.opts.pgURL)
	if err != nil {
		return "", err
	}
	defer drop()
	env := append(os.Environ(), storage.EnvSecretKey+"="+base64.StdEncoding.EncodeToString(rawKey))
	fileCfg := filepath.Join(dir, "file.yaml")
	pgCfg := filepath.Join(dir, "postgres.yaml")
	if err := os.WriteFile(fileCfg, fmt.Appendf(nil, "storage:\n  path: %q\n", src), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(pgCfg, fmt.Appendf(nil, "storage:\n  driver: postgres\n  url: %q\n", url), 0o600); err != nil {
		return "", err
	}
	toPG, err := b.runMigrate(ctx, env, "bbolt → PostgreSQL", "-config", fileCfg, "-to-postgres", url)
	if err != nil {
		return "", err
	}
	pgSize, err := schemaSize(ctx, url, schema)
	if err != nil {
		return "", err
	}
	back := filepath.Join(dir, "back.db")
	toFile, err := b.runMigrate(ctx, env, "PostgreSQL → bbolt", "-config", pgCfg, "-to-file", back)
	if err != nil {
		return "", err
	}
	return b.migrateSection(deliveries, srcSize, pgSize, fileSizeOf(back), []migrateRun{toPG, toFile}), nil
}

// seedMigrateFile writes subs people, deliveries in days of one per
// person, and reflections of the first people, through the storage API.
func seedMigrateFile(ctx context.Context, path string, keys *storage.Keys, subs, deliveries, reflections int) (int, error) {
	now := time.Now().UTC()
	if _, err := importSeed(ctx, path, subs, func(i int, s *nudges.Subscriber) {
		id := benchUserID(i)
		subscribed(s, now, dmFor(id))
		s.NextDue = spreadDue(now, i, subs)
	}); err != nil {
		return 0, err
	}
	db, err := storage.Open(path, storage.Options{Keys: keys})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	people := make([]nudges.Subscriber, subs)
	for i := range people {
		people[i].UserID = benchUserID(i)
		people[i].DMChannel = dmFor(people[i].UserID)
	}
	rng := mrand.New(mrand.NewPCG(11, 11))
	total := 0
	for day := 1; total < deliveries; day++ {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		slot := now.Truncate(24*time.Hour).AddDate(0, 0, -day).Add(9 * time.Hour)
		ds := dayOfDeliveries(people[:min(subs, deliveries-total)], slot, rng)
		if err := db.ImportDeliveries(ds); err != nil {
			return total, err
		}
		total += len(ds)
	}
	for i := range min(reflections, subs) {
		if i%1000 == 0 && ctx.Err() != nil {
			return total, ctx.Err()
		}
		_, err := db.SaveReflection(nudges.Reflection{UserID: benchUserID(i), Created: now.Add(-time.Hour),
			Text: "Explained why we are moving the launch, and asked what worries the team most", Commitment: "Follow up on Thursday"})
		if err != nil {
			return total, err
		}
	}
	return total, db.Close()
}

// freshPGSchema makes a schema of its own in the database at base and
// returns a URL whose connections use it, and how to drop it.
func freshPGSchema(ctx context.Context, base string) (url, schema string, drop func(), err error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", "", nil, fmt.Errorf("the migrate scenario needs PostgreSQL (-pg-url %s): %w", base, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema = "nbbench_migrate_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close(ctx)
		return "", "", nil, err
	}
	drop = func() {
		_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		conn.Close(context.Background())
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema, schema, drop, nil
}

func schemaSize(ctx context.Context, url, schema string) (int64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`, schema).Scan(&n)
	return n, err
}

func fileSizeOf(path string) int64 {
	var n int64
	for _, p := range []string{path, storage.SecretsPath(path)} {
		if info, err := os.Stat(p); err == nil {
			n += info.Size()
		}
	}
	return n
}

var migrateSummary = regexp.MustCompile(`copied (\d+) records in (\S+) \(\d+ records/s\), verified in (\S+);`)

// runMigrate runs the binary's migrate command and reads its summary.
func (b *bench) runMigrate(ctx context.Context, env []string, direction string, args ...string) (migrateRun, error) {
	r := migrateRun{Direction: direction}
	b.progress("migrate: %s", direction)
	cmd := exec.CommandContext(ctx, b.bin, append([]string{"migrate"}, args...)...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r.Load.Before = readLoad()
	start := time.Now()
	err := cmd.Run()
	r.Wall = time.Since(start)
	r.Load.After = readLoad()
	if err != nil {
		return r, fmt.Errorf("nudgebot migrate %s: %w\n%s%s", direction, err, stdout.String(), stderr.String())
	}
	m := migrateSummary.FindStringSubmatch(stdout.String())
	if m == nil {
		return r, fmt.Errorf("nudgebot migrate %s printed no summary:\n%s", direction, stdout.String())
	}
	r.Records, _ = strconv.Atoi(m[1])
	r.Copy, _ = time.ParseDuration(m[2])
	r.Verify, _ = time.ParseDuration(m[3])
	table, _, _ := strings.Cut(stdout.String(), "every kind holds")
	r.Table = table
	b.progress("migrate: %s: %d records, copied in %s (%.0f/s), verified in %s, %s in all (%.0f/s), load %s",
		direction, r.Records, r.Copy, r.copyRate(), r.Verify, r.Wall.Round(time.Millisecond), r.wallRate(), r.Load)
	return r, nil
}

func (b *bench) migrateSection(deliveries int, srcSize, pgSize, backSize int64, runs []migrateRun) string {
	var sb strings.Builder
	b.sectionHead(&sb, "migrate")
	fmt.Fprintf(&sb, "Reproduce: `go run ./cmd/nudgebot-bench -scenarios migrate` (PostgreSQL at `-pg-url`, default the local test database; "+
		"each run works in a fresh schema, dropped afterwards).\n\n")
	fmt.Fprintf(&sb, "A bbolt file of %d subscribers, %d deliveries and %d sealed reflections (%.1f MB with its secrets file), seeded through the storage API, "+
		"is copied by the real `nudgebot migrate -to-postgres` into an empty schema, then out of it by `nudgebot migrate -to-file` into a new file. "+
		"*copy* is the stream from the source into the target (for PostgreSQL, COPY inside the one transaction); *verify* reads the target back, "+
		"compares every kind's records and opens %d reflections on both sides; *in all* is the process from start to exit, which adds the "+
		"opening, for PostgreSQL the commit and ANALYZE, and for the file the full consistency check of the copy and the move into place. "+
		"Records are every kind counted in the table below.\n\n",
		b.opts.migSubs, deliveries, b.opts.migReflections, float64(srcSize)/1e6, min(100, b.opts.migReflections))
	sb.WriteString("| direction | records | copy | records/s (copy) | verify | in all | records/s (in all) | load |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range runs {
		fmt.Fprintf(&sb, "| %s | %d | %s | %.0f | %s | %s | %.0f | %s |\n", r.Direction, r.Records, r.Copy.Round(time.Millisecond), r.copyRate(),
			r.Verify.Round(time.Millisecond), r.Wall.Round(time.Millisecond), r.wallRate(), r.Load)
	}
	fmt.Fprintf(&sb, "\nSizes: the source file %.1f MB, the PostgreSQL tables with their indexes and TOAST %.1f MB, the file copied back %.1f MB.\n\n",
		float64(srcSize)/1e6, float64(pgSize)/1e6, float64(backSize)/1e6)
	if len(runs) > 0 {
		sb.WriteString("What `nudgebot migrate -to-postgres` printed:\n\n```\n" + strings.TrimRight(runs[0].Table, "\n") + "\n```\n")
	}
	return sb.String()
}
