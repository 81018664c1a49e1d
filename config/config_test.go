package config_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nudgebot/nudgebot/config"
)

// Tokens the tests' environment provides; their secret parts must never
// show up in an error.
const (
	botToken = "xoxb-111-222-SECRETBOT"
	appToken = "xapp-1-A111-333-SECRETAPP"
)

// env returns a getenv over vars, with valid tokens unless vars sets
// them (to "" to unset).
func env(vars map[string]string) func(string) string {
	all := map[string]string{config.EnvBotToken: botToken, config.EnvAppToken: appToken}
	for k, v := range vars {
		all[k] = v
	}
	return func(k string) string { return all[k] }
}

// withTokens is Default() with the test tokens, what an empty file yields.
func withTokens() config.Config {
	c := config.Default()
	c.Slack.BotToken, c.Slack.AppToken = botToken, appToken
	return c
}

// Ensure every documented mistake is reported with its place and fix,
// alongside the others, without ever quoting a token.
func TestParse_Errors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // each must be one line of the error
		only bool     // and there must be no other lines
	}{
		{
			name: "ErrUnknownKeyClose",
			yaml: "nudges:\n  catch_up: 1h\n  shedule: \"0 9 * * *\"\n",
			want: []string{`config.yaml:3: unknown key "nudges.shedule"; did you mean "nudges.schedule"?`},
		},
		{
			name: "ErrStrategyLines",
			yaml: "strategy:\n  lines:\n    - \"Every customer on the new plan by June\"\n    - \"\"\n    - \"" + strings.Repeat("x", 201) + "\"\n    - \"A fourth line\"\n",
			want: []string{
				`config.yaml:4: strategy.lines[1]: the line is empty: write one sentence on where the organisation is going`,
				`config.yaml:5: strategy.lines[2]: the line is 201 characters; the limit is 200: keep it to one sentence`,
				`config.yaml:6: strategy.lines[3] has 4 lines: keep the 3 that matter most now; nudges quote one at a time`,
			},
		},
		{
			name: "ErrStrategyNotList",
			yaml: "strategy:\n  lines: \"one line\"\n",
			want: []string{`config.yaml:2: strategy.lines: expected a list, got "one line"`},
		},
		{
			name: "ErrUnknownKeyFar",
			yaml: "colour: red\n",
			want: []string{`config.yaml:1: unknown key "colour": remove it, or see config.example.yaml for the keys nudgebot reads`},
		},
		{
			name: "ErrUnknownKeyWrongLevel",
			yaml: "schedule: \"0 9 * * *\"\n",
			want: []string{`config.yaml:1: unknown key "schedule"; did you mean "nudges.schedule"? (check the indentation)`},
		},
		{
			name: "ErrUnknownKeyInList",
			yaml: "digests:\n  - chanel: C0123456789\n    schedule: \"0 16 * * FRI\"\n    timezone: UTC\n",
			want: []string{
				`config.yaml:2: unknown key "digests[0].chanel"; did you mean "digests[0].channel"?`,
				`config.yaml:2: digests[0] has no channel: set channel to the channel's id (it starts with C or G and is shown at the bottom of the channel's details)`,
			},
		},
		{
			name: "ErrUnknownKeyTransposed",
			yaml: "log:\n  fromat: json\n",
			want: []string{`config.yaml:2: unknown key "log.fromat"; did you mean "log.format"?`},
		},
		{
			name: "ErrDuplicateKey",
			yaml: "storage:\n  path: a.db\n  path: b.db\n",
			want: []string{`config.yaml:3: storage.path is set twice (first on line 2): keep one`},
		},
		{
			name: "ErrListExpected",
			yaml: "admins: U0123456789\n",
			want: []string{`config.yaml:1: admins: expected a list, got "U0123456789"`},
		},
		{
			name: "ErrMappingExpected",
			yaml: "nudges: [a, b]\n",
			want: []string{`config.yaml:1: nudges: expected a mapping (key: value lines), got a list`},
		},
		{
			name: "ErrWholeNumberExpected",
			yaml: "slack_limits:\n  chat.postMessage: fast\n",
			want: []string{`config.yaml:2: slack_limits.chat.postMessage: expected a whole number, got "fast"`},
		},
		{
			name: "ErrSingleValueExpected",
			yaml: "slack:\n  bot_token: [xoxb-1-SECRETLIST]\n",
			want: []string{`config.yaml:2: slack.bot_token: expected a single value, got a list`},
		},
		{
			name: "ErrRootNotMapping",
			yaml: "- slack\n",
			want: []string{`config.yaml:1: the file must be a mapping of keys (slack:, storage:, nudges: …), got a list`},
		},
		{
			name: "ErrSyntax",
			yaml: "slack:\n  bot_token: \"unterminated\n",
			env:  map[string]string{config.EnvBotToken: ""},
			only: true,
			want: []string{`config.yaml:2: found unexpected end of stream (the file is not valid YAML: check indentation and quoting)`},
		},
		{
			name: "ErrUnquotedCron",
			yaml: "nudges:\n  schedule: * 9 * * *\n",
			want: []string{`config.yaml:2: did not find expected alphabetic or numeric character (the file is not valid YAML: check indentation and quoting; a cron spec that starts with * must be quoted, e.g. "*/30 9 * * *")`},
		},
		{
			name: "ErrTwoDocuments",
			yaml: "log:\n  level: info\n---\nlog:\n  level: debug\n",
			want: []string{`config.yaml:3: a second YAML document starts here: keep the whole configuration in one document (remove the ---)`},
		},
		{
			name: "ErrMergeKey",
			yaml: "log:\n  <<: {level: info}\n",
			want: []string{`config.yaml:2: log: merge keys (<<) are not supported: write the keys out`},
		},
		{
			name: "ErrBotTokenMissing",
			env:  map[string]string{config.EnvBotToken: ""},
			want: []string{`slack bot token missing: set SLACK_BOT_TOKEN (or slack.bot_token in the config)`},
		},
		{
			name: "ErrAppTokenMissing",
			env:  map[string]string{config.EnvAppToken: "  "},
			want: []string{`slack app token missing: set SLACK_APP_TOKEN (or slack.app_token in the config)`},
		},
		{
			name: "ErrBotTokenPrefixEnv",
			env:  map[string]string{config.EnvBotToken: "xapp-1-SECRETSWAP"},
			want: []string{`SLACK_BOT_TOKEN does not look like a bot token: it should start with "xoxb-" (it holds the app-level token; copy the Bot User OAuth Token from your app's OAuth & Permissions page)`},
		},
		{
			name: "ErrBotTokenPrefixFile",
			yaml: "slack:\n  bot_token: xoxp-1-SECRETUSER\n",
			env:  map[string]string{config.EnvBotToken: ""},
			want: []string{`config.yaml:2: slack.bot_token does not look like a bot token: it should start with "xoxb-" (it holds a user token; copy the Bot User OAuth Token from your app's OAuth & Permissions page)`},
		},
		{
			name: "ErrAppTokenPrefixEnv",
			env:  map[string]string{config.EnvAppToken: "xoxb-1-SECRETSWAP"},
			want: []string{`SLACK_APP_TOKEN does not look like an app-level token: it should start with "xapp-" (it holds the bot token; create an app-level token with the connections:write scope under Basic Information → App-Level Tokens)`},
		},
		{
			name: "ErrAppTokenPrefixFile",
			yaml: "slack:\n  app_token: SECRETPLAIN\n",
			env:  map[string]string{config.EnvAppToken: ""},
			want: []string{`config.yaml:2: slack.app_token does not look like an app-level token: it should start with "xapp-" (create an app-level token with the connections:write scope under Basic Information → App-Level Tokens)`},
		},
		{
			name: "ErrTokenPrefixOnly",
			env:  map[string]string{config.EnvBotToken: "xoxb-"},
			want: []string{`SLACK_BOT_TOKEN does not look like a bot token: it should start with "xoxb-" (copy the Bot User OAuth Token from your app's OAuth & Permissions page)`},
		},
		{
			name: "ErrTokenSpaces",
			env:  map[string]string{config.EnvBotToken: "xoxb-1 SECRETSPACE"},
			want: []string{`SLACK_BOT_TOKEN does not look like a bot token: it contains spaces; copy it again in one piece`},
		},
		{
			name: "ErrScheduleBadField",
			yaml: "nudges:\n  schedule: \"0 9 * * MUN\"\n",
			want: []string{`config.yaml:2: nudges.schedule: invalid schedule "0 9 * * MUN": the day-of-week field "MUN" is not valid (MUN is not a number or a name); days of the week are 0-6 or SUN-SAT, e.g. "0 9 * * MON-FRI"`},
		},
		{
			name: "ErrScheduleFieldCount",
			yaml: "nudges:\n  schedule: \"0 9 * *\"\n",
			want: []string{`config.yaml:2: nudges.schedule: invalid schedule "0 9 * *": it has 4 field(s); give five (minute hour day-of-month month day-of-week), e.g. "0 9 * * MON-FRI"`},
		},
		{
			name: "ErrScheduleBareCronTZ",
			yaml: "nudges:\n  schedule: CRON_TZ=Asia/Tokyo\n",
			want: []string{`config.yaml:2: nudges.schedule: invalid schedule "CRON_TZ=Asia/Tokyo": the time zone prefix must be followed by five fields, e.g. "CRON_TZ=Asia/Tokyo 0 9 * * MON-FRI"`},
		},
		{
			name: "ErrDigestPinned",
			yaml: "digests:\n  - channel: C0123456789\n    schedule: TZ=Asia/Tokyo 0 16 * * FRI\n    timezone: Asia/Tokyo\n",
			want: []string{`config.yaml:3: digests[0].schedule: "TZ=Asia/Tokyo 0 16 * * FRI" pins its own time zone: remove the CRON_TZ= (or TZ=) prefix and set the digest's timezone instead`},
		},
		{
			name: "ErrTimezoneCase",
			yaml: "nudges:\n  default_timezone: europe/berlin\n",
			want: []string{`config.yaml:2: nudges.default_timezone: "europe/berlin" is not a time zone; did you mean "Europe/Berlin"?`},
		},
		{
			name: "ErrScheduleEmpty",
			yaml: "nudges:\n  schedule: \"\"\n",
			want: []string{`config.yaml:2: nudges.schedule: invalid schedule "": it is empty; give five fields (minute hour day-of-month month day-of-week), e.g. "0 9 * * MON-FRI"`},
		},
		{
			name: "ErrScheduleNeverFires",
			yaml: "nudges:\n  schedule: \"0 9 30 2 *\"\n",
			want: []string{`config.yaml:2: nudges.schedule: invalid schedule "0 9 30 2 *": it can never fire, because none of its months has the day of the month it asks for; pick a day that exists, e.g. "0 9 28 2 *"`},
		},
		{
			name: "ErrDigestSchedule",
			yaml: "digests:\n  - channel: C0123456789\n    schedule: \"0 16 * * FRIDAY\"\n    timezone: UTC\n",
			want: []string{`config.yaml:3: digests[0].schedule: invalid schedule "0 16 * * FRIDAY": the day-of-week field "FRIDAY" is not valid (FRIDAY is not a number or a name); days of the week are 0-6 or SUN-SAT, e.g. "0 9 * * MON-FRI"`},
		},
		{
			name: "ErrDigestCronTZ",
			yaml: "digests:\n  - channel: C0123456789\n    schedule: CRON_TZ=Asia/Tokyo\n    timezone: UTC\n",
			want: []string{`config.yaml:3: digests[0].schedule: invalid schedule "CRON_TZ=Asia/Tokyo": the time zone prefix must be followed by five fields, e.g. "CRON_TZ=Asia/Tokyo 0 9 * * MON-FRI"`},
		},
		{
			name: "ErrDurationUnit",
			yaml: "nudges:\n  catch_up: 2\n",
			want: []string{`config.yaml:2: nudges.catch_up: "2" is not a duration: write a number with a unit, e.g. 10s, 90m or 2h`},
		},
		{
			name: "ErrDurationWords",
			yaml: "shutdown_timeout: ten seconds\n",
			want: []string{`config.yaml:1: shutdown_timeout: "ten seconds" is not a duration: write a number with a unit, e.g. 10s, 90m or 2h`},
		},
		{
			name: "ErrDurationNotScalar",
			yaml: "shutdown_timeout: [10s]\n",
			want: []string{`config.yaml:1: shutdown_timeout: expected a duration such as 10s or 2h, got a list`},
		},
		{
			name: "ErrRetentionShort",
			yaml: "storage:\n  retention: 30d\n",
			want: []string{`config.yaml:2: storage.retention is 30d: keep history for at least 61d, because /nudge status, App Home and the digests look back 60d; the default is 400d`},
		},
		{
			name: "ErrRetentionZero",
			yaml: "storage:\n  retention: 0s\n",
			want: []string{`config.yaml:2: storage.retention is 0s: keep history for at least 61d, because /nudge status, App Home and the digests look back 60d; the default is 400d`},
		},
		{
			name: "ErrRetentionDays",
			yaml: "storage:\n  retention: 1.5d\n",
			want: []string{`config.yaml:2: storage.retention: "1.5d" is not a duration: write a number with a unit, e.g. 10s, 90m or 2h`},
		},
		{
			name: "ErrCatchUpNegative",
			yaml: "nudges:\n  catch_up: -30m\n",
			want: []string{`config.yaml:2: nudges.catch_up is -30m0s: it must be 0 (never catch up) or more, e.g. 2h`},
		},
		{
			name: "ErrShutdownNegative",
			yaml: "shutdown_timeout: -1s\n",
			want: []string{`config.yaml:1: shutdown_timeout is -1s: it must be more than 0, e.g. 10s, so work in flight can finish`},
		},
		{
			name: "ErrThresholdBelowFloor",
			yaml: "anonymity_threshold: 2\n",
			want: []string{`config.yaml:1: anonymity_threshold is 2: it must be at least 3, or a team figure could single someone out (the default is 5)`},
		},
		{
			name: "ErrShutdownZero",
			yaml: "shutdown_timeout: 0s\n",
			want: []string{`config.yaml:1: shutdown_timeout is 0s: it must be more than 0, e.g. 10s, so work in flight can finish`},
		},
		{
			name: "ErrDefaultTimezone",
			yaml: "nudges:\n  default_timezone: Mars/Olympus\n",
			want: []string{`config.yaml:2: nudges.default_timezone: "Mars/Olympus" is not a time zone: use an IANA name such as UTC, Europe/Berlin or America/New_York`},
		},
		{
			name: "ErrDefaultTimezoneEmpty",
			yaml: "nudges:\n  default_timezone: \"\"\n",
			want: []string{`config.yaml:2: nudges.default_timezone is empty: set an IANA time zone such as UTC or Europe/Berlin`},
		},
		{
			name: "ErrDefaultTimezoneLocal",
			yaml: "nudges:\n  default_timezone: Local\n",
			want: []string{`config.yaml:2: nudges.default_timezone: "Local" depends on the machine nudgebot runs on: name the zone, e.g. UTC or Europe/Berlin`},
		},
		{
			name: "ErrDigestTimezone",
			yaml: "digests:\n  - channel: C0123456789\n    schedule: \"0 16 * * FRI\"\n    timezone: Europe/Londres\n",
			want: []string{`config.yaml:4: digests[0].timezone: "Europe/Londres" is not a time zone: use an IANA name such as UTC, Europe/Berlin or America/New_York`},
		},
		{
			name: "ErrDigestTimezoneMissing",
			yaml: "digests:\n  - channel: C0123456789\n    schedule: \"0 16 * * FRI\"\n",
			want: []string{`config.yaml:2: digests[0] has no timezone: set the zone its schedule is read in, e.g. Europe/London or UTC`},
		},
		{
			name: "ErrHolidayTimezone",
			yaml: "holidays:\n  - {date: 2026-12-26, timezone: Berlin}\n",
			want: []string{`config.yaml:2: holidays[0].timezone: "Berlin" is not a time zone: use an IANA name such as UTC, Europe/Berlin or America/New_York`},
		},
		{
			name: "ErrHolidayDateBare",
			yaml: "holidays:\n  - 2026-12-25\n  - 25/12/2026\n",
			want: []string{`config.yaml:3: holidays[1].date: "25/12/2026" is not a date: write it as YYYY-MM-DD, e.g. 2026-12-25`},
		},
		{
			name: "ErrHolidayDateImpossible",
			yaml: "holidays:\n  - date: 2026-02-30\n",
			want: []string{`config.yaml:2: holidays[0].date: "2026-02-30" is not a date: write it as YYYY-MM-DD, e.g. 2026-12-25`},
		},
		{
			name: "ErrHolidayNoDate",
			yaml: "holidays:\n  - timezone: UTC\n",
			want: []string{`config.yaml:2: holidays[0] has no date: write the day off as YYYY-MM-DD, e.g. 2026-12-25`},
		},
		{
			name: "ErrDigestChannelName",
			yaml: "digests:\n  - channel: \"#leads\"\n    schedule: \"0 16 * * FRI\"\n    timezone: UTC\n",
			want: []string{`config.yaml:2: digests[0].channel: "#leads" is not a channel id: use the channel id (it starts with C or G and is shown at the bottom of the channel's details), not its name`},
		},
		{
			name: "ErrDigestChannelDM",
			yaml: "digests:\n  - channel: D0123456789\n    schedule: \"0 16 * * FRI\"\n    timezone: UTC\n",
			want: []string{`config.yaml:2: digests[0].channel: "D0123456789" is not a channel id: use the channel id (it starts with C or G and is shown at the bottom of the channel's details), not its name`},
		},
		{
			name: "ErrAdmin",
			yaml: "admins:\n  - U0123456789\n  - \"@alice\"\n",
			want: []string{`config.yaml:3: admins[1]: "@alice" is not a Slack member id: use the member id (it starts with U or W; in the person's profile, ⋮ → Copy member ID), not a name`},
		},
		{
			name: "ErrLogLevel",
			yaml: "log:\n  level: verbose\n",
			want: []string{`config.yaml:2: log.level: "verbose" is not a log level: use debug, info, warn or error`},
		},
		{
			name: "ErrLogFormat",
			yaml: "log:\n  format: xml\n",
			want: []string{`config.yaml:2: log.format: "xml" is not a log format: use text or json`},
		},
		{
			name: "ErrAPIURLScheme",
			yaml: "slack:\n  api_url: ftp://slack.com/api/\n",
			want: []string{`config.yaml:2: slack.api_url: "ftp://slack.com/api/" is not an http(s) URL: use the Web API base, e.g. https://slack.com/api/ (or the emulator's http://localhost:PORT/api/)`},
		},
		{
			name: "ErrAPIURLNoHost",
			yaml: "slack:\n  api_url: slack.com/api\n",
			want: []string{`config.yaml:2: slack.api_url: "slack.com/api/" is not an http(s) URL: use the Web API base, e.g. https://slack.com/api/ (or the emulator's http://localhost:PORT/api/)`},
		},
		{
			name: "ErrAPIURLEnv",
			env:  map[string]string{config.EnvAPIURL: "localhost:8080"},
			want: []string{`SLACK_API_URL: "localhost:8080/" is not an http(s) URL: use the Web API base, e.g. https://slack.com/api/ (or the emulator's http://localhost:PORT/api/)`},
		},
		{
			name: "ErrAPIURLEmpty",
			yaml: "slack:\n  api_url: \"\"\n",
			want: []string{`config.yaml:2: slack.api_url is empty: remove it to use https://slack.com/api/, or set SLACK_API_URL`},
		},
		{
			name: "ErrStoragePathEmpty",
			yaml: "storage:\n  path: \"\"\n",
			want: []string{`config.yaml:2: storage.path is empty: set the file nudgebot keeps its data in, e.g. nudgebot.db (or set NUDGEBOT_STORAGE_PATH)`},
		},
		{
			name: "ErrSlackLimitNegative",
			yaml: "slack_limits:\n  chat.postMessage: -5\n  users.info: 0\n",
			want: []string{
				`config.yaml:2: slack_limits.chat.postMessage is -5: give at least 1 request per minute, or remove it to use Slack's published limit`,
				`config.yaml:3: slack_limits.users.info is 0: give at least 1 request per minute, or remove it to use Slack's published limit`,
			},
		},
		{
			name: "ErrSlackLimitName",
			yaml: "slack_limits:\n  postMessage: 60\n",
			want: []string{`config.yaml:2: slack_limits.postMessage: "postMessage" is not a Web API method name: use names like chat.postMessage`},
		},
		{
			name: "ErrTokenPastedElsewhere",
			yaml: "admins: [xoxb-9-SECRETPASTED]\nxapp-1-SECRETKEY: 1\n",
			want: []string{
				`config.yaml:1: admins[0]: "xoxb-…(redacted)" is not a Slack member id: use the member id (it starts with U or W; in the person's profile, ⋮ → Copy member ID), not a name`,
				`config.yaml:2: unknown key "xapp-…(redacted)": remove it, or see config.example.yaml for the keys nudgebot reads`,
			},
		},
		{
			name: "ErrManyAtOnce",
			yaml: "log:\n  level: loud\nnudges:\n  shedule: x\n  catch_up: soon\nadmins: [bob]\n",
			env:  map[string]string{config.EnvBotToken: ""},
			only: true,
			want: []string{
				`slack bot token missing: set SLACK_BOT_TOKEN (or slack.bot_token in the config)`,
				`config.yaml:2: log.level: "loud" is not a log level: use debug, info, warn or error`,
				`config.yaml:4: unknown key "nudges.shedule"; did you mean "nudges.schedule"?`,
				`config.yaml:5: nudges.catch_up: "soon" is not a duration: write a number with a unit, e.g. 10s, 90m or 2h`,
				`config.yaml:6: admins[0]: "bob" is not a Slack member id: use the member id (it starts with U or W; in the person's profile, ⋮ → Copy member ID), not a name`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("config.yaml", []byte(tt.yaml), env(tt.env))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want an error", cfg)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tt.want {
				if !slices.Contains(lines, w) {
					t.Errorf("error lacks line\n  %s\ngot:\n  %s", w, strings.Join(lines, "\n  "))
				}
			}
			if tt.only && len(lines) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n  %s", len(lines), len(tt.want), strings.Join(lines, "\n  "))
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error shows a token:\n%v", err)
			}
			if !reflect.DeepEqual(cfg, config.Config{}) {
				t.Errorf("Parse returned %+v with its error, want the zero Config", cfg)
			}
		})
	}
}

// Ensure Parse's problems come in file order, those without a line first.
func TestParse_ErrorOrder(t *testing.T) {
	yaml := "log:\n  format: xml\nnudges:\n  catch_up: -1h\n  shedule: x\n"
	_, err := config.Parse("config.yaml", []byte(yaml), env(map[string]string{config.EnvAppToken: ""}))
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	var prefixes []string
	for _, l := range strings.Split(err.Error(), "\n") {
		p, _, _ := strings.Cut(l, " ")
		prefixes = append(prefixes, p)
	}
	want := []string{"slack", "config.yaml:2:", "config.yaml:4:", "config.yaml:5:"}
	if !slices.Equal(prefixes, want) {
		t.Errorf("line prefixes=%q, want %q\n%v", prefixes, want, err)
	}
}

// Ensure valid files decode to exactly the Config they describe, with
// defaults for what they leave out and the environment winning.
func TestParse_OK(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want func(*config.Config)
	}{
		{name: "Empty", yaml: "", want: func(*config.Config) {}},
		{name: "CommentsOnly", yaml: "# nothing here\n", want: func(*config.Config) {}},
		{name: "NullSections", yaml: "slack:\nstorage: ~\nnudges:\nholidays:\n", want: func(*config.Config) {}},
		{
			name: "TokensFromFile",
			yaml: "slack:\n  bot_token: xoxb-file\n  app_token: \"xapp-file \"\n",
			env:  map[string]string{config.EnvBotToken: "", config.EnvAppToken: ""},
			want: func(c *config.Config) { c.Slack.BotToken, c.Slack.AppToken = "xoxb-file", "xapp-file" },
		},
		{
			name: "EnvWins",
			yaml: "slack:\n  bot_token: xoxb-file\n  app_token: xapp-file\n  api_url: https://example.com/api/\nstorage:\n  path: file.db\n",
			env: map[string]string{
				config.EnvBotToken: "xoxb-env\n", config.EnvAppToken: "xapp-env",
				config.EnvAPIURL: "http://127.0.0.1:9999/api", config.EnvStoragePath: "/data/nudgebot.db",
			},
			want: func(c *config.Config) {
				c.Slack.BotToken, c.Slack.AppToken = "xoxb-env", "xapp-env"
				c.Slack.APIURL = "http://127.0.0.1:9999/api/"
				c.Storage.Path = "/data/nudgebot.db"
			},
		},
		{
			name: "SchedulePinned",
			yaml: "nudges:\n  schedule: CRON_TZ=Asia/Tokyo 0 9 * * MON-FRI\n",
			want: func(c *config.Config) { c.Nudges.Schedule = "CRON_TZ=Asia/Tokyo 0 9 * * MON-FRI" },
		},
		{
			name: "APIURLNormalised",
			yaml: "slack:\n  api_url: https://slack-gov.com/api\n",
			want: func(c *config.Config) { c.Slack.APIURL = "https://slack-gov.com/api/" },
		},
		{
			name: "EverySection",
			yaml: `slack: {api_url: "http://localhost:3000/api/"}
storage: {path: x.db, key_file: /run/secrets/key, retention: 90d}
nudges:
  schedule: "30 8 * * 1-5"
  catch_up: 0s
  catalog: extra.yaml
  default_timezone: America/New_York
holidays:
  - 2026-12-25
  - {date: 2026-12-26, timezone: &berlin Europe/Berlin}
digests:
  - {channel: G0123456789, schedule: "0 16 * * FRI", timezone: *berlin}
admins: [U0123456789, W0123456789]
log: {level: debug, format: json}
slack_limits: {chat.postMessage: 60, users.info: 20}
shutdown_timeout: 1m30s
`,
			want: func(c *config.Config) {
				c.Slack.APIURL = "http://localhost:3000/api/"
				c.Storage = config.StorageConfig{Driver: config.DriverBBolt, Path: "x.db", KeyFile: "/run/secrets/key", Retention: 90 * 24 * time.Hour}
				c.Nudges = config.NudgesConfig{Schedule: "30 8 * * 1-5", Catalog: "extra.yaml", DefaultTimezone: "America/New_York"}
				c.Holidays = []config.Holiday{{Date: "2026-12-25"}, {Date: "2026-12-26", TZ: "Europe/Berlin"}}
				c.Digests = []config.Digest{{Channel: "G0123456789", Schedule: "0 16 * * FRI", Timezone: "Europe/Berlin"}}
				c.Admins = []string{"U0123456789", "W0123456789"}
				c.Log = config.LogConfig{Level: "debug", Format: "json"}
				c.SlackLimits = map[string]int{"chat.postMessage": 60, "users.info": 20}
				c.ShutdownTimeout = 90 * time.Second
			},
		},
		{
			name: "RetentionInHours",
			yaml: "storage:\n  retention: 1464h\n",
			want: func(c *config.Config) { c.Storage.Retention = 61 * 24 * time.Hour },
		},
		{
			name: "EmptyLists",
			yaml: "holidays: []\ndigests: []\nadmins: []\nslack_limits: {}\n",
			want: func(c *config.Config) {
				c.Holidays, c.Digests, c.Admins = []config.Holiday{}, []config.Digest{}, []string{}
				c.SlackLimits = map[string]int{}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse("config.yaml", []byte(tt.yaml), env(tt.env))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := withTokens()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse=\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// Ensure Calendar hands nudges the configured schedule, holidays and
// zone, and keeps "catch_up: 0" meaning never rather than nudges' default.
func TestConfig_Calendar(t *testing.T) {
	tests := []struct {
		name        string
		catchUp     time.Duration
		wantCatchUp time.Duration
	}{
		{name: "CatchUp", catchUp: 90 * time.Minute, wantCatchUp: 90 * time.Minute},
		{name: "NoCatchUp", catchUp: 0, wantCatchUp: time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := withTokens()
			c.Nudges.Schedule = "30 8 * * MON"
			c.Nudges.DefaultTimezone = "Europe/Berlin"
			c.Nudges.CatchUp = tt.catchUp
			c.Holidays = []config.Holiday{{Date: "2026-12-25"}}
			cal, err := c.Calendar()
			if err != nil {
				t.Fatalf("Calendar: %v", err)
			}
			if err := cal.Validate(); err != nil {
				t.Errorf("Calendar().Validate: %v", err)
			}
			if got := cal.Default.String(); got != c.Nudges.Schedule {
				t.Errorf("Default=%q, want %q", got, c.Nudges.Schedule)
			}
			if got := cal.Fallback.String(); got != "Europe/Berlin" {
				t.Errorf("Fallback=%q, want Europe/Berlin", got)
			}
			if !reflect.DeepEqual(cal.Holidays, c.Holidays) {
				t.Errorf("Holidays=%v, want %v", cal.Holidays, c.Holidays)
			}
			if cal.CatchUp != tt.wantCatchUp {
				t.Errorf("CatchUp=%v, want %v", cal.CatchUp, tt.wantCatchUp)
			}
			if cal.Zones == nil {
				t.Error("Zones=nil, want a cache")
			}
		})
	}
	t.Run("ErrSchedule", func(t *testing.T) {
		c := withTokens()
		c.Nudges.Schedule = "nope"
		if _, err := c.Calendar(); err == nil || !strings.HasPrefix(err.Error(), "nudges.schedule: ") {
			t.Errorf("Calendar error=%v, want one about nudges.schedule", err)
		}
	})
}

// Ensure a nil getenv means no environment, not a crash.
func TestParse_NilGetenv(t *testing.T) {
	_, err := config.Parse("config.yaml", []byte("slack: {bot_token: xoxb-1, app_token: xapp-1}\n"), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
}

// Ensure Validate checks a Config built in code, naming keys without lines.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*config.Config)
		want   []string
	}{
		{name: "OK", modify: func(*config.Config) {}},
		{
			name:   "ErrDefaultHasNoTokens",
			modify: func(c *config.Config) { c.Slack = config.Default().Slack },
			want: []string{
				`slack bot token missing: set SLACK_BOT_TOKEN (or slack.bot_token in the config)`,
				`slack app token missing: set SLACK_APP_TOKEN (or slack.app_token in the config)`,
			},
		},
		{
			name:   "ErrBotTokenPrefix",
			modify: func(c *config.Config) { c.Slack.BotToken = "xoxp-1-SECRET" },
			want:   []string{`slack.bot_token does not look like a bot token: it should start with "xoxb-" (it holds a user token; copy the Bot User OAuth Token from your app's OAuth & Permissions page)`},
		},
		{
			name: "ErrDigest",
			modify: func(c *config.Config) {
				c.Digests = []config.Digest{{Channel: "C0123456789", Schedule: "nope", Timezone: "UTC"}}
			},
			want: []string{`digests[0].schedule: invalid schedule "nope": it has 1 field(s); give five (minute hour day-of-month month day-of-week), e.g. "0 9 * * MON-FRI"`},
		},
		{
			name:   "ErrAPIURLNotNormalised",
			modify: func(c *config.Config) { c.Slack.APIURL = "https://slack.com/api?x=1" },
			want:   []string{`slack.api_url: "https://slack.com/api?x=1" is not an http(s) URL: use the Web API base, e.g. https://slack.com/api/ (or the emulator's http://localhost:PORT/api/)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := withTokens()
			tt.modify(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate=nil, want errors")
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tt.want) {
				t.Errorf("Validate=\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error shows a token: %v", err)
			}
		})
	}
}

// Ensure the zero Config is reported, not a panic, and every required
// value is named.
func TestValidate_Zero(t *testing.T) {
	err := config.Config{}.Validate()
	if err == nil {
		t.Fatal("Validate=nil for the zero Config")
	}
	for _, key := range []string{"bot token", "app token", "slack.api_url", "storage.path", "storage.retention", "nudges.schedule", "nudges.default_timezone", "log.level", "log.format", "shutdown_timeout"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not mention %s:\n%v", key, err)
		}
	}
}

// Ensure Load reads the file, names it in messages, and explains a
// missing file.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("log: {level: warn}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("log:\n  levle: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("OK", func(t *testing.T) {
		c, err := config.Load(good, env(nil))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if c.Log.Level != "warn" {
			t.Errorf("Log.Level=%q, want warn", c.Log.Level)
		}
	})
	t.Run("ErrNamesFile", func(t *testing.T) {
		_, err := config.Load(bad, env(nil))
		want := bad + `:2: unknown key "log.levle"; did you mean "log.level"?`
		if err == nil || err.Error() != want {
			t.Errorf("Load error=%v, want %s", err, want)
		}
	})
	t.Run("ErrMissing", func(t *testing.T) {
		missing := filepath.Join(dir, "nope.yaml")
		_, err := config.Load(missing, env(nil))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Load error=%v, want fs.ErrNotExist", err)
		}
		if !strings.Contains(err.Error(), "copy config.example.yaml") {
			t.Errorf("Load error=%v, want advice to copy the example", err)
		}
	})
}

// Ensure the example file parses and validates, so it can be copied as is.
func TestExample_Valid(t *testing.T) {
	c, err := config.Load("../config.example.yaml", env(nil))
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	want := withTokens()
	want.Holidays = []config.Holiday{{Date: "2026-12-25"}, {Date: "2026-12-26", TZ: "Europe/Berlin"}}
	want.Digests = []config.Digest{{Channel: "C0123456789", Schedule: "0 16 * * FRI", Timezone: "Europe/London"}}
	want.Admins = []string{"U0123456789"}
	want.Strategy.Lines = []string{}
	want.SlackLimits = map[string]int{}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("example=\n%+v\nwant (the defaults, documented)\n%+v", c, want)
	}
}

// Ensure Parse never panics, and that what it accepts also validates and
// what it rejects never shows a token it was given.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../config.example.yaml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		"", "~", "[]", "- a", "a: b", "slack: [", "nudges:\n  schedule: CRON_TZ=Asia/Tokyo\n",
		"nudges: {schedule: \"TZ=\"}", "digests: [{schedule: \"CRON_TZ= \"}]", "holidays: [2026-12-25, {date: x}]",
		"slack_limits: {a: b}", "a: &x [*x]", "log: &l {level: *l}", "<<: {log: {}}", "? [a]\n: b\n",
		"---\n---\n", "shutdown_timeout: 9999999999999h", "admins: [*a]", "nudges: {schedule: \"@every 1h\"}",
		"storage: {retention: 400d}", "storage: {retention: 99999d}", "storage: {retention: d}", "storage: {retention: -1d}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("f.yaml", data, env(nil))
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a Config that Validate rejects: %v", verr)
			}
			return
		}
		if !strings.Contains(string(data), "SECRET") && strings.Contains(err.Error(), "SECRET") {
			t.Fatalf("error shows a token: %v", err)
		}
	})
}

// Ensure a syntax error is reported at the line to fix, not at the start
// of the mapping it broke: yaml names the mapping's first key for a key
// indented too far, which in the example config is dozens of lines up.
func TestParse_SyntaxErrorAtItsLine(t *testing.T) {
	example, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(example), "\n")
	// The example's catch_up line, indented one step too far.
	at := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "  catch_up:") }) + 1
	if at == 0 {
		t.Fatal("config.example.yaml has no catch_up line")
	}
	misindented := slices.Clone(lines)
	misindented[at-1] = "   " + misindented[at-1]
	tests := []struct {
		name, yaml string
		want       string
	}{
		{"MisindentedInExample", strings.Join(misindented, "\n"), fmt.Sprintf("c.yaml:%d: did not find expected key", at)},
		{"MisindentedShort", "log:\n  level: info\n  # a comment\n\n    format: json\n", "c.yaml:5: did not find expected key"},
		{"UnquotedStarStillHinted", "nudges:\n  schedule: */30 9 * * *\n", `must be quoted, e.g. "*/30 9 * * *"`},
		{"UnclosedFlow", "admins: [U1,\nlog: {}\n", "c.yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("c.yaml", []byte(tt.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: %v\nwant %q", err, tt.want)
			}
		})
	}
}
