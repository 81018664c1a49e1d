package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// sizePGResult is what kept deliveries cost in PostgreSQL.
type sizePGResult struct {
	People, Days int
	Import       time.Duration
	Vacuum       time.Duration // VACUUM ANALYZE and the size query
	Total, Heap  int64         // bytes: table with indexes and TOAST; heap alone
	Indexes      int64
	Load         loadSpan
}

func (r sizePGResult) n() int { return r.People * r.Days }

func (r sizePGResult) perDelivery(bytes int64) float64 {
	if r.n() == 0 {
		return 0
	}
	return float64(bytes) / float64(r.n())
}

// sizePGScenario fills a fresh database with deliveries as kept for
// retention (storagetest.KeptDelivery, the same records as pgstore's
// BenchmarkKeptDeliverySize) and reads the deliveries table's size after
// a VACUUM.
func (b *bench) sizePGScenario(ctx context.Context) (string, error) {
	srv, err := b.pgServer(ctx)
	if err != nil {
		return "", err
	}
	r := sizePGResult{People: b.opts.sizePGPeople, Days: b.opts.sizePGDays}
	db, err := srv.createDB(ctx, "size")
	if err != nil {
		return "", err
	}
	defer b.release(db)
	s, err := openPG(ctx, db)
	if err != nil {
		return "", err
	}
	defer s.Close()
	b.progress("size-pg: %d people × %d days of kept deliveries into %s", r.People, r.Days, db.Name)
	r.Load.Before = readLoad()
	start := time.Now()
	first := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for d := range r.Days {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		ds := make([]nudges.Delivery, r.People)
		for p := range ds {
			ds[p] = storagetest.KeptDelivery(benchUserID(p), first.AddDate(0, 0, d))
		}
		if err := s.ImportDeliveries(ds); err != nil {
			return "", fmt.Errorf("import day %d of %d: %w", d+1, r.Days, err)
		}
	}
	r.Import = time.Since(start)
	start = time.Now()
	if r.Total, r.Heap, err = s.DeliverySize(ctx); err != nil {
		return "", fmt.Errorf("size of the deliveries table: %w", err)
	}
	r.Vacuum = time.Since(start)
	if r.Indexes, err = indexesSize(ctx, db); err != nil {
		return "", err
	}
	r.Load.After = readLoad()
	b.progress("size-pg: %d deliveries: %.0f bytes each (heap %.0f, indexes %.0f)", r.n(), r.perDelivery(r.Total), r.perDelivery(r.Heap), r.perDelivery(r.Indexes))
	return b.sizePGSection(srv, r), nil
}

// indexesSize is the deliveries table's indexes, in bytes.
func indexesSize(ctx context.Context, db *pgDB) (int64, error) {
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		return 0, fmt.Errorf("size of the deliveries' indexes: %w", err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(ctx, "SELECT pg_indexes_size('deliveries')").Scan(&n); err != nil {
		return 0, fmt.Errorf("size of the deliveries' indexes: %w", err)
	}
	return n, nil
}

func (b *bench) sizePGSection(srv *pgServer, r sizePGResult) string {
	var sb strings.Builder
	b.pgSectionHead(&sb, "size-pg", srv)
	sb.WriteString("Reproduce: `go run ./cmd/nudgebot-bench -scenarios size-pg` (`-size-pg-people`, `-size-pg-days` and `-pg-url` change it); " +
		"the same measure at 20,000 deliveries is `go test -run '^$' -bench KeptDeliverySize ./storage/pgstore/`.\n\n")
	fmt.Fprintf(&sb, "%d people with one delivery a day for %d days, each as retention keeps it: sent and answered (`storagetest.KeptDelivery`, the records of "+
		"pgstore's `BenchmarkKeptDeliverySize`), written with `ImportDeliveries` one day at a time into a fresh database. Then `VACUUM ANALYZE deliveries`, "+
		"and the table's size from `pg_total_relation_size` (heap, indexes and TOAST), `pg_relation_size` (heap) and `pg_indexes_size`.\n\n", r.People, r.Days)
	sb.WriteString("| deliveries | per delivery: all | heap | indexes | TOAST and the rest | table in all | import | vacuum | load 1m before→after |\n")
	sb.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	rest := r.Total - r.Heap - r.Indexes
	fmt.Fprintf(&sb, "| %d | **%.0f bytes** | %.0f bytes | %.0f bytes | %.0f bytes | %.1f MB | %s | %s | %s |\n",
		r.n(), r.perDelivery(r.Total), r.perDelivery(r.Heap), r.perDelivery(r.Indexes), r.perDelivery(rest), float64(r.Total)/1e6,
		r.Import.Round(time.Millisecond), r.Vacuum.Round(time.Millisecond), r.Load)
	sb.WriteString("\nThis is the steady cost of history: a year of one nudge a day for 1,000 people is 365,000 deliveries. " +
		"Section 7 gives the bbolt file's bytes per kept delivery under retention.\n")
	return sb.String()
}
