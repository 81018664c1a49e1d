package ops

import (
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/nudgebot/nudgebot/storage"
)

// Metrics is the bot's bot.Metrics and the core's app.Observer in
// Prometheus form (cmd asserts both: ops imports neither, and stays
// below the core). It keeps its
// own registry so that tests, the demo and a second bot in one process
// never share (or collide over) counters.
type Metrics struct {
	reg    *prometheus.Registry
	now    func() time.Time
	labels labelGuard

	acked        *prometheus.CounterVec
	ackLatency   *prometheus.HistogramVec
	apiCalls     *prometheus.CounterVec
	pauses       *prometheus.CounterVec
	pauseSeconds *prometheus.CounterVec
	postPace     prometheus.Gauge
	postLearned  prometheus.Gauge
	deliveries   *prometheus.CounterVec
	lag          prometheus.Gauge
	lastTick     prometheus.Gauge
	reconnects   prometheus.Counter
	connected    prometheus.Gauge
	leader       prometheus.Gauge
	leaderEpoch  prometheus.Gauge
	leadChanges  *prometheus.CounterVec
	replicas     prometheus.Gauge

	ticked atomic.Bool // the scheduler has finished planning at least once
	// following: this replica knows another leads, so it has no tick
	// of its own to wait for before it is ready.
	following atomic.Bool
}

// NewMetrics builds the metrics and registers them, with the Go runtime
// and process collectors, on a fresh registry. version labels
// nudgebot_build_info; now drives the storage cache and the tick
// timestamp (nil means time.Now).
func NewMetrics(version string, now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		now: now,
		acked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nudgebot_socket_envelopes_acked_total",
			Help: "Socket Mode envelopes acknowledged, by envelope type.",
		}, []string{"type"}),
		ackLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nudgebot_socket_ack_duration_seconds",
			Help: "Time from an envelope arriving to its ack being written, by envelope type. Slack re-sends after 3s.",
			// Acks are written before any work is done, so they should
			// sit in the sub-millisecond buckets; the top end shows a
			// stall long before Slack's 3s retry.
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"type"}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nudgebot_slack_api_calls_total",
			Help: "Slack Web API calls, by method and outcome (ok, rate_limited, uncertain, permanent, ...).",
		}, []string{"method", "outcome"}),
		pauses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nudgebot_slack_rate_limit_pauses_total",
			Help: "Times a Web API call waited for its method's rate limit, by method.",
		}, []string{"method"}),
		pauseSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nudgebot_slack_rate_limit_pause_seconds_total",
			Help: "Seconds Web API calls spent waiting for rate limits, by method.",
		}, []string{"method"}),
		postPace: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nudgebot_slack_post_pace_per_minute",
			Help: "The pace chat.postMessage calls may leave at across the workspace, in calls a minute; it follows the figure learned from Slack's 429s.",
		}),
		postLearned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nudgebot_slack_post_learned_per_minute",
			Help: "Slack's workspace limit on chat.postMessage as measured between two 429s (kept across restarts), in calls a minute; 0 while unknown.",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nudgebot_deliveries_total",
			Help: "Nudge deliveries by outcome (sent, missed, retry, uncertain, failed_<reason>).",
		}, []string{"outcome"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nudgebot_scheduler_lag_seconds",
			Help: "How late the oldest pending delivery was at the last scheduler tick; 0 when nothing was waiting.",
		}),
		lastTick: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nudgebot_scheduler_last_tick_timestamp_seconds",
			Help: "Unix time the scheduler last looked for pending deliveries; 0 before the first tick.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nudgebot_socket_reconnects_total",
			Help: "Socket Mode connections opened after the first one.",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nudgebot_socket_connected",
			Help: "1 while the Socket Mode connection is up, else 0.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nudgebot_leader",
			Help: "1 while this replica leads (runs the scheduler, digests and housekeeping), else 0. Always 1 on the bbolt file; across the replicas sharing a PostgreSQL database the sum should be 1.",
		}),
		leaderEpoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nudgebot_leader_epoch",
			Help: "The term this replica leads or last led (the lease's epoch, counting every takeover); 0 on the bbolt file.",
		}),
		leadChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nudgebot_leadership_changes_total",
			Help: "Times this replica started (gained) or stopped (lost) leading.",
		}, []string{"change"}),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nudgebot_replicas",
			Help: "The replicas alive on this database as this replica last counted them; each calls a Slack Web API method at 1/this of its limit. Always 1 on the bbolt file.",
		}),
	}
	m.replicas.Set(1)
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "nudgebot_build_info",
		Help:        "Always 1; the version label says which nudgebot is running.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	m.reg.MustRegister(
		m.acked, m.ackLatency, m.apiCalls, m.pauses, m.pauseSeconds, m.postPace, m.postLearned, m.deliveries,
		m.lag, m.lastTick, m.reconnects, m.connected, m.leader, m.leaderEpoch, m.leadChanges, m.replicas, build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *Metrics) EnvelopeAcked(envelopeType string, latency time.Duration) {
	t := m.labels.value("type", envelopeType)
	m.acked.WithLabelValues(t).Inc()
	m.ackLatency.WithLabelValues(t).Observe(latency.Seconds())
}

func (m *Metrics) APICall(method, outcome string) {
	m.apiCalls.WithLabelValues(m.labels.value("method", method), m.labels.value("outcome", outcome)).Inc()
}

func (m *Metrics) Paused(method string, d time.Duration) {
	method = m.labels.value("method", method)
	m.pauses.WithLabelValues(method).Inc()
	m.pauseSeconds.WithLabelValues(method).Add(d.Seconds())
}

func (m *Metrics) PostPace(pace, learned float64) {
	m.postPace.Set(pace)
	m.postLearned.Set(learned)
}

func (m *Metrics) Delivered(outcome string) {
	m.deliveries.WithLabelValues(m.labels.value("outcome", outcome)).Inc()
}

// Ticked is the core's report that the scheduler planned a tick: lag is
// how late the oldest delivery it handed out was (0 when none waited).
func (m *Metrics) Ticked(lag time.Duration) {
	m.lag.Set(max(lag, 0).Seconds())
	m.lastTick.Set(float64(m.now().UnixNano()) / 1e9)
	m.ticked.Store(true)
}

func (m *Metrics) Reconnected() { m.reconnects.Inc() }

func (m *Metrics) Connected(up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.connected.Set(v)
}

// HasTicked reports whether the scheduler has run at least once.
func (m *Metrics) HasTicked() bool { return m.ticked.Load() }

// LeaderChanged is the scheduler's report that this replica started or
// stopped leading term epoch. Epoch 0 is no term: a process alone with
// its database leads from start to end, and a replica that finds another
// leading follows from its start; neither is a change of leader.
func (m *Metrics) LeaderChanged(epoch int64, leading bool) {
	change, v := "lost", 0.0
	if leading {
		change, v = "gained", 1
	}
	m.leader.Set(v)
	if epoch > 0 {
		m.leaderEpoch.Set(float64(epoch))
		m.leadChanges.WithLabelValues(change).Inc()
	}
	m.following.Store(!leading)
}

// ReplicasChanged is the election's report of how many replicas are
// alive on the database, this one included.
func (m *Metrics) ReplicasChanged(replicas int) { m.replicas.Set(float64(replicas)) }

// Following reports whether this replica knows another replica leads.
func (m *Metrics) Following() bool { return m.following.Load() }

// DBStats is what the storage gauges read.
type DBStats interface {
	CountSubscribers() (total, active int, err error)
	Size() (int64, error)
	Stats() storage.Stats
}

// WatchDB adds the subscriber and database-size gauges, read from db at
// scrape time.
func (m *Metrics) WatchDB(db DBStats, log *slog.Logger) {
	m.reg.MustRegister(newStoreCollector(db, m.now, log))
}

// subscriberCacheTTL bounds how often a scrape may walk every subscriber.
// Counting decodes each record (BenchmarkCountSubscribers: about 14 ms
// for 10,000 people); scraped every 15s uncached, a large team would keep
// a read transaction open needlessly often, and read transactions delay
// bbolt's remap when the file grows.
const subscriberCacheTTL = 30 * time.Second

// storeCollector reports storage figures at scrape time.
type storeCollector struct {
	db  DBStats
	now func() time.Time
	log *slog.Logger

	subs, active, size, writes, commits, pages, writeErrors *prometheus.Desc

	mu            sync.Mutex
	countedAt     time.Time
	total, actv   int
	haveCount     bool
	lastCountFail time.Time
}

func newStoreCollector(db DBStats, now func() time.Time, log *slog.Logger) *storeCollector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &storeCollector{
		db: db, now: now, log: log,
		subs:   prometheus.NewDesc("nudgebot_subscribers", "People stored, subscribed or not (refreshed at most every 30s).", nil, nil),
		active: prometheus.NewDesc("nudgebot_subscribers_active", "People subscribed and reachable: not unsubscribed, not marked inactive (refreshed at most every 30s).", nil, nil),
		size:   prometheus.NewDesc("nudgebot_database_size_bytes", "Size of the database file. bbolt never shrinks it; `nudgebot compact` does.", nil, nil),
		writes: prometheus.NewDesc("nudgebot_storage_writes_total", "Database writes asked for (state changes), since start.", nil, nil),
		commits: prometheus.NewDesc("nudgebot_storage_commits_total",
			"Database transactions committed, since start; each costs two fsyncs. Fewer commits than writes is group commit at work.", nil, nil),
		pages: prometheus.NewDesc("nudgebot_storage_pages_written_total",
			"4 KiB pages the database's commits wrote, since start or the last compaction.", nil, nil),
		writeErrors: prometheus.NewDesc("nudgebot_storage_write_errors_total",
			"Database writes the disk refused (full, failing, read-only), since start: nothing of them was saved, and /readyz answers 503 until a write succeeds again.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.subs
	ch <- c.active
	ch <- c.size
	ch <- c.writes
	ch <- c.commits
	ch <- c.pages
	ch <- c.writeErrors
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	if total, active, err := c.counts(); err != nil {
		ch <- prometheus.NewInvalidMetric(c.subs, err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.subs, prometheus.GaugeValue, float64(total))
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(active))
	}
	if n, err := c.db.Size(); err != nil {
		ch <- prometheus.NewInvalidMetric(c.size, err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(n))
	}
	st := c.db.Stats()
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(st.Writes))
	ch <- prometheus.MustNewConstMetric(c.commits, prometheus.CounterValue, float64(st.Commits))
	ch <- prometheus.MustNewConstMetric(c.pages, prometheus.CounterValue, float64(st.PagesWritten))
	ch <- prometheus.MustNewConstMetric(c.writeErrors, prometheus.CounterValue, float64(st.WriteErrors))
}

// counts returns the cached counts, refreshing them when stale. A failed
// count is not cached, so the next scrape tries again.
func (c *storeCollector) counts() (total, active int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.haveCount && now.Sub(c.countedAt) < subscriberCacheTTL && !now.Before(c.countedAt) {
		return c.total, c.actv, nil
	}
	total, active, err = c.db.CountSubscribers()
	if err != nil {
		// Log once per TTL, not once per scrape.
		if now.Sub(c.lastCountFail) >= subscriberCacheTTL {
			c.log.Error("counting subscribers for /metrics", "error", err)
			c.lastCountFail = now
		}
		return 0, 0, fmt.Errorf("count subscribers: %w", err)
	}
	c.total, c.actv, c.countedAt, c.haveCount = total, active, now, true
	return total, active, nil
}

// labelGuard keeps label values to short machine words from our own code
// and Slack's vocabulary (method names, error codes, envelope types). A
// value that could be a person's text, a user id or a token, or one more
// distinct value than a label should ever have, is reported as "other":
// labels are stored forever by Prometheus and read by anyone with a
// dashboard.
type labelGuard struct {
	mu   sync.Mutex
	seen map[string]map[string]bool // label name → values admitted
}

const maxLabelValues = 100

var (
	// lowercase words joined by _ or ., then optional .camelCase parts
	// for Web API method names (chat.postMessage, apps.connections.open).
	labelWord = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}(\.[a-z][a-zA-Z0-9_]{0,63})*$`)
	// Slack ids (U…, W…, C…, T…, B…) are runs of capitals and digits.
	idLike = regexp.MustCompile(`[A-Z][A-Z0-9]{5,}`)
)

func (g *labelGuard) value(label, v string) string {
	if len(v) > 64 || !labelWord.MatchString(v) || idLike.MatchString(v) {
		return "other"
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]map[string]bool{}
	}
	vals := g.seen[label]
	if vals == nil {
		vals = map[string]bool{}
		g.seen[label] = vals
	}
	if !vals[v] {
		if len(vals) >= maxLabelValues {
			return "other"
		}
		vals[v] = true
	}
	return v
}
