package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/config"
	"go.yaml.in/yaml/v3"
)

// Ensure String shows the token's kind at most, and Reveal the token.
func TestSecret_String(t *testing.T) {
	tests := []struct {
		secret config.Secret
		want   string
	}{
		{"xoxb-111-222-SECRET", "xoxb-…(redacted)"},
		{"xapp-1-A1-SECRET", "xapp-…(redacted)"},
		{"xoxp-1-SECRET", "xoxp-…(redacted)"},
		{"SECRET-plain-password", "…(redacted)"},
		{"xox", "…(redacted)"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := tt.secret.String(); got != tt.want {
			t.Errorf("Secret(%d chars).String()=%q, want %q", len(tt.secret), got, tt.want)
		}
		if got := tt.secret.Reveal(); got != string(tt.secret) {
			t.Errorf("Reveal()=%q, want the secret itself", got)
		}
	}
}

// Ensure no way of printing, logging or encoding a Secret, alone or inside
// a Config, shows the token.
func TestSecret_NeverShown(t *testing.T) {
	const token = "xoxb-111-222-SECRETBOT"
	cfg := config.Default()
	cfg.Slack.BotToken, cfg.Slack.AppToken = token, "xapp-1-A1-SECRETAPP"
	s := config.Secret(token)

	render := map[string]func() (string, error){
		"%v":          func() (string, error) { return fmt.Sprintf("%v", s), nil },
		"%s":          func() (string, error) { return fmt.Sprintf("%s", s), nil },
		"%q":          func() (string, error) { return fmt.Sprintf("%q", s), nil },
		"%x":          func() (string, error) { return fmt.Sprintf("%x", s), nil },
		"%X":          func() (string, error) { return fmt.Sprintf("%X", s), nil },
		"%d":          func() (string, error) { return fmt.Sprintf("%d", s), nil },
		"%10.3s":      func() (string, error) { return fmt.Sprintf("%10.3s", s), nil },
		"%#v":         func() (string, error) { return fmt.Sprintf("%#v", s), nil },
		"cfg %v":      func() (string, error) { return fmt.Sprintf("%v", cfg), nil },
		"cfg %+v":     func() (string, error) { return fmt.Sprintf("%+v", cfg), nil },
		"cfg %#v":     func() (string, error) { return fmt.Sprintf("%#v", cfg), nil },
		"&cfg %+v":    func() (string, error) { return fmt.Sprintf("%+v", &cfg), nil },
		"Sprint":      func() (string, error) { return fmt.Sprint(s, cfg.Slack), nil },
		"Errorf":      func() (string, error) { return fmt.Errorf("auth with %v: %w", s, errors.New("x")).Error(), nil },
		"json":        func() (string, error) { b, err := json.Marshal(s); return string(b), err },
		"json cfg":    func() (string, error) { b, err := json.Marshal(cfg); return string(b), err },
		"yaml cfg":    func() (string, error) { b, err := yaml.Marshal(cfg); return string(b), err },
		"slog text":   func() (string, error) { return logged(slog.NewTextHandler, s, cfg) },
		"slog json":   func() (string, error) { return logged(slog.NewJSONHandler, s, cfg) },
		"MarshalText": func() (string, error) { b, err := s.MarshalText(); return string(b), err },
	}
	for name, f := range render {
		t.Run(name, func(t *testing.T) {
			out, err := f()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, "SECRET") {
				t.Errorf("%s shows the token: %s", name, out)
			}
			if !strings.Contains(out, "redacted") {
				t.Errorf("%s shows no redaction mark, so the check above proves nothing: %s", name, out)
			}
		})
	}
}

// logged logs the secret and a config through a handler built by h.
func logged[H slog.Handler](h func(w io.Writer, o *slog.HandlerOptions) H, s config.Secret, cfg config.Config) (string, error) {
	var buf bytes.Buffer
	log := slog.New(h(&buf, nil))
	log.Info("start", "token", s, "cfg", cfg, "slack", cfg.Slack, slog.Any("ptr", &cfg))
	log.Info("group", slog.Group("g", "token", s))
	return buf.String(), nil
}
