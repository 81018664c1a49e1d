package config_test

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/config"
	"go.yaml.in/yaml/v3"
)

// Ensure the committed manifest is exactly what Manifest returns, so the
// app people create matches the bot they run.
func TestManifest_FileMatches(t *testing.T) {
	data, err := os.ReadFile("../slack-app-manifest.yaml")
	if err != nil {
		t.Fatalf("read the committed manifest: %v", err)
	}
	if string(data) != config.Manifest() {
		t.Errorf("../slack-app-manifest.yaml differs from config.Manifest(); write Manifest() to it byte for byte")
	}
}

// manifest is the part of Slack's manifest schema nudgebot depends on.
type manifest struct {
	Metadata struct {
		MajorVersion int `yaml:"major_version"`
		MinorVersion int `yaml:"minor_version"`
	} `yaml:"_metadata"`
	DisplayInformation struct {
		Name        string `yaml:"name"`
		Description string `yaml:"description"`
	} `yaml:"display_information"`
	Features struct {
		AppHome struct {
			HomeTab             bool `yaml:"home_tab_enabled"`
			MessagesTab         bool `yaml:"messages_tab_enabled"`
			MessagesTabReadOnly bool `yaml:"messages_tab_read_only_enabled"`
		} `yaml:"app_home"`
		BotUser struct {
			DisplayName  string `yaml:"display_name"`
			AlwaysOnline bool   `yaml:"always_online"`
		} `yaml:"bot_user"`
		SlashCommands []slashCommand `yaml:"slash_commands"`
	} `yaml:"features"`
	OAuthConfig struct {
		Scopes struct {
			Bot []string `yaml:"bot"`
		} `yaml:"scopes"`
	} `yaml:"oauth_config"`
	Settings struct {
		EventSubscriptions struct {
			BotEvents []string `yaml:"bot_events"`
		} `yaml:"event_subscriptions"`
		Interactivity struct {
			IsEnabled bool `yaml:"is_enabled"`
		} `yaml:"interactivity"`
		OrgDeployEnabled     bool `yaml:"org_deploy_enabled"`
		SocketModeEnabled    bool `yaml:"socket_mode_enabled"`
		TokenRotationEnabled bool `yaml:"token_rotation_enabled"`
	} `yaml:"settings"`
}

type slashCommand struct {
	Command      string `yaml:"command"`
	Description  string `yaml:"description"`
	UsageHint    string `yaml:"usage_hint"`
	ShouldEscape bool   `yaml:"should_escape"`
}

var botScopes = []string{"chat:write", "commands", "im:write", "im:history", "users:read", "channels:read", "groups:read", "files:write"}

// Ensure the manifest is YAML that sets up a Socket Mode app with exactly
// the commands, events and scopes the bot uses, and no request URLs.
func TestManifest_Content(t *testing.T) {
	dec := yaml.NewDecoder(strings.NewReader(config.Manifest()))
	dec.KnownFields(true) // a misspelt key would be ignored by Slack too
	var m manifest
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("manifest is not the expected YAML: %v", err)
	}

	if m.Metadata.MajorVersion != 1 {
		t.Errorf("_metadata.major_version=%d, want 1", m.Metadata.MajorVersion)
	}
	if m.DisplayInformation.Name == "" {
		t.Error("display_information.name is empty; Slack requires it")
	}
	if n := len(m.DisplayInformation.Description); n > 140 {
		t.Errorf("display_information.description is %d bytes; Slack allows 140", n)
	}
	if h := m.Features.AppHome; !h.HomeTab || !h.MessagesTab || h.MessagesTabReadOnly {
		t.Errorf("app_home=%+v, want home and messages tabs on and messages not read-only", h)
	}
	if b := m.Features.BotUser; b.DisplayName != "nudgebot" || !b.AlwaysOnline {
		t.Errorf("bot_user=%+v, want nudgebot, always online", b)
	}
	wantCommands := []slashCommand{
		{
			Command:     "/nudge",
			Description: "Daily leadership nudges: start, stop, time, status, help",
			UsageHint:   "[start | stop | now | time 08:30 | days mon-fri | pause 3d | resume | focus lead | tz Europe/Berlin | status | help]",
		},
		{
			Command:     "/reflect",
			Description: "Save a private reflection",
			UsageHint:   "[text] | list | search WORD | export | delete ID",
		},
	}
	if !reflect.DeepEqual(m.Features.SlashCommands, wantCommands) {
		t.Errorf("slash_commands=\n%+v\nwant\n%+v", m.Features.SlashCommands, wantCommands)
	}
	if got := m.OAuthConfig.Scopes.Bot; !slices.Equal(got, botScopes) {
		t.Errorf("bot scopes=%q, want exactly %q", got, botScopes)
	}
	if got, want := m.Settings.EventSubscriptions.BotEvents, []string{"app_home_opened", "message.im", "user_change"}; !slices.Equal(got, want) {
		t.Errorf("bot_events=%q, want %q", got, want)
	}
	if !m.Settings.SocketModeEnabled || !m.Settings.Interactivity.IsEnabled {
		t.Errorf("settings=%+v, want Socket Mode and interactivity on", m.Settings)
	}
	if strings.Contains(config.Manifest(), "url:") {
		t.Error("manifest sets a URL; in Socket Mode Slack needs none")
	}
}

// Ensure the comment at the top explains every scope the manifest asks for.
func TestManifest_ScopesExplained(t *testing.T) {
	header, _, _ := strings.Cut(config.Manifest(), "\n_metadata:")
	for _, s := range botScopes {
		found := false
		for _, l := range strings.Split(header, "\n") {
			if f := strings.Fields(strings.TrimPrefix(l, "#")); len(f) > 1 && f[0] == s {
				found = true
			}
		}
		if !found {
			t.Errorf("no comment line explains scope %s", s)
		}
	}
}
