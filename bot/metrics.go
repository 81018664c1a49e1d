package bot

import "time"

// Metrics receives what the Slack adapter measures. The Prometheus
// adapter lives in cmd; NopMetrics keeps the bot usable without one. What
// the core did (ticks, deliveries) reaches metrics through app.Observer.
type Metrics interface {
	EnvelopeAcked(envelopeType string, latency time.Duration)
	APICall(method, outcome string)
	Paused(method string, d time.Duration)
	// PostPace is chat.postMessage's workspace pace and the figure learned
	// from Slack's 429s, in posts a minute (learned 0 while unknown).
	PostPace(pace, learned float64)
	Reconnected()
	Connected(up bool)
}

// NopMetrics discards every measurement.
type NopMetrics struct{}

func (NopMetrics) EnvelopeAcked(string, time.Duration) {}
func (NopMetrics) APICall(string, string)              {}
func (NopMetrics) Paused(string, time.Duration)        {}
func (NopMetrics) PostPace(float64, float64)           {}
func (NopMetrics) Reconnected()                        {}
func (NopMetrics) Connected(bool)                      {}
