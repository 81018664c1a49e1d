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

// teamOfFive are the team channel's members in the digest tests: enough
// for every figure to be shown at the default threshold.
var teamOfFive = []string{owner, member, "UPEOPLE03", "UPEOPLE04", "UPEOPLE05"}

// actingTeam subscribes the channel's members and has each act on a
// nudge on Monday; it returns when that was.
func actingTeam(t *testing.T, tc *testCore, people []string) {
	t.Helper()
	ctx := context.Background()
	tc.slack.members[team] = people
	for _, p := range people {
		tc.subscribe(t, p)
	}
	tc.now = tc.sub(t, people[0]).NextDue
	tc.Tick(ctx, tc.now)
	for _, p := range people {
		ds, err := tc.db.Deliveries(p, time.Time{})
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries of %s = %+v, %v", p, ds, err)
		}
		if _, err := tc.AnswerNudge(ctx, app.Person(p), ds[0].ID, nudges.AnswerDone, app.MessageRef{}, tc.now); err != nil {
			t.Fatal(err)
		}
	}
}

// Ensure a digest posts the team's figures and a fresh clarity pulse,
// records what it showed, and that the next one covers only the period
// since.
func TestRunDigest(t *testing.T) {
	tc, fs := newFaultyCore(t)
	ctx := context.Background()
	actingTeam(t, tc, teamOfFive)
	friday := tc.now.AddDate(0, 0, 4)
	run, err := tc.RunDigest(ctx, team, friday)
	if err != nil || run.Broken != "" || run.Members != 5 {
		t.Fatalf("digest = %+v, %v", run, err)
	}
	d := fs.lastDigest(t)
	if !d.From.Equal(friday.AddDate(0, 0, -7)) || !d.To.Equal(friday) {
		t.Errorf("the first digest covers %v–%v, want the week before it", d.From, d.To)
	}
	if !d.ReceivedShown || d.Received != 5 || !d.ActedOnShown || d.ActedOn != 5 {
		t.Errorf("digest figures = received %d (%v), acted on %d (%v); want 5 each, shown", d.Received, d.ReceivedShown, d.ActedOn, d.ActedOnShown)
	}
	if got := tc.slack.channel; !slices.Equal(got, []string{team, team}) {
		t.Errorf("channel posts = %v, want the digest and its pulse", got)
	}
	posted, err := tc.db.PostedDigest(team)
	if err != nil || !posted.At.Equal(friday) || posted.Shown == nil || !slices.Equal(posted.Members, teamOfFive) {
		t.Errorf("recorded digest = %+v, %v", posted, err)
	}
	if first, err := tc.VotePulse(ctx, app.Person(member), app.PulseID(team, friday), 4); err != nil || !first {
		t.Errorf("vote in the pulse just opened = %v, %v", first, err)
	}
	next := friday.AddDate(0, 0, 7)
	if _, err := tc.RunDigest(ctx, team, next); err != nil {
		t.Fatal(err)
	}
	if d := fs.lastDigest(t); d.Received != 0 || !d.From.Equal(friday) || !d.To.Equal(next) {
		t.Errorf("second digest covers %v–%v with %d received; want only the week since the first", d.From, d.To, d.Received)
	}
	if d := fs.lastDigest(t); !d.Pulse.Held || d.Pulse.Responses != 1 || d.Pulse.AverageShown {
		t.Errorf("second digest's pulse = %+v; want one response, its score withheld", d.Pulse)
	}
}

// Ensure a period counts the members the channel had when it began:
// someone joining in between is not counted until the next period, so
// two digests either side of a join say nothing about the joiner.
func TestDigestCountsTheMembersThePeriodBeganWith(t *testing.T) {
	tc, fs := newFaultyCore(t)
	ctx := context.Background()
	actingTeam(t, tc, teamOfFive)
	if _, err := tc.RunDigest(ctx, team, tc.now); err != nil {
		t.Fatal(err)
	}
	const joiner = "UJOINER06"
	tc.slack.members[team] = append(slices.Clone(teamOfFive), joiner)
	tc.subscribe(t, joiner)
	run, err := tc.RunDigest(ctx, team, tc.now.AddDate(0, 0, 7))
	if err != nil {
		t.Fatal(err)
	}
	if run.Members != 5 || fs.lastDigest(t).Members != 5 {
		t.Errorf("members counted = %d (digest %d), want the 5 the period began with", run.Members, fs.lastDigest(t).Members)
	}
	run, err = tc.RunDigest(ctx, team, tc.now.AddDate(0, 0, 14))
	if err != nil || run.Members != 6 {
		t.Errorf("the period after the join counts %d, %v; want 6", run.Members, err)
	}
}

// Ensure a digest Slack will not take until an admin acts is reported to
// the admins once, not on every run, and again after it worked once;
// other failures come back as errors.
func TestDigestFailures(t *testing.T) {
	tc, fs := newFaultyCore(t)
	ctx := context.Background()
	steps := []struct {
		name       string
		digestErr  error
		channelErr error
		broken     string
		tell       bool
		wantErr    bool
	}{
		{"the bot is not in the channel", refusal("not_in_channel"), nil, "not_in_channel", true, false},
		{"still not", refusal("not_in_channel"), nil, "not_in_channel", false, false},
		{"the channel is gone too", nil, refusal("channel_not_found"), "channel_not_found", false, false},
		{"fixed", nil, nil, "", false, false},
		{"archived", refusal("is_archived"), nil, "is_archived", true, false},
		{"Slack is down", errSlackDown, nil, "", false, true},
	}
	for i, s := range steps {
		fs.set(func(f *faultySlack) { f.digestErr, f.channelErr = s.digestErr, s.channelErr })
		run, err := tc.RunDigest(ctx, team, tc.now.AddDate(0, 0, 7*i))
		if (err != nil) != s.wantErr || run.Broken != s.broken || run.TellAdmins != s.tell {
			t.Errorf("%s: run = %+v, err %v; want broken %q, tell %v, error %v", s.name, run, err, s.broken, s.tell, s.wantErr)
		}
		if s.tell && !slices.Equal(run.Admins, []string{admin}) {
			t.Errorf("%s: admins to tell = %v", s.name, run.Admins)
		}
	}
}

// Ensure a shared reflection goes to the one digest channel its author
// chose, with their name or without, and a private one to none.
func TestSharedReflectionsInTheirChannel(t *testing.T) {
	const elsewhere = "CTEAM0002"
	tc, fs := newFaultyCore(t)
	tc.rebuild(t, coreOptions{messenger: fs, edit: func(c *app.Config) {
		c.Digests = []app.DigestPlan{{Channel: team}, {Channel: elsewhere}}
	}})
	ctx := context.Background()
	tc.slack.members[elsewhere] = teamOfFive
	tc.slack.profiles[owner] = app.Profile{TZ: "Europe/Berlin", DisplayName: "Olive"}
	actingTeam(t, tc, teamOfFive)
	for _, r := range []app.Reflection{
		{Text: "named in team", Share: nudges.ShareNamed, ShareChannel: team},
		{Text: "anonymous in team", Share: nudges.ShareAnonymous, ShareChannel: team},
		{Text: "named elsewhere", Share: nudges.ShareNamed, ShareChannel: elsewhere},
		{Text: "private", ShareChannel: team},
	} {
		if _, err := tc.Reflect(ctx, app.Person(owner), r, tc.now); err != nil {
			t.Fatalf("%s: %v", r.Text, err)
		}
	}
	friday := tc.now.AddDate(0, 0, 4)
	lines := func(channel string) []string {
		if _, err := tc.RunDigest(ctx, channel, friday); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range fs.lastDigest(t).SharedReflections {
			out = append(out, l.AuthorID+": "+l.Text)
		}
		slices.Sort(out)
		return out
	}
	if got, want := lines(team), []string{": anonymous in team", owner + ": named in team"}; !slices.Equal(got, want) {
		t.Errorf("team digest quotes %q, want %q", got, want)
	}
	if got, want := lines(elsewhere), []string{owner + ": named elsewhere"}; !slices.Equal(got, want) {
		t.Errorf("the other digest quotes %q, want %q", got, want)
	}
}

// Ensure the author may share only in a digest channel they are in, and
// anonymously only where there are enough people to hide among.
func TestShareIsChecked(t *testing.T) {
	const small = "CSMALL003"
	cases := []struct {
		name  string
		in    app.Reflection
		check func(error) bool
	}{
		{"a channel without a digest, theirs", app.Reflection{Text: "x", Share: nudges.ShareNamed, ShareChannel: "CNODIGEST"}, isShareRefused},
		{"no channel at all", app.Reflection{Text: "x", Share: nudges.ShareNamed}, isShareRefused},
		{"a digest channel they are not in", app.Reflection{Text: "x", Share: nudges.ShareNamed, ShareChannel: small + "X"}, app.IsForbidden},
		{"anonymous among too few", app.Reflection{Text: "x", Share: nudges.ShareAnonymous, ShareChannel: small}, isShareRefused},
		{"named among few", app.Reflection{Text: "x", Share: nudges.ShareNamed, ShareChannel: small}, nil},
		{"anonymous among enough", app.Reflection{Text: "x", Share: nudges.ShareAnonymous, ShareChannel: team}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc := newTestCore(t)
			tc.rebuild(t, coreOptions{edit: func(cfg *app.Config) {
				cfg.Digests = []app.DigestPlan{{Channel: team}, {Channel: small}, {Channel: small + "X"}}
			}})
			tc.slack.members[team] = teamOfFive
			for _, p := range teamOfFive {
				tc.subscribe(t, p)
			}
			tc.slack.members[small] = []string{owner, member}
			tc.slack.members[small+"X"] = []string{member, other}
			tc.slack.members["CNODIGEST"] = teamOfFive
			_, err := tc.Reflect(context.Background(), app.Person(owner), c.in, tc.now)
			n, _ := tc.db.CountReflections(owner)
			if c.check == nil {
				if err != nil || n != 1 {
					t.Errorf("err = %v, %d saved; want saved", err, n)
				}
				return
			}
			if !c.check(err) || n != 0 {
				t.Errorf("err = %v, %d saved; want a refusal and nothing saved", err, n)
			}
		})
	}
}

func isShareRefused(err error) bool {
	_, ok := errors.AsType[*app.ErrShareRefused](err)
	return ok
}

// Ensure each person's pulse vote counts once, on the pulse's scale, and
// only while the pulse is open.
func TestVotePulse(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.slack.members[team] = teamOfFive
	if _, err := tc.RunDigest(ctx, team, tc.now); err != nil {
		t.Fatal(err)
	}
	pulse := app.PulseID(team, tc.now)
	for _, c := range []struct {
		who   string
		score int
		first bool
		ok    bool
	}{
		{owner, 2, true, true},
		{owner, 5, false, true},
		{member, 0, false, false},
		{member, 6, false, false},
		{member, 5, true, true},
	} {
		first, err := tc.VotePulse(ctx, app.Person(c.who), pulse, c.score)
		if (err == nil) != c.ok || first != c.first {
			t.Errorf("vote %d by %s = %v, %v; want first %v, accepted %v", c.score, c.who, first, err, c.first, c.ok)
		}
	}
	if _, err := tc.VotePulse(ctx, app.Person(owner), app.PulseID(team, tc.now.Add(-time.Hour)), 3); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("a vote in no pulse: %v, want not found", err)
	}
	if _, err := tc.RunDigest(ctx, team, tc.now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	hist, err := tc.db.PulseHistory(team, 1)
	if err != nil || len(hist) != 1 || hist[0].Responses != 2 || hist[0].Sum != 7 {
		t.Fatalf("closed pulse = %+v, %v; want two votes summing 7", hist, err)
	}
	if _, err := tc.VotePulse(ctx, app.Person("UPEOPLE03"), pulse, 3); !errors.Is(err, nudges.ErrPulseClosed) {
		t.Errorf("a vote after the pulse closed: %v, want closed", err)
	}
}

// Ensure "hear more" answers are kept without their authors for the
// next digest, a few per person, and an empty one is refused.
func TestHearMore(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.slack.members[team] = teamOfFive
	if _, err := tc.RunDigest(ctx, team, tc.now); err != nil {
		t.Fatal(err)
	}
	pulse := app.PulseID(team, tc.now)
	for i := range nudges.MaxHearMorePerPerson {
		if err := tc.HearMore(ctx, app.Person(owner), pulse, "the roadmap "+strings.Repeat("!", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tc.HearMore(ctx, app.Person(owner), pulse, "one more"); !errors.Is(err, nudges.ErrTooManyAnswers) {
		t.Errorf("answer past the limit: %v, want too many", err)
	}
	if err := tc.HearMore(ctx, app.Person(member), pulse, "   "); err == nil {
		t.Error("an empty answer was kept")
	}
	if err := tc.HearMore(ctx, app.Person(member), pulse, "hiring"); err != nil {
		t.Fatal(err)
	}
	if err := tc.HearMore(ctx, app.Actor{}, pulse, "anonymous"); !app.IsForbidden(err) {
		t.Errorf("nobody acting: %v, want a refusal", err)
	}
	if _, err := tc.RunDigest(ctx, team, tc.now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	hist, err := tc.db.PulseHistory(team, 1)
	if err != nil || len(hist) != 1 {
		t.Fatalf("history = %+v, %v", hist, err)
	}
	if h := hist[0]; len(h.HearMore) != 4 || h.HearMoreWriters != 2 || !slices.Contains(h.HearMore, "hiring") {
		t.Errorf("hear more = %q from %d writers; want 4 answers from 2", h.HearMore, h.HearMoreWriters)
	}
}

// fridaysAtFour is a digest every Friday at 16:00 in loc.
type fridaysAtFour struct{ loc *time.Location }

func (f fridaysAtFour) Next(after time.Time) time.Time {
	l := after.In(f.loc)
	for d := 0; ; d++ {
		t := time.Date(l.Year(), l.Month(), l.Day()+d, 16, 0, 0, 0, f.loc)
		if t.Weekday() == time.Friday && t.After(after) {
			return t
		}
	}
}

// Ensure a preview shows members and admins alike the last digest posted,
// never the period under way, refuses anyone else and unknown channels,
// and lets each person look once a minute.
func TestPreviewDigest(t *testing.T) {
	ber := berlin(t)
	tc := newTestCore(t)
	tc.rebuild(t, coreOptions{edit: func(c *app.Config) {
		c.Digests = []app.DigestPlan{{Channel: team, When: fridaysAtFour{ber}}}
	}})
	ctx := context.Background()
	actingTeam(t, tc, teamOfFive)
	wantNext := time.Date(2026, 3, 6, 16, 0, 0, 0, ber)

	p, err := tc.PreviewDigest(ctx, app.Person(member), team, tc.now)
	if err != nil || p.Digest != nil || !p.Next.Equal(wantNext) || p.ChannelName != "team" {
		t.Fatalf("member's preview before any digest = %+v, %v; want nothing yet, next %v", p, err, wantNext)
	}
	if _, err := tc.PreviewDigest(ctx, app.Person(member), team, tc.now.Add(30*time.Second)); err == nil {
		t.Fatal("a second look within the minute was answered")
	} else if soon, ok := errors.AsType[*app.TooSoon](err); !ok || !soon.Retry.Equal(tc.now.Add(time.Minute)) {
		t.Fatalf("second look: %v, want too soon until %v", err, tc.now.Add(time.Minute))
	}

	if _, err := tc.RunDigest(ctx, team, wantNext); err != nil {
		t.Fatal(err)
	}
	later := wantNext.Add(time.Hour)
	p, err = tc.PreviewDigest(ctx, app.Person(member), team, later)
	if err != nil || p.Digest == nil || !p.Posted.Equal(wantNext) || p.Digest.Received != 5 {
		t.Errorf("member's preview after the digest = %+v, %v; want the one posted", p, err)
	}
	if !p.Next.Equal(wantNext.AddDate(0, 0, 7)) {
		t.Errorf("next = %v, want a week on", p.Next)
	}
	p, err = tc.PreviewDigest(ctx, app.Person(admin), team, later)
	if err != nil || p.Digest == nil || !p.Posted.Equal(wantNext) || !p.Digest.To.Equal(wantNext) {
		t.Errorf("admin's preview = %+v, %v; want the digest posted, never the period under way", p, err)
	}
	if _, err := tc.PreviewDigest(ctx, app.Person(outsider), team, later); !app.IsForbidden(err) {
		t.Errorf("outsider's preview: %v, want a refusal", err)
	}
	if _, err := tc.PreviewDigest(ctx, app.Person(member), "CNODIGEST", later.Add(time.Hour)); !errors.Is(err, app.ErrNoDigest) {
		t.Errorf("preview of a channel without a digest: %v", err)
	}
	if got := tc.DigestChannels(); !slices.Equal(got, []string{team}) {
		t.Errorf("digest channels = %v", got)
	}
}

// Ensure only the people the digest was posted to may answer its pulse:
// not someone outside the channel, not someone who joined after it.
func TestPulseAnsweredByItsChannel(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.slack.members[team] = teamOfFive
	if _, err := tc.RunDigest(ctx, team, tc.now); err != nil {
		t.Fatal(err)
	}
	pulse := app.PulseID(team, tc.now)
	const joiner = "UJOINER06"
	tc.slack.members[team] = append(slices.Clone(teamOfFive), joiner)
	for _, c := range []struct {
		who string
		may bool
	}{{member, true}, {outsider, false}, {joiner, false}, {admin, false}} {
		_, vote := tc.VotePulse(ctx, app.Person(c.who), pulse, 4)
		form := tc.OpenHearMore(ctx, app.Person(c.who), pulse)
		more := tc.HearMore(ctx, app.Person(c.who), pulse, "the plan")
		for name, err := range map[string]error{"vote": vote, "open hear more": form, "hear more": more} {
			if c.may && err != nil || !c.may && !app.IsForbidden(err) {
				t.Errorf("%s by %s: %v, want allowed %v", name, c.who, err, c.may)
			}
		}
	}
	if _, err := tc.RunDigest(ctx, team, tc.now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if hist, err := tc.db.PulseHistory(team, 1); err != nil || len(hist) != 1 || hist[0].Responses != 1 || len(hist[0].HearMore) != 1 {
		t.Errorf("closed pulse = %+v, %v; want the member's answers only", hist, err)
	}
}

// Ensure a digest can be previewed by its channel's name, in any case,
// under the same once-a-minute rule, and an unknown name says so.
func TestPreviewDigestNamed(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.slack.members[team] = teamOfFive
	if _, err := tc.RunDigest(ctx, team, tc.now); err != nil {
		t.Fatal(err)
	}
	p, err := tc.PreviewDigestNamed(ctx, app.Person(member), "Team", tc.now.Add(time.Hour))
	if err != nil || p.Digest == nil || !p.Posted.Equal(tc.now) || p.ChannelName != "team" {
		t.Errorf("preview by name = %+v, %v", p, err)
	}
	if _, err := tc.PreviewDigestNamed(ctx, app.Person(member), "nosuch", tc.now.Add(time.Hour+time.Second)); !isTooSoon(err) {
		t.Errorf("a second look within the minute, by any name: %v, want too soon", err)
	}
	if _, err := tc.PreviewDigestNamed(ctx, app.Person(member), "nosuch", tc.now.Add(2*time.Hour)); !errors.Is(err, app.ErrNoDigest) {
		t.Errorf("an unknown name: %v, want no digest", err)
	}
	if _, err := tc.PreviewDigestNamed(ctx, app.Person(member), "nosuch", tc.now.Add(2*time.Hour+time.Second)); !isTooSoon(err) {
		t.Errorf("unknown names asked again and again: %v, want too soon", err)
	}
	if _, err := tc.PreviewDigestNamed(ctx, app.Person(outsider), "team", tc.now.Add(2*time.Hour)); !app.IsForbidden(err) {
		t.Errorf("an outsider by name: %v, want a refusal", err)
	}
	if _, ok := tc.DigestPlan(team); !ok {
		t.Error("no plan for the team's digest")
	}
	if _, ok := tc.DigestPlan("CNODIGEST"); ok {
		t.Error("a plan for a channel without a digest")
	}
	if tc.Threshold() != nudges.DefaultThreshold {
		t.Errorf("threshold = %d, want the default %d", tc.Threshold(), nudges.DefaultThreshold)
	}
}

func isTooSoon(err error) bool {
	_, ok := errors.AsType[*app.TooSoon](err)
	return ok
}
