package app_test

import (
	"context"
	"errors"
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
		name string
		// try acts as who on the owner's things, or the team channel's,
		// and reports whether it was done (or the owner's data reached).
		try  func(ctx context.Context, tc *testCore, who app.Actor, d nudges.Delivery) (bool, error)
		want map[string]result // by role; missing means deny
	}{
		{"answer the owner's nudge", func(ctx context.Context, tc *testCore, who app.Actor, d nudges.Delivery) (bool, error) {
			_, err := tc.AnswerNudge(ctx, who, d.ID, nudges.AnswerDone, app.MessageRef{}, tc.now)
			return err == nil, forbiddenOK(err)
		}, map[string]result{"owner": allow}},
		{"forget the owner", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			err := tc.Forget(ctx, who, owner)
			return err == nil, forbiddenOK(err)
		}, map[string]result{"owner": allow}},
		{"list reflections", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			j, err := tc.ListReflections(ctx, who, 10)
			return containsText(j.Reflections, secret), err
		}, map[string]result{"owner": allow}},
		{"search reflections", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			j, err := tc.SearchReflections(ctx, who, "private", 10)
			return containsText(j.Reflections, secret), err
		}, map[string]result{"owner": allow}},
		{"draft an update from reflection #1", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			r, err := tc.DraftUpdate(ctx, who, 1)
			if errors.Is(err, nudges.ErrNotFound) {
				return false, nil
			}
			return r.Text == secret, err
		}, map[string]result{"owner": allow}},
		{"delete reflection #1", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			err := tc.DeleteReflection(ctx, who, 1)
			if errors.Is(err, nudges.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		}, map[string]result{"owner": allow}},
		{"export", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			ex, err := tc.Export(ctx, who, tc.now)
			return containsText(ex.Reflections, secret) && len(ex.Nudges) > 0, err
		}, map[string]result{"owner": allow}},
		{"App Home", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			h, err := tc.Home(ctx, who, tc.now)
			return containsText(h.Reflections, secret) || h.Subscriber.UserID == owner, err
		}, map[string]result{"owner": allow}},
		{"status", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			st, err := tc.Status(ctx, who, tc.now)
			return st.Subscriber.UserID == owner, err
		}, map[string]result{"owner": allow}},
		{"commitment answer on reflection #1", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			r, err := tc.AnswerCommitment(ctx, who, 1, true, tc.now)
			if errors.Is(err, nudges.ErrNotFound) {
				return false, nil
			}
			return r.UserID == owner, err
		}, map[string]result{"owner": allow}},
		{"preview the team's digest", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			_, err := tc.PreviewDigest(ctx, who, team, tc.now)
			return err == nil, forbiddenOK(err)
		}, map[string]result{"owner": allow, "member": allow, "admin": allow}},
		{"post a team update in the channel", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			err := tc.PostUpdate(ctx, who, team, "an update")
			return err == nil, forbiddenOK(err)
		}, map[string]result{"owner": allow, "member": allow}},
		{"admin stats", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			_, err := tc.AdminStats(ctx, who, tc.now)
			return err == nil, forbiddenOK(err)
		}, map[string]result{"admin": allow}},
		{"pause everyone", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			err := tc.PauseAll(ctx, who, tc.now.Add(time.Hour))
			return err == nil, forbiddenOK(err)
		}, map[string]result{"admin": allow}},
		{"a person's status, as admin", func(ctx context.Context, tc *testCore, who app.Actor, _ nudges.Delivery) (bool, error) {
			st, err := tc.AdminPerson(ctx, who, owner, tc.now)
			return err == nil && st.Known, forbiddenOK(err)
		}, map[string]result{"admin": allow}},
	}
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
		"nobody acting":          {app.Actor{}, app.OwnedBy("")},
		"an empty owner":         {app.Person(owner), app.OwnedBy("")},
		"a zero resource":        {app.Person(admin), app.Resource{}},
		"a channel, no members":  {app.Person(owner), app.ChannelThings(team)},
		"admin of an empty name": {app.Actor{}, app.AdminOperations()},
	} {
		if err := p.Authorize(ctx, tc.who, tc.r); !app.IsForbidden(err) {
			t.Errorf("%s: err = %v, want a refusal", name, err)
		}
	}
}
