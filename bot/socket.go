package bot

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/app"
)

// handleEvent runs on the Socket Mode loop. It acknowledges every
// envelope before doing anything slow: Slack re-sends what is not acked
// within three seconds, and a slash command's answer may ride in the ack.
// Work that touches storage or the Web API runs afterwards in goWork.
func (b *Bot) handleEvent(ctx context.Context, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		b.log.Debug("connecting to slack")
	case socketmode.EventTypeConnected:
		if c, ok := evt.Data.(*socketmode.ConnectedEvent); ok && c.ConnectionCount > 0 {
			b.metrics.Reconnected()
			b.log.Info("socket mode reconnected", "connection_count", c.ConnectionCount+1)
		}
	case socketmode.EventTypeHello:
		b.setConnected(true)
		b.log.Info("connected to slack")
		if b.opts.ReadyFunc != nil {
			b.ready.Do(b.opts.ReadyFunc)
		}
	case socketmode.EventTypeConnectionError:
		b.setConnected(false)
		if ce, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			b.log.Warn("could not connect to slack; retrying with backoff", "attempt", ce.Attempt, "backoff", ce.Backoff, "error", scrubError(ce.ErrorObj))
		}
	case socketmode.EventTypeIncomingError:
		// A disconnect frame or a dropped socket: slack-go reconnects.
		b.setConnected(false)
		if ie, ok := evt.Data.(*slack.IncomingEventError); ok {
			b.log.Info("socket mode connection closed; reconnecting", "reason", scrubError(ie.ErrorObj))
		}
	case socketmode.EventTypeInvalidAuth:
		b.log.Error("slack rejected the app token; check SLACK_APP_TOKEN")
	case socketmode.EventTypeErrorWriteFailed:
		b.log.Warn("writing to the socket failed; slack will re-send anything unacknowledged")
	case socketmode.EventTypeErrorBadMessage:
		b.onBadMessage(evt)
	case socketmode.EventTypeSlashCommand:
		b.onSlashCommand(ctx, evt)
	case socketmode.EventTypeInteractive:
		b.onInteractive(ctx, evt)
	case socketmode.EventTypeEventsAPI:
		b.onEventsAPI(ctx, evt)
	default:
		if evt.Request != nil && evt.Request.EnvelopeID != "" {
			b.ack(evt, nil)
		}
		b.log.Debug("ignored socket mode event", "type", string(evt.Type))
	}
}

// eventPerson is who sent an event that a person caused (typed, edited
// or deleted a DM, opened App Home); "" for the bot's own messages and
// Slack's own events, which no allowance pays for. typed is true for a
// new message, whose words are lost if it is not handled.
func eventPerson(data any) (who string, typed bool) {
	switch e := data.(type) {
	case *slackevents.MessageEvent:
		if e.ChannelType != "im" {
			return "", false
		}
		switch e.SubType {
		case "", "thread_broadcast":
			if e.BotID == "" {
				return e.User, true
			}
		case "message_changed":
			if e.Message != nil && e.Message.BotID == "" {
				return e.Message.User, false
			}
		case "message_deleted":
			if e.PreviousMessage != nil && e.PreviousMessage.BotID == "" {
				return e.PreviousMessage.User, false
			}
		}
	case *slackevents.AppHomeOpenedEvent:
		return e.User, false
	}
	return "", false
}

// ack acknowledges the envelope and records how long it took from the
// moment the envelope came off the socket.
func (b *Bot) ack(evt socketmode.Event, payload any) {
	if evt.Request == nil {
		return
	}
	start := time.Now()
	var err error
	if payload != nil {
		err = b.smc.Ack(*evt.Request, payload)
	} else {
		err = b.smc.Ack(*evt.Request)
	}
	if err != nil {
		b.log.Warn("ack failed; slack will re-send", "envelope_id", evt.Request.EnvelopeID, "error", scrubError(err))
		return
	}
	b.metrics.EnvelopeAcked(evt.Request.Type, time.Since(start))
}

// onBadMessage acks an envelope slack-go could not parse (an unknown
// event type, a malformed payload). Leaving it unacked would only make
// Slack re-send something we will never understand.
func (b *Bot) onBadMessage(evt socketmode.Event) {
	bad, ok := evt.Data.(*socketmode.ErrorBadMessage)
	if !ok {
		return
	}
	var env struct {
		EnvelopeID string `json:"envelope_id"`
		Type       string `json:"type"`
	}
	if err := json.Unmarshal(bad.Message, &env); err != nil || env.EnvelopeID == "" {
		b.log.Warn("unreadable socket mode frame ignored", "error", scrubError(bad.Cause))
		return
	}
	if err := b.smc.Ack(socketmode.Request{EnvelopeID: env.EnvelopeID}); err != nil {
		b.log.Warn("ack of malformed envelope failed", "envelope_id", env.EnvelopeID, "error", scrubError(err))
	}
	b.log.Warn("malformed or unsupported envelope acked and ignored", "envelope_id", env.EnvelopeID, "envelope_type", env.Type, "error", scrubError(bad.Cause))
}

// keyed prefixes an id for dedupeKeys; an empty id is no key at all, or
// every envelope without one would share it.
func keyed(prefix, id string) string {
	if id == "" {
		return ""
	}
	return prefix + id
}

// dedupeKeys names an envelope for deduplication: its id, and the ids
// that stay the same when Slack re-sends under a new envelope (made with
// keyed). An empty envelope id is left out like the others.
func dedupeKeys(envelopeID string, extra ...string) []string {
	var keys []string
	if k := keyed("env:", envelopeID); k != "" {
		keys = append(keys, k)
	}
	for _, k := range extra {
		if k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// firstTime is the synchronous, in-memory check made before the ack.
func (b *Bot) firstTime(keys []string) bool {
	first := true
	for _, k := range keys {
		if !b.seen.add(k) {
			first = false
		}
	}
	return first
}

// firstTimeDurable is the check that survives a restart. It runs after
// the ack, in the worker, so the ack never waits on the database.
func (b *Bot) firstTimeDurable(keys []string) bool {
	first := true
	now := b.now()
	for _, k := range keys {
		ok, err := b.handled.MarkSeen(k, now)
		if err != nil {
			// Better to risk handling twice than to drop a person's action.
			// A refusing disk is logged by storage, at a bounded rate.
			level := slog.LevelWarn
			if app.NotSaved(err) {
				level = slog.LevelDebug
			}
			b.log.Log(context.Background(), level, "could not record handled envelope", "key", k, "error", err)
			continue
		}
		if !ok {
			first = false
		}
	}
	return first
}

func (b *Bot) onEventsAPI(ctx context.Context, evt socketmode.Event) {
	b.ack(evt, nil)
	ev, ok := evt.Data.(slackevents.EventsAPIEvent)
	if !ok {
		return
	}
	var eventID string
	if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok {
		eventID = keyed("evt:", cb.EventID)
	}
	keys := dedupeKeys(evt.Request.EnvelopeID, eventID)
	if !b.firstTime(keys) {
		b.log.Info("re-sent event ignored", "envelope_id", evt.Request.EnvelopeID, "retry_attempt", evt.Request.RetryAttempt)
		return
	}
	// A person's typed DMs and Home opens draw on their allowance like
	// their commands and clicks, before any work slot is taken.
	if who, typed := eventPerson(ev.InnerEvent.Data); who != "" {
		if ok, warn := b.budget.admit(who); !ok {
			if warn && typed {
				// In the DM the message came from: no conversations.open
				// to wait for behind the work they already started.
				dm := ev.InnerEvent.Data.(*slackevents.MessageEvent).Channel
				b.fromBusyPool(func(ctx context.Context) { b.slack.tellIn(ctx, dm, who, slowDownDMText) })
			}
			b.log.Info("event past the person's allowance; not handled", "user_id", who)
			return
		}
	}
	b.goWork(func() { // an event has nobody to tell when the bot is busy
		if !b.firstTimeDurable(keys) {
			b.log.Info("event handled before a restart; ignored", "envelope_id", evt.Request.EnvelopeID)
			return
		}
		switch inner := ev.InnerEvent.Data.(type) {
		case *slackevents.MessageEvent:
			b.onDMMessage(ctx, inner)
		case *slackevents.AppHomeOpenedEvent:
			b.onAppHomeOpened(ctx, inner)
		case *slackevents.UserChangeEvent:
			p := app.Profile{TZ: inner.User.TZ, Deleted: inner.User.Deleted}
			if err := b.core.ProfileChanged(inner.User.ID, p, b.now()); err != nil {
				b.log.Error("updating profile", "user_id", inner.User.ID, "error", err)
			}
		default:
			b.log.Debug("ignored event", "event_type", ev.InnerEvent.Type)
		}
	})
}
