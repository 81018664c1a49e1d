package app_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure every use case answers "may this person do this" the same way
// for the same kind of person: the owner of the data, another person, a
// member of the team channel, someone outside it, and an admin. A use
// case that can only ever act on the caller's own data passes when the
// caller cannot reach the owner's, whatever they ask for.
func TestPolicyForEveryUseCase(t *testing.T) {
	const secret = "owner's private words"
	type result int
	const (
		deny result = iota
		allow
	)
	actors := []struct {
		role, id string
	}{{"owner", owner}, {"other", other}, {"member", member}, {"outsider", outsider}, {"admin", admin}}

	cases := []struct {
		method, name string
		// try acts as who on the owner's things, or the team channel's,
		// and reports whether it was done (or the owner's data reached).
		try  func(ctx context.Context, tc *testCore, who app.Actor, d nudges.Delivery) (bool, error)
		want map[string]result // by role; missing means deny
	}{
		{"AnswerNudge", "answer the owner's nudge", func(ctx context.Context, tc *testCore, who app.Actor, d nudges.Delivery) (bool, error) {
			_, err := tc.AnswerNudge(ctx, who, d.ID, nudges.AnswerDone, app.MessageRef{}, tc.now)
			return err == nil, forbiddenOK(err)
		}, map[string]result{"owner": allow}},
		{"Forget", "forget the owner", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			err := tc.Forget(ctx, who, owner)
			return err == nil, forbiddenOK(err)
		}, map[string]result{"owner": allow}},
		{"ListReflections", "list reflections", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			j, err := tc.ListReflections(ctx, who, 10)
			return containsText(j.Reflections, secret), err
		}, map[string]result{"owner": allow}},
		{"SearchReflections", "search reflections", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			j, err := tc.SearchReflections(ctx, who, "private", 10)
			return containsText(j.Reflections, secret), err
		}, map[string]result{"owner": allow}},
		{"DraftUpdate", "draft an update from reflection #1", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			r, err := tc.DraftUpdate(ctx, who, 1)
			if errors.Is(err, nudges.ErrNotFound) {
				return false, nil
			}
			return r.Text == secret, err
		}, map[string]result{"owner": allow}},
		{"DeleteReflection", "delete reflection #1", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			err := tc.DeleteReflection(ctx, who, 1)
			if errors.Is(err, nudges.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		}, map[string]result{"owner": allow}},
		{"Export", "export", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			ex, err := tc.Export(ctx, who, tc.now)
			return containsText(ex.Reflections, secret) && len(ex.Nudges) > 0, err
		}, map[string]result{"owner": allow}},
		{"Home", "App Home", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			h, err := tc.Home(ctx, who, tc.now)
			return containsText(h.Reflections, secret) || h.Subscriber.UserID == owner, err
		}, map[string]result{"owner": allow}},
		{"Status", "status", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			st, err := tc.Status(ctx, who, tc.now)
			return st.Subscriber.UserID == owner, err
		}, map[string]result{"owner": allow}},
		{"AnswerCommitment", "commitment answer on reflection #1", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			r, err := tc.AnswerCommitment(ctx, who, 1, true, tc.now)
			if errors.Is(err, nudges.ErrNotFound) {
				return false, nil
			}
			return r.UserID == owner, err
		}, map[string]result{"owner": allow}},
		{"PreviewDigest", "preview the team's digest", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			_, err := tc.PreviewDigest(ctx, who, team, tc.now)
			return err == nil, forbiddenOK(err)
		}, map[string]result{"owner": allow, "member": allow, "admin": allow}},
		{"PostUpdate", "post a team update in the channel", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			err := tc.PostUpdate(ctx, who, team, "an update")
			return err == nil, forbiddenOK(err)
		}, map[string]result{"owner": allow, "member": allow}},
		{"AdminStats", "admin stats", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			_, err := tc.AdminStats(ctx, who, tc.now)
			return err == nil, forbiddenOK(err)
		}, map[string]result{"admin": allow}},
		{"PauseAll", "pause everyone", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			err := tc.PauseAll(ctx, who, tc.now.Add(time.Hour))
			return err == nil, forbiddenOK(err)
		}, map[string]result{"admin": allow}},
		{"AdminPerson", "a person's status, as admin", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			st, err := tc.AdminPerson(ctx, who, owner, tc.now)
			return err == nil && st.Known, forbiddenOK(err)
		}, map[string]result{"admin": allow}},
		{"ExportTo", "export, streamed", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			var sink collectSink
			_, err := tc.ExportTo(ctx, who, &sink)
			return containsText(sink.reflections, secret), err
		}, map[string]result{"owner": allow}},
		{"Reflect", "reflect on the owner's nudge, by its id", func(ctx context.Context, tc *testCore, who app.Actor, d nudges.Delivery) (bool, error) {
			saved, err := tc.Reflect(ctx, who, app.Reflection{Text: "mine", DeliveryID: d.ID}, tc.now)
			return err == nil && saved.Reflection.DeliveryID == d.ID, forbiddenOK(err)
		}, map[string]result{"owner": allow}},
		{"OpenReflection", "open the form on the owner's nudge", func(ctx context.Context, tc *testCore, who app.Actor, d nudges.Delivery) (bool, error) {
			f, err := tc.OpenReflection(ctx, who, d.ID, tc.now)
			return err == nil && f.DeliveryID == d.ID, forbiddenOK(err)
		}, map[string]result{"owner": allow}},
		{"ReplyInDM", "reply in the owner's nudge thread", func(ctx context.Context, tc *testCore, who app.Actor, d nudges.Delivery) (bool, error) {
			res, err := tc.ReplyInDM(ctx, who, app.DMMessage{TS: "9.000900", ThreadTS: d.TS, Text: "reply"}, tc.now)
			return err == nil && res.Saved != nil && res.Saved.Reflection.DeliveryID == d.ID, err
		}, map[string]result{"owner": allow}},
		{"EditInDM", "edit the owner's typed reflection", func(ctx context.Context, tc *testCore, who app.Actor, d nudges.Delivery) (bool, error) {
			typedReply(t, tc, d)
			err := tc.EditInDM(ctx, who, "9.000900", "edited")
			r, _ := tc.db.ReflectionByMessage(owner, "9.000900")
			return r.Text == "edited", err
		}, map[string]result{"owner": allow}},
		{"DeleteInDM", "delete the owner's typed reflection", func(ctx context.Context, tc *testCore, who app.Actor, d nudges.Delivery) (bool, error) {
			typedReply(t, tc, d)
			err := tc.DeleteInDM(ctx, who, "9.000900")
			_, gone := tc.db.ReflectionByMessage(owner, "9.000900")
			return errors.Is(gone, nudges.ErrNotFound), err
		}, map[string]result{"owner": allow}},
		{"Subscribe", "subscribe the owner again", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			if _, err := tc.Unsubscribe(ctx, app.Person(owner), tc.now); err != nil {
				return false, err
			}
			_, err := tc.Subscribe(ctx, who, tc.now)
			sub, _ := tc.db.Subscriber(owner)
			return sub.Subscribed, err
		}, map[string]result{"owner": allow}},
		{"Unsubscribe", "unsubscribe the owner", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			_, err := tc.Unsubscribe(ctx, who, tc.now)
			sub, _ := tc.db.Subscriber(owner)
			return !sub.Subscribed, err
		}, map[string]result{"owner": allow}},
		{"ChangeSettings", "change the owner's time", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			_, err := tc.ChangeSettings(ctx, who, tc.now, app.SetTime("07:15"))
			sub, _ := tc.db.Subscriber(owner)
			return sub.Time == "07:15", err
		}, map[string]result{"owner": allow}},
		{"FollowProfileZone", "drop the owner's own zone", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			tokyo, _ := time.LoadLocation("Asia/Tokyo")
			if _, err := tc.ChangeSettings(ctx, app.Person(owner), tc.now, app.SetZone(tokyo)); err != nil {
				return false, err
			}
			_, err := tc.FollowProfileZone(ctx, who, tc.now)
			sub, _ := tc.db.Subscriber(owner)
			return sub.TZOverride == "", err
		}, map[string]result{"owner": allow}},
		{"NudgeNow", "a nudge now, for the owner", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			before, _ := tc.db.Deliveries(owner, time.Time{})
			_, err := tc.NudgeNow(ctx, who, tc.now)
			after, _ := tc.db.Deliveries(owner, time.Time{})
			return len(after) > len(before), err
		}, map[string]result{"owner": allow}},
		{"PreviewDigestNamed", "preview the team's digest by name", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			_, err := tc.PreviewDigestNamed(ctx, who, "team", tc.now)
			return err == nil, forbiddenOK(err)
		}, map[string]result{"owner": allow, "member": allow, "admin": allow}},
		{"VotePulse", "answer the team's pulse", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			id := openPulse(t, tc)
			first, err := tc.VotePulse(ctx, who, id, 4)
			return first, forbiddenOK(err)
		}, map[string]result{"owner": allow, "member": allow}},
		{"OpenHearMore", "open the team pulse's hear-more form", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			err := tc.OpenHearMore(ctx, who, openPulse(t, tc))
			return err == nil, forbiddenOK(err)
		}, map[string]result{"owner": allow, "member": allow}},
		{"HearMore", "ask the team's pulse to hear more", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			err := tc.HearMore(ctx, who, openPulse(t, tc), "the roadmap")
			return err == nil, forbiddenOK(err)
		}, map[string]result{"owner": allow, "member": allow}},
		{"Strategy", "show the strategy lines", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			_, err := tc.Strategy(ctx, who, nudges.StrategyArgs{Op: nudges.StrategyShow})
			return err == nil, forbiddenOK(err)
		}, map[string]result{"admin": allow}},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.method] = true
	}
	useCasesHaveRows(t, covered)
	for _, c := range cases {
		for _, a := range actors {
			t.Run(c.name+"/as "+a.role, func(t *testing.T) {
				tc := newTestCore(t)
				d := tc.deliver(t, owner)
				if _, err := tc.Reflect(context.Background(), app.Person(owner), app.Reflection{Text: secret, Commitment: "ask twice"}, tc.now); err != nil {
					t.Fatal(err)
				}
				tc.subscribe(t, a.id) // everyone has data of their own to see
				got, err := c.try(context.Background(), tc, app.Person(a.id), d)
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if want := c.want[a.role] == allow; got != want {
					t.Errorf("done = %v, want %v", got, want)
				}
			})
		}
	}
}

// notUseCases are the core's exported methods that no person calls, so
// they take no Actor and need no row: each says who calls it instead.
var notUseCases = map[string]string{
	"Catalog":         "renderers, to show a prompt",
	"Location":        "renderers, to show a time in the actor's own zone",
	"Fallback":        "renderers, the zone of people whose zone is unknown",
	"IsAdmin":         "renderers, to offer admins their commands",
	"Threshold":       "renderers, to say how many people a figure needs",
	"DigestChannels":  "the scheduler, to plan digests",
	"DigestPlan":      "the scheduler, to fire each digest on its schedule",
	"Tick":            "the scheduler",
	"NextWake":        "the scheduler",
	"Wakes":           "the scheduler, to look again when a schedule changed",
	"Flush":           "shutdown and tests",
	"RunDigest":       "the scheduler",
	"MissedDigests":   "the scheduler, when it starts, for a digest whose time came while none ran",
	"CompactSoon":     "the scheduler's housekeeping (Forget asks itself)",
	"ProfileChanged":  "Slack's user_change event, about that person only",
	"RefreshProfiles": "the daily profile refresh",
	"KnownDM":         "the Slack adapter, to address the bot's own answers to that person",
	"ReplaceDM":       "the Slack adapter, when Slack says the kept DM is gone",
}

// useCasesHaveRows fails for every method of the core that takes an
// Actor and has no row in the matrix, and for any listed as no use case
// that does take one: a use case added without a row fails here.
func useCasesHaveRows(t *testing.T, covered map[string]bool) {
	t.Helper()
	actor := reflect.TypeFor[app.Actor]()
	core := reflect.TypeFor[*app.Service]()
	for i := range core.NumMethod() {
		m := core.Method(i)
		takesActor := false
		for j := range m.Type.NumIn() {
			takesActor = takesActor || m.Type.In(j) == actor
		}
		why, exempt := notUseCases[m.Name]
		switch {
		case takesActor && !covered[m.Name]:
			t.Errorf("%s takes an Actor but has no row in the policy matrix", m.Name)
		case !takesActor && !exempt:
			t.Errorf("%s takes no Actor: give it one and a row, or say in notUseCases who calls it", m.Name)
		case takesActor && exempt:
			t.Errorf("%s takes an Actor, yet notUseCases says %q", m.Name, why)
		}
	}
	for name := range covered {
		if _, ok := core.MethodByName(name); !ok {
			t.Errorf("the matrix has a row for %s, which the core lacks", name)
		}
	}
}

// collectSink keeps what an export streams.
type collectSink struct{ reflections []nudges.Reflection }

func (c *collectSink) Settings(nudges.Subscriber) error { return nil }
func (c *collectSink) Nudge(app.ExportedNudge) error    { return nil }
func (c *collectSink) Reflection(r nudges.Reflection) error {
	c.reflections = append(c.reflections, r)
	return nil
}

// typedReply has the owner reply in their nudge's thread, as message
// 9.000900.
func typedReply(t *testing.T, tc *testCore, d nudges.Delivery) {
	t.Helper()
	res, err := tc.ReplyInDM(context.Background(), app.Person(owner), app.DMMessage{TS: "9.000900", ThreadTS: d.TS, Text: "typed"}, tc.now)
	if err != nil || res.Saved == nil {
		t.Fatalf("the owner's reply was not kept: %+v, %v", res, err)
	}
}

// openPulse posts the team's digest and returns its open pulse.
func openPulse(t *testing.T, tc *testCore) string {
	t.Helper()
	if _, err := tc.RunDigest(context.Background(), team, tc.now); err != nil {
		t.Fatal(err)
	}
	return app.PulseID(team, tc.now)
}

// forbiddenOK turns the policy's refusal into "not done, no error".
func forbiddenOK(err error) error {
	if app.IsForbidden(err) {
		return nil
	}
	return err
}

func containsText(rs []nudges.Reflection, text string) bool {
	for _, r := range rs {
		if strings.Contains(r.Text, text) {
			return true
		}
	}
	return false
}

// Ensure the policy refuses what it does not know, and people it cannot
// name.
func TestPolicyRefusesTheUnknown(t *testing.T) {
	p := app.NewPolicy([]string{admin}, nil)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		who app.Actor
		r   app.Resource
	}{
		"nobody acting":           {app.Actor{}, app.OwnedBy("")},
		"an empty owner":          {app.Person(owner), app.OwnedBy("")},
		"a zero resource":         {app.Person(admin), app.Resource{}},
		"a channel, no members":   {app.Person(owner), app.ChannelFigures(team)},
		"admin of an empty name":  {app.Actor{}, app.AdminOperations()},
		"nobody, for themselves":  {app.Actor{}, app.Self()},
		"a pulse, as an outsider": {app.Person(outsider), app.PulseOf([]string{owner, member})},
		"a pulse, as an admin":    {app.Person(admin), app.PulseOf([]string{owner, member})},
		"a pulse with no voters":  {app.Person(owner), app.PulseOf(nil)},
	} {
		if err := p.Authorize(ctx, tc.who, tc.r); !app.IsForbidden(err) {
			t.Errorf("%s: err = %v, want a refusal", name, err)
		}
	}
}
