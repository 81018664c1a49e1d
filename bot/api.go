package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/nudgebot/nudgebot/app"
)

// DefaultLimits returns the requests per minute per Web API method, from Slack's
// published tiers (Tier 2: 20, Tier 3: 50, Tier 4: 100). chat.postMessage
// is not among them: Slack limits it to about one a second per channel
// plus a workspace limit it does not publish, which postPacer learns.
// slack_limits in the config (deprecated) still replaces a tier's figure.
func DefaultLimits() map[string]int {
	return map[string]int{
		"auth.test":                    100,
		"chat.postEphemeral":           100,
		"chat.update":                  50,
		"conversations.open":           50,
		"conversations.history":        50,
		"conversations.members":        100,
		"users.info":                   100,
		"users.list":                   20,
		"views.open":                   100,
		"views.publish":                100,
		"views.update":                 100,
		"files.getUploadURLExternal":   20,
		"files.completeUploadExternal": 20,
		"response_url":                 0, // not a Web API method: no tier
	}
}

// limitMargin is the share of a method's limit the bot uses: 1% of
// throughput kept back, with half-second bursts, so the bot's bucket and
// Slack's, which never tick in step, do not trip a 429 in a long rush
// (0 in 100,000 at the limit, docs/performance.md).
const limitMargin = 0.99

// errRateLimitedOut and errNotAttempted mark failures where Slack
// certainly did not take the call: it answered 429 every time, or the
// call was never made.
// Both wrap app.ErrNotSent, which is what the core acts on.
var (
	errRateLimitedOut = fmt.Errorf("rate limited on every attempt: %w", app.ErrNotSent)
	errNotAttempted   = fmt.Errorf("call not made: %w", app.ErrNotSent)
)

// ErrUncertain means a post may or may not have reached Slack (the
// connection broke, or Slack answered 5xx after taking it). Posting again
// blindly could send it twice, so the caller reconciles instead.
var ErrUncertain = app.ErrUncertain

// errPermanent wraps Slack errors that will not change on retry.
type permanentError struct {
	method string
	code   string
}

func (e *permanentError) Error() string {
	return fmt.Sprintf("slack %s: %s", e.method, e.code)
}

// SlackCode lets the core read Slack's error code (app.SlackCode).
func (e *permanentError) SlackCode() string { return e.code }

// slackCode returns Slack's error code (e.g. "channel_not_found") if err
// is a permanent Slack error.
func slackCode(err error) string { return app.SlackCode(err) }

// callKind says whether a call may be repeated after an ambiguous
// failure. Reads and idempotent updates may; posts may not.
type callKind int

const (
	callSafe callKind = iota
	callPost
)

// webAPI wraps every Web API call with the method's rate limiter, a pause
// shared by every caller when Slack answers 429, bounded retries for what
// is safe to retry, and classification of what is not.
type webAPI struct {
	log         *slog.Logger
	callTimeout time.Duration
	maxAttempts int
	metrics     Metrics

	posts  *postPacer // chat.postMessage, per channel and workspace-wide
	memory PaceMemory // where the learned figure outlives a restart; nil: nowhere

	mu    sync.Mutex
	gates map[string]*gate
	lims  map[string]int
	// replicas is how many replicas share Slack's per-method limits
	// (they are per app and workspace, not per process): each gate
	// allows 1/replicas of its method's limit. 1 on the bbolt file.
	replicas int
}

// postMethod is paced by postPacer rather than by a tier.
const postMethod = "chat.postMessage"

type gate struct {
	perMin int           // the method's limit, calls a minute; 0: none
	lim    *rate.Limiter // nil: unlimited

	mu          sync.Mutex
	pausedUntil time.Time
}

// PaceMemory keeps the workspace pace learned from Slack's 429s across
// restarts, in chat.postMessage calls a minute; storage.DB is one.
type PaceMemory interface {
	// LearnedPace is 0 while nothing was ever learned.
	LearnedPace() (perMinute float64, err error)
	SetLearnedPace(perMinute float64) error
}

func newWebAPI(log *slog.Logger, limits map[string]int, m Metrics, memory PaceMemory) *webAPI {
	lims := DefaultLimits()
	for k, v := range limits {
		lims[k] = v
	}
	w := &webAPI{
		log:         log,
		callTimeout: 15 * time.Second,
		maxAttempts: 5,
		metrics:     m,
		posts:       newPostPacer(lims[postMethod], time.Now()),
		memory:      memory,
		gates:       make(map[string]*gate),
		lims:        lims,
		replicas:    1,
	}
	w.recall()
	w.metrics.PostPace(w.posts.figures())
	return w
}

// recall starts the pace from the figure a previous run learned. Without
// one (a new bot, or the record unreadable) it learns again, at the cost
// of two 429s: never a reason not to start.
func (w *webAPI) recall() {
	if w.memory == nil {
		return
	}
	perMinute, err := w.memory.LearnedPace()
	switch {
	case err != nil:
		w.log.Warn("could not read the Slack pace learned before; learning it again", "error", err)
	case perMinute == 0:
	case !w.posts.restore(perMinute, time.Now()):
		w.log.Warn("the Slack pace learned before is out of range; learning it again", "learned_per_minute", perMinute)
	default:
		w.log.Info("starting at the Slack pace learned before", "learned_per_minute", int(perMinute), "pace_per_minute", int(w.posts.pace()))
	}
}

// readopt takes up the figure saved by another process sharing the
// database (the replica that led before this one) when it differs from
// what this one knows, so a replica that starts leading mid-rush starts
// at the pace the workspace allows rather than learning it again at the
// cost of 429s.
func (w *webAPI) readopt() {
	if w.memory == nil {
		return
	}
	perMinute, err := w.memory.LearnedPace()
	switch {
	case err != nil:
		w.log.Warn("could not read the Slack pace the replicas learned; going on with this one's", "error", err)
	case perMinute == 0:
	case !w.posts.adopt(perMinute, time.Now()):
	default:
		w.log.Info("taking up the Slack pace the replicas learned", "learned_per_minute", int(perMinute), "pace_per_minute", int(w.posts.pace()))
		w.metrics.PostPace(w.posts.figures())
	}
}

// remember writes the learned figure down when it changed, at most once
// a minute, and shows the pace in the metrics.
func (w *webAPI) remember(now time.Time) {
	w.metrics.PostPace(w.posts.figures())
	if w.memory == nil {
		return
	}
	perMinute, ok := w.posts.toSave(now)
	if !ok {
		return
	}
	if err := w.memory.SetLearnedPace(perMinute); err != nil {
		// Only a restart loses by it: it learns the figure again.
		w.log.Warn("could not save the Slack pace learned", "learned_per_minute", int(perMinute), "error", err)
	}
}

func (w *webAPI) gate(method string) *gate {
	w.mu.Lock()
	defer w.mu.Unlock()
	g, ok := w.gates[method]
	if !ok {
		g = &gate{perMin: w.tier(method)}
		if g.perMin > 0 {
			g.lim = rate.NewLimiter(g.share(w.replicas))
		}
		w.gates[method] = g
	}
	return g
}

// tier is the method's limit in calls a minute, 0 for none the gate
// enforces.
func (w *webAPI) tier(method string) int {
	perMin, known := w.lims[method]
	switch {
	case method == postMethod:
		return 0 // paced by w.posts; the gate only pauses it
	case !known:
		return 50 // an unlisted method gets Tier 3, the common case
	}
	return perMin
}

// share is the rate and burst this replica's gate allows when replicas
// processes call the method: Slack counts every call of the app in the
// workspace against one limit, whichever process makes it.
//
// Each stays just inside its share, with bursts of half a second's
// worth: Slack's bucket and ours never tick in step, and a 9 o'clock
// rush paced exactly at the limit trips it now and then. 2% of
// throughput buys no 429s at all.
func (g *gate) share(replicas int) (rate.Limit, int) {
	perMin := float64(g.perMin) / float64(max(1, replicas))
	return rate.Limit(perMin * limitMargin / 60), max(1, int(perMin)/120)
}

// setReplicas gives every gate, and those made later, its share of the
// method's limit among replicas processes. chat.postMessage is left
// alone: its pacer learns the workspace's pace from Slack's 429s, and
// only the leader posts the bulk (the nudges and digests), so the other
// replicas' few answers in a channel do not call for a share of it.
func (w *webAPI) setReplicas(replicas int) (changed bool) {
	replicas = max(1, replicas)
	w.mu.Lock()
	defer w.mu.Unlock()
	if replicas == w.replicas {
		return false
	}
	w.replicas = replicas
	now := time.Now()
	for _, g := range w.gates {
		if g.lim != nil {
			limit, burst := g.share(replicas)
			g.lim.SetLimitAt(now, limit)
			g.lim.SetBurstAt(now, burst)
		}
	}
	return true
}

// paused reports whether the method is paused now.
func (g *gate) paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Now().Before(g.pausedUntil)
}

// pause stops every caller of the method until t.
func (g *gate) pause(t time.Time) {
	g.mu.Lock()
	if t.After(g.pausedUntil) {
		g.pausedUntil = t
	}
	g.mu.Unlock()
}

func (g *gate) wait(ctx context.Context) (paused time.Duration, err error) {
	g.mu.Lock()
	until := g.pausedUntil
	g.mu.Unlock()
	if d := time.Until(until); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
			paused = d
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		}
	}
	if g.lim != nil {
		if err := g.lim.Wait(ctx); err != nil {
			return paused, err
		}
	}
	return paused, nil
}

// do runs fn under the method's limits. It retries 429s for every kind
// (Slack did not process the call), and 5xx or network failures only for
// callSafe; for callPost those come back as ErrUncertain.
func (w *webAPI) do(ctx context.Context, method string, kind callKind, fn func(context.Context) error) error {
	return w.doIn(ctx, method, "", kind, fn)
}

// doIn is do for a call into a channel: chat.postMessage is paced per
// channel as well as across the workspace.
func (w *webAPI) doIn(ctx context.Context, method, channel string, kind callKind, fn func(context.Context) error) error {
	g := w.gate(method)
	backoff := 200 * time.Millisecond
	var err error
	for attempt := 1; attempt <= w.maxAttempts; attempt++ {
		werr := w.wait(ctx, g, method, channel)
		if werr != nil {
			return fmt.Errorf("slack %s: waiting for rate limit: %w: %w", method, errNotAttempted, werr)
		}
		sent := time.Now()
		cctx, cancel := context.WithTimeout(ctx, w.callTimeout)
		// Scrubbed at once: slack-go's network errors quote the URL,
		// and a response_url is a secret (see Scrub).
		err = scrubError(fn(cctx))
		cancel()
		outcome := classify(err)
		w.metrics.APICall(method, outcome)
		switch outcome {
		case "ok":
			if method == postMethod {
				now := time.Now()
				w.posts.ok(now, sent)
				w.remember(now)
			}
			return nil
		case "rate_limited":
			w.rateLimited(g, method, err, sent)
			continue
		case "not_attempted":
			return err
		case "permanent":
			code := err.Error()
			var se slack.SlackErrorResponse
			if errors.As(err, &se) {
				code = se.Err
			}
			return &permanentError{method: method, code: code}
		default: // "uncertain": 5xx, network, timeout
			if ctx.Err() != nil {
				return fmt.Errorf("slack %s: %w", method, ctx.Err())
			}
			if kind == callPost {
				return fmt.Errorf("slack %s: %w: %w", method, ErrUncertain, err)
			}
			w.log.Warn("slack call failed; retrying", "method", method, "attempt", attempt, "error", err)
			t := time.NewTimer(backoff + time.Duration(rand.Int64N(int64(backoff))))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("slack %s: %w", method, ctx.Err())
			}
			backoff = min(backoff*2, 10*time.Second)
		}
	}
	if classify(err) == "rate_limited" {
		err = fmt.Errorf("%w: %w", errRateLimitedOut, err)
	}
	return fmt.Errorf("slack %s: giving up after %d attempts: %w", method, w.maxAttempts, err)
}

// wait holds a call until the method's pause (after a 429) is over and
// its pace allows it. A post waits for its pace first and then checks the
// pause again: one queued behind the pace when a 429 came must not leave
// before Retry-After, and after the pause it queues for the pace anew.
func (w *webAPI) wait(ctx context.Context, g *gate, method, channel string) error {
	for {
		paused, err := g.wait(ctx)
		if paused > 0 {
			w.metrics.Paused(method, paused)
		}
		if err != nil || method != postMethod {
			return err
		}
		if err := w.posts.wait(ctx, channel); err != nil {
			return err
		}
		if !g.paused() {
			return nil
		}
	}
}

// rateLimited honours a 429's Retry-After (a second when Slack gave
// none) by pausing every caller of the method, and for chat.postMessage
// tells the pacer, which learns Slack's workspace limit from it.
func (w *webAPI) rateLimited(g *gate, method string, err error, sent time.Time) {
	retryAfter := time.Second
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok && rl.RetryAfter > 0 {
		retryAfter = rl.RetryAfter
	}
	// A little jitter keeps waiting callers from all returning in the
	// same millisecond; the limiters space them after that.
	wait := retryAfter + time.Duration(rand.Int64N(int64(20*time.Millisecond)))
	now := time.Now()
	g.pause(now.Add(wait))
	if method != postMethod {
		w.log.Warn("slack rate limited; pausing method", "method", method, "retry_after", wait.Round(time.Millisecond))
		return
	}
	learned := w.posts.limited(now, sent, retryAfter)
	w.remember(now)
	w.log.Warn("slack rate limited; pausing method", "method", method, "retry_after", wait.Round(time.Millisecond),
		"learned_per_minute", int(learned), "pace_per_minute", int(w.posts.pace()))
}

// classify sorts a slack-go error into what we do about it.
func classify(err error) string {
	if err == nil {
		return "ok"
	}
	if errors.Is(err, app.ErrNotSent) {
		return "not_attempted"
	}
	if _, ok := errors.AsType[*slack.RateLimitedError](err); ok {
		return "rate_limited"
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "ratelimited", "rate_limited":
			return "rate_limited"
		case "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			// Slack says some aspect of the call may have succeeded.
			return "uncertain"
		}
		return "permanent"
	}
	if sc, ok := errors.AsType[slack.StatusCodeError](err); ok {
		if sc.Code == 429 {
			return "rate_limited"
		}
		if sc.Code >= 500 {
			return "uncertain"
		}
		return "permanent"
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return "uncertain"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "uncertain"
	}
	// EOF, connection reset and the like surface as plain wrapped errors.
	return "uncertain"
}
