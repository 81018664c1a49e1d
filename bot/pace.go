package bot

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Slack limits chat.postMessage to "generally 1 message per second per
// channel" and, across the workspace, by a figure it does not publish
// (shared/reference/slack-protocol.md §4). postPacer keeps to the first
// exactly and learns the second at run time:
//
//   - Until Slack first answers 429 the pace starts at startPace (or the
//     operator's deprecated slack_limits figure) and grows while posts go
//     through, doubling about every two seconds of steady sending.
//   - Slack's limit is a bucket that refills at a steady rate. Between two
//     429s the bucket went from empty to empty, so the posts Slack took in
//     between, over the time between, is its rate (a little under it if
//     the bucket was full for a while). That figure is learned.
//   - After each 429 the pace drops to backoff of the figure learned, then
//     creeps up by probe of it for every post Slack takes, so that a limit
//     Slack raises is found again, at the cost of a 429 now and then; far
//     above the figure with no 429 (reprobe), it grows fast again.
//   - The pace only grows while posts queue for it: an idle bot would
//     otherwise start its next rush far above Slack's limit.
//
// Retry-After is honoured by the caller (webAPI pauses the method). When
// Slack's bucket holds a Retry-After's worth, the pause costs little: the
// bucket refills while the bot waits, and the bot's own bucket, sized to
// most of a second at the learned rate, spends it after.
type postPacer struct {
	mu          sync.Mutex
	lim         *rate.Limiter // the workspace-wide pace
	ceiling     float64       // posts a second the pace never exceeds
	minBurst    int           // the fewest posts the pace lets go at once
	learned     float64       // Slack's workspace rate measured, a second; 0 until known
	lastLimited time.Time     // the latest 429 that counted; zero before the first
	okSince     int           // posts Slack took since lastLimited
	retryAfter  time.Duration // what the latest counted 429 said to wait
	resumed     time.Time     // when the first post after that wait left
	lastOK      time.Time     // the latest post Slack took
	gapped      bool          // sending paused for a while since lastLimited
	pressed     time.Time     // the latest post that had to wait for the pace
	saved       float64       // the learned figure last written down, a second
	savedAt     time.Time     // when it was; zero before the first write

	channels  map[string]*rate.Limiter
	lastSweep time.Time
}

const (
	// startPace is where the pace begins with nothing learned: 6,000 a
	// minute. A smaller limit is found within a second or two, and a
	// larger one is grown into.
	startPace = 100.0
	// maxPace bounds the growth when Slack never says 429 (an emulator
	// without limits, a workspace with a very high one).
	maxPace = 2000.0
	// slowStartGain is the pace added for every post Slack takes before
	// its first 429: growth of about 35% a second while sending steadily.
	slowStartGain = 0.35
	// backoff is the share of the learned figure the pace drops to after
	// a 429, and probe the share of it added for every post Slack takes:
	// at a steady limit, one 429 in some hundreds of posts (more at a
	// higher limit).
	backoff = 0.97
	probe   = 0.00015
	// reprobe is how far above the learned figure the pace may creep with
	// no 429 before the figure is forgotten and growth is fast again.
	reprobe = 1.2
	// gapLimit is the pause in sending after which the time since the
	// last 429 no longer measures Slack's rate (a Retry-After is shorter).
	gapLimit = 2 * time.Second
	// learnedBurst is the share of a second's worth at the learned rate
	// sent at once when the bot's bucket is full.
	learnedBurst = 0.9
	// minMeasured is the fewest posts between two 429s that measure
	// anything: one, since a small bucket lets one through a Retry-After.
	minMeasured = 1
	// minWindow is the shortest time between two 429s that measures
	// Slack's rate: 429s closer than that are one event.
	minWindow = 500 * time.Millisecond
	// maxWindow is the longest: two 429s further apart (a rush at nine and
	// another at ten) say nothing about the rate in between.
	maxWindow = 10 * time.Minute

	// One post a second in each channel, without bursts: nudges are one
	// post per person's DM, and a digest's few parts can wait a second
	// each, while a 429 pauses every post in the workspace.
	channelPace  = 1.0
	channelBurst = 1
	// sweepAbove is the number of channel limiters kept before idle ones
	// (full again, so no different from a new one) are dropped.
	sweepAbove = 1024
)

// newPostPacer starts at perMinute (the deprecated slack_limits figure,
// which is also the ceiling) or, when 0, at startPace.
func newPostPacer(perMinute int, now time.Time) *postPacer {
	start, ceiling := startPace, maxPace
	minBurst := 1
	if perMinute > 0 {
		// As before the pace was learned: 1% of throughput kept back,
		// since the bot's bucket and Slack's never tick in step, and
		// bursts of half a second's worth, which the operator's figure
		// is taken to allow.
		start = float64(perMinute) * limitMargin / 60
		ceiling = start
		minBurst = max(1, perMinute/120)
	}
	p := &postPacer{ceiling: ceiling, minBurst: minBurst, channels: map[string]*rate.Limiter{}, lastSweep: now}
	p.lim = rate.NewLimiter(rate.Limit(start), max(minBurst, burstFor(start)))
	return p
}

// burstFor lets the senders catch up 20 ms of pace after a stall: at a
// workspace's pace that is one post, so a 429 finds few others in flight.
func burstFor(perSecond float64) int {
	return max(1, int(perSecond/50))
}

// wait blocks until a post to channel may leave: the channel's second
// first, so a post waiting on its channel holds no workspace slot.
func (p *postPacer) wait(ctx context.Context, channel string) error {
	if channel != "" {
		if err := p.channel(channel, time.Now()).Wait(ctx); err != nil {
			return err
		}
	}
	now := time.Now()
	if p.lim.TokensAt(now) < 1 {
		p.press(now)
	}
	return p.lim.Wait(ctx)
}

// press notes that a post had to wait for the pace.
func (p *postPacer) press(now time.Time) {
	p.mu.Lock()
	p.pressed = now
	p.mu.Unlock()
}

func (p *postPacer) channel(id string, now time.Time) *rate.Limiter {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.channels) > sweepAbove && now.Sub(p.lastSweep) > time.Second {
		for ch, l := range p.channels {
			if l.TokensAt(now) >= channelBurst {
				delete(p.channels, ch)
			}
		}
		p.lastSweep = now
	}
	l, ok := p.channels[id]
	if !ok {
		l = rate.NewLimiter(channelPace, channelBurst)
		p.channels[id] = l
	}
	return l
}

// ok records a post that left at sent and that Slack took at now, and
// lets the pace grow.
func (p *postPacer) ok(now, sent time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resumed.IsZero() && !p.lastLimited.IsZero() && sent.After(p.lastLimited) {
		p.resumed = sent
	}
	if !p.lastOK.IsZero() && now.Sub(p.lastOK) > max(gapLimit, time.Duration(2/max(p.learned, 1e-3)*float64(time.Second))) {
		// Sending stopped for a while: the window no longer measures
		// Slack's rate, only how much there was to send.
		p.gapped = true
	}
	p.lastOK = now
	p.okSince++
	if now.Sub(p.pressed) > time.Second {
		// The pace held nobody back: raising it would measure nothing,
		// and the next rush would start far above Slack's limit.
		return
	}
	r := float64(p.lim.Limit())
	switch {
	case p.learned == 0:
		r += slowStartGain
	case r > reprobe*p.learned:
		// Far above the figure and still no 429: Slack raised its limit.
		// Start over from here, as at start-up.
		p.learned, p.lastLimited = 0, time.Time{}
	default:
		r += probe * p.learned
	}
	p.set(now, min(r, p.ceiling))
}

// limited records a 429 for a post that left at sent, which told the bot
// to wait retryAfter, and returns the figure learned so far in posts a
// minute (0 while unknown). A post that left before the previous 429 was
// already in flight: its 429 tells nothing new.
func (p *postPacer) limited(now, sent time.Time, retryAfter time.Duration) (learnedPerMinute float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.lastLimited.IsZero() && (sent.Before(p.lastLimited) || now.Sub(p.lastLimited) < minWindow) {
		return p.learned * 60
	}
	window := now.Sub(p.lastLimited)
	if late := p.resumed.Sub(p.lastLimited.Add(p.retryAfter)); !p.resumed.IsZero() && late > 0 {
		// Slack's bucket stopped filling once full, about when Retry-After
		// ended; the time the bot came back later than that measures the
		// bot's own wake-up, not Slack's rate.
		window -= late
	}
	// A window in which Slack took nothing (429 after 429: a storm, or
	// Slack refusing everything for a while) measures nothing; the
	// Retry-After pauses are what protect then.
	if !p.lastLimited.IsZero() && !p.gapped && p.okSince >= minMeasured && window >= minWindow && window <= maxWindow {
		p.learned = p.measured(float64(p.okSince) / window.Seconds())
		p.set(now, min(backoff*p.learned, p.ceiling))
	}
	// The first 429 alone cannot tell Slack's rate from its burst, so the
	// pace is kept until the second measures it.
	p.lastLimited, p.okSince, p.gapped = now, 0, false
	p.resumed, p.retryAfter = time.Time{}, retryAfter
	return p.learned * 60
}

// measured folds a rate measured between two 429s into the figure. A
// measurement is at most Slack's rate (its bucket may have sat full for a
// moment, refilling nothing), so while the pace was at or above the figure
// the best one stands. A 429 below the figure means Slack lowered its
// limit: the new measurement stands, though a figure measured low by
// mistake (posts slowed without a gap) falls by half at most.
func (p *postPacer) measured(perSecond float64) float64 {
	if p.learned == 0 {
		return perSecond
	}
	if float64(p.lim.Limit()) < p.learned {
		return max(perSecond, p.learned/2)
	}
	return max(perSecond, p.learned)
}

func (p *postPacer) set(now time.Time, perSecond float64) {
	perSecond = math.Max(perSecond, 1.0/60) // never stop altogether
	p.lim.SetLimitAt(now, rate.Limit(perSecond))
	burst := max(p.minBurst, burstFor(perSecond))
	if p.learned > 0 {
		// Slack's bucket holds about a second of its rate (it refills
		// during a one-second Retry-After), so after a pause or a quiet
		// spell the bot may send most of a second's worth at once.
		burst = max(burst, int(learnedBurst*p.learned))
	}
	p.lim.SetBurstAt(now, burst)
}

// pace is the current pace in posts a minute.
func (p *postPacer) pace() float64 {
	return float64(p.lim.Limit()) * 60
}

// saveEvery is how often at most the learned figure is written down: a
// figure moves a little with every 429, and a write costs a commit.
const saveEvery = time.Minute

// restore starts the pace from a figure learned before a restart, in
// posts a minute, so a restarted bot's first rush does not have to meet
// the limit twice to find it again. A measured figure is at most Slack's
// rate, so the pace starts at it, with the bucket full (Slack's refilled
// while the bot was down), and creeps up as after a 429. A figure out of
// range is ignored. It runs before the pacer is used.
func (p *postPacer) restore(perMinute float64, now time.Time) bool {
	perSecond := perMinute / 60
	if math.IsNaN(perSecond) || perSecond < 1.0/60 || perSecond > maxPace {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.learned, p.saved = perSecond, perSecond
	p.set(now, min(perSecond, p.ceiling))
	p.lim = rate.NewLimiter(p.lim.Limit(), p.lim.Burst())
	return true
}

// adopt takes up a figure in posts a minute that another process sharing
// the workspace learned and saved, while this pacer may be in use: like
// restore, except that the pacer's bucket is kept. It reports whether the
// figure was taken (in range, and not the one this pacer already has).
func (p *postPacer) adopt(perMinute float64, now time.Time) bool {
	perSecond := perMinute / 60
	if math.IsNaN(perSecond) || perSecond < 1.0/60 || perSecond > maxPace {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if perSecond == p.learned {
		return false
	}
	p.learned, p.saved = perSecond, perSecond
	p.lastLimited, p.okSince, p.gapped = time.Time{}, 0, false
	p.set(now, min(perSecond, p.ceiling))
	return true
}

// toSave returns the learned figure in posts a minute when it differs
// from the one last written and saveEvery has passed since; it counts as
// written from then on, so one caller at a time writes it.
func (p *postPacer) toSave(now time.Time) (perMinute float64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// 0 is not written: a figure forgotten because Slack raised its limit
	// is still a safe place to start from, below the new one.
	if p.learned == 0 || p.learned == p.saved || (!p.savedAt.IsZero() && now.Sub(p.savedAt) < saveEvery) {
		return 0, false
	}
	p.saved, p.savedAt = p.learned, now
	return p.learned * 60, true
}

// figures are the pace and the learned figure, in posts a minute (the
// latter 0 while unknown).
func (p *postPacer) figures() (pace, learned float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return float64(p.lim.Limit()) * 60, p.learned * 60
}
