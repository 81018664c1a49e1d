package bot

import (
	"net/url"
	"regexp"
	"strings"
)

// Secrets reach logs through errors: slack-go's network errors quote the
// request URL, and a response_url lets whoever holds it answer that
// person for 30 minutes; a Socket Mode URL carries a connection ticket.
// Every error from a Slack call is scrubbed before it is logged or
// returned.

var (
	urlPattern   = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>` + "`" + `]+`)
	tokenPattern = regexp.MustCompile(`\b(xox[a-z]|xapp)-[A-Za-z0-9-]+`)
)

// Scrub removes secrets from s: Slack tokens (xox?-…, xapp-…) become
// "xox?-[redacted]", and URLs keep only their scheme and host, except a
// Web API method's URL (…/api/chat.postMessage, no query), which holds
// no secret and says which call failed.
func Scrub(s string) string {
	if !strings.Contains(s, "://") && !strings.Contains(s, "xox") && !strings.Contains(s, "xapp-") {
		return s
	}
	s = urlPattern.ReplaceAllStringFunc(s, scrubURL)
	return tokenPattern.ReplaceAllStringFunc(s, func(t string) string {
		prefix, _, _ := strings.Cut(t, "-")
		return prefix + "-[redacted]"
	})
}

func scrubURL(match string) string {
	// Punctuation that ends a sentence is not part of the URL.
	raw := strings.TrimRight(match, ":,.;)")
	tail := match[len(raw):]
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[redacted url]" + tail
	}
	if u.RawQuery == "" && u.Fragment == "" && u.User == nil && isMethodPath(u.Path) {
		return match
	}
	return u.Scheme + "://" + u.Host + "/[redacted]" + tail
}

// isMethodPath reports whether p is /api/<method> (under any base path,
// as with SLACK_API_URL), a Web API endpoint whose URL is no secret.
func isMethodPath(p string) bool {
	i := strings.LastIndex(p, "/api/")
	if i < 0 {
		return false
	}
	method := p[i+len("/api/"):]
	return method != "" && strings.Trim(method, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.") == ""
}

// scrubbedError keeps the error it scrubs in its chain, so errors.Is and
// errors.As still classify it, while its text is safe to log.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrubError returns err with its text scrubbed (see Scrub), or err
// itself when there is nothing to scrub.
func scrubError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := Scrub(msg); clean != msg {
		return &scrubbedError{msg: clean, err: err}
	}
	return err
}
