package bot

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// metadataType marks our nudge messages so a restart can find what it
// already posted (message metadata survives in conversations.history).
const metadataType = "nudgebot_nudge"

// SlackOptions configure the Web API side: the client every call goes
// through, its rate limits and its answers' classification.
type SlackOptions struct {
	BotToken string // xoxb-…
	AppToken string // xapp-…
	APIURL   string // Web API base URL ending in "/"; empty means Slack's own
	// Limits (the deprecated slack_limits), in requests per minute per
	// method, replace DefaultLimits' tiers; chat.postMessage's figure is
	// where its learned pace starts and the most it may reach.
	Limits map[string]int
	// HTTPClient carries Web API calls; nil means a client with sane
	// timeouts.
	HTTPClient *http.Client
	Logger     *slog.Logger
	Metrics    Metrics
	// PaceMemory keeps the learned pace across restarts; nil: learned
	// again after each.
	PaceMemory PaceMemory
	// api replaces the Web API client; tests under synctest use it.
	api slackAPI
}

// Slack is the core's messenger (app.Messenger) and the bot's Web API
// client: every call goes through the per-method limiter and the
// classification in api.go.
type Slack struct {
	selfMu sync.Mutex
	self   string // the bot's user id, once known

	client *slack.Client
	http   *http.Client
	api    slackAPI
	web    *webAPI
	log    *slog.Logger
	dms    DMBook // nil: every answer asks Slack for the DM
}

var _ app.Messenger = (*Slack)(nil)

// NewSlack builds the Web API client; it does not connect.
func NewSlack(o SlackOptions) *Slack {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NopMetrics{}
	}
	if o.HTTPClient == nil {
		// Keep an idle connection for each sender (twelve, and room to
		// spare): the default transport keeps two, so the other senders
		// would dial (and, for Slack, shake hands over TLS) for every post.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: t}
	}
	opts := []slack.Option{
		slack.OptionAppLevelToken(o.AppToken),
		slack.OptionHTTPClient(o.HTTPClient),
		// No OptionRetry: webAPI decides what is safe to repeat, and a
		// blind retry of a post can send it twice.
	}
	if o.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(o.APIURL))
	}
	if len(o.Limits) > 0 {
		o.Logger.Info("slack_limits is deprecated: the bot paces itself by what Slack allows; its figures are kept as upper bounds", "methods", len(o.Limits))
	}
	client := slack.New(o.BotToken, opts...)
	var api slackAPI = client
	if o.api != nil {
		api = o.api
	}
	return &Slack{client: client, http: o.HTTPClient, api: api, web: newWebAPI(o.Logger, o.Limits, o.Metrics, o.PaceMemory), log: o.Logger}
}

// RecallPace takes up the chat.postMessage pace another replica sharing
// the database learned and saved: a replica calls it when it starts
// leading, and so starts posting the bulk at the pace the workspace
// allows.
func (s *Slack) RecallPace() { s.web.readopt() }

// SetReplicas makes this replica call each Web API method at 1/n of its
// limit, n being how many replicas share the workspace's limits (the
// count the election learns from the database). chat.postMessage keeps
// its own pacer: only the leader posts the bulk.
func (s *Slack) SetReplicas(n int) {
	n = max(1, n)
	if !s.web.setReplicas(n) {
		return
	}
	if n == 1 {
		s.log.Info("this replica alone calls Slack: each method at its full limit", "replicas", n)
		return
	}
	s.log.Info(fmt.Sprintf("%d replicas share Slack's limits: each calls a method at 1/%d of its limit", n, n), "replicas", n)
}

// OpenDM finds the person's IM channel.
func (s *Slack) OpenDM(ctx context.Context, userID string) (string, error) {
	var ch *slack.Channel
	err := s.web.do(ctx, "conversations.open", callSafe, func(ctx context.Context) error {
		var err error
		ch, _, _, err = s.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{userID}})
		return err
	})
	if err != nil {
		return "", err
	}
	return ch.ID, nil
}

// PostNudge posts a nudge DM with the delivery id and round in its
// metadata.
func (s *Slack) PostNudge(ctx context.Context, channel string, m app.NudgeMessage, beforeSend func() error) (string, error) {
	blocks := nudgeBlocks(m)
	if m.FollowUp != nil {
		blocks = append(blocks, followUpBlocks(*m.FollowUp, m.Location)...)
	}
	var ts string
	err := s.web.doIn(ctx, "chat.postMessage", channel, callPost, func(ctx context.Context) error {
		if err := beforeSend(); err != nil {
			return err
		}
		var err error
		_, ts, err = s.api.PostMessageContext(ctx, channel,
			slack.MsgOptionText(nudgeFallback(wordingOf(m)), true),
			slack.MsgOptionBlocks(blocks...),
			slack.MsgOptionMetadata(slack.SlackMetadata{
				EventType:    metadataType,
				EventPayload: map[string]any{"delivery_id": m.Delivery.ID, "round": m.Delivery.Round},
			}),
		)
		return err
	})
	return ts, err
}

// UpdateNudge shows the answer in place of the buttons.
func (s *Slack) UpdateNudge(ctx context.Context, channel, ts string, m app.NudgeMessage) error {
	blocks := answeredBlocks(m)
	return s.web.do(ctx, "chat.update", callSafe, func(ctx context.Context) error {
		_, _, _, err := s.api.UpdateMessageContext(ctx, channel, ts,
			slack.MsgOptionText(nudgeFallback(wordingOf(m)), true),
			slack.MsgOptionBlocks(blocks...),
		)
		return err
	})
}

// FindNudge looks for a delivery's message (same id and round) in the DM.
func (s *Slack) FindNudge(ctx context.Context, channel, deliveryID string, round int, since time.Time) (string, bool, error) {
	params := &slack.GetConversationHistoryParameters{
		ChannelID:          channel,
		Oldest:             fmt.Sprintf("%d.000000", since.Unix()),
		Limit:              200,
		IncludeAllMetadata: true,
	}
	for range 20 { // bounded: a DM does not hold thousands of bot messages in minutes
		var resp *slack.GetConversationHistoryResponse
		err := s.web.do(ctx, "conversations.history", callSafe, func(ctx context.Context) error {
			var err error
			resp, err = s.api.GetConversationHistoryContext(ctx, params)
			return err
		})
		if err != nil {
			return "", false, err
		}
		for _, m := range resp.Messages {
			if m.Metadata.EventType != metadataType {
				continue
			}
			if id, _ := m.Metadata.EventPayload["delivery_id"].(string); id != deliveryID {
				continue
			}
			if roundOf(m.Metadata.EventPayload["round"]) == round {
				return m.Timestamp, true, nil
			}
		}
		if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			return "", false, nil
		}
		params.Cursor = resp.ResponseMetaData.NextCursor
	}
	return "", false, nil
}

func roundOf(v any) int {
	switch r := v.(type) {
	case float64:
		return int(r)
	case int:
		return r
	case string:
		n, _ := strconv.Atoi(r)
		return n
	}
	return 0
}

// Profile reads the person's zone, whether they are deactivated, and the
// name people know them by.
func (s *Slack) Profile(ctx context.Context, userID string) (app.Profile, error) {
	var u *slack.User
	err := s.web.do(ctx, "users.info", callSafe, func(ctx context.Context) error {
		var err error
		u, err = s.api.GetUserInfoContext(ctx, userID)
		return err
	})
	if err != nil {
		return app.Profile{}, err
	}
	return app.Profile{TZ: u.TZ, Deleted: u.Deleted, DisplayName: firstNonEmpty(u.Profile.DisplayName, u.RealName, u.Name)}, nil
}

// Channel reads a channel's name and every member, paging through
// conversations.members. An archived channel is Slack's is_archived.
func (s *Slack) Channel(ctx context.Context, channel string) (app.Channel, error) {
	var info *slack.Channel
	err := s.web.do(ctx, "conversations.info", callSafe, func(ctx context.Context) error {
		var err error
		info, err = s.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: channel})
		return err
	})
	if err != nil {
		return app.Channel{}, err
	}
	if info.IsArchived {
		return app.Channel{}, &permanentError{method: "conversations.info", code: "is_archived"}
	}
	var members []string
	cursor := ""
	for range 200 { // 200 pages of 200: 40,000 members is beyond any team channel
		var page []string
		var next string
		err := s.web.do(ctx, "conversations.members", callSafe, func(ctx context.Context) error {
			var err error
			page, next, err = s.api.GetUsersInConversationContext(ctx, &slack.GetUsersInConversationParameters{ChannelID: channel, Cursor: cursor, Limit: 200})
			return err
		})
		if err != nil {
			return app.Channel{}, err
		}
		members = append(members, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	if self := s.selfID(ctx); self != "" {
		// The bot is no one's colleague: not counted among who will see
		// a shared reflection, nor toward the anonymity threshold.
		members = slices.DeleteFunc(members, func(id string) bool { return id == self })
	}
	return app.Channel{Name: info.Name, Members: members}, nil
}

// authTester tells the bot who it is; *slack.Client is one.
type authTester interface {
	AuthTestContext(ctx context.Context) (*slack.AuthTestResponse, error)
}

// selfID is the bot's own user id, asked of Slack once. Empty while it
// cannot be had; the next call asks again.
func (s *Slack) selfID(ctx context.Context) string {
	s.selfMu.Lock()
	defer s.selfMu.Unlock()
	if s.self != "" {
		return s.self
	}
	at, ok := s.api.(authTester)
	if !ok {
		return ""
	}
	var id string
	err := s.web.do(ctx, "auth.test", callSafe, func(ctx context.Context) error {
		r, err := at.AuthTestContext(ctx)
		if err == nil {
			id = r.UserID
		}
		return err
	})
	if err != nil {
		s.log.Warn("asking Slack for the bot's own id", "error", err)
		return ""
	}
	s.self = id
	return id
}

// PostDigest posts a digest, split to fit Slack's limits; beforeSend
// runs before each part leaves.
func (s *Slack) PostDigest(ctx context.Context, channel, name string, d nudges.Digest, _ string, beforeSend func() error) error {
	for _, blocks := range digestMessages(d, name) {
		if err := s.postToChannel(ctx, channel, digestFallback(name), blocks, beforeSend); err != nil {
			return err
		}
	}
	return nil
}

// PostPulse posts the clarity pulse question.
func (s *Slack) PostPulse(ctx context.Context, channel, pulseID string, beforeSend func() error) error {
	return s.postToChannel(ctx, channel, pulseQuestion, pulseBlocks(pulseID), beforeSend)
}

// postToChannel posts one message; beforeSend runs after any rate-limit
// wait, right before the request leaves, and if it fails nothing is
// sent.
func (s *Slack) postToChannel(ctx context.Context, channel, fallback string, blocks []slack.Block, beforeSend func() error) error {
	return s.web.doIn(ctx, "chat.postMessage", channel, callPost, func(ctx context.Context) error {
		if err := beforeSend(); err != nil {
			return err
		}
		_, _, err := s.api.PostMessageContext(ctx, channel, slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
}

// PostUpdate posts a team update, credited to its author with a real
// mention, which nobody can fake by changing a display name.
func (s *Slack) PostUpdate(ctx context.Context, channel, authorID, text string) error {
	blocks := teamUpdateBlocks(authorID, text)
	return s.web.doIn(ctx, "chat.postMessage", channel, callPost, func(ctx context.Context) error {
		_, _, err := s.api.PostMessageContext(ctx, channel, slack.MsgOptionText("Team update from <@"+authorID+">", false), slack.MsgOptionBlocks(blocks...))
		return err
	})
}

// DMBook keeps each person's IM channel with the bot, opened when they
// subscribed; app.Service is one.
type DMBook interface {
	// KnownDM is "" when none is kept.
	KnownDM(userID string) string
	// ReplaceDM keeps fresh in place of stale, which Slack said is gone.
	ReplaceDM(userID, stale, fresh string)
}

// UseDMs sends the bot's answers to a person into the IM channel kept for
// them, instead of asking Slack for it (conversations.open, 50 a minute
// for the whole workspace) every time. The core keeps the channels and
// is built after the messenger, hence a setter; call it before Run.
func (s *Slack) UseDMs(b DMBook) { s.dms = b }

// inDM runs call in the person's IM channel: the kept one when there is
// one, else the one Slack opens. When Slack says the kept one is gone
// (nothing was sent), the DM is opened again, once, and kept.
func (s *Slack) inDM(ctx context.Context, userID string, call func(ctx context.Context, channel string) error) error {
	kept := ""
	if s.dms != nil {
		kept = s.dms.KnownDM(userID)
	}
	if kept != "" {
		err := call(ctx, kept)
		if code := slackCode(err); code != "channel_not_found" && code != "is_archived" {
			return err
		}
		s.log.Info("the kept DM channel is gone; opening it again", "user_id", userID)
	}
	channel, err := s.OpenDM(ctx, userID)
	if err != nil {
		return fmt.Errorf("opening DM: %w", err)
	}
	if kept != "" {
		s.dms.ReplaceDM(userID, kept, channel)
	}
	return call(ctx, channel)
}

// tell shows the person a message only they can see, in their DM with the
// bot (a form has no response_url).
func (s *Slack) tell(ctx context.Context, userID, text string) {
	err := s.inDM(ctx, userID, func(ctx context.Context, channel string) error {
		return s.web.do(ctx, "chat.postEphemeral", callPost, func(ctx context.Context) error {
			_, err := s.api.PostEphemeralContext(ctx, channel, userID, slack.MsgOptionText(text, false))
			return err
		})
	})
	if err != nil {
		s.log.Warn("could not answer a person", "user_id", userID, "error", err)
	}
}

// respond posts a follow-up through a command's or a click's
// response_url. It is not a Web API method and has no tier, but it is
// only good five times in thirty minutes, so each envelope uses it at
// most once.
func (s *Slack) respond(ctx context.Context, url string, msg *ephemeral) {
	if url == "" || msg == nil {
		return
	}
	// Only the fields Slack documents for a response_url body: slack-go's
	// MsgOptionResponseURL also sends "blocks": null and an empty
	// "metadata" object, which Slack does not list for it. The text is
	// already escaped where it holds user text.
	body := &slack.WebhookMessage{
		Text:            msg.Text,
		ResponseType:    slack.ResponseTypeEphemeral,
		ReplaceOriginal: msg.ReplaceOriginal,
	}
	if len(msg.Blocks) > 0 {
		body.Blocks = &slack.Blocks{BlockSet: msg.Blocks}
	}
	// Shown only to the one person; seeing it twice after a retry is
	// better than never, so a broken connection is retried like a read.
	err := s.web.do(ctx, "response_url", callSafe, func(ctx context.Context) error {
		return slack.PostWebhookCustomHTTPContext(ctx, url, s.http, body)
	})
	if err != nil {
		s.log.Warn("could not answer through response_url", "error", err)
	}
}

// openView opens a modal with a trigger; it must run within the
// trigger's three-second life.
func (s *Slack) openView(ctx context.Context, triggerID string, view slack.ModalViewRequest) error {
	return s.web.do(ctx, "views.open", callPost, func(ctx context.Context) error {
		_, err := s.api.OpenViewContext(ctx, triggerID, view)
		return err
	})
}

// updateMessage replaces a message's blocks.
func (s *Slack) updateMessage(ctx context.Context, channel, ts, fallback string, blocks []slack.Block) error {
	return s.web.do(ctx, "chat.update", callSafe, func(ctx context.Context) error {
		_, _, _, err := s.api.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
}
