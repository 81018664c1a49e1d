package slackemu

import (
	"fmt"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// Fault is one way a Web API call goes wrong, for FailNext. Set one of
// Status, Error, Drop or Hang; Latency may be combined with any of them.
type Fault struct {
	// Status answers with this HTTP status and no Slack body (500, 503…).
	// With 429, RetryAfter sets the Retry-After header.
	Status     int
	RetryAfter time.Duration
	// Error answers HTTP 200 with {"ok":false,"error":Error}.
	Error string
	// Latency delays the answer.
	Latency time.Duration
	// Drop applies the call (the message IS stored) and then resets the
	// connection without answering: the client cannot tell it worked.
	Drop bool
	// Hang applies the call and then never answers; the connection is reset
	// when the client gives up or the server closes.
	Hang bool
}

// FaultStatus answers with an HTTP status, e.g. 500 or 503.
func FaultStatus(code int) Fault { return Fault{Status: code} }

// FaultSlackError answers {"ok":false,"error":code}, e.g. "channel_not_found".
func FaultSlackError(code string) Fault { return Fault{Error: code} }

// FaultRateLimited answers 429 with Retry-After (whole seconds, at least 1).
func FaultRateLimited(retryAfter time.Duration) Fault {
	return Fault{Status: 429, RetryAfter: retryAfter}
}

// FaultDropAfterApply applies the call, then resets the connection.
func FaultDropAfterApply() Fault { return Fault{Drop: true} }

// FaultHangAfterApply applies the call, then never answers.
func FaultHangAfterApply() Fault { return Fault{Hang: true} }

// FaultLatency answers normally, d late.
func FaultLatency(d time.Duration) Fault { return Fault{Latency: d} }

func (f Fault) String() string {
	switch {
	case f.Drop:
		return "fault: applied, then connection reset"
	case f.Hang:
		return "fault: applied, then hung"
	case f.Error != "":
		return "fault: " + f.Error
	case f.Status != 0:
		return fmt.Sprintf("fault: HTTP %d", f.Status)
	default:
		return fmt.Sprintf("fault: %s latency", f.Latency)
	}
}

// failsBefore reports whether the fault answers instead of applying the call.
func (f Fault) failsBefore() bool { return f.Status != 0 || f.Error != "" }

// FailNext makes the next n calls to method fail with f. Calls queue up:
// FailNext twice with different faults fails the following calls with the
// first fault n times, then the second. method is a Web API method name, or
// "response_url" / "upload" for those endpoints.
func (s *Server) FailNext(method string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[method] = append(s.faults[method], f)
	}
}

// SetLatency delays every answer for method by d; 0 removes the delay.
func (s *Server) SetLatency(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.latency, method)
		return
	}
	s.latency[method] = d
}

// SetResponseLatency delays every answer for method by d AFTER the call
// has taken effect: the window in which a client that dies or gives up
// never learns that Slack has its message. 0 removes the delay.
func (s *Server) SetResponseLatency(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.afterApply == nil {
		s.afterApply = map[string]time.Duration{}
	}
	if d <= 0 {
		delete(s.afterApply, method)
		return
	}
	s.afterApply[method] = d
}

type limitSpec struct{ perMinute, burst int }

func newLimiter(l limitSpec) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(float64(l.perMinute)/60), max(l.burst, 1))
}

// RateLimit limits method to perMinute calls a minute with bursts of up to
// burst; beyond that it answers HTTP 429 with Retry-After. perMinute ≤ 0
// removes the limit. The limit runs on the emulator's clock.
func (s *Server) RateLimit(method string, perMinute, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if perMinute <= 0 {
		delete(s.limiters, method)
		return
	}
	s.limiters[method] = newLimiter(limitSpec{perMinute, burst})
}

// RateLimitPerChannel adds Slack's per-channel limit for chat.postMessage
// ("about one message per second per channel"): perMinute messages a minute
// in each channel with bursts of up to burst. It is off by default;
// perMinute ≤ 0 turns it off again.
func (s *Server) RateLimitPerChannel(perMinute, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chanLimiters = map[string]*rate.Limiter{}
	if perMinute <= 0 {
		s.chanLimit = nil
		return
	}
	s.chanLimit = &limitSpec{perMinute, burst}
}

// RateLimited counts the calls to method answered with 429, by RateLimit or
// RateLimitPerChannel (not by FailNext).
func (s *Server) RateLimited(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateLimited[method]
}

// nextFaultLocked takes the next queued fault for method.
func (s *Server) nextFaultLocked(method string) (Fault, bool) {
	q := s.faults[method]
	if len(q) == 0 {
		return Fault{}, false
	}
	f := q[0]
	if len(q) == 1 {
		delete(s.faults, method)
	} else {
		s.faults[method] = q[1:]
	}
	return f, true
}

// limitLocked checks method's limits, and for chat.postMessage the
// channel's, and says how long the caller must wait when over.
func (s *Server) limitLocked(method, channelID string) (time.Duration, bool) {
	now := s.now()
	check := func(l *rate.Limiter) (time.Duration, bool) {
		r := l.ReserveN(now, 1)
		if !r.OK() {
			return time.Minute, true
		}
		d := r.DelayFrom(now)
		if d <= 0 {
			return 0, false
		}
		r.CancelAt(now)
		return d, true
	}
	if l, ok := s.limiters[method]; ok {
		if d, over := check(l); over {
			s.rateLimited[method]++
			return d, true
		}
	}
	if method == "chat.postMessage" && s.chanLimit != nil && channelID != "" {
		l, ok := s.chanLimiters[channelID]
		if !ok {
			l = newLimiter(*s.chanLimit)
			s.chanLimiters[channelID] = l
		}
		if d, over := check(l); over {
			s.rateLimited[method]++
			return d, true
		}
	}
	return 0, false
}

// retryAfterSeconds is the Retry-After header value: whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
