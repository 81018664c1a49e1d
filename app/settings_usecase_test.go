package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure each settings change moves the person's next nudge to what the
// change asks for, in their own zone: the core reschedules, not the
// caller. The person is in Berlin; it is Monday 2 March, 08:00 there.
func TestChangeSettingsReschedules(t *testing.T) {
	ber := zone(t, "Europe/Berlin")
	tokyo := zone(t, "Asia/Tokyo")
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, ber)
	day := func(n, h, m int) time.Time { return at(monday.AddDate(0, 0, n), ber, h, m) }
	tueThu := nudges.Weekdays(0).With(time.Tuesday).With(time.Thursday)
	cases := []struct {
		name    string
		changes []app.Change
		next    time.Time
		check   func(t *testing.T, s nudges.Subscriber)
	}{
		{"no change keeps 09:00 today", nil, day(0, 9, 0), nil},
		{"a later time today", []app.Change{app.SetTime("08:30")}, day(0, 8, 30), func(t *testing.T, s nudges.Subscriber) {
			if s.Time != "08:30" {
				t.Errorf("time = %q", s.Time)
			}
		}},
		{"a time already past today is tomorrow", []app.Change{app.SetTime("07:00")}, day(1, 7, 0), nil},
		{"days leave today out", []app.Change{app.SetDays(tueThu)}, day(1, 9, 0), func(t *testing.T, s nudges.Subscriber) {
			if s.Days != tueThu {
				t.Errorf("days = %v", s.Days)
			}
		}},
		{"time and days together", []app.Change{app.SetDays(tueThu), app.SetTime("19:00")}, day(1, 19, 0), nil},
		{"a zone of their own", []app.Change{app.SetZone(tokyo)}, at(monday.AddDate(0, 0, 1), tokyo, 9, 0), func(t *testing.T, s nudges.Subscriber) {
			if s.TZOverride != "Asia/Tokyo" || s.ProfileTZ != "Europe/Berlin" {
				t.Errorf("zones = override %q, profile %q", s.TZOverride, s.ProfileTZ)
			}
		}},
		{"a week's pause", []app.Change{app.PauseFor("1w")}, day(7, 9, 0), func(t *testing.T, s nudges.Subscriber) {
			if want := day(7, 8, 0); !s.PausedUntil.Equal(want) {
				t.Errorf("paused until %v, want %v", s.PausedUntil, want)
			}
		}},
		{"a pause until a date, read in their zone", []app.Change{app.PauseFor("until 2026-03-05")}, day(3, 9, 0), func(t *testing.T, s nudges.Subscriber) {
			if want := day(3, 0, 0); !s.PausedUntil.Equal(want) {
				t.Errorf("paused until %v, want midnight in Berlin %v", s.PausedUntil, want)
			}
		}},
		{"resume ends a pause", []app.Change{app.PauseFor("2w"), app.Resume()}, day(0, 9, 0), func(t *testing.T, s nudges.Subscriber) {
			if !s.PausedUntil.IsZero() {
				t.Errorf("still paused until %v", s.PausedUntil)
			}
		}},
		{"focus is kept", []app.Change{app.SetFocus("lead")}, day(0, 9, 0), func(t *testing.T, s nudges.Subscriber) {
			if s.Focus != "lead" {
				t.Errorf("focus = %q", s.Focus)
			}
		}},
		{"contexts are kept", []app.Change{app.SetContexts(nudges.Situation{Known: true, Has: nudges.ContextsOf(nudges.ContextStandup)})}, day(0, 9, 0), func(t *testing.T, s nudges.Subscriber) {
			if !s.Contexts.Known || s.Contexts.Has != nudges.ContextsOf(nudges.ContextStandup) {
				t.Errorf("contexts = %+v", s.Contexts)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc := newTestCore(t)
			tc.subscribe(t, owner)
			got, err := tc.ChangeSettings(context.Background(), app.Person(owner), tc.now, c.changes...)
			if err != nil {
				t.Fatal(err)
			}
			if !got.NextDue.Equal(c.next) {
				t.Errorf("next due = %v, want %v", got.NextDue.In(ber), c.next)
			}
			stored := tc.sub(t, owner)
			if !stored.NextDue.Equal(got.NextDue) {
				t.Errorf("stored next due %v differs from the answer %v", stored.NextDue, got.NextDue)
			}
			if c.check != nil {
				c.check(t, stored)
			}
		})
	}
}

// Ensure a change that cannot be read changes nothing at all, not even
// the changes before it, and says why in a typed error.
func TestChangeSettingsBadInputChangesNothing(t *testing.T) {
	tc := newTestCore(t)
	tc.subscribe(t, owner)
	before := tc.sub(t, owner)
	_, err := tc.ChangeSettings(context.Background(), app.Person(owner), tc.now, app.SetTime("10:00"), app.PauseFor("forever and ever"))
	if !errors.Is(err, nudges.ErrInvalidInput) {
		t.Fatalf("err = %v, want invalid input", err)
	}
	after := tc.sub(t, owner)
	if after.Time != before.Time || !after.NextDue.Equal(before.NextDue) || !after.PausedUntil.IsZero() {
		t.Errorf("a refused change was applied: before %+v, after %+v", before, after)
	}
}

// Ensure a paused person gets no nudge during the pause and gets the
// first one after it.
func TestPausedPersonIsNotNudged(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.subscribe(t, owner)
	if _, err := tc.ChangeSettings(ctx, app.Person(owner), tc.now, app.PauseFor("2d")); err != nil {
		t.Fatal(err)
	}
	ber := berlin(t)
	for day := range 3 {
		tc.now = at(tc.now, ber, 9, 0).AddDate(0, 0, min(day, 1))
		tc.Tick(ctx, tc.now)
	}
	posts := tc.slack.postsTo("D" + owner)
	if len(posts) != 1 {
		t.Fatalf("posts = %d, want only the one after the pause", len(posts))
	}
	if d := tc.delivery(t, posts[0].deliveryID); !d.Slot.Equal(time.Date(2026, 3, 4, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("the first nudge after a pause ending Wednesday 08:00 went for %v", d.Slot)
	}
}

// Ensure a setting change wakes the scheduler (it may be due sooner than
// the scheduler planned to look), and a refused one does not.
func TestChangeSettingsWakesTheScheduler(t *testing.T) {
	tc := newTestCore(t)
	woke := func() bool {
		select {
		case <-tc.Wakes():
			return true
		default:
			return false
		}
	}
	ctx := context.Background()
	tc.subscribe(t, owner)
	if !woke() {
		t.Error("subscribing did not wake the scheduler")
	}
	if _, err := tc.ChangeSettings(ctx, app.Person(owner), tc.now, app.SetTime("07:30")); err != nil {
		t.Fatal(err)
	}
	if !woke() {
		t.Error("a new time did not wake the scheduler")
	}
	if _, err := tc.ChangeSettings(ctx, app.Person(owner), tc.now, app.PauseFor("")); err == nil {
		t.Fatal("an empty pause was accepted")
	}
	if woke() {
		t.Error("a refused change woke the scheduler")
	}
}

// Ensure nobody can change settings without being someone: the change
// applies to the actor's own record, and an empty actor is refused.
func TestChangeSettingsNeedsAPerson(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.subscribe(t, owner)
	for name, call := range map[string]func() error{
		"change settings": func() error {
			_, err := tc.ChangeSettings(ctx, app.Actor{}, tc.now, app.SetTime("10:00"))
			return err
		},
		"follow the profile zone": func() error { _, err := tc.FollowProfileZone(ctx, app.Actor{}, tc.now); return err },
		"subscribe":               func() error { _, err := tc.Subscribe(ctx, app.Actor{}, tc.now); return err },
		"unsubscribe":             func() error { _, err := tc.Unsubscribe(ctx, app.Actor{}, tc.now); return err },
		"status":                  func() error { _, err := tc.Status(ctx, app.Actor{}, tc.now); return err },
		"nudge now":               func() error { _, err := tc.NudgeNow(ctx, app.Actor{}, tc.now); return err },
	} {
		if err := call(); !app.IsForbidden(err) {
			t.Errorf("%s with nobody acting: err = %v, want a refusal", name, err)
		}
	}
	if got := tc.sub(t, owner); got.Time != "" {
		t.Errorf("the owner's time changed to %q", got.Time)
	}
}

// Ensure "tz auto" drops the override and follows the Slack profile
// again, re-reading it; if Slack cannot say, the override still goes
// and the zone last known from the profile is kept.
func TestFollowProfileZone(t *testing.T) {
	for _, c := range []struct {
		name        string
		profile     app.Profile
		profileErr  error
		wantProfile string
	}{
		{"the profile moved", app.Profile{TZ: "America/New_York"}, nil, "America/New_York"},
		{"Slack cannot say", app.Profile{}, errSlackDown, "Europe/Berlin"},
		{"the profile has no zone", app.Profile{TZ: ""}, nil, "Europe/Berlin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tc, fs := newFaultyCore(t)
			ctx := context.Background()
			tc.subscribe(t, owner)
			if _, err := tc.ChangeSettings(ctx, app.Person(owner), tc.now, app.SetZone(zone(t, "Asia/Tokyo"))); err != nil {
				t.Fatal(err)
			}
			fs.set(func(f *faultySlack) {
				f.profiles[owner] = c.profile
				f.profileErr[owner] = c.profileErr
			})
			got, err := tc.FollowProfileZone(ctx, app.Person(owner), tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if got.TZOverride != "" || got.ProfileTZ != c.wantProfile {
				t.Errorf("zones = override %q, profile %q; want none, %q", got.TZOverride, got.ProfileTZ, c.wantProfile)
			}
			loc := zone(t, c.wantProfile)
			if l := got.NextDue.In(loc); !got.NextDue.After(tc.now) || l.Hour() != 9 || l.Minute() != 0 || got.NextDue.Sub(tc.now) > 24*time.Hour {
				t.Errorf("next due %v, want 09:00 in %s", got.NextDue, c.wantProfile)
			}
			if l := tc.Location(owner); l.String() != c.wantProfile {
				t.Errorf("location = %s", l)
			}
		})
	}
}

// Ensure subscribing records the person in their Slack zone, a second
// subscribe changes nothing but says so, a deactivated account is not
// subscribed, and a Slack failure still subscribes in the fallback zone.
func TestSubscribe(t *testing.T) {
	t.Run("first time, in the profile's zone", func(t *testing.T) {
		tc := newTestCore(t)
		s, err := tc.Subscribe(context.Background(), app.Person(owner), tc.now)
		if err != nil {
			t.Fatal(err)
		}
		if s.Already || s.Deactivated || !s.Subscriber.Subscribed || s.Location.String() != "Europe/Berlin" {
			t.Errorf("subscription = %+v", s)
		}
		if want := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC); !s.Subscriber.NextDue.Equal(want) {
			t.Errorf("next due %v, want 09:00 Berlin", s.Subscriber.NextDue)
		}
	})
	t.Run("again", func(t *testing.T) {
		tc := newTestCore(t)
		tc.subscribe(t, owner)
		first := tc.sub(t, owner).SubscribedAt
		tc.now = tc.now.Add(time.Hour)
		s, err := tc.Subscribe(context.Background(), app.Person(owner), tc.now)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Already || !s.Subscriber.SubscribedAt.Equal(first) {
			t.Errorf("second subscribe: already %v, subscribed at %v (first %v)", s.Already, s.Subscriber.SubscribedAt, first)
		}
	})
	t.Run("a deactivated account", func(t *testing.T) {
		tc := newTestCore(t)
		tc.slack.profiles[owner] = app.Profile{Deleted: true}
		s, err := tc.Subscribe(context.Background(), app.Person(owner), tc.now)
		if err != nil || !s.Deactivated {
			t.Fatalf("subscription = %+v, %v; want deactivated", s, err)
		}
		if _, err := tc.db.Subscriber(owner); !errors.Is(err, nudges.ErrNotFound) {
			t.Errorf("a record was kept for a deactivated account: %v", err)
		}
	})
	t.Run("Slack cannot read the profile", func(t *testing.T) {
		tc, fs := newFaultyCore(t)
		fs.profileErr[owner] = errSlackDown
		s, err := tc.Subscribe(context.Background(), app.Person(owner), tc.now)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Subscriber.Subscribed || s.Location != time.UTC {
			t.Errorf("subscription = %+v, want subscribed in the fallback zone", s)
		}
		if want := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC); !s.Subscriber.NextDue.Equal(want) {
			t.Errorf("next due %v, want 09:00 UTC", s.Subscriber.NextDue)
		}
	})
	t.Run("an inactive person comes back", func(t *testing.T) {
		tc := newTestCore(t)
		tc.subscribe(t, owner)
		if err := tc.ProfileChanged(owner, app.Profile{Deleted: true}, tc.now); err != nil {
			t.Fatal(err)
		}
		s, err := tc.Subscribe(context.Background(), app.Person(owner), tc.now)
		if err != nil {
			t.Fatal(err)
		}
		if s.Already || s.Subscriber.Inactive || s.Subscriber.InactiveReason != "" || s.Subscriber.NextDue.IsZero() {
			t.Errorf("re-subscribing an inactive person: %+v", s)
		}
	})
}

// Ensure unsubscribing stops the nudges, keeps the history, and says
// whether the person was subscribed.
func TestUnsubscribe(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	d := tc.deliver(t, owner)
	was, err := tc.Unsubscribe(ctx, app.Person(owner), tc.now)
	if err != nil || !was {
		t.Fatalf("unsubscribe = %v, %v; want was subscribed", was, err)
	}
	if s := tc.sub(t, owner); s.Subscribed || !s.NextDue.IsZero() {
		t.Errorf("after unsubscribing: subscribed %v, next due %v", s.Subscribed, s.NextDue)
	}
	tc.now = tc.now.Add(24 * time.Hour)
	tc.Tick(ctx, tc.now)
	if n := len(tc.slack.postsTo("D" + owner)); n != 1 {
		t.Errorf("posts a day after unsubscribing = %d, want the one from before", n)
	}
	if _, err := tc.db.Delivery(d.ID); err != nil {
		t.Errorf("history lost on unsubscribing: %v", err)
	}
	if was, err := tc.Unsubscribe(ctx, app.Person(owner), tc.now); err != nil || was {
		t.Errorf("second unsubscribe = %v, %v; want was not subscribed", was, err)
	}
}

// Ensure status is the person's own: nothing known for a stranger, and
// for a subscriber their streak, balance and this week's nudges, failed
// ones left out.
func TestStatus(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	st, err := tc.Status(ctx, app.Person(owner), tc.now)
	if err != nil || st.Known || st.Location != time.UTC {
		t.Fatalf("status of a stranger = %+v, %v", st, err)
	}
	d := tc.deliver(t, owner) // Monday
	if _, err := tc.AnswerNudge(ctx, app.Person(owner), d.ID, nudges.AnswerDone, app.MessageRef{}, tc.now); err != nil {
		t.Fatal(err)
	}
	tc.now = tc.sub(t, owner).NextDue // Tuesday
	tc.slack.postErr = refusal("user_not_found")
	tc.Tick(ctx, tc.now)
	st, err = tc.Status(ctx, app.Person(owner), tc.now)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Known || st.Streak != 1 || st.Lead+st.Manage != 1 || st.Location.String() != "Europe/Berlin" {
		t.Errorf("status = known %v, streak %d, lead %d, manage %d, zone %s", st.Known, st.Streak, st.Lead, st.Manage, st.Location)
	}
	if len(st.Week) != 1 || st.Week[0].ID != d.ID {
		t.Errorf("this week = %+v, want Monday's nudge only (Tuesday's failed)", st.Week)
	}
	// Next Monday is a new week.
	st, err = tc.Status(ctx, app.Person(owner), tc.now.AddDate(0, 0, 6))
	if err != nil || len(st.Week) != 0 {
		t.Errorf("next week = %+v, %v; want nothing", st.Week, err)
	}
}

// Ensure what Slack says about a person changes only their schedule: a
// new zone moves the next nudge to 09:00 there, a deactivated account
// stops it with its data kept, and a stranger's event keeps nothing.
func TestProfileChanged(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	if err := tc.ProfileChanged(outsider, app.Profile{TZ: "Asia/Tokyo"}, tc.now); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.db.Subscriber(outsider); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("a stranger's profile event created a record: %v", err)
	}
	tc.subscribe(t, owner)
	if err := tc.ProfileChanged(owner, app.Profile{TZ: "America/New_York"}, tc.now); err != nil {
		t.Fatal(err)
	}
	s := tc.sub(t, owner)
	if want := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC); s.ProfileTZ != "America/New_York" || !s.NextDue.Equal(want) {
		t.Errorf("after a zone change: zone %q, next due %v; want 09:00 New York", s.ProfileTZ, s.NextDue)
	}
	if err := tc.ProfileChanged(owner, app.Profile{Deleted: true}, tc.now); err != nil {
		t.Fatal(err)
	}
	s = tc.sub(t, owner)
	if !s.Inactive || s.InactiveReason != "deactivated" || s.ProfileTZ != "America/New_York" {
		t.Errorf("after deactivation: %+v", s)
	}
	tc.now = time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	tc.Tick(ctx, tc.now)
	if n := len(tc.slack.postsTo("D" + owner)); n != 0 {
		t.Errorf("a deactivated person got %d nudges", n)
	}
}

// Ensure the profile refresh moves subscribers with their Slack zone,
// stops those Slack says are gone, keeps the old zone when Slack cannot
// answer, and leaves people who unsubscribed alone.
func TestRefreshProfiles(t *testing.T) {
	tc, fs := newFaultyCore(t)
	ctx := context.Background()
	moved, gone, flaky, left := owner, other, member, outsider
	for _, p := range []string{moved, gone, flaky, left} {
		tc.subscribe(t, p)
	}
	if _, err := tc.Unsubscribe(ctx, app.Person(left), tc.now); err != nil {
		t.Fatal(err)
	}
	fs.set(func(f *faultySlack) {
		f.profiles[moved] = app.Profile{TZ: "Asia/Tokyo"}
		f.profileErr[gone] = refusal("user_not_found")
		f.profileErr[flaky] = errSlackDown
		f.profileErr[left] = refusal("account_inactive")
	})
	tc.RefreshProfiles(ctx, tc.now)
	if s := tc.sub(t, moved); s.ProfileTZ != "Asia/Tokyo" || s.NextDue.In(zone(t, "Asia/Tokyo")).Hour() != 9 {
		t.Errorf("moved: zone %q, next due %v", s.ProfileTZ, s.NextDue)
	}
	if s := tc.sub(t, gone); !s.Inactive || s.InactiveReason != "user_not_found" || !s.NextDue.IsZero() {
		t.Errorf("gone: inactive %v (%q), next due %v", s.Inactive, s.InactiveReason, s.NextDue)
	}
	if s := tc.sub(t, flaky); s.Inactive || s.ProfileTZ != "Europe/Berlin" {
		t.Errorf("flaky: inactive %v, zone %q; want unchanged", s.Inactive, s.ProfileTZ)
	}
	if s := tc.sub(t, left); s.Inactive {
		t.Errorf("someone unsubscribed was asked about and marked %q", s.InactiveReason)
	}
}

// Ensure a refresh stopped by shutdown stops asking Slack.
func TestRefreshProfilesStopsWithItsContext(t *testing.T) {
	tc, fs := newFaultyCore(t)
	tc.subscribe(t, owner)
	fs.set(func(f *faultySlack) { f.profiles[owner] = app.Profile{Deleted: true} })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tc.RefreshProfiles(ctx, tc.now)
	if s := tc.sub(t, owner); s.Inactive {
		t.Error("a cancelled refresh still applied a profile")
	}
}
