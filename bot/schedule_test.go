package bot

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// testBot builds a Bot over a real bbolt file and the in-memory Web API,
// with a clock that starts at base and runs with the synctest bubble.
func testBot(t *testing.T, base time.Time, spec string) (*Bot, *storage.DB, *fakeAPI, func() time.Time) {
	t.Helper()
	start := time.Now()
	now := func() time.Time { return base.Add(time.Since(start)) }
	db, err := storage.Open(filepath.Join(t.TempDir(), "nudgebot.db"), storage.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	cat, err := nudges.DefaultCatalog()
	if err != nil {
		t.Fatal(err)
	}
	sched, err := nudges.ParseSchedule(spec)
	if err != nil {
		t.Fatal(err)
	}
	api := newFakeAPI(now)
	sl := NewSlack(SlackOptions{BotToken: "xoxb-test", AppToken: "xapp-test", api: api})
	wake := make(chan struct{}, 1)
	core, err := app.New(
		app.Ports{Subscribers: db, Settings: db, Deliveries: db, Reflections: db, Digests: db, Eraser: db, Exporter: db, Messenger: sl},
		app.Config{
			Catalog: cat, Calendar: nudges.Calendar{Default: sched, CatchUp: 2 * time.Hour, Fallback: time.UTC}, Clock: now,
			Wake: func() {
				select {
				case wake <- struct{}{}:
				default:
				}
			},
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{AppToken: "xapp-test", Slack: sl, Core: core, Envelopes: db, Now: now, Tick: time.Minute, Wake: wake})
	if err != nil {
		t.Fatal(err)
	}
	return b, db, api, now
}

type person struct {
	id, tz, clock string
}

func subscribe(t *testing.T, b *Bot, api *fakeAPI, now time.Time, p person) {
	t.Helper()
	api.mu.Lock()
	api.zones[p.id] = p.tz
	api.mu.Unlock()
	who := app.Person(p.id)
	if _, err := b.core.Subscribe(context.Background(), who, now); err != nil {
		t.Fatal(err)
	}
	if p.clock == "" {
		return
	}
	if _, err := b.core.ChangeSettings(context.Background(), who, now, app.SetTime(p.clock)); err != nil {
		t.Fatal(err)
	}
}

// Ensure robfig/cron's real scheduler, driving the bot's tick over
// simulated days, delivers exactly one nudge per local day at the local
// time in each person's zone, including on the days clocks change: a
// slot inside the spring-forward gap fires once when the gap ends, and
// one inside the repeated autumn hour fires once, at its first occurrence.
func TestCronDeliversOncePerLocalDayAcrossDST(t *testing.T) {
	cases := []struct {
		name   string
		base   time.Time
		change string // the local date clocks change
		zone   string
		edge   string // a wall time inside the gap (spring) or the repeated hour (autumn)
		spring bool
	}{
		{"NewYorkSpring", time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC), "2026-03-08", "America/New_York", "02:30", true},
		{"NewYorkAutumn", time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC), "2026-11-01", "America/New_York", "01:30", false},
		{"BerlinSpring", time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC), "2026-03-29", "Europe/Berlin", "02:30", true},
		{"BerlinAutumn", time.Date(2026, 10, 23, 0, 0, 0, 0, time.UTC), "2026-10-25", "Europe/Berlin", "02:30", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, _, api, now := testBot(t, tc.base, "0 9 * * *")
				people := []person{
					{"UNINE", tc.zone, ""},
					{"UEDGE", tc.zone, tc.edge},
					{"UTOKYO", "Asia/Tokyo", ""},
				}
				for _, p := range people {
					subscribe(t, b, api, now(), p)
				}
				stop := b.startScheduler()
				time.Sleep(5 * 24 * time.Hour)
				stop()
				b.work.Wait()

				for _, p := range people {
					ploc, _ := time.LoadLocation(p.tz)
					posts := api.postsTo("D" + p.id)
					perDay := map[string]int{}
					for _, post := range posts {
						local := post.At.In(ploc)
						day := local.Format("2006-01-02")
						perDay[day]++
						want := "09:00"
						if p.clock != "" {
							want = p.clock
						}
						edgeDay := p.id == "UEDGE" && day == tc.change
						if edgeDay && tc.spring {
							want = "03:00" // the gap's end
						}
						if got := local.Format("15:04"); got != want {
							t.Errorf("%s: nudge on %s at %s local, want %s", p.id, day, got, want)
						}
						if edgeDay && !tc.spring && !local.IsDST() {
							t.Errorf("%s: nudge on %s at the second %s (standard time), want the first", p.id, day, p.clock)
						}
					}
					for day, n := range perDay {
						if n != 1 {
							t.Errorf("%s: %d nudges on %s, want exactly 1", p.id, n, day)
						}
					}
					if len(perDay) < 4 {
						t.Errorf("%s: nudges on %d days in 5 simulated days, want at least 4 (%v)", p.id, len(perDay), perDay)
					}
					if p.id == "UEDGE" && perDay[tc.change] != 1 {
						t.Errorf("%s: %d nudges on the change day %s, want 1", p.id, perDay[tc.change], tc.change)
					}
				}
			})
		})
	}
}

// Ensure a tick that finds nothing due does no work and sends nothing.
func TestTickWithNothingDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, api, _ := testBot(t, time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC), "0 9 * * *")
		b.Tick(context.Background())
		if n := len(api.posts); n != 0 {
			t.Fatalf("posts = %d, want 0", n)
		}
	})
}

// Ensure robfig/cron's real scheduler posts each configured digest at its
// own time in its own zone, over simulated weeks.
func TestCronPostsDigestsOnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bot's clock is the bubble's own (it starts on Saturday 1
		// January 2000), the clock robfig/cron reads too.
		b, _, api, _ := testBot(t, time.Now(), "0 9 * * *")
		berlin, _ := time.LoadLocation("Europe/Berlin")
		b.opts.Digests = []DigestTarget{{Channel: "CTEAM0001", Schedule: "0 16 * * FRI", Location: berlin}}
		stop := b.startScheduler()
		time.Sleep(15 * 24 * time.Hour)
		stop()
		b.work.Wait()
		days := map[string]bool{}
		for _, p := range api.postsTo("CTEAM0001") {
			local := p.At.In(berlin)
			if got := local.Format("Mon 15:04"); got != "Fri 16:00" {
				t.Errorf("digest posted %s Berlin time, want Fri 16:00", got)
			}
			days[local.Format("2006-01-02")] = true
		}
		if len(days) != 2 {
			t.Errorf("digests on %d Fridays in 15 days, want 2: %v", len(days), days)
		}
	})
}

// Ensure the scheduler wakes at the slot itself, not at its next poll,
// and early when a schedule changes: a person who subscribes while it
// sleeps (for up to an hour here) gets each nudge within a second of its
// slot, the first one 20 minutes later, well before the loop's next look.
func TestSchedulerWakesAtTheSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC) // Monday, 10:00 in Berlin
		b, _, api, now := testBot(t, base, "0 9 * * *")
		b.opts.Tick = time.Hour
		stop := b.startScheduler()
		time.Sleep(10 * time.Minute) // the loop sleeps until 09:00 UTC
		subscribe(t, b, api, now(), person{"UWAKE", "Europe/Berlin", "10:30"})
		time.Sleep(3 * 24 * time.Hour)
		stop()
		b.work.Wait()
		posts := api.postsTo("DUWAKE")
		berlin, _ := time.LoadLocation("Europe/Berlin")
		if len(posts) != 3 || posts[0].At.In(berlin).Weekday() != time.Monday {
			t.Fatalf("%d nudges in three days (%v), want 3, the first today", len(posts), posts)
		}
		for _, p := range posts {
			local := p.At.In(berlin)
			slot := time.Date(local.Year(), local.Month(), local.Day(), 10, 30, 0, 0, berlin)
			if late := p.At.Sub(slot); late < 0 || late >= time.Second {
				t.Errorf("nudge at %s, %v after its 10:30 slot; want under a second", local.Format("Mon 15:04:05.000"), late)
			}
		}
	})
}

// retentionClock records when housekeeping ran.
type retentionClock struct {
	Envelopes
	mu   sync.Mutex
	runs []time.Time
}

func (r *retentionClock) ApplyRetention(now time.Time) (int, error) {
	r.mu.Lock()
	r.runs = append(r.runs, now)
	r.mu.Unlock()
	return r.Envelopes.ApplyRetention(now)
}

// Ensure the hourly clean-up (and the compaction that may follow it,
// which holds every write for seconds on a large file) runs once an
// hour, off the hour and the half hour, when round-time nudges are due.
func TestHousekeepingOffTheHour(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, _, _ := testBot(t, time.Now(), "0 9 * * *")
		rec := &retentionClock{Envelopes: b.envelopes}
		b.envelopes = rec
		stop := b.startScheduler()
		time.Sleep(5 * time.Hour)
		stop()
		b.work.Wait()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.runs) != 5 {
			t.Errorf("housekeeping ran %d times in 5 hours, want 5: %v", len(rec.runs), rec.runs)
		}
		for _, at := range rec.runs {
			if m := at.Local().Minute(); m == 0 || m == 30 {
				t.Errorf("housekeeping ran at %s, on a round time when nudges are due", at.Local().Format("15:04"))
			}
		}
	})
}
