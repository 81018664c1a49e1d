package bot

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestScrub(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"plain text stays", "plain text stays"},
		{`Post "https://hooks.slack.com/actions/T1/12345/abcdefSECRET": dial tcp: i/o timeout`,
			`Post "https://hooks.slack.com/[redacted]": dial tcp: i/o timeout`},
		{`Post "http://127.0.0.1:4000/response/R42": EOF`, `Post "http://127.0.0.1:4000/[redacted]": EOF`},
		{`Post "https://slack.com/api/chat.postMessage": EOF`, `Post "https://slack.com/api/chat.postMessage": EOF`},
		{`Post "https://slack.com/api/chat.postMessage?token=xoxb-1-2": EOF`, `Post "https://slack.com/[redacted]": EOF`},
		{`dial wss://wss-primary.slack.com/link/?ticket=abc&app_id=A1: refused`, `dial wss://wss-primary.slack.com/[redacted]: refused`},
		{`token xoxb-1111-2222-abcd and xapp-1-A1-xyz and xoxp-9`, `token xoxb-[redacted] and xapp-[redacted] and xoxp-[redacted]`},
		{`https://user:pw@example.com/api/x`, `https://example.com/[redacted]`},
	}
	for _, tt := range tests {
		if got := Scrub(tt.in); got != tt.want {
			t.Errorf("Scrub(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

// Ensure a scrubbed error still classifies as the error it wraps.
func TestScrubError_KeepsChain(t *testing.T) {
	orig := &url.Error{Op: "Post", URL: "https://hooks.slack.com/actions/T/B/SECRET", Err: errors.New("connection reset")}
	err := scrubError(fmt.Errorf("wrapped: %w", orig))
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("scrubbed error still holds the URL: %v", err)
	}
	if _, ok := errors.AsType[*url.Error](err); !ok {
		t.Error("the *url.Error is no longer in the chain")
	}
	if classify(err) != "uncertain" {
		t.Errorf("classify = %q, want uncertain", classify(err))
	}
	if scrubError(nil) != nil {
		t.Error("scrubError(nil) is not nil")
	}
	plain := errors.New("nothing secret")
	if scrubError(plain) != plain {
		t.Error("an error with nothing to scrub was wrapped")
	}
}

func FuzzScrub(f *testing.F) {
	f.Add("Post \"https://hooks.slack.com/actions/T/B/x\": EOF xoxb-1-2")
	f.Fuzz(func(t *testing.T, s string) {
		out := Scrub(s)
		if tokenPattern.MatchString(out) && !strings.Contains(out, "[redacted]") {
			t.Errorf("a token survived: %q", out)
		}
		for _, u := range urlPattern.FindAllString(out, -1) {
			if p, err := url.Parse(u); err == nil && p.RawQuery != "" && !strings.Contains(u, "[redacted]") {
				t.Errorf("a URL with a query survived: %q in %q", u, out)
			}
		}
	})
}
