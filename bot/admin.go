package bot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

func adminHelp() string {
	return lines(
		"*Admin commands* (only for the admins in the config):",
		"• `/nudge admin stats`: subscribers, this week's deliveries and outcomes, errors",
		"• `/nudge admin pause-all [until YYYY-MM-DD]`: pause everyone's nudges, e.g. for a company holiday",
		"• `/nudge admin resume-all`: lift that pause",
		"• `/nudge admin user @someone`: a person's status (never their reflections)",
		"• `/nudge admin strategy` (`set 1 LINE`, `add LINE`, `remove 2`, `clear`): the strategy lines strategy nudges quote, in your own words",
	)
}

func (b *Bot) routeAdmin(who app.Actor, c Command) (*ephemeral, workFunc) {
	// The core refuses too; answering here saves a non-admin the wait.
	if !b.core.IsAdmin(who.UserID) {
		return reply("Sorry, admin commands are only for the nudgebot admins named in its config. Your own settings are under `/nudge help`."), nil
	}
	sub := ""
	if len(c.Args) > 0 {
		sub = strings.ToLower(c.Args[0])
	}
	rest := c.Args[min(1, len(c.Args)):]
	switch sub {
	case "stats":
		return nil, func(ctx context.Context) *ephemeral { return b.adminStats(ctx, who) }
	case "pause-all":
		until := app.Forever
		if len(rest) > 0 {
			t, err := nudges.ParsePause(strings.Join(rest, " "), b.now(), b.core.Fallback())
			if err != nil {
				return reply(lines(problemText(err, ""), "Usage: `/nudge admin pause-all [until YYYY-MM-DD]`")), nil
			}
			until = t
		}
		return nil, func(ctx context.Context) *ephemeral { return b.adminPauseAll(ctx, who, until) }
	case "resume-all":
		return nil, func(ctx context.Context) *ephemeral { return b.adminPauseAll(ctx, who, time.Time{}) }
	case "strategy":
		args, err := nudges.ParseStrategyArgs(strings.Join(rest, " "))
		if err != nil {
			return reply(lines(problemText(err, ""), "Usage: `/nudge admin "+nudges.StrategyUsage+"`")), nil
		}
		return nil, func(ctx context.Context) *ephemeral { return b.adminStrategy(ctx, who, args) }
	case "user":
		if len(rest) != 1 {
			return reply(lines("Name one person.", "Usage: `/nudge admin user @someone`")), nil
		}
		name := rest[0]
		return nil, func(ctx context.Context) *ephemeral { return b.adminUser(ctx, who, name) }
	}
	return reply(adminHelp()), nil
}

func (b *Bot) adminStats(ctx context.Context, who app.Actor) *ephemeral {
	st, err := b.core.AdminStats(ctx, who, b.now())
	if err != nil {
		return b.failed(who, "counting for admin stats", err)
	}
	outcomes := map[string]int{}
	for o, n := range st.Outcomes {
		outcomes[nudges.OutcomeText(o)] += n
	}
	var parts []string
	for _, o := range []string{"Done", "Reflected", "Snoozed", "Skipped", "No answer yet"} {
		if n := outcomes[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", strings.ToLower(o), n))
		}
	}
	pause := ""
	if !st.PausedAll.IsZero() {
		pause = "*Everyone's nudges are paused* until " + pauseText(st.PausedAll) + "."
	}
	return reply(lines(
		"*nudgebot this week*",
		fmt.Sprintf("Subscribers: %d active of %d.", st.Active, st.Subscribers),
		fmt.Sprintf("Nudges sent in the last 7 days: %d (%s).", st.States[nudges.StateSent], strings.Join(parts, ", ")),
		fmt.Sprintf("Missed while the bot was down: %d. Refused by Slack: %d. Still in the outbox: %d.", st.States[nudges.StateMissed], st.States[nudges.StateFailed], st.States[nudges.StatePending]),
		pause,
	))
}

func pauseText(t time.Time) string {
	if app.PausedForever(t) {
		return "an admin resumes them"
	}
	return t.Format("Mon 2 Jan 2006")
}

func (b *Bot) adminPauseAll(ctx context.Context, who app.Actor, until time.Time) *ephemeral {
	if err := b.core.PauseAll(ctx, who, until); err != nil {
		return b.failed(who, "setting the company-wide pause", err)
	}
	if until.IsZero() {
		return reply("Resumed: everyone's nudges go out on their own schedules again.")
	}
	return reply("Paused: no nudges for anyone until " + pauseText(until) + ". Slots in between are skipped, not sent later. `/nudge admin resume-all` lifts it.")
}

func (b *Bot) adminStrategy(ctx context.Context, who app.Actor, args nudges.StrategyArgs) *ephemeral {
	now, err := b.core.Strategy(ctx, who, args)
	if errors.Is(err, nudges.ErrInvalidInput) {
		return reply(problemText(err, ""))
	}
	if err != nil {
		return b.failed(who, "changing the strategy lines", err)
	}
	if len(now) == 0 {
		return reply("No strategy lines: strategy nudges use their general wording. `/nudge admin strategy add LINE` quotes your own words in them.")
	}
	out := []string{"*Strategy lines* (strategy and organisation nudges quote one of these):"}
	for i, l := range now {
		out = append(out, fmt.Sprintf("%d. %s", i+1, Escape(l)))
	}
	return reply(lines(out...))
}

var userRef = regexp.MustCompile(`^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^([UW][A-Z0-9]{6,})$`)

// adminUser shows a person's status to an admin: settings and counts,
// never a word of their reflections.
func (b *Bot) adminUser(ctx context.Context, who app.Actor, name string) *ephemeral {
	target := ""
	if m := userRef.FindStringSubmatch(name); m != nil {
		target = firstNonEmpty(m[1], m[2])
	} else if handle, ok := strings.CutPrefix(name, "@"); ok {
		target = b.userByName(ctx, handle)
	}
	if target == "" {
		return reply(fmt.Sprintf("I can't find %s. Use their @name or member id.", Escape(truncate(name, 40))))
	}
	st, err := b.core.AdminPerson(ctx, who, target, b.now())
	if err != nil {
		return b.failed(who, "reading a person's status", err)
	}
	return reply(lines(fmt.Sprintf("*Status of <@%s>* (their nudges, streak and reflections are theirs alone)", target), subscriptionText(st)))
}

// subscriptionText is what an admin sees of a person.
func subscriptionText(st app.PersonStatus) string {
	if !st.Known {
		return "Not subscribed: nudgebot keeps nothing about them."
	}
	state := "Not subscribed."
	switch {
	case st.Inactive:
		state = "Stopped: Slack says their account can't receive messages."
	case st.Subscribed && !st.PausedUntil.IsZero():
		state = "Subscribed, paused until " + when(st.PausedUntil, st.Location) + "."
	case st.Subscribed:
		state = "Subscribed."
	}
	last := "No nudge was due yet."
	switch st.LastNudge {
	case "":
	case nudges.StateSent:
		last = "Their last nudge (" + when(st.LastAt, st.Location) + ") arrived."
	case nudges.StateFailed:
		last = "Their last nudge (" + when(st.LastAt, st.Location) + ") could not be delivered."
	default:
		last = "Their last nudge (" + when(st.LastAt, st.Location) + ") is " + string(st.LastNudge) + "."
	}
	return lines(state, "Time zone: "+st.Location.String()+".", last)
}

func (b *Bot) userByName(ctx context.Context, name string) string {
	var users []slack.User
	err := b.slack.web.do(ctx, "users.list", callSafe, func(ctx context.Context) error {
		var err error
		users, err = b.slack.api.GetUsersContext(ctx)
		return err
	})
	if err != nil {
		b.log.Warn("listing users", "error", err)
		return ""
	}
	for _, u := range users {
		if strings.EqualFold(u.Name, name) || strings.EqualFold(u.Profile.DisplayName, name) {
			return u.ID
		}
	}
	return ""
}
