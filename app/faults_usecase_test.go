package app_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// errDisk is the store failing.
var errDisk = errors.New("input/output error")

// brokenDisk is the database with every call below failing, as a disk
// that went bad under a running bot would.
type brokenDisk struct{ *storage.DB }

func (brokenDisk) Subscriber(string) (nudges.Subscriber, error) { return nudges.Subscriber{}, errDisk }
func (brokenDisk) UpdateSubscriber(string, func(*nudges.Subscriber) error) (nudges.Subscriber, error) {
	return nudges.Subscriber{}, errDisk
}
func (brokenDisk) CountSubscribers() (int, int, error)                     { return 0, 0, errDisk }
func (brokenDisk) Due(time.Time, int) ([]string, error)                    { return nil, errDisk }
func (brokenDisk) OldestDue() (time.Time, bool, error)                     { return time.Time{}, false, errDisk }
func (brokenDisk) Pending() ([]nudges.Delivery, error)                     { return nil, errDisk }
func (brokenDisk) Deliveries(string, time.Time) ([]nudges.Delivery, error) { return nil, errDisk }
func (brokenDisk) PausedAll() (time.Time, error)                           { return time.Time{}, errDisk }
func (brokenDisk) SetPausedAll(time.Time) error                            { return errDisk }
func (brokenDisk) StrategyLines() ([]string, bool, error)                  { return nil, false, errDisk }
func (brokenDisk) SetStrategyLines([]string) error                         { return errDisk }
func (brokenDisk) Reflection(string, int) (nudges.Reflection, error) {
	return nudges.Reflection{}, errDisk
}
func (brokenDisk) Reflections(string, int) ([]nudges.Reflection, error) {
	return nil, errDisk
}
func (brokenDisk) SearchReflections(string, string, int) ([]nudges.Reflection, error) {
	return nil, errDisk
}
func (brokenDisk) UpdateReflection(string, int, func(*nudges.Reflection) error) (nudges.Reflection, error) {
	return nudges.Reflection{}, errDisk
}
func (brokenDisk) DeleteReflection(string, int) error { return errDisk }
func (brokenDisk) SaveReflection(nudges.Reflection) (nudges.Reflection, error) {
	return nudges.Reflection{}, errDisk
}
func (brokenDisk) ReflectionByMessage(string, string) (nudges.Reflection, error) {
	return nudges.Reflection{}, errDisk
}
func (brokenDisk) Forget(string) error                                        { return errDisk }
func (brokenDisk) NeedsCompaction() bool                                      { return true }
func (brokenDisk) Compact() error                                             { return errDisk }
func (brokenDisk) ExportPerson(string, func(nudges.PersonRecord) error) error { return errDisk }
func (brokenDisk) PostedDigest(string) (nudges.PostedDigest, error) {
	return nudges.PostedDigest{}, errDisk
}
func (brokenDisk) VotePulse(string, string, int) (bool, error) { return false, errDisk }
func (brokenDisk) AddHearMore(string, string, string) error    { return errDisk }

// onBrokenDisk rebuilds the core over a store that fails every call.
func onBrokenDisk(t *testing.T, tc *testCore) {
	t.Helper()
	bd := brokenDisk{tc.db}
	tc.rebuild(t, coreOptions{ports: func(p *app.Ports) {
		p.Subscribers, p.Settings, p.Deliveries, p.Reflections, p.Digests, p.Eraser, p.Exporter = bd, bd, bd, bd, bd, bd, bd
	}})
}

// Ensure a store that fails makes every use case answer with an error
// that carries the cause, never a refusal, a false success or a panic.
func TestUseCasesWhenTheDiskFails(t *testing.T) {
	ctx := context.Background()
	me, boss := app.Person(owner), app.Person(admin)
	strategyAdd, _ := nudges.ParseStrategyArgs("add Grow")
	cases := map[string]func(tc *testCore) error{
		"subscribe":   func(tc *testCore) error { _, err := tc.Subscribe(ctx, me, tc.now); return err },
		"unsubscribe": func(tc *testCore) error { _, err := tc.Unsubscribe(ctx, me, tc.now); return err },
		"change settings": func(tc *testCore) error {
			_, err := tc.ChangeSettings(ctx, me, tc.now, app.SetTime("10:00"))
			return err
		},
		"status":             func(tc *testCore) error { _, err := tc.Status(ctx, me, tc.now); return err },
		"home":               func(tc *testCore) error { _, err := tc.Home(ctx, me, tc.now); return err },
		"profile changed":    func(tc *testCore) error { return tc.ProfileChanged(owner, app.Profile{TZ: "UTC"}, tc.now) },
		"nudge now":          func(tc *testCore) error { _, err := tc.NudgeNow(ctx, me, tc.now); return err },
		"reflect":            func(tc *testCore) error { _, err := tc.Reflect(ctx, me, app.Reflection{Text: "t"}, tc.now); return err },
		"list reflections":   func(tc *testCore) error { _, err := tc.ListReflections(ctx, me, 5); return err },
		"search reflections": func(tc *testCore) error { _, err := tc.SearchReflections(ctx, me, "t", 5); return err },
		"delete a reflection": func(tc *testCore) error {
			return tc.DeleteReflection(ctx, me, 1)
		},
		"edit in the DM":    func(tc *testCore) error { return tc.EditInDM(ctx, me, "1.000100", "t") },
		"answer commitment": func(tc *testCore) error { _, err := tc.AnswerCommitment(ctx, me, 1, true, tc.now); return err },
		"draft an update":   func(tc *testCore) error { _, err := tc.DraftUpdate(ctx, me, 1); return err },
		"export":            func(tc *testCore) error { _, err := tc.Export(ctx, me, tc.now); return err },
		"forget":            func(tc *testCore) error { return tc.Forget(ctx, me, owner) },
		"admin stats":       func(tc *testCore) error { _, err := tc.AdminStats(ctx, boss, tc.now); return err },
		"admin person":      func(tc *testCore) error { _, err := tc.AdminPerson(ctx, boss, owner, tc.now); return err },
		"pause everyone":    func(tc *testCore) error { return tc.PauseAll(ctx, boss, tc.now.Add(time.Hour)) },
		"strategy":          func(tc *testCore) error { _, err := tc.Strategy(ctx, boss, strategyAdd); return err },
		"run a digest":      func(tc *testCore) error { _, err := tc.RunDigest(ctx, team, tc.now); return err },
		"preview a digest": func(tc *testCore) error {
			_, err := tc.PreviewDigest(ctx, app.Person(member), team, tc.now)
			return err
		},
		"vote":      func(tc *testCore) error { _, err := tc.VotePulse(ctx, me, app.PulseID(team, tc.now), 3); return err },
		"hear more": func(tc *testCore) error { return tc.HearMore(ctx, me, app.PulseID(team, tc.now), "t") },
	}
	for name, call := range cases {
		t.Run(name, func(t *testing.T) {
			tc := newTestCore(t)
			tc.deliver(t, owner)
			if _, err := tc.RunDigest(ctx, team, tc.now); err != nil { // a pulse to answer
				t.Fatal(err)
			}
			onBrokenDisk(t, tc)
			err := call(tc)
			if !errors.Is(err, errDisk) || app.IsForbidden(err) {
				t.Errorf("err = %v, want the disk's failure", err)
			}
		})
	}
}

// Ensure the scheduler survives a failing store: it sends nothing, says
// it has nothing planned, and the profile refresh gives up quietly.
func TestSchedulerWhenTheDiskFails(t *testing.T) {
	tc := newTestCore(t)
	tc.subscribe(t, owner)
	onBrokenDisk(t, tc)
	tc.now = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	tc.Tick(context.Background(), tc.now)
	if n := len(tc.slack.postsTo("D" + owner)); n != 0 {
		t.Errorf("posts = %d on a failing disk", n)
	}
	if _, ok := tc.NextWake(); ok {
		t.Error("a wake time from a store that cannot be read")
	}
	tc.RefreshProfiles(context.Background(), tc.now)
}

// partlyBroken fails only the reads a use case can do without.
type partlyBroken struct{ *storage.DB }

func (partlyBroken) PausedAll() (time.Time, error)          { return time.Time{}, errDisk }
func (partlyBroken) StrategyLines() ([]string, bool, error) { return nil, false, errDisk }
func (partlyBroken) Reflections(string, int) ([]nudges.Reflection, error) {
	return nil, errDisk
}

// Ensure a read that only adds to an answer does not take the answer
// down: nudges go out when the company pause cannot be read, the
// config's strategy lines stand in for the admins', and App Home shows
// the person's state without their reflections.
func TestOptionalReadsFailSoftly(t *testing.T) {
	tc := newTestCore(t)
	tc.subscribe(t, owner)
	pb := partlyBroken{tc.db}
	tc.rebuild(t, coreOptions{
		edit:  func(c *app.Config) { c.StrategyLines = []string{"From the config"} },
		ports: func(p *app.Ports) { p.Settings, p.Reflections = pb, pb },
	})
	ctx := context.Background()
	tc.now = tc.sub(t, owner).NextDue
	tc.Tick(ctx, tc.now)
	if n := len(tc.slack.postsTo("D" + owner)); n != 1 {
		t.Errorf("posts = %d, want the day's nudge", n)
	}
	show, _ := nudges.ParseStrategyArgs("show")
	if lines, err := tc.Strategy(ctx, app.Person(admin), show); err != nil || len(lines) != 1 || lines[0] != "From the config" {
		t.Errorf("strategy = %q, %v; want the config's", lines, err)
	}
	h, err := tc.Home(ctx, app.Person(owner), tc.now)
	if err != nil || !h.Known || h.Reflections != nil {
		t.Errorf("home = known %v, reflections %v, %v", h.Known, h.Reflections, err)
	}
}

// unreadableExporter hands out one record it cannot open besides the
// real ones.
type unreadableExporter struct{ *storage.DB }

func (u unreadableExporter) ExportPerson(userID string, fn func(nudges.PersonRecord) error) error {
	bad := &nudges.Unreadable{Kind: nudges.KindReflection, UserID: userID, Seq: 7, Reason: nudges.UnreadableDamaged, Detail: "cipher: message authentication failed"}
	if err := fn(nudges.PersonRecord{Unreadable: bad}); err != nil {
		return err
	}
	return u.DB.ExportPerson(userID, fn)
}

// Ensure a record that cannot be opened is counted in the export, not
// silently left out, and the rest still comes.
func TestExportCountsUnreadableRecords(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	if _, err := tc.Reflect(ctx, app.Person(owner), app.Reflection{Text: "readable"}, tc.now); err != nil {
		t.Fatal(err)
	}
	tc.rebuild(t, coreOptions{ports: func(p *app.Ports) { p.Exporter = unreadableExporter{tc.db} }})
	ex, err := tc.Export(ctx, app.Person(owner), tc.now)
	if err != nil || ex.Unreadable != 1 || len(ex.Reflections) != 1 {
		t.Errorf("export = %d unreadable, %d reflections, %v; want 1 and 1", ex.Unreadable, len(ex.Reflections), err)
	}
}

// Ensure no reflection's words reach the log, through every use case
// that handles them, failures included.
func TestReflectionsNeverLogged(t *testing.T) {
	const secret = "Priya-is-thinking-of-leaving"
	var logs bytes.Buffer
	tc, fs := newFaultyCore(t)
	tc.rebuild(t, coreOptions{messenger: fs, edit: func(c *app.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	ctx := context.Background()
	me := app.Person(owner)
	tc.slack.members[team] = teamOfFive
	for _, p := range teamOfFive[1:] {
		tc.subscribe(t, p)
	}
	d := tc.deliver(t, owner)
	steps := []func() error{
		func() error {
			_, err := tc.Reflect(ctx, me, app.Reflection{Text: secret, Commitment: secret, Share: nudges.ShareAnonymous, ShareChannel: team}, tc.now)
			return err
		},
		func() error {
			_, err := tc.ReplyInDM(ctx, me, app.DMMessage{TS: "9.000100", ThreadTS: d.TS, Text: secret}, tc.now)
			return err
		},
		func() error { return tc.EditInDM(ctx, me, "9.000100", secret+" edited") },
		func() error { _, err := tc.Export(ctx, me, tc.now); return err },
		func() error { return tc.PostUpdate(ctx, me, team, secret) },
		func() error {
			fs.set(func(f *faultySlack) { f.digestErr = errSlackDown })
			_, err := tc.RunDigest(ctx, team, tc.now.Add(time.Hour))
			if errors.Is(err, errSlackDown) {
				return nil
			}
			return err
		},
		func() error {
			tc.now = time.Date(2026, 3, 5, 8, 0, 0, 0, time.UTC) // the commitment is quoted back
			tc.slack.postErr = errors.New("connection reset")
			tc.Tick(ctx, tc.now)
			tc.now = tc.now.Add(time.Minute) // past the settle time: looked for, then sent
			tc.Tick(ctx, tc.now)
			if posts := tc.slack.postsTo("D" + owner); posts[len(posts)-1].followUp == nil {
				return errors.New("the commitment was not quoted back")
			}
			return nil
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("nothing was logged; the test sees nothing")
	}
	if strings.Contains(logs.String(), "Priya") {
		t.Errorf("a reflection's words reached the log:\n%s", logs.String())
	}
}
