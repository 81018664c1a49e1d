package bot

import (
	"math"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// slackBucket is Slack's workspace limit as the emulator models it: perMinute
// a minute, bursts of a second's worth, and a whole-second Retry-After.
type slackBucket struct{ lim *rate.Limiter }

func newSlackBucket(perMinute int) *slackBucket {
	return &slackBucket{rate.NewLimiter(rate.Limit(float64(perMinute)/60), max(1, perMinute/60))}
}

// take answers a post arriving at t: 0 if Slack takes it, else Retry-After.
func (b *slackBucket) take(t time.Time) time.Duration {
	r := b.lim.ReserveN(t, 1)
	d := r.DelayFrom(t)
	if d <= 0 {
		return 0
	}
	r.CancelAt(t)
	return time.Duration(math.Ceil(d.Seconds())) * time.Second
}

// simulated is one rush of n posts through a pacer against a bucket, on a
// fake clock: each post leaves when the pacer allows and after any
// Retry-After, and Slack answers at once.
type simulated struct {
	took    time.Duration
	limited int
}

func simulate(p *postPacer, b *slackBucket, start time.Time, n int) simulated {
	var res simulated
	t, paused := start, start
	for sent := 0; sent < n; {
		if t.Before(paused) {
			t = paused
		}
		if d := p.lim.ReserveN(t, 1).DelayFrom(t); d > 0 {
			p.press(t)
			t = t.Add(d)
		}
		if wait := b.take(t); wait > 0 {
			res.limited++
			p.limited(t, t, wait)
			paused = t.Add(wait)
			continue
		}
		p.ok(t, t)
		sent++
	}
	res.took = t.Sub(start)
	return res
}

// floor is the least time the bucket allows for n posts: its burst is free.
func floor(perMinute, n int) time.Duration {
	return time.Duration(float64(n-max(1, perMinute/60)) / float64(perMinute) * float64(time.Minute))
}

// Ensure the pacer, knowing nothing, sends a rush of 1,000 within 1.1x of
// the floor a workspace limit it was never told sets, with 429s for at
// most 1% of posts, and that a second rush starts from what it learned.
func TestPostPacer_LearnsWorkspaceLimit(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, perMinute := range []int{60, 300, 1000, 5000} {
		b := newSlackBucket(perMinute)
		p := newPostPacer(0, start)
		first := simulate(p, b, start, 1000)
		fl := floor(perMinute, 1000)
		t.Logf("%d/min: 1000 in %s (floor %s, %.3fx), %d 429s, learned %.0f/min, pace %.0f/min",
			perMinute, first.took, fl, first.took.Seconds()/fl.Seconds(), first.limited, p.learned*60, p.pace())
		if first.took > fl*11/10 {
			t.Errorf("%d/min: 1,000 posts took %s, more than 1.1x the floor %s", perMinute, first.took, fl)
		}
		if first.limited > 10 {
			t.Errorf("%d/min: %d 429s for 1,000 posts, more than 1%%", perMinute, first.limited)
		}
		// The next day's rush: the bucket is full again.
		next := start.Add(24 * time.Hour)
		second := simulate(p, b, next, 1000)
		t.Logf("%d/min: next rush in %s, %d 429s", perMinute, second.took, second.limited)
		if second.took > fl*11/10 || second.limited > 10 {
			t.Errorf("%d/min: the next rush took %s with %d 429s", perMinute, second.took, second.limited)
		}
	}
}

// Ensure a long steady run at the limit keeps 429s under 1% and the pace
// close to the limit, and that a limit Slack lowers or raises is followed.
func TestPostPacer_FollowsChanges(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	p := newPostPacer(0, start)
	b := newSlackBucket(600)
	long := simulate(p, b, start, 20000)
	fl := floor(600, 20000)
	t.Logf("20,000 at 600/min: %s (floor %s), %d 429s", long.took, fl, long.limited)
	if long.took > fl*105/100 || long.limited > 200 {
		t.Errorf("20,000 at 600/min took %s (floor %s) with %d 429s", long.took, fl, long.limited)
	}
	// Slack lowers the limit: the pace follows within a few 429s.
	at := start.Add(24 * time.Hour)
	low := simulate(p, newSlackBucket(120), at, 5000)
	fl = floor(120, 5000)
	t.Logf("limit now 120/min: 5,000 in %s (floor %s), %d 429s, learned %.0f/min", low.took, fl, low.limited, p.learned*60)
	if low.took > fl*12/10 || low.limited > 50 {
		t.Errorf("limit lowered to 120/min: 5,000 took %s (floor %s) with %d 429s", low.took, fl, low.limited)
	}
	// Slack raises it: found again, more slowly, without a storm of 429s.
	at = at.Add(24 * time.Hour)
	high := simulate(p, newSlackBucket(3000), at, 5000)
	t.Logf("limit now 3000/min: 5,000 in %s, %d 429s, learned %.0f/min", high.took, high.limited, p.learned*60)
	if p.learned*60 < 2700 || high.limited > 50 {
		t.Errorf("limit raised to 3000/min: learned %.0f/min after 5,000 posts, with %d 429s", p.learned*60, high.limited)
	}
}

// Ensure 429s with nothing taken between them (a storm) leave the pace and
// the figure as they were: only the Retry-After pauses answer them.
func TestPostPacer_StormMeasuresNothing(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for name, perMinute := range map[string]int{"unconfigured": 0, "slack_limits 1200": 1200} {
		t.Run(name, func(t *testing.T) {
			p := newPostPacer(perMinute, start)
			before := p.pace()
			at := start
			for range 50 {
				p.limited(at, at, time.Second)
				at = at.Add(time.Second + 10*time.Millisecond)
			}
			if p.pace() != before || p.learned != 0 {
				t.Errorf("after a storm: pace %.0f/min (was %.0f), learned %.0f/min; want both unchanged", p.pace(), before, p.learned*60)
			}
		})
	}
}

// Ensure a pacer started from the figure an earlier run learned (a
// restart) sends a team's rush without a 429, where a fresh one meets the
// limit before it knows it, and that it still creeps up to find a limit
// Slack raised.
func TestPostPacer_RestoredFigure(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, perMinute := range []int{300, 1000, 5000} {
		for _, team := range []int{20, 100} {
			fresh := newPostPacer(0, start)
			learn := simulate(fresh, newSlackBucket(perMinute), start, 1000)
			saved, ok := fresh.toSave(start.Add(time.Hour))
			if !ok {
				t.Fatalf("%d/min: nothing to save after %d 429s", perMinute, learn.limited)
			}
			cold := simulate(newPostPacer(0, start), newSlackBucket(perMinute), start, team)

			restarted := newPostPacer(0, start)
			if !restarted.restore(saved, start) {
				t.Fatalf("%d/min: figure %.0f refused", perMinute, saved)
			}
			warm := simulate(restarted, newSlackBucket(perMinute), start, team)
			t.Logf("%d/min, %d posts: fresh %d 429s in %s; restarted from %.0f/min: %d 429s in %s",
				perMinute, team, cold.limited, cold.took, saved, warm.limited, warm.took)
			if warm.limited != 0 {
				t.Errorf("%d/min, %d posts: a restarted pacer met %d 429s, want none", perMinute, team, warm.limited)
			}
			if fl := floor(perMinute, team); warm.took > max(fl*11/10, 2*time.Second) {
				t.Errorf("%d/min, %d posts: a restarted pacer took %s (floor %s)", perMinute, team, warm.took, fl)
			}
		}
	}
	// Slack raised its limit since: the restored figure is only a start.
	p := newPostPacer(0, start)
	p.restore(300, start)
	simulate(p, newSlackBucket(1200), start, 5000)
	if _, learned := p.figures(); learned < 1000 {
		t.Errorf("restored at 300/min, limit now 1200/min: learned %.0f/min after 5,000 posts", learned)
	}
}

// Ensure the figure is offered for saving when it changes, at most once
// a minute, never as 0, and that a figure out of range is not restored.
func TestPostPacer_SaveAndRestore(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	p := newPostPacer(0, start)
	if _, ok := p.toSave(start); ok {
		t.Fatal("a figure to save before anything was learned")
	}
	p.learned = 5
	if v, ok := p.toSave(start); !ok || v != 300 {
		t.Fatalf("first figure: %v %v, want 300 true", v, ok)
	}
	p.learned = 6
	if _, ok := p.toSave(start.Add(30 * time.Second)); ok {
		t.Error("saved twice within a minute")
	}
	if v, ok := p.toSave(start.Add(time.Minute)); !ok || v != 360 {
		t.Errorf("a minute on: %v %v, want 360 true", v, ok)
	}
	if _, ok := p.toSave(start.Add(time.Hour)); ok {
		t.Error("saved again though unchanged")
	}
	p.learned = 0
	if _, ok := p.toSave(start.Add(2 * time.Hour)); ok {
		t.Error("0 offered for saving")
	}
	for _, bad := range []float64{-1, 0, math.NaN(), math.Inf(1), 1e9} {
		q := newPostPacer(0, start)
		if q.restore(bad, start) || q.pace() != startPace*60 {
			t.Errorf("restore(%v) accepted; pace %.0f/min", bad, q.pace())
		}
	}
	q := newPostPacer(600, start) // slack_limits still bounds it
	if !q.restore(3000, start) || q.pace() > 600 {
		t.Errorf("restored above slack_limits: pace %.0f/min", q.pace())
	}
}

// Ensure a pacer already in use (a replica that followed, and now leads)
// takes up the figure another replica learned and saved: its next rush
// meets no 429 where, sending from where it started, it would; a figure
// it already has, or one out of range, changes nothing.
func TestPostPacer_AdoptsAnotherReplicasFigure(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	const perMinute, team = 1000, 100
	leader := newPostPacer(0, start)
	simulate(leader, newSlackBucket(perMinute), start, 1000)
	saved, ok := leader.toSave(start.Add(time.Hour))
	if !ok {
		t.Fatal("the leader learned nothing to save")
	}
	follower := newPostPacer(0, start)
	cold := simulate(newPostPacer(0, start), newSlackBucket(perMinute), start, team)
	if !follower.adopt(saved, start) {
		t.Fatalf("figure %.0f/min not taken up", saved)
	}
	warm := simulate(follower, newSlackBucket(perMinute), start, team)
	t.Logf("%d posts at %d/min: %d 429s from the start pace, %d after taking up %.0f/min", team, perMinute, cold.limited, warm.limited, saved)
	if cold.limited == 0 {
		t.Fatal("the start pace met no 429: the rush shows nothing")
	}
	if warm.limited != 0 {
		t.Errorf("after taking up the figure: %d 429s, want none", warm.limited)
	}
	if follower.adopt(saved, start) {
		t.Error("the same figure taken up twice")
	}
	for _, bad := range []float64{-1, math.NaN(), 1e9} {
		if follower.adopt(bad, start) {
			t.Errorf("adopt(%v) accepted", bad)
		}
	}
}
