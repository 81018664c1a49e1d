package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

// Secret is a credential such as a Slack token. fmt (every verb), slog,
// encoding/json and YAML show only its kind ("xoxb-…(redacted)"), so a
// token handed to a logger, an error or a config dump cannot leak; code
// that needs the value calls Reveal. Being a string, it still leaks
// through string(s) and as a JSON map key, so don't do those.
type Secret string

const redactedMark = "…(redacted)"

// Reveal returns the secret itself, for the one place that must send it.
func (s Secret) Reveal() string { return string(s) }

// String returns the redacted form: the token's kind prefix, if it has a
// known one, and a mark. An empty secret prints as "" so that "not set"
// stays visible.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	if p := tokenKind(string(s)); p != "" {
		return p + redactedMark
	}
	// Without a recognisable prefix even the first characters could be
	// part of the secret, so nothing of it is shown.
	return redactedMark
}

// GoString makes %#v redact too.
func (s Secret) GoString() string { return "config.Secret(" + strconv.Quote(s.String()) + ")" }

// Format covers every fmt verb, including %d and %x, which would
// otherwise print the underlying string.
func (s Secret) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, s.GoString())
	case verb == 'q':
		_, _ = io.WriteString(f, strconv.Quote(s.String()))
	default:
		_, _ = io.WriteString(f, s.String())
	}
}

// LogValue makes slog handlers, text and JSON alike, log the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON redacts in JSON output.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText redacts wherever a text encoding is used, such as YAML
// dumps.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// tokenKind returns the Slack token prefix s starts with ("xoxb-",
// "xapp-", …), or "" when s does not look like a Slack token.
func tokenKind(s string) string {
	if len(s) < 5 || s[4] != '-' {
		return ""
	}
	p := s[:5]
	if p == "xapp-" || (strings.HasPrefix(p, "xox") && p[3] >= 'a' && p[3] <= 'z') {
		return p
	}
	return ""
}
