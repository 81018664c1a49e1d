package bot

import (
	"context"
	"errors"
	"fmt"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// dmHelp is the answer to a message typed in the DM near no nudge.
const dmHelp = "Typing here saves a private reflection when you answer a nudge: reply in its thread, or here within a day of it. " +
	"For anything else, `/reflect your thoughts` saves one any time, and `/nudge help` lists what I can do."

// onDMMessage handles what a person typed in their DM with the bot:
// words only, never the bot's own messages (its nudges are updated in
// place, which Slack reports as edits too) nor other apps' or Slack's.
func (b *Bot) onDMMessage(ctx context.Context, ev *slackevents.MessageEvent) {
	if ev.ChannelType != "im" {
		return
	}
	switch ev.SubType {
	case "", "thread_broadcast":
		if ev.BotID != "" || ev.User == "" || ev.User == b.slack.selfID(ctx) {
			return
		}
		b.dmReply(ctx, ev)
	case "message_changed":
		if m := ev.Message; m != nil && m.BotID == "" && m.User != "" && m.User != b.slack.selfID(ctx) {
			if err := b.core.EditInDM(ctx, app.Person(m.User), m.Timestamp, Sanitize(m.Text)); err != nil {
				b.log.Error("updating a reflection from an edited message", "user_id", m.User, "error", err)
			}
		}
	case "message_deleted":
		if m := ev.PreviousMessage; m != nil && m.BotID == "" && m.User != "" {
			if err := b.core.DeleteInDM(ctx, app.Person(m.User), ev.DeletedTimeStamp); err != nil {
				b.log.Error("deleting a reflection with its message", "user_id", m.User, "error", err)
			}
		}
	default:
		b.log.Debug("ignored DM message", "subtype", ev.SubType)
	}
}

func (b *Bot) dmReply(ctx context.Context, ev *slackevents.MessageEvent) {
	who := app.Person(ev.User)
	text := Sanitize(ev.Text)
	if text == "" {
		return // a file or a sticker: not words to keep
	}
	if p := nudges.ReflectionTextProblem(text); p != "" {
		b.slack.tell(ctx, who.UserID, p+" Nothing was saved.")
		return
	}
	res, err := b.core.ReplyInDM(ctx, who, app.DMMessage{TS: ev.TimeStamp, ThreadTS: ev.ThreadTimeStamp, Text: text}, b.now())
	switch {
	case errors.Is(err, nudges.ErrTooManyReflections):
		b.slack.tell(ctx, who.UserID, b.failed(who, "saving a reply", err).Text)
		return
	case err != nil:
		b.log.Error("saving a reply to a nudge", "user_id", who.UserID, "error", err)
		b.slack.tell(ctx, who.UserID, "Sorry, I couldn't save that as a reflection just now. Nothing was stored; your message is still here, so try `/reflect` with it in a minute.")
		return
	case res.Saved == nil:
		b.slack.tell(ctx, who.UserID, dmHelp)
		return
	}
	thread := ev.ThreadTimeStamp
	if thread == "" {
		thread = ev.TimeStamp
	}
	note := fmt.Sprintf("Saved as private reflection #%d on this nudge. Edit or delete your message to change it; `/reflect list` shows them all.", res.Saved.Reflection.Seq)
	if err := b.slack.threadNote(ctx, ev.Channel, thread, note); err != nil {
		b.log.Warn("confirming a reply in its thread", "user_id", who.UserID, "error", err)
	}
}

// threadNote posts a short note in a thread of the DM.
func (s *Slack) threadNote(ctx context.Context, channel, threadTS, text string) error {
	return s.web.doIn(ctx, "chat.postMessage", channel, callPost, func(ctx context.Context) error {
		_, _, err := s.api.PostMessageContext(ctx, channel, slack.MsgOptionText(text, false), slack.MsgOptionTS(threadTS))
		return err
	})
}

// tellIn shows a person a note only they see, in a conversation of
// theirs the bot already knows (their DM).
func (s *Slack) tellIn(ctx context.Context, channel, userID, text string) {
	err := s.web.do(ctx, "chat.postEphemeral", callPost, func(ctx context.Context) error {
		_, err := s.api.PostEphemeralContext(ctx, channel, userID, slack.MsgOptionText(text, false))
		return err
	})
	if err != nil {
		s.log.Warn("could not answer a person", "user_id", userID, "error", err)
	}
}
