package app_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure the admins' stats count subscribers and the last seven days'
// deliveries by state and outcome, and show a company-wide pause only
// while it holds.
func TestAdminStats(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.subscribe(t, member)
	d := tc.deliver(t, owner) // and member's, at the same 09:00
	tc.subscribe(t, other)
	if _, err := tc.Unsubscribe(ctx, app.Person(other), tc.now); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.AnswerNudge(ctx, app.Person(owner), d.ID, nudges.AnswerDone, app.MessageRef{}, tc.now); err != nil {
		t.Fatal(err)
	}
	st, err := tc.AdminStats(ctx, app.Person(admin), tc.now)
	if err != nil {
		t.Fatal(err)
	}
	if st.Subscribers != 3 || st.Active != 2 {
		t.Errorf("subscribers = %d, active %d; want 3 and 2", st.Subscribers, st.Active)
	}
	if st.States[nudges.StateSent] != 2 || st.Outcomes[nudges.OutcomeDone] != 1 || st.Outcomes[nudges.OutcomeNone] != 1 {
		t.Errorf("states %v, outcomes %v", st.States, st.Outcomes)
	}
	if !st.PausedAll.IsZero() {
		t.Errorf("paused until %v with no pause", st.PausedAll)
	}
	until := tc.now.Add(48 * time.Hour)
	if err := tc.PauseAll(ctx, app.Person(admin), until); err != nil {
		t.Fatal(err)
	}
	if st, _ := tc.AdminStats(ctx, app.Person(admin), tc.now); !st.PausedAll.Equal(until) {
		t.Errorf("paused until %v, want %v", st.PausedAll, until)
	}
	if st, _ := tc.AdminStats(ctx, app.Person(admin), until.Add(time.Second)); !st.PausedAll.IsZero() {
		t.Errorf("a pause that ended still shows: %v", st.PausedAll)
	}
	// A week later, last week's nudges are out of the window.
	st, err = tc.AdminStats(ctx, app.Person(admin), tc.now.AddDate(0, 0, 8))
	if err != nil || len(st.States) != 0 {
		t.Errorf("a week later: states %v, %v; want none", st.States, err)
	}
}

// Ensure an admin sees a person's settings and how many reflections they
// wrote, never a word of them.
func TestAdminPersonShowsNoWords(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.deliver(t, owner)
	for _, text := range []string{"one secret", "two secrets"} {
		if _, err := tc.Reflect(ctx, app.Person(owner), app.Reflection{Text: text}, tc.now); err != nil {
			t.Fatal(err)
		}
	}
	st, err := tc.AdminPerson(ctx, app.Person(admin), owner, tc.now)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Known || !st.Subscribed {
		t.Errorf("person status = known %v, subscribed %v", st.Known, st.Subscribed)
	}
	if strings.Contains(fmtAll(st), "secret") {
		t.Error("an admin's view of a person holds their words")
	}
	st, err = tc.AdminPerson(ctx, app.Person(admin), outsider, tc.now)
	if err != nil || st.Known {
		t.Errorf("a stranger's status = %+v, %v", st, err)
	}
}

// Ensure App Home shows the person their own state and latest three
// reflections, newest first.
func TestHome(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	h, err := tc.Home(ctx, app.Person(owner), tc.now)
	if err != nil || h.Known || len(h.Reflections) != 0 {
		t.Fatalf("a new person's home = %+v, %v", h, err)
	}
	tc.deliver(t, owner)
	for i := range 4 {
		if _, err := tc.Reflect(ctx, app.Person(owner), app.Reflection{Text: "note " + string(rune('a'+i))}, tc.now.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	h, err = tc.Home(ctx, app.Person(owner), tc.now)
	if err != nil || !h.Known || len(h.Week) != 1 {
		t.Fatalf("home = %+v, %v", h, err)
	}
	var texts []string
	for _, r := range h.Reflections {
		texts = append(texts, r.Text)
	}
	if want := []string{"note d", "note c", "note b"}; !slices.Equal(texts, want) {
		t.Errorf("home reflections = %q, want %q", texts, want)
	}
}

// Ensure admins can show, add, replace, remove and clear the strategy
// lines, that the lines in force are the config's until they do, that
// nudges then quote theirs, and that a bad edit changes nothing.
func TestStrategy(t *testing.T) {
	tc := newTestCore(t)
	tc.rebuild(t, coreOptions{edit: func(c *app.Config) { c.StrategyLines = []string{"From the config"} }})
	ctx := context.Background()
	steps := []struct {
		cmd  string
		want []string
		err  error
	}{
		{"", []string{"From the config"}, nil},
		{"add Win the mid-market in Europe", []string{"From the config", "Win the mid-market in Europe"}, nil},
		{"set 1 Keep every customer we have", []string{"Keep every customer we have", "Win the mid-market in Europe"}, nil},
		{"remove 3", nil, nudges.ErrInvalidInput},
		{"show", []string{"Keep every customer we have", "Win the mid-market in Europe"}, nil},
		{"remove 1", []string{"Win the mid-market in Europe"}, nil},
		{"clear", []string{}, nil},
	}
	for _, s := range steps {
		args, err := nudges.ParseStrategyArgs(s.cmd)
		if err != nil {
			t.Fatalf("%q: %v", s.cmd, err)
		}
		got, err := tc.Strategy(ctx, app.Person(admin), args)
		if s.err != nil {
			if !errors.Is(err, s.err) {
				t.Errorf("%q: err = %v, want %v", s.cmd, err, s.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, s.want) {
			t.Errorf("%q: lines = %q, %v; want %q", s.cmd, got, err, s.want)
		}
		stored, set, _ := tc.db.StrategyLines()
		if s.cmd == "" && set {
			t.Errorf("looking at the config's lines made them the admins' own: %q", stored)
		}
		if s.cmd != "" && s.cmd != "show" && (!set || !slices.Equal(stored, s.want)) {
			t.Errorf("%q: stored %q (set %v), want %q", s.cmd, stored, set, s.want)
		}
	}
	args, _ := nudges.ParseStrategyArgs("add Ours now")
	if _, err := tc.Strategy(ctx, app.Person(owner), args); !app.IsForbidden(err) {
		t.Errorf("a non-admin changing the strategy: %v, want a refusal", err)
	}
	if stored, _, _ := tc.db.StrategyLines(); len(stored) != 0 {
		t.Errorf("a refused change was stored: %q", stored)
	}
}

// Ensure the strategy lines admins set are the ones nudges quote.
func TestStrategyLinesReachTheNudges(t *testing.T) {
	tc := newTestCore(t)
	tc.rebuild(t, coreOptions{edit: func(c *app.Config) { c.StrategyLines = []string{"From the config"} }})
	ctx := context.Background()
	const line = "Double the partner channel by June"
	args, _ := nudges.ParseStrategyArgs("set 1 " + line)
	if _, err := tc.Strategy(ctx, app.Person(admin), args); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.ChangeSettings(ctx, app.Person(owner), tc.now, app.SetFocus(string(nudges.ThemeStrategy))); err != nil {
		t.Fatal(err)
	}
	quoted := 0
	for i := range 8 {
		if _, err := tc.NudgeNow(ctx, app.Person(owner), tc.now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		posts := tc.slack.postsTo("D" + owner)
		form, err := tc.OpenReflection(ctx, app.Person(owner), posts[len(posts)-1].deliveryID, tc.now)
		if err != nil || !form.HaveNudge {
			t.Fatalf("form = %+v, %v", form, err)
		}
		if strings.Contains(fmtAll(form.Wording), "From the config") {
			t.Fatalf("a nudge quoted the config's line after admins set theirs: %+v", form.Wording)
		}
		if strings.Contains(fmtAll(form.Wording), line) {
			quoted++
		}
	}
	if quoted == 0 {
		t.Error("no strategy nudge quoted the admins' line")
	}
}
