package scheduler_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/app/scheduler"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/nudges/cronspec"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// clockedSlack is the core's messenger in memory, with the time of
// every nudge and digest posted, read from the test's clock.
type clockedSlack struct {
	now func() time.Time

	mu       sync.Mutex
	profiles map[string]app.Profile
	members  map[string][]string
	posts    int
	nudgeAt  map[string][]time.Time // DM channel → post times
	digests  map[string][]time.Time // channel → digest times
}

func newClockedSlack(now func() time.Time) *clockedSlack {
	return &clockedSlack{now: now, profiles: map[string]app.Profile{}, members: map[string][]string{},
		nudgeAt: map[string][]time.Time{}, digests: map[string][]time.Time{}}
}

func (c *clockedSlack) OpenDM(_ context.Context, userID string) (string, error) {
	return "D" + userID, nil
}

func (c *clockedSlack) PostNudge(_ context.Context, channel string, _ app.NudgeMessage, beforeSend func() error) (string, error) {
	if err := beforeSend(); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.posts++
	c.nudgeAt[channel] = append(c.nudgeAt[channel], c.now())
	return fmt.Sprintf("%d.000100", c.posts), nil
}

func (c *clockedSlack) UpdateNudge(context.Context, string, string, app.NudgeMessage) error {
	return nil
}

func (c *clockedSlack) FindNudge(context.Context, string, string, int, time.Time) (string, bool, error) {
	return "", false, nil
}

func (c *clockedSlack) Profile(_ context.Context, userID string) (app.Profile, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.profiles[userID], nil
}

func (c *clockedSlack) Channel(_ context.Context, channel string) (app.Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return app.Channel{Name: "team", Members: slices.Clone(c.members[channel])}, nil
}

func (c *clockedSlack) PostDigest(_ context.Context, channel, _ string, _ nudges.Digest, _ string, beforeSend func() error) error {
	if err := beforeSend(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.posts++
	c.digests[channel] = append(c.digests[channel], c.now())
	return nil
}

func (c *clockedSlack) PostPulse(_ context.Context, _, _ string, beforeSend func() error) error {
	return beforeSend()
}

func (c *clockedSlack) PostUpdate(context.Context, string, string, string) error { return nil }

func (c *clockedSlack) TellAboutDigest(context.Context, string, app.DigestNote) error { return nil }

func (c *clockedSlack) nudgesTo(channel string) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nudgeAt[channel])
}

func (c *clockedSlack) digestsIn(channel string) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.digests[channel])
}

// housekeepingLog records when housekeeping ran.
type housekeepingLog struct {
	scheduler.Housekeeping
	mu   sync.Mutex
	runs []time.Time
}

func (h *housekeepingLog) ApplyRetention(now time.Time) (int, error) {
	h.mu.Lock()
	h.runs = append(h.runs, now)
	h.mu.Unlock()
	return h.Housekeeping.ApplyRetention(now)
}

// scheduled is a core over a real bbolt file and the clocked fake
// messenger, with its scheduler; the clock starts at base and runs with
// the synctest bubble.
type scheduled struct {
	core  *app.Service
	db    *storage.DB
	slack *clockedSlack
	house *housekeepingLog
	now   func() time.Time
}

func newScheduled(t *testing.T, base time.Time, spec string, digests ...app.DigestPlan) *scheduled {
	t.Helper()
	start := time.Now()
	now := func() time.Time { return base.Add(time.Since(start)) }
	db := storagetest.Open(t, storage.Options{Now: now})
	cat, err := nudges.DefaultCatalog()
	if err != nil {
		t.Fatal(err)
	}
	sched, err := cronspec.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	sl := newClockedSlack(now)
	core, err := app.New(
		app.Ports{Subscribers: db, Settings: db, Deliveries: db, Reflections: db, Digests: db, Eraser: db, Exporter: db, Messenger: sl},
		app.Config{
			Catalog: cat, Calendar: nudges.Calendar{Default: sched, CatchUp: 2 * time.Hour, Fallback: time.UTC},
			Digests: digests, Clock: now,
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	return &scheduled{core: core, db: db, slack: sl, house: &housekeepingLog{Housekeeping: db}, now: now}
}

// run runs the scheduler for d of simulated time, ticking by itself
// every tick at the latest.
func (s *scheduled) run(t *testing.T, tick, d time.Duration, during func()) {
	t.Helper()
	sch := scheduler.New(s.core, scheduler.Config{Housekeeping: s.house, Tick: tick, Clock: s.now})
	stop := sch.Start(context.Background())
	if during != nil {
		during()
	}
	time.Sleep(d)
	stop()
	s.core.Flush()
}

type person struct {
	id, tz, clock string
}

func (s *scheduled) subscribe(t *testing.T, p person) {
	t.Helper()
	s.slack.mu.Lock()
	s.slack.profiles[p.id] = app.Profile{TZ: p.tz, DisplayName: p.id}
	s.slack.mu.Unlock()
	who := app.Person(p.id)
	if _, err := s.core.Subscribe(context.Background(), who, s.now()); err != nil {
		t.Fatal(err)
	}
	if p.clock == "" {
		return
	}
	if _, err := s.core.ChangeSettings(context.Background(), who, s.now(), app.SetTime(p.clock)); err != nil {
		t.Fatal(err)
	}
}

// Ensure the scheduler, over simulated days, delivers exactly one nudge
// per local day at the local time in each person's zone, including on
// the days clocks change: a slot inside the spring-forward gap fires
// once when the gap ends, and one inside the repeated autumn hour fires
// once, at its first occurrence.
func TestSchedulerDeliversOncePerLocalDayAcrossDST(t *testing.T) {
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
				s := newScheduled(t, tc.base, "0 9 * * *")
				people := []person{
					{"UNINE", tc.zone, ""},
					{"UEDGE", tc.zone, tc.edge},
					{"UTOKYO", "Asia/Tokyo", ""},
				}
				for _, p := range people {
					s.subscribe(t, p)
				}
				s.run(t, time.Minute, 5*24*time.Hour, nil)

				for _, p := range people {
					ploc, _ := time.LoadLocation(p.tz)
					perDay := map[string]int{}
					for _, at := range s.slack.nudgesTo("D" + p.id) {
						local := at.In(ploc)
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

// Ensure a scheduler that starts after the bot was down sends the slot
// missed within the catch-up window at once, and records as missed, not
// sent, the ones before it.
func TestSchedulerCatchesUpAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Subscribed Monday 08:00 UTC; the bot is down until Wednesday
		// 10:00, an hour after that day's slot.
		s := newScheduled(t, time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC), "0 9 * * *")
		s.subscribe(t, person{"UAWAY", "UTC", ""})
		time.Sleep(50 * time.Hour)
		s.run(t, time.Minute, time.Minute, nil)
		sent := s.slack.nudgesTo("DUAWAY")
		if len(sent) != 1 {
			t.Fatalf("%d nudges after the restart, want 1 (the slot within catch-up): %v", len(sent), sent)
		}
		if late := sent[0].Sub(time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)); late < time.Hour || late > time.Hour+time.Minute {
			t.Errorf("caught-up nudge sent %v after its slot, want it at the restart, an hour late", late)
		}
		ds, err := s.db.Deliveries("UAWAY", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var missed []string
		for _, d := range ds {
			if d.State == nudges.StateMissed {
				missed = append(missed, d.Slot.Format("Mon 15:04"))
			}
		}
		if want := "[Mon 09:00 Tue 09:00]"; fmt.Sprint(missed) != want {
			t.Errorf("missed slots %v, want %s", missed, want)
		}
	})
}

// Ensure each configured digest is posted at its own time in its own
// zone, over simulated weeks, and that the next digest a member is told
// of is the one that then comes.
func TestSchedulerPostsDigestsOnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		berlin, _ := time.LoadLocation("Europe/Berlin")
		fri, err := cronspec.Parse("0 16 * * FRI")
		if err != nil {
			t.Fatal(err)
		}
		plan, err := scheduler.Digest(team, fri, berlin)
		if err != nil {
			t.Fatal(err)
		}
		// robfig/cron fires on the bubble's clock (it starts on Saturday
		// 1 January 2000), so the test's clock starts there too.
		s := newScheduled(t, time.Now(), "0 9 * * *", plan)
		s.slack.members[team] = []string{"UOWNER001"}
		// What people are told comes next is what then comes, in the
		// digest's own zone.
		told := plan.When.Next(s.now())
		if told.Location() != berlin {
			t.Errorf("next digest told in %v, want Europe/Berlin", told.Location())
		}
		s.run(t, time.Minute, 15*24*time.Hour, nil)
		days := map[string]bool{}
		if got := s.slack.digestsIn(team); len(got) == 0 || !got[0].Equal(told) {
			t.Errorf("first digest at %v, but people were told %v", got, told)
		}
		for _, at := range s.slack.digestsIn(team) {
			local := at.In(berlin)
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

const team = "CTEAM0001"

// Ensure the scheduler wakes at the slot itself, not at its next poll,
// and early when a schedule changes: a person who subscribes while it
// sleeps (for up to an hour here) gets each nudge within a second of its
// slot, the first one 20 minutes later, well before the loop's next look.
func TestSchedulerWakesAtTheSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC) // Monday, 10:00 in Berlin
		s := newScheduled(t, base, "0 9 * * *")
		s.run(t, time.Hour, 3*24*time.Hour, func() {
			time.Sleep(10 * time.Minute) // the loop sleeps until 09:00 UTC
			s.subscribe(t, person{"UWAKE", "Europe/Berlin", "10:30"})
		})
		posts := s.slack.nudgesTo("DUWAKE")
		berlin, _ := time.LoadLocation("Europe/Berlin")
		if len(posts) != 3 || posts[0].In(berlin).Weekday() != time.Monday {
			t.Fatalf("%d nudges in three days (%v), want 3, the first today", len(posts), posts)
		}
		for _, at := range posts {
			local := at.In(berlin)
			slot := time.Date(local.Year(), local.Month(), local.Day(), 10, 30, 0, 0, berlin)
			if late := at.Sub(slot); late < 0 || late >= time.Second {
				t.Errorf("nudge at %s, %v after its 10:30 slot; want under a second", local.Format("Mon 15:04:05.000"), late)
			}
		}
	})
}

// Ensure a scheduler with nothing due sends nothing.
func TestSchedulerWithNothingDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduled(t, time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC), "0 9 * * *")
		s.run(t, time.Minute, 2*time.Hour, nil)
		if n := s.slack.posts; n != 0 {
			t.Fatalf("posts = %d, want 0", n)
		}
	})
}

// Ensure the hourly clean-up (and the compaction that may follow it,
// which holds every write for seconds on a large file) runs once an
// hour, off the hour and the half hour, when round-time nudges are due.
func TestHousekeepingOffTheHour(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduled(t, time.Now(), "0 9 * * *")
		s.run(t, time.Minute, 5*time.Hour, nil)
		s.house.mu.Lock()
		defer s.house.mu.Unlock()
		if len(s.house.runs) != 5 {
			t.Errorf("housekeeping ran %d times in 5 hours, want 5: %v", len(s.house.runs), s.house.runs)
		}
		for _, at := range s.house.runs {
			if m := at.Local().Minute(); m == 0 || m == 30 {
				t.Errorf("housekeeping ran at %s, on a round time when nudges are due", at.Local().Format("15:04"))
			}
		}
	})
}
