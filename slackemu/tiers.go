package slackemu

// Slack's published rate-limit tiers, in calls a minute per method per
// workspace (shared/reference/slack-protocol.md §4: Tier 1 1+, Tier 2
// 20+, Tier 3 50+, Tier 4 100+; the per-method tiers as the Java SDK
// lists them). The emulator holds each method to the tier's floor, the
// figure a well-behaved app may count on.
const (
	tier1 = 1
	tier2 = 20
	tier3 = 50
	tier4 = 100
)

// methodTiers maps the Web API methods the emulator serves to their tier.
// chat.postMessage is absent: its limit is per channel, plus a workspace
// limit Slack does not publish (see PublishedLimits and WorkspaceLimit).
// Built when asked for, so the emulator runs no code at start-up.
func methodTiers() map[string]int {
	return map[string]int{
		"apps.connections.open":        tier1,
		"auth.test":                    tier4,
		"chat.postEphemeral":           tier4,
		"chat.update":                  tier3,
		"chat.delete":                  tier3,
		"chat.getPermalink":            tier4,
		"conversations.open":           tier3,
		"conversations.history":        tier3,
		"conversations.replies":        tier3,
		"conversations.members":        tier4,
		"conversations.info":           tier3,
		"users.info":                   tier4,
		"users.list":                   tier2,
		"views.open":                   tier4,
		"views.push":                   tier4,
		"views.update":                 tier4,
		"views.publish":                tier4,
		"files.getUploadURLExternal":   tier2,
		"files.completeUploadExternal": tier2,
	}
}

// Slack's rule for chat.postMessage: "generally 1 message per second per
// channel", with short bursts allowed.
const (
	perChannelPerMinute = 60
	perChannelBurst     = 3
)

// PublishedLimits turns on the rate limits Slack publishes: every method
// in its tier (calls a minute, bursts of a second's worth, at least one),
// and chat.postMessage at one message a second in each channel with
// bursts of three. Beyond a limit the call is answered HTTP 429 with a
// whole-second Retry-After, as Slack does. The workspace-wide limit on
// chat.postMessage, which Slack does not publish, is set apart with
// WorkspaceLimit. Limits are off until this is called, so tests that are
// not about pacing run at full speed.
func (s *Server) PublishedLimits() {
	for method, perMinute := range methodTiers() {
		s.RateLimit(method, perMinute, max(1, perMinute/60))
	}
	s.RateLimitPerChannel(perChannelPerMinute, perChannelBurst)
}

// WorkspaceLimit limits chat.postMessage across the whole workspace to
// perMinute posts a minute, the limit Slack applies but does not publish,
// with bursts of one second's worth (Slack's limits are windows of a
// minute; a token bucket refilled continuously is the stricter reading).
// It comes on top of the per-channel limit. perMinute ≤ 0 removes it.
func (s *Server) WorkspaceLimit(perMinute int) {
	s.RateLimit("chat.postMessage", perMinute, max(1, perMinute/60))
}
