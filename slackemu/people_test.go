package slackemu_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/slackemu"
)

func nudgeBlocks() slack.MsgOption {
	return slack.MsgOptionBlocks(
		slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "Ask your team one question about the plan.", false, true), nil, nil),
		slack.NewActionBlock("nudge-actions",
			slack.NewButtonBlockElement("done", "d-1", slack.NewTextBlockObject("plain_text", "Done", false, false)),
			slack.NewButtonBlockElement("skip", "d-1", slack.NewTextBlockObject("plain_text", "Skip", false, false)),
		),
	)
}

// Ensure a button click carries Slack's block_actions fields and that the
// bot's replace_original through the response_url updates the message; a
// response_url works 5 times.
func TestClickButtonResponseURL(t *testing.T) {
	emu := newEmu(t)
	clicks := make(chan slack.InteractionCallback, 1)
	api := startBot(t, emu, func(evt socketmode.Event, c *socketmode.Client) {
		ackAll(t, evt, c)
		if evt.Type != socketmode.EventTypeInteractive {
			return
		}
		cb := evt.Data.(slack.InteractionCallback)
		if _, _, err := c.PostMessage("", slack.MsgOptionReplaceOriginal(cb.ResponseURL), slack.MsgOptionText("Marked done", false)); err != nil {
			t.Errorf("replace_original: %v", err)
		}
		clicks <- cb
	})
	_, ts, err := api.PostMessage("U1", slack.MsgOptionText("Today's nudge", false), nudgeBlocks())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if _, err := emu.ClickButton(ctx, "U1", emu.DM("U1")[0], "nope", ""); err == nil {
		t.Fatal("clicking a missing button succeeded, want an error")
	}
	if _, err := emu.ClickButton(ctx, "U1", emu.DM("U1")[0], "done", ""); err != nil {
		t.Fatal(err)
	}
	cb := <-clicks
	act := cb.ActionCallback.BlockActions
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != "U1" || cb.Container.MessageTs != ts ||
		cb.Container.ChannelID != emu.IMChannel("U1") || cb.Channel.ID != emu.IMChannel("U1") || cb.Message.Timestamp != ts ||
		len(act) != 1 || act[0].ActionID != "done" || act[0].Value != "d-1" || act[0].BlockID != "nudge-actions" || cb.TriggerID == "" {
		t.Fatalf("callback=%+v actions=%+v, want done on %s", cb, act, ts)
	}
	if err := emu.WaitFor(ctx, func() bool { return emu.DM("U1")[0].Text == "Marked done" }); err != nil {
		t.Fatalf("message=%+v: %v", emu.DM("U1")[0], err)
	}
	if m := emu.DM("U1")[0]; m.TS != ts || len(m.Blocks) != 0 || m.Edits != 1 {
		t.Fatalf("message=%+v, want %s replaced by plain text", m, ts)
	}

	// One use so far; four more work, the sixth is refused.
	for i := range 5 {
		_, _, err := api.PostMessage("", slack.MsgOptionResponseURL(cb.ResponseURL, slack.ResponseTypeEphemeral), slack.MsgOptionText("note", false))
		var sc slack.StatusCodeError
		if i < 4 && err != nil {
			t.Fatalf("use %d: %v", i+2, err)
		}
		if i == 4 && (!errors.As(err, &sc) || sc.Code != 404) {
			t.Fatalf("sixth use err=%v, want HTTP 404", err)
		}
	}
	if n := len(emu.Ephemerals("U1")); n != 4 {
		t.Fatalf("ephemerals=%d, want 4", n)
	}
}

// Ensure views.open needs a trigger_id that is known, fresh and unused.
func TestViewsOpenTrigger(t *testing.T) {
	clock := newClock()
	emu := newEmu(t, slackemu.WithClock(clock.Now))
	triggers := make(chan string, 4)
	startBot(t, emu, func(evt socketmode.Event, c *socketmode.Client) {
		ackAll(t, evt, c)
		if evt.Type == socketmode.EventTypeSlashCommand {
			triggers <- evt.Data.(slack.SlashCommand).TriggerID
		}
	})
	api := newAPI(emu)
	modal := reflectModal()
	ctx := testCtx(t)
	newTrigger := func() string {
		if _, err := emu.SlashCommand(ctx, "U1", "", "/reflect", ""); err != nil {
			t.Fatal(err)
		}
		return <-triggers
	}
	used := newTrigger()
	if _, err := api.OpenView(used, modal); err != nil {
		t.Fatalf("fresh trigger: %v", err)
	}
	tests := map[string]func() string{
		"ErrReused":  func() string { return used },
		"ErrUnknown": func() string { return "1.2.nope" },
		"ErrExpired": func() string {
			tr := newTrigger()
			clock.Add(3 * time.Second)
			return tr
		},
	}
	for name, trigger := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := api.OpenView(trigger(), modal)
			if err == nil || err.Error() != "expired_trigger_id" {
				t.Fatalf("err=%v, want expired_trigger_id", err)
			}
		})
	}
	if n := len(emu.OpenViews("U1")); n != 1 {
		t.Fatalf("open views=%d, want the first one only", n)
	}
}

func reflectModal() slack.ModalViewRequest {
	input := slack.NewInputBlock("reflection", slack.NewTextBlockObject("plain_text", "What happened?", false, false), nil,
		slack.NewPlainTextInputBlockElement(nil, "text"))
	mood := slack.NewInputBlock("mood", slack.NewTextBlockObject("plain_text", "How did it go?", false, false), nil,
		slack.NewOptionsSelectBlockElement("static_select", nil, "pick",
			slack.NewOptionBlockObject("good", slack.NewTextBlockObject("plain_text", "Good", false, false), nil),
			slack.NewOptionBlockObject("meh", slack.NewTextBlockObject("plain_text", "Meh", false, false), nil)))
	mood.Optional = true
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: "reflect", PrivateMetadata: "d-1",
		Title:  slack.NewTextBlockObject("plain_text", "Reflect", false, false),
		Submit: slack.NewTextBlockObject("plain_text", "Save", false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{input, mood}},
	}
}

// Ensure a modal's submission carries state values, refuses an empty
// required input, and that each response_action changes the modal as Slack would.
func TestSubmitView(t *testing.T) {
	emu := newEmu(t)
	subs := make(chan slack.InteractionCallback, 4)
	startBot(t, emu, func(evt socketmode.Event, c *socketmode.Client) {
		switch evt.Type {
		case socketmode.EventTypeSlashCommand:
			ack(t, c, evt.Request)
			if _, err := c.OpenView(evt.Data.(slack.SlashCommand).TriggerID, reflectModal()); err != nil {
				t.Errorf("views.open: %v", err)
			}
		case socketmode.EventTypeInteractive:
			cb := evt.Data.(slack.InteractionCallback)
			subs <- cb
			switch cb.View.State.Values["reflection"]["text"].Value {
			case "short":
				ack(t, c, evt.Request, slack.NewErrorsViewSubmissionResponse(map[string]string{"reflection": "Say a little more"}))
			case "more":
				next := reflectModal()
				next.Title = slack.NewTextBlockObject("plain_text", "Thanks", false, false)
				ack(t, c, evt.Request, slack.NewUpdateViewSubmissionResponse(&next))
			default:
				ack(t, c, evt.Request)
			}
		default:
			ackAll(t, evt, c)
		}
	})
	ctx := testCtx(t)
	if _, err := emu.SlashCommand(ctx, "U1", "", "/reflect", ""); err != nil {
		t.Fatal(err)
	}
	if err := emu.WaitFor(ctx, func() bool { return len(emu.OpenViews("U1")) == 1 }); err != nil {
		t.Fatal(err)
	}
	id := emu.OpenViews("U1")[0].ID

	if _, err := emu.SubmitView(ctx, "U1", id, map[string]map[string]string{"mood": {"pick": "good"}}); err == nil ||
		!strings.Contains(err.Error(), "required input reflection/text is empty") {
		t.Fatalf("err=%v, want the required input refused", err)
	}

	if _, err := emu.SubmitView(ctx, "U1", id, map[string]map[string]string{"reflection": {"text": "short"}, "mood": {"pick": "meh"}}); err != nil {
		t.Fatal(err)
	}
	cb := <-subs
	if cb.Type != slack.InteractionTypeViewSubmission || cb.View.CallbackID != "reflect" || cb.View.PrivateMetadata != "d-1" ||
		cb.View.State.Values["mood"]["pick"].SelectedOption.Value != "meh" {
		t.Fatalf("submission=%+v state=%+v, want reflect d-1 with mood meh", cb.View, cb.View.State)
	}
	if v, _ := emu.View(id); v.Closed || v.Errors["reflection"] != "Say a little more" {
		t.Fatalf("view=%+v, want open with the error shown", v)
	}

	if _, err := emu.SubmitView(ctx, "U1", id, map[string]map[string]string{"reflection": {"text": "more"}}); err != nil {
		t.Fatal(err)
	}
	<-subs
	if v := emu.OpenViews("U1"); len(v) != 1 || v[0].ID != id || v[0].Title != "Thanks" || v[0].Errors != nil {
		t.Fatalf("views=%+v, want %s updated to Thanks", v, id)
	}

	if _, err := emu.SubmitView(ctx, "U1", id, map[string]map[string]string{"reflection": {"text": "Asked about the plan; two ideas"}}); err != nil {
		t.Fatal(err)
	}
	<-subs
	if v, _ := emu.View(id); !v.Closed || len(emu.OpenViews("U1")) != 0 {
		t.Fatalf("view=%+v, want closed by the plain ack", v)
	}
}

// Ensure opening the home tab sends app_home_opened and a home button
// click reaches the bot with the view.
func TestAppHome(t *testing.T) {
	emu := newEmu(t)
	clicks := make(chan slack.InteractionCallback, 1)
	startBot(t, emu, func(evt socketmode.Event, c *socketmode.Client) {
		ackAll(t, evt, c)
		switch evt.Type {
		case socketmode.EventTypeEventsAPI:
			ev := evt.Data.(slackevents.EventsAPIEvent)
			if home, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent); ok {
				if _, err := c.PublishView(home.User, slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{
					slack.NewActionBlock("home", slack.NewButtonBlockElement("pause", "7d", slack.NewTextBlockObject("plain_text", "Pause a week", false, false))),
				}}}, ""); err != nil {
					t.Errorf("views.publish: %v", err)
				}
			}
		case socketmode.EventTypeInteractive:
			clicks <- evt.Data.(slack.InteractionCallback)
		}
	})
	ctx := testCtx(t)
	if _, err := emu.OpenAppHome(ctx, "U1"); err != nil {
		t.Fatal(err)
	}
	if err := emu.WaitFor(ctx, func() bool { _, ok := emu.HomeView("U1"); return ok }); err != nil {
		t.Fatal(err)
	}
	home, _ := emu.HomeView("U1")
	if _, err := emu.ClickViewButton(ctx, "U1", home.ID, "pause", ""); err != nil {
		t.Fatal(err)
	}
	cb := <-clicks
	if cb.Container.Type != "view" || cb.Container.ViewID != home.ID || cb.View.ID != home.ID ||
		cb.ActionCallback.BlockActions[0].Value != "7d" || cb.View.Type != slack.VTHomeTab {
		t.Fatalf("callback=%+v, want pause in home view %s", cb, home.ID)
	}
}

// Ensure SendEvent delivers a user_change event slack-go can parse.
func TestSendEventUserChange(t *testing.T) {
	emu := newEmu(t)
	changes := make(chan *slackevents.UserChangeEvent, 1)
	startBot(t, emu, func(evt socketmode.Event, c *socketmode.Client) {
		ackAll(t, evt, c)
		if ev, ok := evt.Data.(slackevents.EventsAPIEvent); ok {
			if uc, ok := ev.InnerEvent.Data.(*slackevents.UserChangeEvent); ok {
				changes <- uc
			}
		}
	})
	emu.SetUser(slackemu.User{ID: "U1", Name: "ada", TZ: "Asia/Tokyo"})
	if _, err := emu.SendEvent(testCtx(t), map[string]any{"type": "user_change", "user": emu.UserObject("U1")}); err != nil {
		t.Fatal(err)
	}
	if uc := <-changes; uc.User.ID != "U1" || uc.User.TZ != "Asia/Tokyo" {
		t.Fatalf("user_change=%+v, want U1 in Tokyo", uc.User)
	}
	if _, err := emu.SendEvent(testCtx(t), map[string]any{"user": "U1"}); err == nil {
		t.Fatal("an event without a type was sent, want an error")
	}
}

// Ensure OnEvent reports what people see and do, in order, readably.
func TestOnEventTranscript(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	var kinds []slackemu.EventKind
	emu := newEmu(t, slackemu.OnEvent(func(e slackemu.Event) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, e.String())
		kinds = append(kinds, e.Kind)
	}))
	startBot(t, emu, func(evt socketmode.Event, c *socketmode.Client) {
		if evt.Type == socketmode.EventTypeSlashCommand {
			ack(t, c, evt.Request, map[string]any{"text": "Paused until Monday"})
			return
		}
		ackAll(t, evt, c)
	})
	ctx := testCtx(t)
	if _, _, err := newAPI(emu).PostMessage("U1", slack.MsgOptionText("Today's nudge", false), nudgeBlocks()); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.SlashCommand(ctx, "U1", "", "/nudge", "pause"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []slackemu.EventKind{slackemu.EventDM, slackemu.EventPersonAction, slackemu.EventEphemeral}
	if !equalKinds(kinds, want) {
		t.Fatalf("kinds=%v, want %v", kinds, want)
	}
	for i, sub := range []string{"Ask your team one question", "U1: /nudge pause", "Paused until Monday"} {
		if !strings.Contains(lines[i], sub) {
			t.Fatalf("line %d=%q, want it to mention %q", i, lines[i], sub)
		}
	}
}

func equalKinds(a, b []slackemu.EventKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
