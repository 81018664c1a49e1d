package ops

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

type fakeConn bool

func (c fakeConn) Connected() bool { return bool(c) }

// fakeHealthDB answers the health read with err, or blocks until release
// is closed.
type fakeHealthDB struct {
	err     error
	damaged error // what the background check found
	release chan struct{}
}

func (f fakeHealthDB) CheckResult() (bool, error) { return f.damaged != nil, f.damaged }

func (f fakeHealthDB) OldestDue() (time.Time, bool, error) {
	if f.release != nil {
		<-f.release
	}
	return time.Time{}, false, f.err
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// Ensure /healthz is 200 only while Slack is connected and the database
// answers a read, and otherwise says in one line what is wrong.
func TestHealthz(t *testing.T) {
	tests := []struct {
		name string
		conn Connection
		db   HealthDB
		code int
		want string
	}{
		{name: "OK", conn: fakeConn(true), db: fakeHealthDB{}, code: 200, want: "ok\n"},
		{name: "NotConnected", conn: fakeConn(false), db: fakeHealthDB{}, code: 503,
			want: "unhealthy: not connected to Slack over Socket Mode; the bot keeps retrying, see its log (network, SLACK_APP_TOKEN)\n"},
		{name: "NoBot", conn: nil, db: fakeHealthDB{}, code: 503, want: "not connected to Slack"},
		{name: "DatabaseFails", conn: fakeConn(true), db: fakeHealthDB{err: errors.Join(errors.New("storage: oldest due:"), errors.New("database not open"))}, code: 503,
			want: "unhealthy: the database does not answer reads: storage: oldest due: database not open\n"},
		{name: "DatabaseDamaged", conn: fakeConn(true), db: fakeHealthDB{damaged: errors.New("database x is damaged (page 7:\nunreachable unfreed)")}, code: 503,
			want: "unhealthy: the database is damaged (the full check after start-up failed): stop nudgebot, keep the file and restore a backup with `nudgebot restore`: database x is damaged (page 7: unreachable unfreed)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := AdminHandler(AdminDeps{Metrics: NewMetrics("test", nil), Bot: tt.conn, DB: tt.db})
			code, body := get(t, h, "/healthz")
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("GET /healthz = %d %q, want %d %q", code, body, tt.code, tt.want)
			}
			if strings.Count(body, "\n") != 1 {
				t.Errorf("reason is not one line: %q", body)
			}
		})
	}
}

// Ensure a database that hangs turns /healthz into a 503 after the
// timeout instead of hanging the probe.
func TestHealthz_DatabaseHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		h := AdminHandler(AdminDeps{Metrics: NewMetrics("test", nil), Bot: fakeConn(true), DB: fakeHealthDB{release: release}})
		start := time.Now()
		code, body := get(t, h, "/healthz")
		if code != 503 || !strings.Contains(body, "did not answer a read within 2s") {
			t.Errorf("GET /healthz = %d %q, want 503 and the timeout", code, body)
		}
		if took := time.Since(start); took != healthTimeout {
			t.Errorf("took %v, want %v", took, healthTimeout)
		}
	})
}

// Ensure /readyz waits for both the connection and the first tick.
func TestReadyz(t *testing.T) {
	m := NewMetrics("test", nil)
	conn := &switchConn{}
	h := AdminHandler(AdminDeps{Metrics: m, Bot: conn, DB: fakeHealthDB{}})
	steps := []struct {
		do   func()
		code int
		want string
	}{
		{func() {}, 503, "waiting for the Socket Mode connection"},
		{func() { conn.set(true) }, 503, "waiting for the scheduler's first tick"},
		{func() { m.Ticked(0) }, 200, "ready"},
		{func() { conn.set(false) }, 503, "waiting for the Socket Mode connection"},
	}
	for i, s := range steps {
		s.do()
		if code, body := get(t, h, "/readyz"); code != s.code || !strings.Contains(body, s.want) {
			t.Errorf("step %d: GET /readyz = %d %q, want %d %q", i, code, body, s.code, s.want)
		}
	}
}

// Ensure a replica that follows (another leads, so its scheduler never
// ticks) is ready once connected, and one that leads waits for its first
// tick like a bot alone.
func TestReadyz_Follower(t *testing.T) {
	for _, tt := range []struct {
		name    string
		leading bool
		code    int
		want    string
	}{
		{"follower", false, 200, "ready"},
		{"leader", true, 503, "waiting for the scheduler's first tick"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics("test", nil)
			h := AdminHandler(AdminDeps{Metrics: m, Bot: fakeConn(true), DB: fakeHealthDB{}})
			if code, body := get(t, h, "/readyz"); code != 503 {
				t.Errorf("before the election's first answer: GET /readyz = %d %q, want 503", code, body)
			}
			var epoch int64
			if tt.leading {
				epoch = 1
			}
			m.LeaderChanged(epoch, tt.leading)
			if code, body := get(t, h, "/readyz"); code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("GET /readyz = %d %q, want %d %q", code, body, tt.code, tt.want)
			}
		})
	}
}

type switchConn struct {
	mu sync.Mutex
	up bool
}

func (c *switchConn) set(up bool) { c.mu.Lock(); c.up = up; c.mu.Unlock() }

func (c *switchConn) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up
}

// Ensure /metrics exposes every metric the operations guide documents,
// and that no label value carries a user id, a token or typed text, even
// when the bot hands such values over.
func TestMetrics_Exposition(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "nudgebot.db"))
	ids := seed(t, db, "U", 3)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	m := NewMetrics("test", func() time.Time { return now })
	m.WatchDB(db, nil)

	m.Connected(true)
	m.Reconnected()
	m.EnvelopeAcked("slash_commands", 300*time.Microsecond)
	m.EnvelopeAcked("events_api", 2*time.Millisecond)
	m.APICall("chat.postMessage", "ok")
	m.APICall("conversations.open", "rate_limited")
	m.Paused("chat.postMessage", 1500*time.Millisecond)
	m.PostPace(276.5, 285)
	m.Delivered("sent")
	m.Delivered("failed_user_not_found")
	m.Ticked(90 * time.Second)
	m.LeaderChanged(3, true)
	m.LeaderChanged(3, false)
	m.LeaderChanged(4, true)
	m.ReplicasChanged(2)
	m.ReplicasChanged(3)
	// What a bug upstream might pass as a label; none of it may show.
	m.Delivered("failed_" + ids[0])
	m.APICall("chat.postMessage", "xoxb-1111-SECRET")
	m.EnvelopeAcked("hello from U0ABCDEF12", time.Millisecond)
	m.APICall("users.info."+ids[1], "ok")

	srv := httptest.NewServer(AdminHandler(AdminDeps{Metrics: m, Bot: fakeConn(true), DB: db}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	closeOK(t, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	text := string(body)
	for _, want := range []string{
		`nudgebot_socket_envelopes_acked_total{type="slash_commands"} 1`,
		`nudgebot_socket_ack_duration_seconds_bucket{type="slash_commands",le="5e-05"} 0`,
		`nudgebot_socket_ack_duration_seconds_bucket{type="slash_commands",le="1"} 1`,
		`nudgebot_slack_api_calls_total{method="chat.postMessage",outcome="ok"} 1`,
		`nudgebot_slack_api_calls_total{method="conversations.open",outcome="rate_limited"} 1`,
		`nudgebot_slack_rate_limit_pauses_total{method="chat.postMessage"} 1`,
		`nudgebot_slack_rate_limit_pause_seconds_total{method="chat.postMessage"} 1.5`,
		`nudgebot_slack_post_pace_per_minute 276.5`,
		`nudgebot_slack_post_learned_per_minute 285`,
		`nudgebot_deliveries_total{outcome="sent"} 1`,
		`nudgebot_deliveries_total{outcome="failed_user_not_found"} 1`,
		`nudgebot_deliveries_total{outcome="other"} 1`,
		`nudgebot_scheduler_lag_seconds 90`,
		`nudgebot_socket_reconnects_total 1`,
		`nudgebot_socket_connected 1`,
		`nudgebot_leader 1`,
		`nudgebot_leader_epoch 4`,
		`nudgebot_leadership_changes_total{change="gained"} 2`,
		`nudgebot_leadership_changes_total{change="lost"} 1`,
		`nudgebot_replicas 3`,
		`nudgebot_subscribers 3`,
		`nudgebot_subscribers_active 3`,
		`nudgebot_database_size_bytes `,
		`nudgebot_storage_writes_total `,
		`nudgebot_storage_commits_total `,
		`nudgebot_storage_pages_written_total `,
		`nudgebot_build_info{version="test"} 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if got := gaugeValue(t, m, "nudgebot_scheduler_last_tick_timestamp_seconds"); got != float64(now.Unix()) {
		t.Errorf("last tick = %v, want %d", got, now.Unix())
	}

	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	safe := regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-zA-Z0-9_]*)*$|^[0-9.e+-]+$`)
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				v := l.GetValue()
				if strings.HasPrefix(f.GetName(), "nudgebot_") && !safe.MatchString(v) || strings.Contains(v, "xox") || regexp.MustCompile(`U[0-9A-Z]{6,}`).MatchString(v) {
					t.Errorf("%s has label %s=%q", f.GetName(), l.GetName(), v)
				}
			}
		}
	}
	for _, id := range ids {
		if strings.Contains(text, id) {
			t.Errorf("/metrics shows user id %s", id)
		}
	}
}

// Ensure the lag gauge reads 0 once the queue is empty, not the last lag.
func TestMetrics_LagResetsEachTick(t *testing.T) {
	m := NewMetrics("test", nil)
	m.Ticked(5 * time.Minute)
	m.Ticked(0)
	if got := gaugeValue(t, m, "nudgebot_scheduler_lag_seconds"); got != 0 {
		t.Errorf("lag after an empty tick = %v, want 0", got)
	}
}

func gaugeValue(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// countingStats counts how often the subscribers are counted.
type countingStats struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (c *countingStats) CountSubscribers() (int, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return 10, 7, c.err
}

func (c *countingStats) Size() (int64, error) { return 4096, nil }

func (c *countingStats) Stats() storage.Stats { return storage.Stats{Writes: 5, Commits: 2} }

// Ensure scrapes walk the subscribers at most once per 30s, and that a
// failed count is retried at the next scrape rather than cached, without
// hiding the other metrics.
func TestMetrics_SubscriberCache(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	stats := &countingStats{}
	m := NewMetrics("test", func() time.Time { return now })
	m.WatchDB(stats, nil)
	h := AdminHandler(AdminDeps{Metrics: m, Bot: fakeConn(true), DB: fakeHealthDB{}})

	steps := []struct {
		advance   time.Duration
		fail      bool
		wantCalls int
		wantText  string
	}{
		{0, false, 1, "nudgebot_subscribers_active 7"},
		{10 * time.Second, false, 1, "nudgebot_subscribers 10"},
		{19 * time.Second, false, 1, "nudgebot_subscribers 10"},
		{1 * time.Second, true, 2, "nudgebot_database_size_bytes 4096"},
		{0, true, 3, "nudgebot_database_size_bytes 4096"},
		{0, false, 4, "nudgebot_subscribers 10"},
		{29 * time.Second, false, 4, "nudgebot_subscribers 10"},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		stats.mu.Lock()
		stats.err = nil
		if s.fail {
			stats.err = errors.New("disk gone")
		}
		stats.mu.Unlock()
		code, body := get(t, h, "/metrics")
		if code != 200 {
			t.Errorf("step %d: /metrics answered %d", i, code)
		}
		if stats.calls != s.wantCalls {
			t.Errorf("step %d: %d counts, want %d", i, stats.calls, s.wantCalls)
		}
		if !strings.Contains(body, s.wantText) {
			t.Errorf("step %d: /metrics lacks %q", i, s.wantText)
		}
		if s.fail && strings.Contains(body, "nudgebot_subscribers ") {
			t.Errorf("step %d: a failed count still reported subscribers", i)
		}
	}
}

// Ensure label values are kept to machine words and bounded in number.
func TestLabelGuard(t *testing.T) {
	tests := []struct{ in, want string }{
		{"chat.postMessage", "chat.postMessage"},
		{"apps.connections.open", "apps.connections.open"},
		{"events_api", "events_api"},
		{"failed_user_not_found", "failed_user_not_found"},
		{"ok", "ok"},
		{"", "other"},
		{"U0123ABCD", "other"},
		{"failed_U0123ABCD", "other"},
		{"users.info.U0123ABCD", "other"},
		{"chat.pXYZABCDEF", "other"},
		{"xoxb-1-2-SECRET", "other"},
		{"xapp-1-A1-2-x", "other"},
		{"I will talk to my team", "other"},
		{"sent\n", "other"},
		{strings.Repeat("a", 65), "other"},
		{"café", "other"},
	}
	var g labelGuard
	for _, tt := range tests {
		if got := g.value("l", tt.in); got != tt.want {
			t.Errorf("value(%q)=%q, want %q", tt.in, got, tt.want)
		}
	}
	for i := range maxLabelValues + 10 {
		g.value("many", fmt.Sprintf("v%d", i))
	}
	if got := g.value("many", "v_new"); got != "other" {
		t.Errorf("value beyond %d distinct = %q, want other", maxLabelValues, got)
	}
	if got := g.value("many", "v3"); got != "v3" {
		t.Errorf("a value admitted earlier = %q, want it kept", got)
	}
}

// BenchmarkCountSubscribers measures what one uncached subscribers
// gauge costs a scrape, to size subscriberCacheTTL.
func BenchmarkCountSubscribers(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			db := storagetest.Open(b, storage.Options{})
			for i := range n {
				if _, err := db.UpdateSubscriber(fmt.Sprintf("U%08d", i), func(s *nudges.Subscriber) error {
					s.Subscribed = true
					s.ProfileTZ = "Europe/Berlin"
					s.Seen = []string{"lead-001", "manage-002", "lead-003"}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := db.CountSubscribers(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
