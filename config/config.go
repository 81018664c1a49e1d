package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	// Zones are validated here and used everywhere; embedding the zone
	// database keeps both working in minimal containers that lack
	// /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/nudgebot/nudgebot/nudges"
)

// Config is everything nudgebot reads at start-up. Its yaml keys are the
// keys of config.example.yaml, which documents each one.
type Config struct {
	Slack    SlackConfig    `yaml:"slack"`
	Storage  StorageConfig  `yaml:"storage"`
	Nudges   NudgesConfig   `yaml:"nudges"`
	Holidays []Holiday      `yaml:"holidays"`
	Digests  []Digest       `yaml:"digests"`
	Admins   []string       `yaml:"admins"`
	Strategy StrategyConfig `yaml:"strategy"`
	Log      LogConfig      `yaml:"log"`
	Metrics  MetricsConfig  `yaml:"metrics"`
	// SlackLimits is deprecated: the bot learns Slack's pace itself. Each
	// figure, in requests per minute per Web API method (e.g.
	// "chat.postMessage"), is an upper bound: chat.postMessage's learned
	// pace starts there and stays under it; another method's tier is
	// replaced by it.
	SlackLimits     map[string]int `yaml:"slack_limits"`
	ShutdownTimeout time.Duration  `yaml:"shutdown_timeout"`
	// AnonymityThreshold is the fewest people any team figure (digests,
	// the pulse, the hear-more answers, sharing anonymously) may
	// describe; never below nudges.MinGroup.
	AnonymityThreshold int `yaml:"anonymity_threshold"`
}

// SlackConfig says how to reach Slack.
type SlackConfig struct {
	BotToken Secret `yaml:"bot_token"` // xoxb-…; SLACK_BOT_TOKEN overrides
	AppToken Secret `yaml:"app_token"` // xapp-…; SLACK_APP_TOKEN overrides
	// APIURL is the Web API base, always ending in "/" once loaded:
	// slack-go appends method names to it directly.
	APIURL string `yaml:"api_url"`
}

// StorageConfig says where nudgebot keeps its data.
type StorageConfig struct {
	// Driver is the engine: DriverBBolt (also when empty: the default,
	// one file) or DriverPostgres (a shared PostgreSQL database at URL).
	Driver string `yaml:"driver"`
	// URL is the PostgreSQL connection string for DriverPostgres;
	// NUDGEBOT_DATABASE_URL overrides. It may hold a password, so it is
	// a Secret: printing the config never shows it.
	URL     Secret `yaml:"url"`
	Path    string `yaml:"path"`     // the bbolt file; NUDGEBOT_STORAGE_PATH overrides
	KeyFile string `yaml:"key_file"` // optional key for encrypting reflections
	// Retention is how long deliveries, closed pulses and handled
	// envelopes are kept; at least nudges.MinRetention.
	Retention time.Duration `yaml:"retention"`
}

// Postgres says whether the state lives in PostgreSQL rather than the
// bbolt file.
func (s StorageConfig) Postgres() bool { return s.Driver == DriverPostgres }

// The storage drivers.
const (
	DriverBBolt    = "bbolt"
	DriverPostgres = "postgres"
)

// DefaultRetention keeps a little over a year of history.
const DefaultRetention = 400 * 24 * time.Hour

// NudgesConfig is the default delivery schedule and catalog.
type NudgesConfig struct {
	// Schedule is a cron spec (see cronspec.Parse) evaluated in
	// each person's own zone unless it pins one with CRON_TZ=.
	Schedule string `yaml:"schedule"`
	// CatchUp is how late a slot missed while the bot was down may still
	// be delivered; zero means never (Calendar translates that for
	// nudges, which reads zero as its default).
	CatchUp         time.Duration `yaml:"catch_up"`
	Catalog         string        `yaml:"catalog"`          // optional extra catalog YAML file
	DefaultTimezone string        `yaml:"default_timezone"` // for people without a usable profile zone
}

// StrategyConfig holds what leadership says the strategy is, in its own
// words. Strategy and organisation nudges quote one line (see
// nudges.Nudge.Worded); without lines they read as written.
type StrategyConfig struct {
	// Lines are one to nudges.MaxStrategyLines sentences, each at most
	// nudges.MaxStrategyLineLen characters.
	Lines []string `yaml:"lines"`
}

// Holiday is a company day off, nudges' own type so it can go straight
// into a nudges.Calendar. In YAML it is either a bare date (2026-12-25),
// a day off for everyone in their own calendar, or
// {date: 2026-12-26, timezone: Europe/Berlin}, a day off only for people
// in that zone. holidayKey names its YAML keys.
type Holiday = nudges.Holiday

// holidayKey maps nudges.Holiday's fields, which carry no yaml tags, to
// their keys in the file; "" means the file cannot set the field.
func holidayKey(field string) string {
	switch field {
	case "Date":
		return "date"
	case "TZ":
		return "timezone"
	}
	return ""
}

// Digest is a recurring summary posted to a channel.
type Digest struct {
	Channel  string `yaml:"channel"`  // channel id, C… or G…
	Schedule string `yaml:"schedule"` // cron spec read in Timezone; no CRON_TZ= pin
	Timezone string `yaml:"timezone"` // IANA zone
}

// MetricsConfig is the operator's HTTP listener: Prometheus metrics,
// health checks and hot backups.
type MetricsConfig struct {
	// Addr is host:port to listen on; empty turns the listener off. It
	// serves the whole database at /backup (to loopback clients only),
	// so keep it on 127.0.0.1 unless a scraper elsewhere needs it.
	Addr string `yaml:"addr"`
	// BackupTokenFile holds the token /backup asks for. Empty means
	// nudgebot.backup-token beside the key file (storage.key_file, or
	// the database when the key is elsewhere), created with mode 0600 at
	// start; NUDGEBOT_BACKUP_TOKEN overrides both.
	BackupTokenFile string `yaml:"backup_token_file"`
}

// LogConfig picks the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug|info|warn|error
	Format string `yaml:"format"` // text|json
}

// SlogLevel returns the slog level for Level; an unknown level (which
// Validate rejects) means info.
func (l LogConfig) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Environment variables that override the file.
const (
	EnvBotToken    = "SLACK_BOT_TOKEN"
	EnvAppToken    = "SLACK_APP_TOKEN"
	EnvAPIURL      = "SLACK_API_URL"
	EnvStoragePath = "NUDGEBOT_STORAGE_PATH"
	EnvDatabaseURL = "NUDGEBOT_DATABASE_URL"
)

// DefaultAPIURL is Slack's public Web API.
const DefaultAPIURL = "https://slack.com/api/"

// Default returns the configuration used for every key the file leaves
// out. It has no tokens, so it does not validate on its own.
func Default() Config {
	return Config{
		Slack:   SlackConfig{APIURL: DefaultAPIURL},
		Storage: StorageConfig{Driver: DriverBBolt, Path: "nudgebot.db", Retention: DefaultRetention},
		Nudges: NudgesConfig{
			Schedule:        "0 9 * * MON-FRI",
			CatchUp:         2 * time.Hour,
			DefaultTimezone: "UTC",
		},
		Log:                LogConfig{Level: "info", Format: "text"},
		ShutdownTimeout:    10 * time.Second,
		AnonymityThreshold: nudges.DefaultThreshold,
	}
}

// Load reads the file at path and returns it as Parse does. getenv is
// usually os.Getenv; nil means no environment.
func Load(path string, getenv func(string) string) (Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, fmt.Errorf("config file %q not found: copy config.example.yaml to it, or point nudgebot at the right file: %w", path, err)
	}
	if err != nil {
		return Config{}, fmt.Errorf("read config file %q: %w", path, err)
	}
	return Parse(path, data, getenv)
}

// Parse decodes data, named name in messages, strictly over Default(),
// applies the environment overrides, normalises slack.api_url and
// validates the result. The error joins every problem found, one per line.
func Parse(name string, data []byte, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	cfg := Default()
	src := &origin{name: name, lines: map[string]int{}, env: map[string]string{}}
	var probs problems
	// A value that fails to decode keeps its default, so validating
	// anyway reports the other mistakes too rather than repeating these.
	if !decodeYAML(name, data, &cfg, src.lines, &probs) {
		return Config{}, probs.err()
	}
	cfg.applyEnv(getenv, src)
	cfg.Slack.APIURL = normaliseAPIURL(cfg.Slack.APIURL)
	cfg.validate(src, &probs)
	if err := probs.err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every problem with c, joined, one per line.
func (c Config) Validate() error {
	var probs problems
	c.validate(nil, &probs)
	return probs.err()
}

func (c *Config) applyEnv(getenv func(string) string, src *origin) {
	set := func(env, path string, dst *string, trim bool) {
		v := getenv(env)
		if trim {
			// Tokens never contain spaces; a trailing newline from a
			// secrets file would otherwise fail as invalid_auth.
			v = strings.TrimSpace(v)
		}
		if v == "" {
			return
		}
		*dst = v
		src.env[path] = env
	}
	bot, app := string(c.Slack.BotToken), string(c.Slack.AppToken)
	set(EnvBotToken, "slack.bot_token", &bot, true)
	set(EnvAppToken, "slack.app_token", &app, true)
	c.Slack.BotToken, c.Slack.AppToken = Secret(strings.TrimSpace(bot)), Secret(strings.TrimSpace(app))
	set(EnvAPIURL, "slack.api_url", &c.Slack.APIURL, true)
	set(EnvStoragePath, "storage.path", &c.Storage.Path, false)
	dbURL := string(c.Storage.URL)
	set(EnvDatabaseURL, "storage.url", &dbURL, true)
	c.Storage.URL = Secret(dbURL)
}

// days writes d in whole days when it is one ("400d"), else as Go does.
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// normaliseAPIURL adds the trailing slash slack-go needs; it leaves
// anything that is not a usable URL alone for validate to report.
func normaliseAPIURL(s string) string {
	s = strings.TrimSpace(s)
	if s != "" && !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return s
}

// origin remembers where each value came from so messages can point at
// the line or the environment variable to fix.
type origin struct {
	name  string
	lines map[string]int    // key path → line in the file
	env   map[string]string // key path → environment variable that set it
}

// at names the place path was set: "SLACK_API_URL", "config.yaml:4:
// slack.api_url", or just the key path when the value is a default or
// the Config was built in code.
func (o *origin) at(path string) place {
	if o != nil {
		if e, ok := o.env[path]; ok {
			return place{text: e}
		}
		if l, ok := o.lines[path]; ok {
			return place{text: fmt.Sprintf("%s:%d: %s", o.name, l, path), line: l}
		}
	}
	return place{text: path}
}

// place is where a problem is; its line orders the messages like the file.
type place struct {
	text string
	line int
}

func (p place) String() string { return p.text }

var (
	channelID = regexp.MustCompile(`^[CG][A-Z0-9]{6,}$`)
	userID    = regexp.MustCompile(`^[UW][A-Z0-9]{6,}$`)
	// Web API method names: a family and one or more camelCase parts.
	methodName = regexp.MustCompile(`^[a-z]+(\.[a-zA-Z0-9]+)+$`)
)

func (s StorageConfig) validate(o *origin, p *problems) {
	switch s.Driver {
	case "", DriverBBolt:
		if s.Path == "" {
			p.addf("%s is empty: set the file nudgebot keeps its data in, e.g. nudgebot.db (or set %s)", o.at("storage.path"), EnvStoragePath)
		}
		if s.URL != "" {
			p.addf("%s is set, but storage.driver is %s, which keeps everything in storage.path: set storage.driver: %s to use PostgreSQL, or remove the URL (and %s)",
				o.at("storage.url"), DriverBBolt, DriverPostgres, EnvDatabaseURL)
		}
	case DriverPostgres:
		if s.URL == "" {
			p.addf("storage.driver is %s but no database is named: set storage.url or %s to a URL such as postgres://nudgebot@db.example:5432/nudgebot", DriverPostgres, EnvDatabaseURL)
		} else if u, err := url.Parse(s.URL.Reveal()); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			// The value may hold a password: never quote it.
			p.addf("%s is not a PostgreSQL URL: write postgres://USER@HOST:5432/DATABASE (a password is better given in PGPASSWORD or ~/.pgpass than in the URL)", o.at("storage.url"))
		}
	default:
		p.addf("%s is %q: use %s (one file, the default) or %s", o.at("storage.driver"), s.Driver, DriverBBolt, DriverPostgres)
	}
}

func (c Config) validate(o *origin, p *problems) {
	c.Slack.validate(o, p)

	c.Storage.validate(o, p)

	if r := c.Storage.Retention; r < nudges.MinRetention {
		p.addf("%s is %s: keep history for at least %s, because /nudge status, App Home and the digests look back %s; the default is %s",
			o.at("storage.retention"), days(r), days(nudges.MinRetention), days(nudges.HistoryWindow), days(DefaultRetention))
	}

	c.Nudges.validate(o, p)

	for i, h := range c.Holidays {
		path := fmt.Sprintf("holidays[%d]", i)
		switch {
		case h.Date == "":
			p.addf("%s has no date: write the day off as YYYY-MM-DD, e.g. 2026-12-25", o.at(path))
		default:
			if _, err := time.Parse(time.DateOnly, h.Date); err != nil {
				at := path
				if _, ok := o.lookup(path + ".date"); ok {
					at = path + ".date"
				}
				p.addf("%s: %q is not a date: write it as YYYY-MM-DD, e.g. 2026-12-25", o.at(at), h.Date)
			}
		}
		if h.TZ != "" {
			checkZone(o, p, path+".timezone", h.TZ)
		}
	}

	for i, d := range c.Digests {
		path := fmt.Sprintf("digests[%d]", i)
		switch {
		case d.Channel == "":
			p.addf("%s has no channel: set channel to the channel's id (it starts with C or G and is shown at the bottom of the channel's details)", o.at(path))
		case !channelID.MatchString(d.Channel):
			p.addf("%s: %q is not a channel id: use the channel id (it starts with C or G and is shown at the bottom of the channel's details), not its name", o.at(path+".channel"), d.Channel)
		}
		checkSchedule(o, p, path+".schedule", d.Schedule, true)
		if d.Timezone == "" {
			p.addf("%s has no timezone: set the zone its schedule is read in, e.g. Europe/London or UTC", o.at(path))
		} else {
			checkZone(o, p, path+".timezone", d.Timezone)
		}
	}

	for i, a := range c.Admins {
		if !userID.MatchString(a) {
			p.addf("%s: %q is not a Slack member id: use the member id (it starts with U or W; in the person's profile, ⋮ → Copy member ID), not a name", o.at(fmt.Sprintf("admins[%d]", i)), a)
		}
	}

	c.Strategy.validate(o, p)

	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.addf("%s: %q is not a log level: use debug, info, warn or error", o.at("log.level"), c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		p.addf("%s: %q is not a log format: use text or json", o.at("log.format"), c.Log.Format)
	}

	checkListenAddr(o, p, "metrics.addr", c.Metrics.Addr)

	for _, m := range slices.Sorted(maps.Keys(c.SlackLimits)) {
		path := "slack_limits." + m
		if !methodName.MatchString(m) {
			p.addf("%s: %q is not a Web API method name: use names like chat.postMessage", o.at(path), m)
		}
		if n := c.SlackLimits[m]; n < 1 {
			p.addf("%s is %d: give at least 1 request per minute, or remove it to use Slack's published limit", o.at(path), n)
		}
	}

	if c.AnonymityThreshold < nudges.MinGroup {
		p.addf("%s is %d: it must be at least %d, or a team figure could single someone out (the default is %d)", o.at("anonymity_threshold"), c.AnonymityThreshold, nudges.MinGroup, nudges.DefaultThreshold)
	}
	if c.ShutdownTimeout <= 0 {
		p.addf("%s is %s: it must be more than 0, e.g. 10s, so work in flight can finish", o.at("shutdown_timeout"), c.ShutdownTimeout)
	}
}

func (s SlackConfig) validate(o *origin, p *problems) {
	checkToken(o, p, tokenRule{
		path: "slack.bot_token", env: EnvBotToken, name: "bot token", kind: "a bot token", prefix: "xoxb-",
		value: string(s.BotToken),
		howto: "copy the Bot User OAuth Token from your app's OAuth & Permissions page",
	})
	checkToken(o, p, tokenRule{
		path: "slack.app_token", env: EnvAppToken, name: "app token", kind: "an app-level token", prefix: "xapp-",
		value: string(s.AppToken),
		howto: "create an app-level token with the connections:write scope under Basic Information → App-Level Tokens",
	})

	switch u, err := url.Parse(s.APIURL); {
	case s.APIURL == "":
		p.addf("%s is empty: remove it to use %s, or set %s", o.at("slack.api_url"), DefaultAPIURL, EnvAPIURL)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		p.addf("%s: %q is not an http(s) URL: use the Web API base, e.g. %s (or the emulator's http://localhost:PORT/api/)", o.at("slack.api_url"), s.APIURL, DefaultAPIURL)
	}
}

type tokenRule struct {
	path, env  string // where it can be set
	name, kind string // "bot token", "a bot token"
	prefix     string
	value      string
	howto      string // where to get the right one
}

// checkToken never puts the token into a message: it reports only which
// source is wrong and what kind of token that source holds instead.
func checkToken(o *origin, p *problems, r tokenRule) {
	if r.value == "" {
		p.addf("slack %s missing: set %s (or %s in the config)", r.name, r.env, r.path)
		return
	}
	at := o.at(r.path)
	if !strings.HasPrefix(r.value, r.prefix) || len(r.value) == len(r.prefix) {
		hint := r.howto
		got := ""
		if len(r.value) > len(r.prefix) {
			got = tokenKind(r.value)
		}
		switch {
		case got == "xoxb-":
			hint = "it holds the bot token; " + hint
		case got == "xapp-":
			hint = "it holds the app-level token; " + hint
		case got == "xoxp-":
			hint = "it holds a user token; " + hint
		}
		p.addf("%s does not look like %s: it should start with %q (%s)", at, r.kind, r.prefix, hint)
		return
	}
	if strings.ContainsFunc(r.value, isSpace) {
		p.addf("%s does not look like %s: it contains spaces; copy it again in one piece", at, r.kind)
	}
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

func (s StrategyConfig) validate(o *origin, p *problems) {
	if n := len(s.Lines); n > nudges.MaxStrategyLines {
		p.addf("%s has %d lines: keep the %d that matter most now; nudges quote one at a time", o.at(fmt.Sprintf("strategy.lines[%d]", nudges.MaxStrategyLines)), n, nudges.MaxStrategyLines)
	}
	for i, line := range s.Lines {
		if err := nudges.CheckStrategyLine(line); err != nil {
			p.addf("%s: %s", o.at(fmt.Sprintf("strategy.lines[%d]", i)), err)
		}
	}
}

func (n NudgesConfig) validate(o *origin, p *problems) {
	checkSchedule(o, p, "nudges.schedule", n.Schedule, false)
	if n.CatchUp < 0 {
		p.addf("%s is %s: it must be 0 (never catch up) or more, e.g. 2h", o.at("nudges.catch_up"), n.CatchUp)
	}
	checkZone(o, p, "nudges.default_timezone", n.DefaultTimezone)
}

// checkZone accepts IANA zone names exactly as the zone database spells
// them, because nudges matches holiday zones against profile zones by
// name. "Local" is refused because it would silently mean whatever zone
// the host happens to run in.
func checkZone(o *origin, p *problems, path, name string) {
	switch {
	case name == "":
		p.addf("%s is empty: set an IANA time zone such as UTC or Europe/Berlin", o.at(path))
		return
	case strings.EqualFold(name, "Local"):
		p.addf("%s: %q depends on the machine nudgebot runs on: name the zone, e.g. UTC or Europe/Berlin", o.at(path), name)
		return
	}
	if _, err := time.LoadLocation(name); err == nil {
		return
	}
	// nudges.ParseTZ forgives case, so it can name the zone meant.
	if loc, err := nudges.ParseTZ(name); err == nil && loc.String() != name {
		p.addf("%s: %q is not a time zone; did you mean %q?", o.at(path), name, loc.String())
		return
	}
	p.addf("%s: %q is not a time zone: use an IANA name such as UTC, Europe/Berlin or America/New_York", o.at(path), name)
}

// checkListenAddr accepts what net.Listen("tcp", addr) would, with a
// fixed port: a scraper and `nudgebot backup` must know where to look, so
// port 0 (any free port) is refused. Empty means off.
func checkListenAddr(o *origin, p *problems, path, addr string) {
	if addr == "" {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.addf("%s: %q is not a host:port address: write it like 127.0.0.1:9090 (or :9090 for every interface), or leave it empty to turn the listener off", o.at(path), addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		p.addf("%s: %q has no usable port: give a port from 1 to 65535, e.g. 127.0.0.1:9090", o.at(path), addr)
	}
	if strings.ContainsFunc(host, isSpace) || strings.ContainsAny(host, "/[]") {
		p.addf("%s: %q has no usable host: use an IP address or host name, e.g. 127.0.0.1:9090", o.at(path), addr)
	}
}

func (o *origin) lookup(path string) (int, bool) {
	if o == nil {
		return 0, false
	}
	l, ok := o.lines[path]
	return l, ok
}

// problems collects every message so a person can fix them all in one go.
type problems struct{ list []problem }

type problem struct {
	line int // 0 when the problem has no line, e.g. a missing token
	msg  string
}

// tokenLike matches anything shaped like a Slack token, so a token pasted
// into the wrong key cannot reach a message through a quoted value.
var tokenLike = regexp.MustCompile(`(xox[a-z]|xapp)-[^\s"'\\,]+`)

// addf records a problem; a place among args gives it its line.
func (p *problems) addf(format string, args ...any) {
	line := 0
	for _, a := range args {
		if pl, ok := a.(place); ok {
			line = pl.line
		}
	}
	msg := tokenLike.ReplaceAllStringFunc(fmt.Sprintf(format, args...), func(t string) string {
		return t[:5] + redactedMark
	})
	p.list = append(p.list, problem{line: line, msg: msg})
}

// err joins the problems in file order, those without a line first.
func (p *problems) err() error {
	slices.SortStableFunc(p.list, func(a, b problem) int { return a.line - b.line })
	errs := make([]error, len(p.list))
	for i, pr := range p.list {
		errs[i] = errors.New(pr.msg)
	}
	return errors.Join(errs...)
}
