package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// subcommand describes one /nudge verb for help, usage and routing.
type subcommand struct {
	usage   string // e.g. "/nudge time HH:MM"
	example string // e.g. "/nudge time 08:30"
	summary string
}

var nudgeCommands = map[string]subcommand{
	"start":   {"/nudge start", "/nudge start", "subscribe to a daily nudge, at your own time"},
	"stop":    {"/nudge stop", "/nudge stop", "unsubscribe (your history stays yours)"},
	"now":     {"/nudge now", "/nudge now", "get a nudge right away"},
	"time":    {"/nudge time HH:MM", "/nudge time 08:30", "change the time of day, in your time zone"},
	"days":    {"/nudge days DAYS", "/nudge days mon-fri  or  /nudge days mon,wed,fri", "change the days"},
	"pause":   {"/nudge pause 3d | 1w | until YYYY-MM-DD", "/nudge pause until 2027-01-04", "pause for a while"},
	"resume":  {"/nudge resume", "/nudge resume", "end a pause now"},
	"focus":   {"/nudge focus lead | manage | both | THEME", "/nudge focus agenda-setter", "lean your nudges one way"},
	"tz":      {"/nudge tz Area/City | auto", "/nudge tz Europe/Berlin", "set your time zone (auto follows your Slack profile)"},
	"context": {"/nudge context [SETTINGS | none]", "/nudge context standup one-to-ones team-channel", "say what your work has (a team channel, 1:1s, a change under way…) so every nudge fits"},
	"status":  {"/nudge status", "/nudge status", "see what is set and what comes next"},
	"forget":  {"/nudge forget", "/nudge forget", "delete everything nudgebot keeps about you (asks first)"},
	"digest":  {"/nudge digest [#channel]", "/nudge digest #team", "the team's last digest and when the next comes, only to you"},
	"help":    {"/nudge help", "/nudge help", "show this help"},
}

// helpOrder is the order help lists the verbs in.
var helpOrder = []string{"start", "stop", "now", "time", "days", "pause", "resume", "focus", "context", "tz", "status", "digest", "forget", "help"}

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
	keys := dedupeKeys(evt.Request.EnvelopeID, keyed("trg:", cmd.TriggerID))
	first := b.firstTime(keys)
	answer, work := b.routeSlash(cmd)
	if work == nil {
		b.ack(evt, answer)
		return
	}
	if !first {
		b.ack(evt, answer)
		b.log.Info("re-sent command ignored", "envelope_id", evt.Request.EnvelopeID, "retry_attempt", evt.Request.RetryAttempt)
		return
	}
	if !b.budget.allow(cmd.UserID) {
		b.ack(evt, reply(slowDownText))
		return
	}
	if !b.reserve() {
		b.ack(evt, reply(busyText))
		return
	}
	b.ack(evt, answer)
	b.goReserved(func() {
		if !b.firstTimeDurable(keys) {
			b.log.Info("command handled before a restart; ignored", "envelope_id", evt.Request.EnvelopeID)
			return
		}
		if msg := work(ctx); msg != nil {
			b.slack.respond(ctx, cmd.ResponseURL, msg)
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
	who := app.Person(cmd.UserID)
	switch cmd.Command {
	case "/nudge":
		if c.Verb == "digest" {
			arg, here := strings.Join(c.Args, " "), cmd.ChannelID
			return nil, func(ctx context.Context) *ephemeral { return b.digestPreview(ctx, who, here, arg) }
		}
		if c.Verb == "admin" {
			return b.routeAdmin(who, c)
		}
		return b.routeNudge(who, c)
	case "/reflect":
		return b.routeReflect(cmd, c)
	}
	return reply(fmt.Sprintf("I don't know the command %s. Try `/nudge help`.", Escape(Sanitize(cmd.Command)))), nil
}

func (b *Bot) routeNudge(who app.Actor, c Command) (*ephemeral, workFunc) {
	arg := strings.Join(c.Args, " ")
	switch c.Verb {
	case "", "help", "?", "-h", "--help":
		return reply(helpText()), nil
	case "start":
		return nil, func(ctx context.Context) *ephemeral { return b.cmdStart(ctx, who) }
	case "stop":
		return nil, func(ctx context.Context) *ephemeral { return b.cmdStop(ctx, who) }
	case "now":
		return nil, func(ctx context.Context) *ephemeral { return b.cmdNow(ctx, who) }
	case "status":
		return nil, func(ctx context.Context) *ephemeral { return b.cmdStatus(ctx, who) }
	case "forget":
		return forgetPrompt(who.UserID), nil
	case "resume":
		return b.change(who, "resuming", "Resumed.", app.Resume())
	case "time":
		clock, err := nudges.ParseClock(arg)
		if err != nil || len(c.Args) == 0 {
			return reply(usageText("time", problemText(err, "Tell me the time of day."))), nil
		}
		return b.changeWith(who, "setting time", func(s nudges.Subscriber) string {
			return fmt.Sprintf("Done: your nudges come at %s, %s.", clock, b.loc(s))
		}, app.SetTime(clock))
	case "days":
		days, err := nudges.ParseDays(arg)
		if err != nil || len(c.Args) == 0 {
			return reply(usageText("days", problemText(err, "Tell me which days."))), nil
		}
		return b.change(who, "setting days", fmt.Sprintf("Done: nudges on %s.", days), app.SetDays(days))
	case "pause":
		if arg == "" {
			return reply(usageText("pause", "Tell me for how long.")), nil
		}
		// The pause's end depends on the person's zone, which the core
		// knows; the syntax is checked here so a typo is answered at once.
		if _, err := nudges.ParsePause(arg, b.now(), time.UTC); err != nil {
			return reply(usageText("pause", problemText(err, ""))), nil
		}
		return b.changeWith(who, "pausing", func(s nudges.Subscriber) string {
			return fmt.Sprintf("Paused until %s. `/nudge resume` starts again sooner.", s.PausedUntil.In(b.loc(s)).Format("Mon 2 Jan, 15:04"))
		}, app.PauseFor(arg))
	case "focus":
		focus, err := nudges.ParseFocus(arg)
		if err != nil || arg == "" {
			return reply(usageText("focus", problemText(err, "Tell me what to focus on."))), nil
		}
		return b.change(who, "setting focus", "Focus set: "+focusText(focus)+".", app.SetFocus(focus))
	case "tz", "timezone":
		return b.routeZone(who, c.Args)
	case "context", "contexts", "situation":
		return b.routeContext(who, arg)
	}
	return reply(unknownVerb(c.Verb)), nil
}

func (b *Bot) routeZone(who app.Actor, args []string) (*ephemeral, workFunc) {
	if len(args) != 1 {
		return reply(usageText("tz", "Give one time zone name, like Europe/Berlin, or auto.")), nil
	}
	if strings.EqualFold(args[0], "auto") {
		return nil, func(ctx context.Context) *ephemeral {
			sub, err := b.core.FollowProfileZone(ctx, who, b.now())
			if err != nil {
				return b.failed(who, "clearing time zone", err)
			}
			return b.settled(sub, fmt.Sprintf("Following your Slack profile's time zone: %s.", b.loc(sub)))
		}
	}
	loc, err := nudges.ParseTZ(args[0])
	if err != nil {
		return reply(usageText("tz", problemText(err, ""))), nil
	}
	return b.change(who, "setting time zone", fmt.Sprintf("Time zone set to %s. `/nudge tz auto` goes back to your Slack profile's.", loc), app.SetZone(loc))
}

func (b *Bot) routeContext(who app.Actor, arg string) (*ephemeral, workFunc) {
	args, err := nudges.ParseContextArgs(arg)
	if err != nil {
		return reply(usageText("context", problemText(err, ""))), nil
	}
	if args.Show {
		return nil, func(ctx context.Context) *ephemeral {
			st, err := b.core.Status(ctx, who, b.now())
			if err != nil {
				return b.failed(who, "reading your settings", err)
			}
			return reply(lines("What applies to your work: "+Escape(st.Subscriber.Contexts.Describe())+".", contextHint()))
		}
	}
	return b.change(who, "setting what applies", "Noted: "+Escape(args.Set.Describe())+". Nudges that need something you don't have come with a way to do them without it.", app.SetContexts(args.Set))
}

// contextHint lists the settings a person can name.
func contextHint() string {
	var ids []string
	for _, c := range nudges.ContextVocabulary {
		ids = append(ids, "`"+string(c.ID)+"` ("+c.Label+")")
	}
	return "Change it with `/nudge context` and any of: " + strings.Join(ids, ", ") + "; or `/nudge context none`."
}

func unknownVerb(verb string) string {
	verbs := make([]string, 0, len(nudgeCommands))
	for v := range nudgeCommands {
		verbs = append(verbs, v)
	}
	msg := fmt.Sprintf("I don't know `%s`.", Escape(truncate(verb, 40)))
	if guess, ok := closest(verb, verbs); ok {
		msg += fmt.Sprintf(" Did you mean `/nudge %s`?", guess)
	}
	return msg + "\n\n" + helpText()
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

// failed is the answer when the core could not do what was asked: the
// policy's refusal says who may; anything else means nothing changed.
func (b *Bot) failed(who app.Actor, what string, err error) *ephemeral {
	if f, ok := errors.AsType[*app.Forbidden](err); ok {
		return reply("Sorry, that is only for " + f.Who + ".")
	}
	if errors.Is(err, nudges.ErrTooManyReflections) {
		return reply(fmt.Sprintf("You have %d reflections, the most I keep for one person, so this one was not saved. `/reflect export` gives you all of them; `/reflect delete ID` makes room.", nudges.MaxReflections))
	}
	if b.refusedWrite(who, what, err) {
		return reply(notSavedText)
	}
	b.log.Error("could not do what a person asked; they were told nothing changed", "during", what, "user_id", who.UserID, "error", err)
	return reply("Sorry, I couldn't save that just now, so nothing changed. Please try again in a minute; if it keeps happening, tell your nudgebot admin.")
}

// notSavedText answers a change the disk refused: it is certain that
// nothing was saved, and the same change will work once the operator
// has freed space or fixed the disk.
const notSavedText = "Sorry, I couldn't save that: I can't write anything down right now, so nothing was saved. Please try again in a few minutes; if it keeps happening, tell your nudgebot admin."

// refusedWrite reports whether err is the disk refusing a write. Storage
// logs those itself, at a bounded rate, so a full disk does not add a
// line per person here too.
func (b *Bot) refusedWrite(who app.Actor, what string, err error) bool {
	if !app.NotSaved(err) {
		return false
	}
	b.log.Debug("the disk refused a person's change; they were told nothing was saved", "during", what, "user_id", who.UserID)
	return true
}

// loc is the person's effective zone.
func (b *Bot) loc(s nudges.Subscriber) *time.Location { return s.Location(b.core.Fallback()) }

// when formats an instant in the person's zone, e.g. "Thu 27 Nov, 09:00 (Europe/Berlin)".
func when(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "not scheduled"
	}
	return fmt.Sprintf("%s (%s)", t.In(loc).Format("Mon 2 Jan, 15:04"), loc.String())
}

func (b *Bot) cmdStart(ctx context.Context, who app.Actor) *ephemeral {
	res, err := b.core.Subscribe(ctx, who, b.now())
	if err != nil {
		return b.failed(who, "subscribing", err)
	}
	if res.Deactivated {
		return reply("Your Slack account is marked as deactivated, so I can't send you nudges.")
	}
	head := "You're subscribed. "
	if res.Already {
		head = "You're already subscribed. "
	}
	msg := lines(
		head+"Your next nudge: *"+when(res.Subscriber.NextDue, res.Location)+"*.",
		"Change it with `/nudge time 08:30`, `/nudge days mon,wed,fri` or `/nudge tz Area/City`; `/nudge now` sends one right away.",
	)
	if !res.Subscriber.Contexts.Known {
		// Skippable: without an answer, nudges that assume a setting come
		// with a way to do them without it.
		msg = lines(msg, "Optional, so every nudge fits your work: tell me what you have, e.g. `/nudge context standup one-to-ones team-channel` (or `none`). `/nudge context` lists the choices.")
	}
	return reply(msg)
}

func (b *Bot) cmdStop(ctx context.Context, who app.Actor) *ephemeral {
	was, err := b.core.Unsubscribe(ctx, who, b.now())
	if err != nil {
		return b.failed(who, "unsubscribing", err)
	}
	if !was {
		return reply("You weren't subscribed, so nothing changed. `/nudge start` subscribes you.")
	}
	return reply("Stopped: no more daily nudges. Your history and reflections stay yours; `/nudge start` picks up again.")
}

func (b *Bot) cmdNow(ctx context.Context, who app.Actor) *ephemeral {
	res, err := b.core.NudgeNow(ctx, who, b.now())
	switch {
	case err != nil:
		return b.failed(who, "sending a nudge now", err)
	case res == app.NowNoneFits:
		return reply("I couldn't find a nudge that fits your focus. Try `/nudge focus both`.")
	case res == app.NowOnItsWay:
		return reply("One is already on its way; check your DMs with me.")
	}
	return reply("Sent: check your DMs with me.")
}

// change applies settings and answers with done plus the next nudge.
func (b *Bot) change(who app.Actor, what, done string, changes ...app.Change) (*ephemeral, workFunc) {
	return b.changeWith(who, what, func(nudges.Subscriber) string { return done }, changes...)
}

func (b *Bot) changeWith(who app.Actor, what string, done func(nudges.Subscriber) string, changes ...app.Change) (*ephemeral, workFunc) {
	return nil, func(ctx context.Context) *ephemeral {
		sub, err := b.core.ChangeSettings(ctx, who, b.now(), changes...)
		if err != nil {
			return b.failed(who, what, err)
		}
		return b.settled(sub, done(sub))
	}
}

// settled adds the next nudge, or how to start, to a settings answer.
func (b *Bot) settled(sub nudges.Subscriber, msg string) *ephemeral {
	if sub.Subscribed && !sub.Inactive {
		return reply(lines(msg, "Next nudge: *"+when(sub.NextDue, b.loc(sub))+"*."))
	}
	return reply(lines(msg, "You're not subscribed yet: `/nudge start` to begin."))
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

func (b *Bot) cmdStatus(ctx context.Context, who app.Actor) *ephemeral {
	st, err := b.core.Status(ctx, who, b.now())
	if err != nil {
		return b.failed(who, "loading status", err)
	}
	return reply(statusText(st, b.now()))
}

// statusText is a person's status in words; admins see the same, about
// someone else.
func statusText(st app.Status, now time.Time) string {
	if !st.Known {
		return "You're not subscribed. `/nudge start` sends you one short leadership nudge a day, at your own time."
	}
	sub, loc := st.Subscriber, st.Location
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
	arc := ""
	if st.HasArc {
		arc = "Arc: " + st.Arc.String() + "."
	}
	return lines(
		state,
		sched,
		"Focus: "+focusText(sub.Focus)+".",
		arc,
		"Your work has: "+Escape(sub.Contexts.Describe())+".",
		pause,
		fmt.Sprintf("Streak: %d %s done in a row.", st.Streak, plural(st.Streak, "nudge", "nudges")),
		// The noun goes with the count beside it: "1 leading and 0 managing nudges".
		fmt.Sprintf("Last 4 weeks: %d leading and %d managing %s acted on.", st.Lead, st.Manage, plural(st.Manage, "nudge", "nudges")),
	)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
