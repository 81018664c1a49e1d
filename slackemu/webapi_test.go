package slackemu_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/slackemu"
)

// Ensure tokens are checked per method: the bot token for Web API methods,
// the app token only for apps.connections.open.
func TestAuth(t *testing.T) {
	emu := newEmu(t)
	tests := map[string]struct {
		bot, app string
		call     func(*slack.Client) error
		wantErr  string
	}{
		"OK": {bot: botToken, call: func(c *slack.Client) error { _, err := c.AuthTest(); return err }},
		"ErrWrongBotToken": {bot: "xoxb-other", wantErr: "invalid_auth",
			call: func(c *slack.Client) error { _, err := c.AuthTest(); return err }},
		"ErrAppTokenForWebAPI": {bot: appToken, wantErr: "invalid_auth",
			call: func(c *slack.Client) error { _, err := c.AuthTest(); return err }},
		"OKConnectionsOpen": {bot: botToken, app: appToken,
			call: func(c *slack.Client) error { _, _, err := c.StartSocketModeContext(t.Context()); return err }},
		"ErrConnectionsOpenWithBotToken": {bot: botToken, app: botToken, wantErr: "invalid_auth",
			call: func(c *slack.Client) error { _, _, err := c.StartSocketModeContext(t.Context()); return err }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := slack.New(tc.bot, slack.OptionAPIURL(emu.URL()), slack.OptionAppLevelToken(tc.app))
			err := tc.call(c)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err=%v, want nil", err)
			}
			if tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Fatalf("err=%v, want %s", err, tc.wantErr)
			}
		})
	}
}

// Ensure auth.test answers with the bot's identity.
func TestAuthTest(t *testing.T) {
	emu := newEmu(t)
	resp, err := newAPI(emu).AuthTest()
	if err != nil {
		t.Fatal(err)
	}
	if resp.UserID != slackemu.BotUserID || resp.TeamID != slackemu.TeamID || resp.BotID != slackemu.BotID {
		t.Fatalf("auth.test=%+v, want bot %s in %s", resp, slackemu.BotUserID, slackemu.TeamID)
	}
}

// Ensure a base URL copied from Slack's own, ending in /api/, reaches
// the same methods and the same Socket Mode as the emulator's URL.
func TestAPIPrefix(t *testing.T) {
	emu := newEmu(t)
	c := slack.New(botToken, slack.OptionAPIURL(emu.URL()+"api/"), slack.OptionAppLevelToken(appToken))
	if resp, err := c.AuthTest(); err != nil || resp.UserID != slackemu.BotUserID {
		t.Fatalf("auth.test under /api/ = %+v, %v; want the bot", resp, err)
	}
	if _, _, err := c.StartSocketModeContext(t.Context()); err != nil {
		t.Fatalf("apps.connections.open under /api/: %v", err)
	}
}

// Ensure a posted message with blocks and metadata lands in the person's DM
// and comes back from history, metadata only when asked for.
func TestPostMessageAndHistory(t *testing.T) {
	emu := newEmu(t)
	api := newAPI(emu)
	blocks := slack.MsgOptionBlocks(
		slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "Ask one question", false, true), nil, nil),
		slack.NewActionBlock("nudge", slack.NewButtonBlockElement("done", "d-1", slack.NewTextBlockObject("plain_text", "Done", false, false))),
	)
	meta := slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "nudge_delivered", EventPayload: map[string]any{"delivery": "d-1"}})

	// Posting to the user id lands in their DM.
	ch, ts, err := api.PostMessage("U1", slack.MsgOptionText("fallback", false), blocks, meta)
	if err != nil {
		t.Fatal(err)
	}
	if want := emu.IMChannel("U1"); ch != want {
		t.Fatalf("channel=%s, want %s", ch, want)
	}
	dm := emu.DM("U1")
	if len(dm) != 1 || dm[0].TS != ts || dm[0].Text != "fallback" || dm[0].Metadata == nil || dm[0].Metadata.EventType != "nudge_delivered" {
		t.Fatalf("DM=%+v, want the one message %s with metadata", dm, ts)
	}
	if b := dm[0].Buttons(); len(b) != 1 || b[0].ActionID != "done" || b[0].Value != "d-1" || b[0].BlockID != "nudge" || b[0].Text != "Done" {
		t.Fatalf("Buttons=%+v, want the Done button", b)
	}
	if dm[0].LinkNames != "" || dm[0].Parse != "" {
		t.Fatalf("LinkNames=%q Parse=%q, want neither sent", dm[0].LinkNames, dm[0].Parse)
	}

	for _, withMeta := range []bool{true, false} {
		hist, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: ch, IncludeAllMetadata: withMeta})
		if err != nil {
			t.Fatal(err)
		}
		if len(hist.Messages) != 1 || hist.Messages[0].Timestamp != ts {
			t.Fatalf("history=%+v, want message %s", hist.Messages, ts)
		}
		got := hist.Messages[0].Metadata
		if withMeta && (got.EventType != "nudge_delivered" || got.EventPayload["delivery"] != "d-1") {
			t.Fatalf("metadata=%+v, want nudge_delivered d-1", got)
		}
		if !withMeta && got.EventType != "" {
			t.Fatalf("metadata=%+v without include_all_metadata, want none", got)
		}
	}

	// link_names is recorded exactly as sent.
	if _, _, err := api.PostMessage("U1", slack.MsgOptionText("hi @here", false), slack.MsgOptionLinkNames(true)); err != nil {
		t.Fatal(err)
	}
	if got := emu.DM("U1")[1].LinkNames; got != "true" {
		t.Fatalf("LinkNames=%q, want true", got)
	}
}

// Ensure history is newest first, paginates by cursor and honours oldest.
func TestHistoryPagination(t *testing.T) {
	clock := newClock()
	emu := newEmu(t, slackemu.WithClock(clock.Now))
	api := newAPI(emu)
	var tss []string
	for i := range 5 {
		_, ts, err := api.PostMessage("U1", slack.MsgOptionText(strings.Repeat("x", i+1), false))
		if err != nil {
			t.Fatal(err)
		}
		tss = append(tss, ts)
	}
	var got []string
	cursor := ""
	pages := 0
	for {
		h, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: emu.IMChannel("U1"), Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range h.Messages {
			got = append(got, m.Timestamp)
		}
		cursor = h.ResponseMetaData.NextCursor
		if h.HasMore != (cursor != "") {
			t.Fatalf("has_more=%v with cursor %q", h.HasMore, cursor)
		}
		if cursor == "" {
			break
		}
	}
	want := []string{tss[4], tss[3], tss[2], tss[1], tss[0]}
	if strings.Join(got, ",") != strings.Join(want, ",") || pages != 3 {
		t.Fatalf("history=%v in %d pages, want %v in 3", got, pages, want)
	}

	h, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: emu.IMChannel("U1"), Oldest: tss[2]})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Messages) != 2 {
		t.Fatalf("history after %s has %d messages, want 2", tss[2], len(h.Messages))
	}
}

// Ensure chat.update changes the stored message and unknown ones fail.
func TestChatUpdate(t *testing.T) {
	emu := newEmu(t)
	api := newAPI(emu)
	ch, ts, err := api.PostMessage("U1", slack.MsgOptionText("before", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessage(ch, ts, slack.MsgOptionText("after", false)); err != nil {
		t.Fatal(err)
	}
	if m := emu.DM("U1")[0]; m.Text != "after" || m.Edits != 1 {
		t.Fatalf("message=%+v, want text after, 1 edit", m)
	}
	_, _, _, err = api.UpdateMessage(ch, "1.000001", slack.MsgOptionText("x", false))
	if err == nil || err.Error() != "message_not_found" {
		t.Fatalf("err=%v, want message_not_found", err)
	}
}

// Ensure the errors a bot must handle when posting come back as Slack's.
func TestPostMessageErrors(t *testing.T) {
	emu := newEmu(t)
	emu.AddUser(slackemu.User{ID: "U9", Name: "gone", Deleted: true})
	emu.AddChannel("C1", "general", "U1")
	emu.AddChannel("C2", "old", "U1")
	emu.ArchiveChannel("C2")
	emu.AddChannel("C3", "private-ish", "U1")
	emu.RemoveBotFromChannel("C3")
	api := newAPI(emu)
	dupBlocks := slack.MsgOptionBlocks(
		slack.NewDividerBlock(), // no block id
		slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "a", false, false), nil, nil, slack.SectionBlockOptionBlockID("x")),
		slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "b", false, false), nil, nil, slack.SectionBlockOptionBlockID("x")),
	)
	tests := map[string]struct {
		channel string
		opts    []slack.MsgOption
		want    string
	}{
		"OKChannel":           {channel: "C1", opts: []slack.MsgOption{slack.MsgOptionText("hi", false)}},
		"OKChannelByName":     {channel: "#general", opts: []slack.MsgOption{slack.MsgOptionText("hi", false)}},
		"ErrUnknownChannel":   {channel: "C404", opts: []slack.MsgOption{slack.MsgOptionText("hi", false)}, want: "channel_not_found"},
		"ErrArchived":         {channel: "C2", opts: []slack.MsgOption{slack.MsgOptionText("hi", false)}, want: "is_archived"},
		"ErrNotInChannel":     {channel: "C3", opts: []slack.MsgOption{slack.MsgOptionText("hi", false)}, want: "not_in_channel"},
		"ErrDeactivated":      {channel: "U9", opts: []slack.MsgOption{slack.MsgOptionText("hi", false)}, want: "is_archived"},
		"ErrNoText":           {channel: "U1", want: "no_text"},
		"ErrDuplicateBlockID": {channel: "U1", opts: []slack.MsgOption{dupBlocks}, want: "invalid_blocks"},
		"ErrTooLong":          {channel: "U1", opts: []slack.MsgOption{slack.MsgOptionText(strings.Repeat("a", 40001), false)}, want: "msg_too_long"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := api.PostMessage(tc.channel, tc.opts...)
			if tc.want == "" && err != nil {
				t.Fatalf("err=%v, want nil", err)
			}
			if tc.want != "" && (err == nil || err.Error() != tc.want) {
				t.Fatalf("err=%v, want %s", err, tc.want)
			}
		})
	}
	var se slack.SlackErrorResponse
	_, _, err := api.PostMessage("U1", dupBlocks)
	if !errors.As(err, &se) || len(se.ResponseMetadata.Messages) == 0 || !strings.Contains(se.ResponseMetadata.Messages[0], "duplicate block_id") {
		t.Fatalf("err=%#v, want a message naming the duplicate block_id", err)
	}
}

// Ensure users.info and users.list answer as Slack does, paginated.
func TestUsers(t *testing.T) {
	clock := newClock() // 2 March: London is on GMT, New York on EST
	emu := newEmu(t, slackemu.WithClock(clock.Now))
	emu.AddUser(slackemu.User{ID: "U3", Name: "bot2", IsBot: true})
	api := newAPI(emu)

	u, err := api.GetUserInfo("U2")
	if err != nil {
		t.Fatal(err)
	}
	if u.TZ != "America/New_York" || u.TZOffset != -5*3600 || u.RealName != "Grace Hopper" || u.Deleted || u.IsBot {
		t.Fatalf("user=%+v, want Grace in New York at -18000", u)
	}
	if _, err := api.GetUserInfo("U404"); err == nil || err.Error() != "user_not_found" {
		t.Fatalf("err=%v, want user_not_found", err)
	}

	emu.SetUser(slackemu.User{ID: "U2", Name: "grace", TZ: "Asia/Tokyo", Deleted: true})
	if u, err = api.GetUserInfo("U2"); err != nil {
		t.Fatal(err)
	}
	if u.TZ != "Asia/Tokyo" || u.TZOffset != 9*3600 || !u.Deleted {
		t.Fatalf("user after SetUser=%+v, want deleted, in Tokyo", u)
	}

	p := api.GetUsersPaginated(slack.GetUsersOptionLimit(2))
	var ids []string
	pages := 0
	for {
		var err error
		if p, err = p.Next(t.Context()); p.Done(err) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, u := range p.Users {
			ids = append(ids, u.ID)
		}
	}
	if want := "U1,U2,U3," + slackemu.BotUserID; strings.Join(ids, ",") != want || pages != 2 {
		t.Fatalf("users.list=%v in %d pages, want %s in 2", ids, pages, want)
	}
}

// Ensure conversations.open gives each person one stable DM and refuses
// the deactivated.
func TestConversationsOpen(t *testing.T) {
	emu := newEmu(t)
	emu.AddUser(slackemu.User{ID: "U9", Name: "gone", Deleted: true})
	api := newAPI(emu)
	tests := map[string]struct {
		user, wantID, wantErr string
	}{
		"OK":          {user: "U1", wantID: emu.IMChannel("U1")},
		"OKAgain":     {user: "U1", wantID: emu.IMChannel("U1")},
		"ErrDisabled": {user: "U9", wantErr: "user_disabled"},
		"ErrUnknown":  {user: "U404", wantErr: "user_not_found"},
	}
	for _, name := range []string{"OK", "OKAgain", "ErrDisabled", "ErrUnknown"} {
		tc := tests[name]
		t.Run(name, func(t *testing.T) {
			ch, _, _, err := api.OpenConversation(&slack.OpenConversationParameters{Users: []string{tc.user}})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err=%v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || ch.ID != tc.wantID || !strings.HasPrefix(ch.ID, "D") {
				t.Fatalf("channel=%+v err=%v, want %s", ch, err, tc.wantID)
			}
		})
	}
}

// Ensure conversations.members paginates and conversations.info describes.
func TestConversationsMembersAndInfo(t *testing.T) {
	emu := newEmu(t)
	emu.AddChannel("C1", "leads", "U1", "U2")
	api := newAPI(emu)
	var all []string
	params := &slack.GetUsersInConversationParameters{ChannelID: "C1", Limit: 2}
	for {
		m, next, err := api.GetUsersInConversation(params)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m...)
		if next == "" {
			break
		}
		params.Cursor = next
	}
	if want := "U1,U2," + slackemu.BotUserID; strings.Join(all, ",") != want {
		t.Fatalf("members=%v, want %s", all, want)
	}
	info, err := api.GetConversationInfo(&slack.GetConversationInfoInput{ChannelID: "C1"})
	if err != nil || info.Name != "leads" || !info.IsMember || info.IsArchived {
		t.Fatalf("info=%+v err=%v, want leads, member", info, err)
	}
}

// Ensure a file uploaded the v2 way is stored with its content and channel.
func TestFiles(t *testing.T) {
	emu := newEmu(t)
	api := newAPI(emu)
	content := "date,reflection\n2026-03-02,asked a question\n"
	f, err := api.UploadFileContext(t.Context(), slack.UploadFileParameters{
		Filename: "export.csv", Content: content, FileSize: len(content), Channel: emu.IMChannel("U1"), Title: "Your export",
	})
	if err != nil {
		t.Fatal(err)
	}
	files := emu.Files("U1")
	if len(files) != 1 || files[0].ID != f.ID || string(files[0].Content) != content || files[0].Title != "Your export" || files[0].Name != "export.csv" {
		t.Fatalf("files=%+v, want export.csv with its content", files)
	}
	if dm := emu.DM("U1"); len(dm) != 1 || len(dm[0].Files) != 1 {
		t.Fatalf("DM=%+v, want one file share message", dm)
	}
}

// Ensure unknown methods answer unknown_method and every call is recorded.
func TestUnknownMethodAndCalls(t *testing.T) {
	emu := newEmu(t)
	api := newAPI(emu)
	_, err := api.GetTeamInfo()
	if err == nil || err.Error() != "unknown_method" {
		t.Fatalf("err=%v, want unknown_method", err)
	}
	if _, _, err := api.PostMessage("U1", slack.MsgOptionText("hi", false)); err != nil {
		t.Fatal(err)
	}
	calls := emu.Calls("chat.postMessage")
	if len(calls) != 1 || calls[0].Param("channel") != "U1" || calls[0].Param("text") != "hi" || calls[0].Status != 200 || calls[0].Token != botToken {
		t.Fatalf("calls=%+v, want one postMessage to U1", calls)
	}
	if n := len(emu.Calls("")); n != 2 {
		t.Fatalf("all calls=%d, want 2", n)
	}
}

// Ensure views.publish stores the home view per person, keeps its id, and
// checks the hash.
func TestViewsPublish(t *testing.T) {
	emu := newEmu(t)
	api := newAPI(emu)
	home := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "Your streak: 3", false, false), nil, nil),
	}}}
	first, err := api.PublishView("U1", home, "")
	if err != nil {
		t.Fatal(err)
	}
	second, err := api.PublishView("U1", home, first.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != second.ID {
		t.Fatalf("home view id changed from %s to %s", first.ID, second.ID)
	}
	if _, err := api.PublishView("U1", home, first.Hash); err == nil || err.Error() != "hash_conflict" {
		t.Fatalf("err=%v with a stale hash, want hash_conflict", err)
	}
	v, ok := emu.HomeView("U1")
	if !ok || !strings.Contains(v.VisibleText(), "Your streak: 3") {
		t.Fatalf("home=%+v ok=%v, want the streak", v, ok)
	}
	if _, ok := emu.HomeView("U2"); ok {
		t.Fatal("U2 has a home view, want none")
	}
	var raw map[string]any
	if err := json.Unmarshal(v.Raw, &raw); err != nil || raw["type"] != "home" {
		t.Fatalf("raw=%s, want the home view as sent", v.Raw)
	}
}

// Ensure thread replies stay out of history but come back from
// conversations.replies, and that permalinks point at the message.
func TestThreadsAndPermalink(t *testing.T) {
	emu := newEmu(t)
	emu.AddChannel("C1", "leads", "U1")
	api := newAPI(emu)
	_, parent, err := api.PostMessage("C1", slack.MsgOptionText("weekly digest", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("details", false), slack.MsgOptionTS(parent)); err != nil {
		t.Fatal(err)
	}
	h, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: "C1"})
	if err != nil || len(h.Messages) != 1 || h.Messages[0].Timestamp != parent {
		t.Fatalf("history=%+v err=%v, want the parent only", h, err)
	}
	replies, _, _, err := api.GetConversationReplies(&slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: parent})
	if err != nil || len(replies) != 2 || replies[1].Text != "details" {
		t.Fatalf("replies=%+v err=%v, want parent and reply", replies, err)
	}
	link, err := api.GetPermalink(&slack.PermalinkParameters{Channel: "C1", Ts: parent})
	if err != nil || !strings.Contains(link, "/archives/C1/p"+strings.ReplaceAll(parent, ".", "")) {
		t.Fatalf("permalink=%q err=%v, want it to name C1 and %s", link, err, parent)
	}
}
