package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/nudges"
)

// subcommand describes one /nudge verb for help, usage and routing.
type subcommand struct {
	usage   string // e.g. "/nudge time HH:MM"
	example string // e.g. "/nudge time 08:30"
	summary string
}

var nudgeCommands = map[string]subcommand{
	"start":  {"/nudge start", "/nudge start", "subscribe to a daily nudge, at your own time"},
	"stop":   {"/nudge stop", "/nudge stop", "unsubscribe (your history stays yours)"},
	"now":    {"/nudge now", "/nudge now", "get a nudge right away"},
	"time":   {"/nudge time HH:MM", "/nudge time 08:30", "change the time of day, in your time zone"},
	"days":   {"/nudge days DAYS", "/nudge days mon-fri  or  /nudge days mon,wed,fri", "change the days"},
	"pause":  {"/nudge pause 3d | 1w | until YYYY-MM-DD", "/nudge pause until 2027-01-04", "pause for a while"},
	"resume": {"/nudge resume", "/nudge resume", "end a pause now"},
	"focus":  {"/nudge focus lead | manage | both | THEME", "/nudge focus agenda-setter", "lean your nudges one way"},
	"tz":     {"/nudge tz Area/City | auto", "/nudge tz Europe/Berlin", "set your time zone (auto follows your Slack profile)"},
	"status": {"/nudge status", "/nudge status", "see what is set and what comes next"},
	"forget": {"/nudge forget", "/nudge forget", "delete everything nudgebot keeps about you (asks first)"},
	"digest": {"/nudge digest [#channel]", "/nudge digest #team", "preview the next team digest, only to you"},
	"help":   {"/nudge help", "/nudge help", "show this help"},
}

// helpOrder is the order help lists the verbs in.
var helpOrder = []string{"start", "stop", "now", "time", "days", "pause", "resume", "focus", "tz", "status", "digest", "forget", "help"}

func helpText() string {
	var b strings.Builder
	b.WriteString("*nudgebot* sends you one short, concrete leadership nudge a day, in your own time zone, with buttons to mark it done, snooze, skip or reflect.\n")
	for _, v := range helpOrder {
		c := nudgeCommands[v]
		fmt.Fprintf(&b, "• `%s`: %s\n", c.example, c.summary)
	}
	b.WriteString("• `/reflect your thoughts`: save a private reflection (`/reflect help` for more)")
	return b.String()
}

func usageText(verb, problem string) string {
	c := nudgeCommands[verb]
	return lines(problem, fmt.Sprintf("Usage: `%s`", c.usage), fmt.Sprintf("Example: `%s`", c.example))
}

// onSlashCommand acks at once. Answers that need nothing but the text
// (help, usage errors) ride in the ack; the rest is done after it and
// answered through the response_url.
func (b *Bot) onSlashCommand(ctx context.Context, evt socketmode.Event) {
	cmd, ok := evt.Data.(slack.SlashCommand)
	if !ok {
		b.ack(evt, nil)
		return
	}
	keys := dedupeKeys(evt.Request.EnvelopeID, idKey("trg", cmd.TriggerID))
	first := b.firstTime(keys)
	answer, work := b.routeSlash(cmd)
	b.ack(evt, answer)
	if work == nil {
		return
	}
	if !first {
		b.log.Info("re-sent command ignored", "envelope_id", evt.Request.EnvelopeID, "retry_attempt", evt.Request.RetryAttempt)
		return
	}
	b.goWork(func() {
		if !b.firstTimeDurable(keys) {
			b.log.Info("command handled before a restart; ignored", "envelope_id", evt.Request.EnvelopeID)
			return
		}
		msg := work(ctx)
		if msg != nil {
			b.respond(ctx, cmd.ResponseURL, msg)
		}
	})
}

// workFunc does a command's slow part and returns what the person sees.
type workFunc func(ctx context.Context) *ephemeral

func (b *Bot) routeSlash(cmd slack.SlashCommand) (*ephemeral, workFunc) {
	c := ParseCommand(cmd.Text)
	if c.Long {
		return reply(fmt.Sprintf("That is longer than %d characters, so I did not read it. Try `%s help`.", maxCommandText, Escape(Sanitize(cmd.Command)))), nil
	}
	switch cmd.Command {
	case "/nudge":
		if c.Verb == "digest" {
			arg := strings.Join(c.Args, " ")
			user, here := cmd.UserID, cmd.ChannelID
			return nil, func(ctx context.Context) *ephemeral { return b.digestPreview(ctx, user, here, arg) }
		}
		if c.Verb == "admin" {
			return b.routeAdmin(cmd.UserID, c)
		}
		return b.routeNudge(cmd.UserID, c)
	case "/reflect":
		return b.routeReflect(cmd, c)
	}
	return reply(fmt.Sprintf("I don't know the command %s. Try `/nudge help`.", Escape(Sanitize(cmd.Command)))), nil
}

func (b *Bot) routeNudge(userID string, c Command) (*ephemeral, workFunc) {
	switch c.Verb {
	case "", "help", "?", "-h", "--help":
		return reply(helpText()), nil
	case "start":
		return nil, func(ctx context.Context) *ephemeral { return b.cmdStart(ctx, userID) }
	case "stop":
		return nil, func(ctx context.Context) *ephemeral { return b.cmdStop(userID) }
	case "now":
		return nil, func(ctx context.Context) *ephemeral { return b.cmdNow(ctx, userID) }
	case "status":
		return nil, func(ctx context.Context) *ephemeral { return b.cmdStatus(userID) }
	case "forget":
		return forgetPrompt(userID), nil
	case "resume":
		return nil, func(ctx context.Context) *ephemeral { return b.cmdResume(userID) }
	case "time":
		clock, err := nudges.ParseClock(strings.Join(c.Args, " "))
		if err != nil || len(c.Args) == 0 {
			return reply(usageText("time", problemText(err, "Tell me the time of day."))), nil
		}
		return nil, func(ctx context.Context) *ephemeral { return b.cmdTime(userID, clock) }
	case "days":
		days, err := nudges.ParseDays(strings.Join(c.Args, " "))
		if err != nil || len(c.Args) == 0 {
			return reply(usageText("days", problemText(err, "Tell me which days."))), nil
		}
		return nil, func(ctx context.Context) *ephemeral { return b.cmdDays(userID, days) }
	case "pause":
		arg := strings.Join(c.Args, " ")
		if arg == "" {
			return reply(usageText("pause", "Tell me for how long.")), nil
		}
		// The pause end depends on the person's zone, which needs the
		// store; the syntax is checked here so a typo is answered at once.
		if _, err := nudges.ParsePause(arg, b.now(), time.UTC); err != nil {
			return reply(usageText("pause", problemText(err, ""))), nil
		}
		return nil, func(ctx context.Context) *ephemeral { return b.cmdPause(userID, arg) }
	case "focus":
		arg := strings.Join(c.Args, " ")
		focus, err := nudges.ParseFocus(arg)
		if err != nil || arg == "" {
			return reply(usageText("focus", problemText(err, "Tell me what to focus on."))), nil
		}
		return nil, func(ctx context.Context) *ephemeral { return b.cmdFocus(userID, focus) }
	case "tz", "timezone":
		if len(c.Args) != 1 {
			return reply(usageText("tz", "Give one time zone name, like Europe/Berlin, or auto.")), nil
		}
		if strings.EqualFold(c.Args[0], "auto") {
			return nil, func(ctx context.Context) *ephemeral { return b.cmdTZAuto(ctx, userID) }
		}
		loc, err := nudges.ParseTZ(c.Args[0])
		if err != nil {
			return reply(usageText("tz", problemText(err, ""))), nil
		}
		return nil, func(ctx context.Context) *ephemeral { return b.cmdTZ(userID, loc) }
	}
	verbs := make([]string, 0, len(nudgeCommands))
	for v := range nudgeCommands {
		verbs = append(verbs, v)
	}
	msg := fmt.Sprintf("I don't know `%s`.", Escape(truncate(c.Verb, 40)))
	if guess, ok := closest(c.Verb, verbs); ok {
		msg += fmt.Sprintf(" Did you mean `/nudge %s`?", guess)
	}
	return reply(msg + "\n\n" + helpText()), nil
}

// problemText turns a parse error into a sentence for people; parse
// errors from nudges are written for them already.
func problemText(err error, fallback string) string {
	if err == nil {
		return fallback
	}
	return Escape(err.Error()) + "."
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// respond posts a follow-up through the command's response_url. It is not
// a Web API method and has no tier, but it is only good five times in
// thirty minutes, so every command uses it at most once.
func (b *Bot) respond(ctx context.Context, url string, msg *ephemeral) {
	if url == "" {
		return
	}
	opts := []slack.MsgOption{
		slack.MsgOptionResponseURL(url, slack.ResponseTypeEphemeral),
		slack.MsgOptionText(msg.Text, false), // already escaped where it holds user text
	}
	if msg.ReplaceOriginal {
		opts = append(opts, slack.MsgOptionReplaceOriginal(url))
	}
	if len(msg.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(msg.Blocks...))
	}
	// A response_url answer is only ever shown to the one person; seeing
	// it twice after a retry is better than never seeing it, so a broken
	// connection is retried like a read.
	err := b.web.do(ctx, "response_url", callSafe, func(ctx context.Context) error {
		_, _, err := b.api.PostMessageContext(ctx, "", opts...)
		return err
	})
	if err != nil {
		b.log.Warn("could not answer through response_url", "error", err)
	}
}

// sorry is the answer when storage fails: nothing was changed, try again.
func (b *Bot) sorry(userID, what string, err error) *ephemeral {
	b.log.Error("could not save a person's change; they were told nothing changed", "during", what, "user_id", userID, "error", err)
	return reply("Sorry, I couldn't save that just now, so nothing changed. Please try again in a minute; if it keeps happening, tell your nudgebot admin.")
}

// location is the person's effective zone.
func (b *Bot) location(s nudges.Subscriber) *time.Location {
	return s.Location(b.cal.Fallback)
}

// reschedule computes a person's next due time after a change to their
// settings. One scheduled nudge a day: a new time later today does not
// bring a second nudge on a day that already had one.
func (b *Bot) reschedule(s *nudges.Subscriber, now time.Time) {
	if !s.Subscribed || s.Inactive {
		s.NextDue = time.Time{}
		return
	}
	after := now
	if s.LastSlot.After(after) {
		after = s.LastSlot
	}
	if s.Time != "" && !s.LastSlot.IsZero() {
		loc := b.location(*s)
		ly, lm, ld := s.LastSlot.In(loc).Date()
		ny, nm, nd := now.In(loc).Date()
		if ly == ny && lm == nm && ld == nd {
			endOfDay := time.Date(ny, nm, nd+1, 0, 0, 0, 0, loc).Add(-time.Second)
			if endOfDay.After(after) {
				after = endOfDay
			}
		}
	}
	s.NextDue = b.cal.Next(*s, after)
}

// when formats an instant in the person's zone, e.g. "Thu 27 Nov, 09:00 (Europe/Berlin)".
func when(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "not scheduled"
	}
	return fmt.Sprintf("%s (%s)", t.In(loc).Format("Mon 2 Jan, 15:04"), loc.String())
}

// profile reads the person's Slack time zone and whether they are
// deactivated.
func (b *Bot) profile(ctx context.Context, userID string) (tz string, deleted bool, err error) {
	var u *slack.User
	err = b.web.do(ctx, "users.info", callSafe, func(ctx context.Context) error {
		var err error
		u, err = b.api.GetUserInfoContext(ctx, userID)
		return err
	})
	if err != nil {
		return "", false, err
	}
	return u.TZ, u.Deleted, nil
}

func (b *Bot) cmdStart(ctx context.Context, userID string) *ephemeral {
	tz, deleted, err := b.profile(ctx, userID)
	if err != nil {
		// Still subscribe; the daily refresh will fill the zone in.
		b.log.Warn("could not read the Slack profile; using the default time zone for now", "user_id", userID, "error", err)
	}
	if deleted {
		return reply("Your Slack account is marked as deactivated, so I can't send you nudges.")
	}
	now := b.now()
	already := false
	sub, err := b.store.UpdateSubscriber(userID, func(s *nudges.Subscriber) error {
		already = s.Subscribed && !s.Inactive
		if tz != "" {
			s.ProfileTZ = tz
		}
		if !already {
			s.Subscribed = true
			s.Inactive, s.InactiveReason = false, ""
			s.SubscribedAt = now
		}
		b.reschedule(s, now)
		return nil
	})
	if err != nil {
		return b.sorry(userID, "subscribing", err)
	}
	loc := b.location(sub)
	head := "You're subscribed. "
	if already {
		head = "You're already subscribed. "
	}
	return reply(lines(
		head+"Your next nudge: *"+when(sub.NextDue, loc)+"*.",
		"Change it with `/nudge time 08:30`, `/nudge days mon,wed,fri` or `/nudge tz Area/City`; `/nudge now` sends one right away.",
	))
}

func (b *Bot) cmdStop(userID string) *ephemeral {
	was := false
	_, err := b.store.UpdateSubscriber(userID, func(s *nudges.Subscriber) error {
		was = s.Subscribed
		s.Subscribed = false
		s.NextDue = time.Time{}
		return nil
	})
	if err != nil {
		return b.sorry(userID, "unsubscribing", err)
	}
	if !was {
		return reply("You weren't subscribed, so nothing changed. `/nudge start` subscribes you.")
	}
	return reply("Stopped: no more daily nudges. Your history and reflections stay yours; `/nudge start` picks up again.")
}

func (b *Bot) cmdNow(ctx context.Context, userID string) *ephemeral {
	now := b.now()
	sub, err := b.store.Subscriber(userID)
	if err != nil && !errors.Is(err, nudges.ErrNotFound) {
		return b.sorry(userID, "loading subscriber", err)
	}
	if sub.ProfileTZ == "" {
		// Someone trying a nudge before subscribing still gets it in
		// their own zone, and a record to hang it on.
		tz, _, _ := b.profile(ctx, userID)
		sub, err = b.store.UpdateSubscriber(userID, func(s *nudges.Subscriber) error {
			if s.ProfileTZ == "" {
				s.ProfileTZ = tz
			}
			return nil
		})
		if err != nil {
			return b.sorry(userID, "saving subscriber", err)
		}
	}
	history, err := b.store.Deliveries(userID, now.AddDate(0, 0, -60))
	if err != nil {
		return b.sorry(userID, "loading history", err)
	}
	slot := now.Truncate(time.Second)
	choice, err := b.catalog.Choose(sub, history, now.In(b.location(sub)), seededRand(userID, slot))
	if err != nil {
		b.log.Error("choosing a nudge", "user_id", userID, "error", err)
		return reply("I couldn't find a nudge that fits your focus. Try `/nudge focus both`.")
	}
	d := nudges.Delivery{
		ID: nudges.DeliveryID(userID, slot, true), UserID: userID,
		NudgeID: choice.Nudge.ID, Theme: choice.Nudge.Theme, Role: choice.Nudge.Role,
		Slot: slot, Reason: choice.Reason, Manual: true, State: nudges.StatePending, Created: now,
	}
	created, err := b.store.StartDelivery(d, time.Time{}, func(s *nudges.Subscriber) error {
		nudges.Record(s, choice.Nudge)
		return nil
	})
	if err != nil {
		return b.sorry(userID, "recording a nudge", err)
	}
	if !created {
		return reply("One is already on its way; check your DMs with me.")
	}
	b.send(ctx, d)
	return reply("Sent: check your DMs with me.")
}

func (b *Bot) update(userID, what string, fn func(*nudges.Subscriber) error, ok func(nudges.Subscriber) string) *ephemeral {
	now := b.now()
	sub, err := b.store.UpdateSubscriber(userID, func(s *nudges.Subscriber) error {
		if err := fn(s); err != nil {
			return err
		}
		b.reschedule(s, now)
		return nil
	})
	if err != nil {
		return b.sorry(userID, what, err)
	}
	msg := ok(sub)
	if sub.Subscribed && !sub.Inactive {
		msg = lines(msg, "Next nudge: *"+when(sub.NextDue, b.location(sub))+"*.")
	} else {
		msg = lines(msg, "You're not subscribed yet: `/nudge start` to begin.")
	}
	return reply(msg)
}

func (b *Bot) cmdTime(userID, clock string) *ephemeral {
	return b.update(userID, "setting time", func(s *nudges.Subscriber) error {
		s.Time = clock
		return nil
	}, func(s nudges.Subscriber) string {
		return fmt.Sprintf("Done: your nudges come at %s, %s.", clock, b.location(s))
	})
}

func (b *Bot) cmdDays(userID string, days nudges.Weekdays) *ephemeral {
	return b.update(userID, "setting days", func(s *nudges.Subscriber) error {
		s.Days = days
		return nil
	}, func(nudges.Subscriber) string {
		return fmt.Sprintf("Done: nudges on %s.", days)
	})
}

func (b *Bot) cmdPause(userID, arg string) *ephemeral {
	var until time.Time
	return b.update(userID, "pausing", func(s *nudges.Subscriber) error {
		var err error
		until, err = nudges.ParsePause(arg, b.now(), b.location(*s))
		if err != nil {
			return err
		}
		s.PausedUntil = until
		return nil
	}, func(s nudges.Subscriber) string {
		return fmt.Sprintf("Paused until %s. `/nudge resume` starts again sooner.", until.In(b.location(s)).Format("Mon 2 Jan, 15:04"))
	})
}

func (b *Bot) cmdResume(userID string) *ephemeral {
	return b.update(userID, "resuming", func(s *nudges.Subscriber) error {
		s.PausedUntil = time.Time{}
		return nil
	}, func(nudges.Subscriber) string { return "Resumed." })
}

func (b *Bot) cmdFocus(userID, focus string) *ephemeral {
	return b.update(userID, "setting focus", func(s *nudges.Subscriber) error {
		s.Focus = focus
		return nil
	}, func(nudges.Subscriber) string { return "Focus set: " + focusText(focus) + "." })
}

func focusText(f string) string {
	switch f {
	case "", "both":
		return "leading and managing, alternating"
	case "lead":
		return "leading"
	case "manage":
		return "managing"
	}
	return "the " + themeTitle(nudges.Theme(f)) + " track"
}

func (b *Bot) cmdTZ(userID string, loc *time.Location) *ephemeral {
	return b.update(userID, "setting time zone", func(s *nudges.Subscriber) error {
		s.TZOverride = loc.String()
		return nil
	}, func(nudges.Subscriber) string {
		return fmt.Sprintf("Time zone set to %s. `/nudge tz auto` goes back to your Slack profile's.", loc)
	})
}

func (b *Bot) cmdTZAuto(ctx context.Context, userID string) *ephemeral {
	tz, _, err := b.profile(ctx, userID)
	if err != nil {
		b.log.Warn("could not read the Slack profile", "user_id", userID, "error", err)
	}
	return b.update(userID, "clearing time zone", func(s *nudges.Subscriber) error {
		s.TZOverride = ""
		if tz != "" {
			s.ProfileTZ = tz
		}
		return nil
	}, func(s nudges.Subscriber) string {
		return fmt.Sprintf("Following your Slack profile's time zone: %s.", b.location(s))
	})
}

func (b *Bot) cmdStatus(userID string) *ephemeral {
	now := b.now()
	sub, err := b.store.Subscriber(userID)
	if errors.Is(err, nudges.ErrNotFound) {
		return reply("You're not subscribed. `/nudge start` sends you one short leadership nudge a day, at your own time.")
	}
	if err != nil {
		return b.sorry(userID, "loading status", err)
	}
	history, err := b.store.Deliveries(userID, now.AddDate(0, 0, -60))
	if err != nil {
		return b.sorry(userID, "loading history", err)
	}
	loc := b.location(sub)
	var state string
	switch {
	case sub.Inactive:
		state = "*Stopped*: Slack says your account can't receive my messages (" + Escape(sub.InactiveReason) + ")."
	case !sub.Subscribed:
		state = "*Not subscribed.* `/nudge start` to begin."
	default:
		state = "*Subscribed.* Next nudge: *" + when(sub.NextDue, loc) + "*."
	}
	sched := "Schedule: the team default"
	if sub.Time != "" || sub.Days != 0 {
		parts := []string{}
		if sub.Days != 0 {
			parts = append(parts, sub.Days.String())
		}
		if sub.Time != "" {
			parts = append(parts, "at "+sub.Time)
		}
		sched = "Schedule: " + strings.Join(parts, " ")
	}
	sched += " · time zone " + loc.String()
	if sub.TZOverride != "" {
		sched += " (set by you)"
	}
	var pause string
	if sub.PausedUntil.After(now) {
		pause = "Paused until " + sub.PausedUntil.In(loc).Format("Mon 2 Jan, 15:04") + "."
	}
	streak := nudges.Streak(history, now)
	lead, manage := nudges.Balance(history, now.AddDate(0, 0, -28))
	return reply(lines(
		state,
		sched,
		"Focus: "+focusText(sub.Focus)+".",
		pause,
		fmt.Sprintf("Streak: %d %s done in a row.", streak, plural(streak, "nudge", "nudges")),
		fmt.Sprintf("Last 4 weeks: %d leading and %d managing %s acted on.", lead, manage, plural(lead+manage, "nudge", "nudges")),
	))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
