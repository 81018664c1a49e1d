package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// fakeAPI is an in-memory Web API for tests that run under
// testing/synctest, where real sockets cannot be used. It is safe for
// concurrent use: the bot does its work on goroutines of its own.
type fakeAPI struct {
	mu    sync.Mutex
	zones map[string]string // user → tz
	posts []fakePost
	fail  func(method string) error // optional fault injection
	now   func() time.Time          // the test's clock, for post times
}

type fakePost struct {
	Channel  string
	TS       string
	At       time.Time
	Metadata slack.SlackMetadata
}

func newFakeAPI(now func() time.Time) *fakeAPI {
	return &fakeAPI{zones: map[string]string{}, now: now}
}

func (f *fakeAPI) injected(method string) error {
	if f.fail == nil {
		return nil
	}
	return f.fail(method)
}

func (f *fakeAPI) PostMessageContext(_ context.Context, channel string, opts ...slack.MsgOption) (string, string, error) {
	if err := f.injected("chat.postMessage"); err != nil {
		return "", "", err
	}
	_, values, err := slack.UnsafeApplyMsgOptions("xoxb-fake", channel, "https://fake/", opts...)
	if err != nil {
		return "", "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	at := f.now()
	p := fakePost{Channel: channel, TS: fmt.Sprintf("%d.%06d", at.Unix(), len(f.posts)), At: at}
	if p.Metadata, err = metadataFrom(values); err != nil {
		return "", "", err
	}
	f.posts = append(f.posts, p)
	return channel, p.TS, nil
}

// metadataFrom decodes a post's metadata; one Slack would not accept
// fails the post, as it would in Slack.
func metadataFrom(v url.Values) (slack.SlackMetadata, error) {
	var m slack.SlackMetadata
	if raw := v.Get("metadata"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return m, fmt.Errorf("fakeapi: metadata %q: %w", raw, err)
		}
	}
	return m, nil
}

func (f *fakeAPI) UpdateMessageContext(_ context.Context, channel, ts string, _ ...slack.MsgOption) (string, string, string, error) {
	return channel, ts, "", f.injected("chat.update")
}

func (f *fakeAPI) OpenConversationContext(_ context.Context, p *slack.OpenConversationParameters) (*slack.Channel, bool, bool, error) {
	if err := f.injected("conversations.open"); err != nil {
		return nil, false, false, err
	}
	ch := &slack.Channel{}
	ch.ID = "D" + p.Users[0]
	return ch, false, false, nil
}

func (f *fakeAPI) GetConversationHistoryContext(_ context.Context, p *slack.GetConversationHistoryParameters) (*slack.GetConversationHistoryResponse, error) {
	if err := f.injected("conversations.history"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &slack.GetConversationHistoryResponse{}
	for _, p2 := range f.posts {
		if p2.Channel != p.ChannelID {
			continue
		}
		m := slack.Message{}
		m.Timestamp = p2.TS
		m.Metadata = p2.Metadata
		resp.Messages = append(resp.Messages, m)
	}
	return resp, nil
}

func (f *fakeAPI) GetUserInfoContext(_ context.Context, user string, _ ...slack.GetUserInfoOption) (*slack.User, error) {
	if err := f.injected("users.info"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &slack.User{ID: user, TZ: f.zones[user]}, nil
}

func (f *fakeAPI) PublishViewContext(context.Context, slack.PublishViewContextRequest) (*slack.ViewResponse, error) {
	return &slack.ViewResponse{}, nil
}

func (f *fakeAPI) OpenViewContext(context.Context, string, slack.ModalViewRequest) (*slack.ViewResponse, error) {
	return &slack.ViewResponse{}, nil
}

func (f *fakeAPI) PostEphemeralContext(_ context.Context, channel, _ string, _ ...slack.MsgOption) (string, error) {
	return "", f.injected("chat.postEphemeral")
}

func (f *fakeAPI) UploadFileContext(context.Context, slack.UploadFileParameters) (*slack.FileSummary, error) {
	return &slack.FileSummary{}, f.injected("files.completeUploadExternal")
}

func (f *fakeAPI) GetUsersInConversationContext(context.Context, *slack.GetUsersInConversationParameters) ([]string, string, error) {
	return nil, "", f.injected("conversations.members")
}

func (f *fakeAPI) GetConversationInfoContext(_ context.Context, in *slack.GetConversationInfoInput) (*slack.Channel, error) {
	ch := &slack.Channel{}
	ch.ID = in.ChannelID
	return ch, f.injected("conversations.info")
}

func (f *fakeAPI) GetUsersContext(context.Context, ...slack.GetUsersOption) ([]slack.User, error) {
	return nil, f.injected("users.list")
}

func (f *fakeAPI) AuthTestContext(context.Context) (*slack.AuthTestResponse, error) {
	return &slack.AuthTestResponse{UserID: "UBOTFAKE1"}, nil
}
