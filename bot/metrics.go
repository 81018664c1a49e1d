package bot

import "time"

// Metrics receives what the Slack adapter measures. The Prometheus
// adapter lives in cmd; NopMetrics keeps the bot usable without one. What
// the core did (ticks, deliveries) reaches metrics through app.Observer.
type Metrics interface {
	EnvelopeAcked(envelopeType string, latency time.Duration)
	APICall(method, outcome string)
	Paused(method string, d time.Duration)
	Reconnected()
	Connected(up bool)
}

// NopMetrics discards every measurement.
type NopMetrics struct{}

func (NopMetrics) EnvelopeAcked(string, time.Duration) {}
func (NopMetrics) APICall(string, string)              {}
func (NopMetrics) Paused(string, time.Duration)        {}
func (NopMetrics) Reconnected()                        {}
func (NopMetrics) Connected(bool)                      {}
