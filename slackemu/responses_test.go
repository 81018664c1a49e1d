package slackemu_test

import (
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/slackemu"
)

// Ensure each kind of response_url post shows up where Slack would put it.
func TestResponseURL(t *testing.T) {
	tests := map[string]struct {
		viaSlash bool // the response_url comes from a slash command, not a click
		opts     func(url string) []slack.MsgOption
		check    func(t *testing.T, emu *slackemu.Server)
	}{
		"EphemeralByDefault": {
			opts: func(u string) []slack.MsgOption {
				return []slack.MsgOption{slack.MsgOptionResponseURL(u, slack.ResponseTypeEphemeral), slack.MsgOptionText("only you", false)}
			},
			check: func(t *testing.T, emu *slackemu.Server) {
				if e := emu.Ephemerals("U1"); len(e) != 1 || e[0].Text != "only you" || e[0].Source != "response_url" {
					t.Fatalf("ephemerals=%+v, want one", e)
				}
				if n := len(emu.DM("U1")); n != 1 {
					t.Fatalf("DM has %d messages, want the original only", n)
				}
			},
		},
		"InChannel": {
			opts: func(u string) []slack.MsgOption {
				return []slack.MsgOption{slack.MsgOptionResponseURL(u, slack.ResponseTypeInChannel), slack.MsgOptionText("for all", false)}
			},
			check: func(t *testing.T, emu *slackemu.Server) {
				if dm := emu.DM("U1"); len(dm) != 2 || dm[1].Text != "for all" {
					t.Fatalf("DM=%+v, want the reply posted", dm)
				}
			},
		},
		"ReplaceOriginal": {
			opts: func(u string) []slack.MsgOption {
				return []slack.MsgOption{slack.MsgOptionReplaceOriginal(u), slack.MsgOptionText("Done ✓", false)}
			},
			check: func(t *testing.T, emu *slackemu.Server) {
				if dm := emu.DM("U1"); len(dm) != 1 || dm[0].Text != "Done ✓" || dm[0].Buttons() != nil {
					t.Fatalf("DM=%+v, want the nudge replaced", dm)
				}
			},
		},
		"DeleteOriginal": {
			opts: func(u string) []slack.MsgOption {
				return []slack.MsgOption{slack.MsgOptionDeleteOriginal(u)}
			},
			check: func(t *testing.T, emu *slackemu.Server) {
				if dm := emu.DM("U1"); len(dm) != 0 {
					t.Fatalf("DM=%+v, want the nudge deleted", dm)
				}
			},
		},
		"SlashReplaceReplacesFirstAnswer": {
			viaSlash: true,
			opts: func(u string) []slack.MsgOption {
				return []slack.MsgOption{slack.MsgOptionReplaceOriginal(u), slack.MsgOptionText("Here are your stats", false)}
			},
			check: func(t *testing.T, emu *slackemu.Server) {
				if e := emu.Ephemerals("U1"); len(e) != 1 || e[0].Text != "Here are your stats" || e[0].Edits != 1 {
					t.Fatalf("ephemerals=%+v, want the ack's Working… replaced", e)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			emu := newEmu(t)
			urls := make(chan string, 1)
			api := startBot(t, emu, func(evt socketmode.Event, c *socketmode.Client) {
				switch evt.Type {
				case socketmode.EventTypeSlashCommand:
					ack(t, c, evt.Request, map[string]any{"text": "Working…"})
					urls <- evt.Data.(slack.SlashCommand).ResponseURL
				case socketmode.EventTypeInteractive:
					ack(t, c, evt.Request)
					urls <- evt.Data.(slack.InteractionCallback).ResponseURL
				default:
					ackAll(t, evt, c)
				}
			})
			if _, _, err := api.PostMessage("U1", slack.MsgOptionText("nudge", false), nudgeBlocks()); err != nil {
				t.Fatal(err)
			}
			ctx := testCtx(t)
			var err error
			if tc.viaSlash {
				_, err = emu.SlashCommand(ctx, "U1", "", "/nudge", "stats")
			} else {
				_, err = emu.ClickButton(ctx, "U1", emu.DM("U1")[0], "skip", "")
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := api.PostMessageContext(ctx, "", tc.opts(<-urls)...); err != nil {
				t.Fatal(err)
			}
			tc.check(t, emu)
		})
	}
}

// Ensure views.push stacks modals (3 at most) and views.update checks the hash.
func TestViewsPushAndUpdate(t *testing.T) {
	emu := newEmu(t)
	triggers := make(chan string, 8)
	api := startBot(t, emu, func(evt socketmode.Event, c *socketmode.Client) {
		ackAll(t, evt, c)
		if evt.Type == socketmode.EventTypeSlashCommand {
			triggers <- evt.Data.(slack.SlashCommand).TriggerID
		}
	})
	ctx := testCtx(t)
	trigger := func() string {
		if _, err := emu.SlashCommand(ctx, "U1", "", "/reflect", ""); err != nil {
			t.Fatal(err)
		}
		return <-triggers
	}
	root, err := api.OpenView(trigger(), reflectModal())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := api.PushView(trigger(), reflectModal())
		if i < 2 && err != nil {
			t.Fatalf("push %d: %v", i+1, err)
		}
		if i == 2 && (err == nil || err.Error() != "push_limit_reached") {
			t.Fatalf("third push err=%v, want push_limit_reached", err)
		}
	}
	stack := emu.OpenViews("U1")
	if len(stack) != 3 || stack[0].ID != root.ID || stack[2].RootViewID != root.ID || stack[2].PreviousViewID != stack[1].ID {
		t.Fatalf("stack=%+v, want 3 views rooted at %s", stack, root.ID)
	}

	next := reflectModal()
	next.Title = slack.NewTextBlockObject("plain_text", "Edited", false, false)
	updated, err := api.UpdateView(next, "", root.Hash, root.ID)
	if err != nil {
		t.Fatal(err)
	}
	if updated.ID != root.ID || updated.Hash == root.Hash {
		t.Fatalf("updated=%s/%s, want %s with a new hash", updated.ID, updated.Hash, root.ID)
	}
	if _, err := api.UpdateView(next, "", root.Hash, root.ID); err == nil || err.Error() != "hash_conflict" {
		t.Fatalf("err=%v with a stale hash, want hash_conflict", err)
	}
	if v, _ := emu.View(root.ID); v.Title != "Edited" {
		t.Fatalf("title=%q, want Edited", v.Title)
	}
	long := reflectModal()
	long.Title = slack.NewTextBlockObject("plain_text", "A title that is far too long for Slack", false, false)
	if _, err := api.UpdateView(long, "", "", root.ID); err == nil || err.Error() != "invalid_arguments" {
		t.Fatalf("err=%v for a 38-character title, want invalid_arguments", err)
	}
}
