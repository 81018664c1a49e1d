package app_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// Ensure a reflection is linked to the nudge it answers: the one named if
// it is the author's own, else their latest within a day, else none; and
// that linking counts as acting on that nudge.
func TestReflectLinksItsNudge(t *testing.T) {
	cases := []struct {
		name     string
		delivery func(own, others nudges.Delivery) string
		after    time.Duration
		linked   bool
	}{
		{"the nudge named", func(own, _ nudges.Delivery) string { return own.ID }, time.Minute, true},
		{"the latest, the same day", func(nudges.Delivery, nudges.Delivery) string { return "" }, 20 * time.Hour, true},
		{"the latest, a day and an hour on", func(nudges.Delivery, nudges.Delivery) string { return "" }, 25 * time.Hour, false},
		{"the latest, two days on", func(nudges.Delivery, nudges.Delivery) string { return "" }, 48 * time.Hour, false},
		{"a nudge that does not exist", func(nudges.Delivery, nudges.Delivery) string { return "nope" }, time.Minute, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc := newTestCore(t)
			ctx := context.Background()
			tc.subscribe(t, other)
			own := tc.deliver(t, owner)
			theirs, err := tc.db.Deliveries(other, time.Time{})
			if err != nil || len(theirs) != 1 {
				t.Fatalf("other's deliveries = %v, %v", theirs, err)
			}
			saved, err := tc.Reflect(ctx, app.Person(owner), app.Reflection{Text: "noted", DeliveryID: c.delivery(own, theirs[0])}, tc.now.Add(c.after))
			if err != nil {
				t.Fatal(err)
			}
			linked := saved.Reflection.DeliveryID != ""
			if linked != c.linked || (linked && saved.Reflection.DeliveryID != own.ID) {
				t.Errorf("linked to %q, want linked %v", saved.Reflection.DeliveryID, c.linked)
			}
			if got := tc.delivery(t, own.ID).Outcome == nudges.OutcomeReflected; got != c.linked {
				t.Errorf("own nudge reflected = %v, want %v", got, c.linked)
			}
			if o := tc.delivery(t, theirs[0].ID).Outcome; o != nudges.OutcomeNone {
				t.Errorf("someone else's nudge became %q", o)
			}
		})
	}
}

// Ensure a reflection naming someone else's nudge (a forged form) is
// refused: nothing is saved and their nudge stays as it was.
func TestReflectOnSomeoneElsesNudge(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	theirs := tc.deliver(t, other)
	_, err := tc.Reflect(ctx, app.Person(owner), app.Reflection{Text: "forged", DeliveryID: theirs.ID}, tc.now)
	if !app.IsForbidden(err) {
		t.Fatalf("err = %v, want a refusal", err)
	}
	if n, _ := tc.db.CountReflections(owner); n != 0 {
		t.Errorf("%d reflections saved", n)
	}
	if o := tc.delivery(t, theirs.ID).Outcome; o != nudges.OutcomeNone {
		t.Errorf("their nudge became %q", o)
	}
}

// Ensure a commitment is due three working days after it is written, in
// the author's zone, skipping the weekend; a reflection without one is
// never followed up.
func TestCommitmentIsDueThreeWorkingDaysLater(t *testing.T) {
	ber := zone(t, "Europe/Berlin")
	for _, c := range []struct {
		written time.Time
		due     time.Time
	}{
		{time.Date(2026, 3, 2, 10, 0, 0, 0, ber), time.Date(2026, 3, 5, 0, 0, 0, 0, ber)},  // Monday → Thursday
		{time.Date(2026, 3, 6, 10, 0, 0, 0, ber), time.Date(2026, 3, 11, 0, 0, 0, 0, ber)}, // Friday → Wednesday
		{time.Date(2026, 3, 7, 10, 0, 0, 0, ber), time.Date(2026, 3, 11, 0, 0, 0, 0, ber)}, // Saturday → Wednesday
		// Sunday 23:30 in Berlin is still Sunday there, though Monday is near in UTC+14.
		{time.Date(2026, 3, 8, 23, 30, 0, 0, ber), time.Date(2026, 3, 11, 0, 0, 0, 0, ber)},
	} {
		t.Run(c.written.Weekday().String(), func(t *testing.T) {
			tc := newTestCore(t)
			tc.subscribe(t, owner)
			saved, err := tc.Reflect(context.Background(), app.Person(owner), app.Reflection{Text: "t", Commitment: "do it"}, c.written)
			if err != nil {
				t.Fatal(err)
			}
			if !saved.Reflection.FollowUpDue.Equal(c.due) {
				t.Errorf("follow-up due %v, want %v", saved.Reflection.FollowUpDue.In(ber), c.due)
			}
			plain, err := tc.Reflect(context.Background(), app.Person(owner), app.Reflection{Text: "no promise"}, c.written)
			if err != nil || !plain.Reflection.FollowUpDue.IsZero() {
				t.Errorf("a reflection without a commitment is due %v, %v", plain.Reflection.FollowUpDue, err)
			}
		})
	}
}

// Ensure the reflection form shows the nudge it is about and offers to
// share only in the digest channels the person is in, anonymously only
// where there are enough people.
func TestOpenReflection(t *testing.T) {
	const small, notMine = "CSMALL003", "CNOTMINE4"
	tc := newTestCore(t)
	tc.rebuild(t, coreOptions{edit: func(c *app.Config) {
		c.Digests = []app.DigestPlan{{Channel: team}, {Channel: small}, {Channel: notMine}}
	}})
	tc.slack.members[team] = teamOfFive
	tc.slack.members[small] = []string{owner, member}
	tc.slack.members[notMine] = []string{member, other}
	ctx := context.Background()
	for _, p := range teamOfFive {
		tc.subscribe(t, p)
	}

	form, err := tc.OpenReflection(ctx, app.Person(owner), "", tc.now)
	if err != nil || form.HaveNudge || form.DeliveryID != "" {
		t.Fatalf("form with no nudge = %+v, %v", form, err)
	}
	want := []app.ShareOption{
		{Channel: small, Name: "team", Members: 2, Anonymous: false},
		{Channel: team, Name: "team", Members: 5, Anonymous: true},
	}
	if !slices.Equal(form.ShareIn, want) {
		t.Errorf("share options = %+v, want %+v", form.ShareIn, want)
	}
	d := tc.deliver(t, owner)
	form, err = tc.OpenReflection(ctx, app.Person(owner), "", tc.now)
	if err != nil || !form.HaveNudge || form.DeliveryID != d.ID || form.Nudge.ID != d.NudgeID || form.Wording.Prompt == "" {
		t.Errorf("form on the day's nudge = %+v, %v", form, err)
	}
	if form, _ := tc.OpenReflection(ctx, app.Person(other), d.ID, tc.now); form.HaveNudge || form.DeliveryID != "" {
		t.Errorf("someone else's form opened on the owner's nudge: %+v", form)
	}
}

// Ensure the share options survive Slack failing for one channel (it is
// left out) and are remembered for a while, so the form opens within
// Slack's three seconds without asking again.
func TestShareOptionsCached(t *testing.T) {
	tc, fs := newFaultyCore(t)
	tc.slack.members[team] = teamOfFive
	ctx := context.Background()
	form, err := tc.OpenReflection(ctx, app.Person(owner), "", tc.now)
	if err != nil || len(form.ShareIn) != 1 {
		t.Fatalf("form = %+v, %v", form, err)
	}
	fs.set(func(f *faultySlack) { f.channelErr = errSlackDown })
	if form, _ := tc.OpenReflection(ctx, app.Person(owner), "", tc.now.Add(time.Minute)); len(form.ShareIn) != 1 {
		t.Errorf("within the cache's life the options are %+v, want the cached one", form.ShareIn)
	}
	tc.now = tc.now.Add(10 * time.Minute)
	if form, err := tc.OpenReflection(ctx, app.Person(owner), "", tc.now); err != nil || len(form.ShareIn) != 0 {
		t.Errorf("after the cache's life with Slack down: %+v, %v; want no options", form.ShareIn, err)
	}
}

// Ensure the journal lists the person's reflections newest first with
// the total, searches only their own, and deletes only theirs.
func TestJournal(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.subscribe(t, owner)
	for i, text := range []string{"the budget talk", "a quiet day", "budget again"} {
		if _, err := tc.Reflect(ctx, app.Person(owner), app.Reflection{Text: text}, tc.now.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tc.Reflect(ctx, app.Person(other), app.Reflection{Text: "my budget"}, tc.now); err != nil {
		t.Fatal(err)
	}
	texts := func(rs []nudges.Reflection) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Text)
		}
		return out
	}
	j, err := tc.ListReflections(ctx, app.Person(owner), 2)
	if err != nil || j.Total != 3 || !slices.Equal(texts(j.Reflections), []string{"budget again", "a quiet day"}) || j.Location.String() != "Europe/Berlin" {
		t.Errorf("list = %q of %d in %v, %v", texts(j.Reflections), j.Total, j.Location, err)
	}
	j, err = tc.SearchReflections(ctx, app.Person(owner), "budget", 10)
	if err != nil || j.Total != 2 || !slices.Equal(texts(j.Reflections), []string{"budget again", "the budget talk"}) {
		t.Errorf("search = %q (%d), %v", texts(j.Reflections), j.Total, err)
	}
	if err := tc.DeleteReflection(ctx, app.Person(other), 2); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("another person deleting #2: %v, want not found in their own journal", err)
	}
	if _, err := tc.db.Reflection(owner, 2); err != nil {
		t.Errorf("the owner's #2 went when another person deleted their #2: %v", err)
	}
	if err := tc.DeleteReflection(ctx, app.Person(owner), 2); err != nil {
		t.Fatal(err)
	}
	if err := tc.DeleteReflection(ctx, app.Person(owner), 2); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("deleting it again: %v, want not found", err)
	}
	if j, _ := tc.ListReflections(ctx, app.Person(owner), 10); j.Total != 2 {
		t.Errorf("total after a delete = %d", j.Total)
	}
}

// Ensure the answer to "did you do it?" is kept on the author's own
// reflection, with when it was first asked.
func TestAnswerCommitment(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	saved, err := tc.Reflect(ctx, app.Person(owner), app.Reflection{Text: "t", Commitment: "ask Sam"}, tc.now)
	if err != nil {
		t.Fatal(err)
	}
	seq := saved.Reflection.Seq
	first := tc.now.Add(72 * time.Hour)
	r, err := tc.AnswerCommitment(ctx, app.Person(owner), seq, false, first)
	if err != nil || r.Kept == nil || *r.Kept || !r.FollowedUp.Equal(first) {
		t.Fatalf("not yet = %+v, %v", r, err)
	}
	r, err = tc.AnswerCommitment(ctx, app.Person(owner), seq, true, first.Add(24*time.Hour))
	if err != nil || r.Kept == nil || !*r.Kept || !r.FollowedUp.Equal(first) {
		t.Errorf("done a day later = kept %v, followed up %v, %v; want kept, first follow-up kept", r.Kept, r.FollowedUp, err)
	}
	if _, err := tc.AnswerCommitment(ctx, app.Person(owner), seq+1, true, first); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("an answer on no reflection: %v, want not found", err)
	}
}

// Ensure an export holds everything about the person and nobody else:
// settings, each nudge with its prompt, reflections newest first.
func TestExport(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.subscribe(t, other)
	d := tc.deliver(t, owner)
	for i := range 2 {
		if _, err := tc.Reflect(ctx, app.Person(owner), app.Reflection{Text: fmt.Sprint("mine ", i)}, tc.now.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tc.Reflect(ctx, app.Person(other), app.Reflection{Text: "theirs"}, tc.now); err != nil {
		t.Fatal(err)
	}
	ex, err := tc.Export(ctx, app.Person(owner), tc.now)
	if err != nil {
		t.Fatal(err)
	}
	if ex.UserID != owner || !ex.ExportedAt.Equal(tc.now) || ex.Settings == nil || ex.Settings.UserID != owner || ex.Unreadable != 0 {
		t.Errorf("export header = %+v", ex)
	}
	if len(ex.Nudges) != 1 || ex.Nudges[0].ID != d.ID || ex.Nudges[0].Prompt == "" {
		t.Errorf("exported nudges = %+v, want the one with its prompt", ex.Nudges)
	}
	var texts []string
	for _, r := range ex.Reflections {
		texts = append(texts, r.Text)
	}
	if !slices.Equal(texts, []string{"mine 1", "mine 0"}) {
		t.Errorf("exported reflections = %q, want the owner's, newest first", texts)
	}
	empty, err := tc.Export(ctx, app.Person(outsider), tc.now)
	if err != nil || empty.Settings != nil || len(empty.Nudges) != 0 || empty.Reflections == nil || len(empty.Reflections) != 0 {
		t.Errorf("a stranger's export = %+v, %v; want empty lists, no settings", empty, err)
	}
}

// Ensure forgetting leaves nothing of the person, their bytes leave the
// file, and nobody may forget someone else.
func TestForgetAndCompact(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	tc.deliver(t, owner)
	if _, err := tc.Reflect(ctx, app.Person(owner), app.Reflection{Text: "gone soon"}, tc.now); err != nil {
		t.Fatal(err)
	}
	if err := tc.Forget(ctx, app.Person(other), owner); !app.IsForbidden(err) {
		t.Fatalf("forgetting someone else: %v, want a refusal", err)
	}
	if err := tc.Forget(ctx, app.Person(owner), owner); err != nil {
		t.Fatal(err)
	}
	tc.Flush() // the compaction Forget asked for
	ex, err := tc.Export(ctx, app.Person(owner), tc.now)
	if err != nil || ex.Settings != nil || len(ex.Nudges) != 0 || len(ex.Reflections) != 0 {
		t.Errorf("after forgetting, the export holds %+v, %v", ex, err)
	}
	if tc.db.NeedsCompaction() {
		t.Error("a forgotten person's bytes are still in the file")
	}
}

// Ensure a team update is drafted from the author's own reflection only,
// and posted in their name only where they are a member.
func TestDraftAndPostUpdate(t *testing.T) {
	tc := newTestCore(t)
	ctx := context.Background()
	saved, err := tc.Reflect(ctx, app.Person(owner), app.Reflection{Text: "we shipped the importer"}, tc.now)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tc.DraftUpdate(ctx, app.Person(owner), saved.Reflection.Seq)
	if err != nil || r.Text != "we shipped the importer" {
		t.Fatalf("draft = %+v, %v", r, err)
	}
	if _, err := tc.DraftUpdate(ctx, app.Person(other), saved.Reflection.Seq); !errors.Is(err, nudges.ErrNotFound) {
		t.Errorf("another person's draft of #%d: %v, want not found in their own journal", saved.Reflection.Seq, err)
	}
	if err := tc.PostUpdate(ctx, app.Person(owner), team, "Shipped: the importer"); err != nil {
		t.Fatal(err)
	}
	if err := tc.PostUpdate(ctx, app.Person(outsider), team, "not mine to say"); !app.IsForbidden(err) {
		t.Errorf("an outsider's update: %v, want a refusal", err)
	}
	if !slices.Equal(tc.slack.texts, []string{"Shipped: the importer"}) || !slices.Equal(tc.slack.channel, []string{team}) {
		t.Errorf("posted %q in %v, want the owner's update in the team channel only", tc.slack.texts, tc.slack.channel)
	}
}

// Ensure a team update Slack fails to post, or a channel Slack cannot
// say the members of, is an error and not a silent success.
func TestPostUpdateWhenSlackFails(t *testing.T) {
	tc, fs := newFaultyCore(t)
	fs.set(func(f *faultySlack) { f.channelErr = errSlackDown })
	err := tc.PostUpdate(context.Background(), app.Person(owner), team, "hello")
	if err == nil || app.IsForbidden(err) || !errors.Is(err, errSlackDown) {
		t.Errorf("err = %v, want Slack's failure", err)
	}
	if len(tc.slack.texts) != 0 {
		t.Errorf("posted %q without knowing the members", tc.slack.texts)
	}
}
