package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// benchUserID names the i-th simulated person. Fixed width keeps the ids
// in the same order as i, as Slack's own ids are not.
func benchUserID(i int) string { return fmt.Sprintf("UBENCH%07d", i) }

// seedResult is what seeding cost, for the report.
type seedResult struct {
	N        int
	Method   string // which storage call wrote them
	Took     time.Duration
	FileSize int64
}

// How a database was seeded, as the report names it.
const (
	seedOneByOne = "`UpdateSubscriber`, one transaction each"
	seedImport   = "`ImportSubscribers`, 5,000 per transaction"
)

func (r seedResult) perSecond() float64 { return float64(r.N) / r.Took.Seconds() }

// seed writes n subscribers into a new database at path through the
// storage API, fill setting each one's fields.
func seed(ctx context.Context, path string, n int, fill func(i int, s *nudges.Subscriber)) (seedResult, error) {
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		return seedResult{}, fmt.Errorf("open the database to seed: %w", err)
	}
	start := time.Now()
	for i := range n {
		if i%1000 == 0 && ctx.Err() != nil {
			db.Close()
			return seedResult{}, fmt.Errorf("seeding stopped after %d of %d: %w", i, n, ctx.Err())
		}
		id := benchUserID(i)
		_, err := db.UpdateSubscriber(id, func(s *nudges.Subscriber) error {
			fill(i, s)
			return nil
		})
		if err != nil {
			db.Close()
			return seedResult{}, fmt.Errorf("seed subscriber %d of %d: %w", i+1, n, err)
		}
	}
	return finishSeed(db, n, seedOneByOne, time.Since(start))
}

// importSeed writes n subscribers into a new database at path with one
// storage.ImportSubscribers call, fill setting each one's fields. The
// scenarios that seed 100,000 people, or seed again for every sub-run,
// use it; the others keep seed, which writes as a live bot would.
func importSeed(ctx context.Context, path string, n int, fill func(i int, s *nudges.Subscriber)) (seedResult, error) {
	subs := make([]nudges.Subscriber, n)
	for i := range subs {
		subs[i].UserID = benchUserID(i)
		fill(i, &subs[i])
	}
	if err := ctx.Err(); err != nil {
		return seedResult{}, fmt.Errorf("seeding stopped: %w", err)
	}
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		return seedResult{}, fmt.Errorf("open the database to seed: %w", err)
	}
	start := time.Now()
	if err := db.ImportSubscribers(subs); err != nil {
		db.Close()
		return seedResult{}, fmt.Errorf("seed %d subscribers: %w", n, err)
	}
	return finishSeed(db, n, seedImport, time.Since(start))
}

// finishSeed closes a seeded database and reports what seeding it took.
func finishSeed(db *storage.DB, n int, method string, took time.Duration) (seedResult, error) {
	size, err := db.Size()
	if err != nil {
		db.Close()
		return seedResult{}, fmt.Errorf("size of the seeded database: %w", err)
	}
	if err := db.Close(); err != nil {
		return seedResult{}, fmt.Errorf("close the seeded database: %w", err)
	}
	return seedResult{N: n, Method: method, Took: took, FileSize: size}, nil
}

// subscribed is a person who started nudges at seedTime, in UTC, with the
// DM channel already known so no conversations.open is needed.
func subscribed(s *nudges.Subscriber, seedTime time.Time, dm string) {
	s.Subscribed = true
	s.SubscribedAt = seedTime
	s.ProfileTZ = "UTC"
	s.DMChannel = dm
}

// spreadDue is the i-th of n due times spread evenly over the next 7
// days, starting 10 minutes out so nobody is due while measuring.
func spreadDue(now time.Time, i, n int) time.Time {
	first := now.Add(10 * time.Minute)
	span := 7*24*time.Hour - 10*time.Minute
	return first.Add(time.Duration(int64(span) / int64(n) * int64(i))).UTC()
}

// dmFor is the DM channel id the emulator gives userID ("D…"); the
// emulator's IMChannel says the same without needing a Server.
func dmFor(userID string) string { return "D" + userID[1:] }

// idleDB returns a fresh copy of a database with n subscribers, none due
// for the next 10 minutes. The first call for n seeds it and reports the
// seeding rate; later calls copy that file. It seeds one person per
// transaction, as a live bot writes them, so the file measured has the
// layout a real one grows into.
func (b *bench) idleDB(ctx context.Context, n int, dst string) error {
	if src, ok := b.seeded[n]; ok {
		return copyFile(dst, src)
	}
	dir, err := b.dir(fmt.Sprintf("seed-%d", n))
	if err != nil {
		return err
	}
	src := filepath.Join(dir, "seed.db")
	now := time.Now().UTC()
	b.progress("seeding %d subscribers through storage.UpdateSubscriber (one transaction each)", n)
	r, err := seed(ctx, src, n, func(i int, s *nudges.Subscriber) {
		id := benchUserID(i)
		subscribed(s, now, dmFor(id))
		s.NextDue = spreadDue(now, i, n)
	})
	if err != nil {
		return err
	}
	b.progress("seeded %d subscribers in %s (%.0f/s), file %.1f MB", r.N, r.Took.Round(time.Millisecond), r.perSecond(), float64(r.FileSize)/1e6)
	b.seedStats = append(b.seedStats, r)
	b.seeded[n] = src
	return copyFile(dst, src)
}
