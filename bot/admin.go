package bot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/nudges"
)

func adminHelp() string {
	return lines(
		"*Admin commands* (only for the admins in the config):",
		"• `/nudge admin stats`: subscribers, this week's deliveries and outcomes, errors",
		"• `/nudge admin pause-all [until YYYY-MM-DD]`: pause everyone's nudges, e.g. for a company holiday",
		"• `/nudge admin resume-all`: lift that pause",
		"• `/nudge admin user @someone`: a person's status (never their reflections)",
	)
}

func (b *Bot) isAdmin(userID string) bool {
	return slices.Contains(b.opts.Admins, userID)
}

func (b *Bot) routeAdmin(userID string, c Command) (*ephemeral, workFunc) {
	if !b.isAdmin(userID) {
		return reply("Sorry, admin commands are only for the nudgebot admins named in its config. Your own settings are under `/nudge help`."), nil
	}
	sub := ""
	if len(c.Args) > 0 {
		sub = strings.ToLower(c.Args[0])
	}
	rest := c.Args[min(1, len(c.Args)):]
	switch sub {
	case "stats":
		return nil, func(ctx context.Context) *ephemeral { return b.adminStats(userID) }
	case "pause-all":
		until := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) // until resume-all
		if len(rest) > 0 {
			t, err := nudges.ParsePause(strings.Join(rest, " "), b.now(), b.cal.Fallback)
			if err != nil {
				return reply(lines(problemText(err, ""), "Usage: `/nudge admin pause-all [until YYYY-MM-DD]`")), nil
			}
			until = t
		}
		return nil, func(ctx context.Context) *ephemeral { return b.adminPauseAll(userID, until) }
	case "resume-all":
		return nil, func(ctx context.Context) *ephemeral { return b.adminPauseAll(userID, time.Time{}) }
	case "user":
		if len(rest) != 1 {
			return reply(lines("Name one person.", "Usage: `/nudge admin user @someone`")), nil
		}
		who := rest[0]
		return nil, func(ctx context.Context) *ephemeral { return b.adminUser(ctx, userID, who) }
	}
	return reply(adminHelp()), nil
}

func (b *Bot) adminStats(userID string) *ephemeral {
	total, active, err := b.store.CountSubscribers()
	if err != nil {
		return b.sorry(userID, "counting subscribers", err)
	}
	now := b.now()
	weekAgo := now.Add(-7 * 24 * time.Hour)
	outcomes := map[string]int{}
	states := map[nudges.DeliveryState]int{}
	err = b.store.DeliveriesBetween(weekAgo, now.Add(time.Second), func(d nudges.Delivery) error {
		states[d.State]++
		if d.State == nudges.StateSent {
			outcomes[nudges.OutcomeText(d.Outcome)]++
		}
		return nil
	})
	if err != nil {
		return b.sorry(userID, "counting deliveries", err)
	}
	var parts []string
	for _, o := range []string{"Done", "Reflected", "Snoozed", "Skipped", "No answer yet"} {
		if n := outcomes[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", strings.ToLower(o), n))
		}
	}
	pause := ""
	if until, _ := b.store.PausedAll(); until.After(now) {
		pause = "*Everyone's nudges are paused* until " + pauseText(until) + "."
	}
	return reply(lines(
		"*nudgebot this week*",
		fmt.Sprintf("Subscribers: %d active of %d.", active, total),
		fmt.Sprintf("Nudges sent in the last 7 days: %d (%s).", states[nudges.StateSent], strings.Join(parts, ", ")),
		fmt.Sprintf("Missed while the bot was down: %d. Refused by Slack: %d. Still in the outbox: %d.", states[nudges.StateMissed], states[nudges.StateFailed], states[nudges.StatePending]),
		pause,
	))
}

func pauseText(t time.Time) string {
	if t.Year() >= 9999 {
		return "an admin resumes them"
	}
	return t.Format("Mon 2 Jan 2006")
}

func (b *Bot) adminPauseAll(userID string, until time.Time) *ephemeral {
	if err := b.store.SetPausedAll(until); err != nil {
		return b.sorry(userID, "setting the company-wide pause", err)
	}
	if until.IsZero() {
		b.log.Info("company-wide pause lifted", "user_id", userID)
		return reply("Resumed: everyone's nudges go out on their own schedules again.")
	}
	b.log.Info("company-wide pause set", "user_id", userID, "until", until)
	return reply("Paused: no nudges for anyone until " + pauseText(until) + ". Slots in between are skipped, not sent later. `/nudge admin resume-all` lifts it.")
}

var userRef = regexp.MustCompile(`^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^([UW][A-Z0-9]{6,})$`)

// adminUser shows a person's status to an admin: settings and counts,
// never a word of their reflections.
func (b *Bot) adminUser(ctx context.Context, adminID, who string) *ephemeral {
	target := ""
	if m := userRef.FindStringSubmatch(who); m != nil {
		target = firstNonEmpty(m[1], m[2])
	} else if name, ok := strings.CutPrefix(who, "@"); ok {
		target = b.userByName(ctx, name)
	}
	if target == "" {
		return reply(fmt.Sprintf("I can't find %s. Use their @name or member id.", Escape(truncate(who, 40))))
	}
	st := b.cmdStatus(target)
	n, err := b.store.CountReflections(target)
	if err != nil && !errors.Is(err, nudges.ErrNotFound) {
		n = 0
	}
	return reply(lines(fmt.Sprintf("*Status of <@%s>* (reflections are private: only their number is shown)", target), st.Text, fmt.Sprintf("Reflections: %d.", n)))
}

func (b *Bot) userByName(ctx context.Context, name string) string {
	var users []slack.User
	err := b.web.do(ctx, "users.list", callSafe, func(ctx context.Context) error {
		var err error
		users, err = b.api.GetUsersContext(ctx)
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
