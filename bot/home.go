package bot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/nudgebot/nudgebot/nudges"
)

// App Home actions. Each does exactly what the matching slash command
// does, then the home is published again.
const (
	actHomeStart       = "home_start"
	actHomeStop        = "home_stop"
	actHomePauseWeek   = "home_pause_week"
	actHomeResume      = "home_resume"
	actHomeTime        = "home_time"
	actHomeFocusLead   = "home_focus_lead"
	actHomeFocusManage = "home_focus_manage"
	actHomeFocusBoth   = "home_focus_both"

	cbHomeTime     = "home_time"
	blockHomeTime  = "time"
	blockHomeDays  = "days"
	actionTime     = "time"
	actionDays     = "days"
	homeReflection = 3
)

func (b *Bot) onAppHomeOpened(ctx context.Context, ev *slackevents.AppHomeOpenedEvent) {
	if ev.Tab != "home" {
		return
	}
	b.publishHome(ctx, ev.User)
}

// publishHome renders the person's own home: only they see it, so it may
// show their reflections.
func (b *Bot) publishHome(ctx context.Context, userID string) {
	view := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: b.homeBlocks(userID)}}
	err := b.web.do(ctx, "views.publish", callSafe, func(ctx context.Context) error {
		_, err := b.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: userID, View: view})
		return err
	})
	if err != nil {
		b.log.Warn("publishing App Home", "user_id", userID, "error", err)
	}
}

func (b *Bot) homeBlocks(userID string) []slack.Block {
	now := b.now()
	sub, err := b.store.Subscriber(userID)
	known := err == nil
	loc := b.location(sub)
	blocks := []slack.Block{slack.NewHeaderBlock(plain("Your leadership nudges"))}

	var state string
	var toggle *slack.ButtonBlockElement
	switch {
	case !known || !sub.Subscribed:
		state = "*Not subscribed.* One short, concrete nudge a day, at your own time, to practise leading as well as managing."
		toggle = button(actHomeStart, "Start", userID, slack.StylePrimary)
	case sub.Inactive:
		state = "*Stopped*: Slack says your account can't receive my messages."
	default:
		state = "*Subscribed.* Next nudge: *" + when(sub.NextDue, loc) + "*"
		toggle = button(actHomeStop, "Stop", userID, "")
	}
	var acc *slack.Accessory
	if toggle != nil {
		acc = slack.NewAccessory(toggle)
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(state), nil, acc))

	history, _ := b.store.Deliveries(userID, now.AddDate(0, 0, -60))
	streak := nudges.Streak(history, now)
	facts := []string{
		fmt.Sprintf("Streak: %d", streak),
		"Focus: " + focusText(sub.Focus),
		"Time zone: " + loc.String(),
	}
	if sub.Time != "" {
		facts = append(facts, "At "+sub.Time)
	}
	if sub.Days != 0 {
		facts = append(facts, sub.Days.String())
	}
	blocks = append(blocks, slack.NewContextBlock("home_facts", mrkdwn(strings.Join(facts, " · "))))
	if sub.PausedUntil.After(now) {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("Paused until "+sub.PausedUntil.In(loc).Format("Mon 2 Jan, 15:04")+"."), nil,
			slack.NewAccessory(button(actHomeResume, "Resume now", userID, ""))))
	}

	blocks = append(blocks, slack.NewDividerBlock(), slack.NewSectionBlock(mrkdwn("*This week*"), nil, nil))
	weekStart := startOfWeek(now.In(loc))
	var week []string
	for _, d := range history {
		if d.Slot.Before(weekStart) || d.State == nudges.StateFailed {
			continue
		}
		n, _ := b.catalog.Get(d.NudgeID)
		what := nudges.OutcomeText(d.Outcome)
		if d.State == nudges.StateMissed {
			what = "Missed while nudgebot was away"
		}
		week = append(week, fmt.Sprintf("• %s · %s · %s", d.Slot.In(loc).Format("Mon 15:04"), Escape(truncate(n.Prompt, 80)), what))
	}
	if len(week) == 0 {
		week = []string{"No nudges yet this week."}
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(truncate(strings.Join(week, "\n"), 2900)), nil, nil))

	blocks = append(blocks, slack.NewDividerBlock(), slack.NewSectionBlock(mrkdwn("*Your last reflections* (only you see these)"), nil, nil))
	rs, _ := b.store.Reflections(userID, homeReflection)
	if len(rs) == 0 {
		blocks = append(blocks, slack.NewContextBlock("home_no_reflections", mrkdwn("None yet. `/reflect` followed by a few words saves one.")))
	}
	for _, r := range rs {
		text := fmt.Sprintf("*#%d* · %s\n%s", r.Seq, r.Created.In(loc).Format("Mon 2 Jan"), fitEscaped(r.Text, 280, false))
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(text), nil, slack.NewAccessory(button(actDraft, "Draft a team update", fmt.Sprint(r.Seq), ""))))
	}

	blocks = append(blocks, slack.NewDividerBlock(), slack.NewActionBlock("home_actions",
		button(actHomePauseWeek, "Pause for a week", userID, ""),
		button(actHomeTime, "Change time and days", userID, ""),
		button(actHomeFocusLead, "Focus: leading", userID, ""),
		button(actHomeFocusManage, "Focus: managing", userID, ""),
		button(actHomeFocusBoth, "Focus: both", userID, ""),
	))
	return blocks
}

func startOfWeek(t time.Time) time.Time {
	offset := (int(t.Weekday()) + 6) % 7 // Monday is the first day
	return time.Date(t.Year(), t.Month(), t.Day()-offset, 0, 0, 0, 0, t.Location())
}

// onHomeAction applies a home button and refreshes the home. It reports
// whether the action was a home action.
func (b *Bot) onHomeAction(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) bool {
	user := cb.User.ID
	var res *ephemeral
	switch a.ActionID {
	case actHomeStart:
		res = b.cmdStart(ctx, user)
	case actHomeStop:
		res = b.cmdStop(user)
	case actHomePauseWeek:
		res = b.cmdPause(user, "1w")
	case actHomeResume:
		res = b.cmdResume(user)
	case actHomeFocusLead:
		res = b.cmdFocus(user, "lead")
	case actHomeFocusManage:
		res = b.cmdFocus(user, "manage")
	case actHomeFocusBoth:
		res = b.cmdFocus(user, "both")
	case actHomeTime:
		b.openTimeModal(ctx, user, cb.TriggerID)
		return true
	default:
		return false
	}
	if res != nil {
		b.log.Debug("home action applied", "user_id", user, "action_id", a.ActionID)
	}
	b.publishHome(ctx, user)
	return true
}

var weekdayOptions = []struct{ value, label string }{
	{"mon", "Mon"}, {"tue", "Tue"}, {"wed", "Wed"}, {"thu", "Thu"}, {"fri", "Fri"}, {"sat", "Sat"}, {"sun", "Sun"},
}

func (b *Bot) openTimeModal(ctx context.Context, userID, triggerID string) {
	sub, _ := b.store.Subscriber(userID)
	tp := slack.NewTimePickerBlockElement(actionTime)
	tp.InitialTime = firstNonEmpty(sub.Time, "09:00")
	var opts, initial []*slack.OptionBlockObject
	for i, d := range weekdayOptions {
		o := slack.NewOptionBlockObject(d.value, plain(d.label), nil)
		opts = append(opts, o)
		wd := time.Weekday((i + 1) % 7)
		if (sub.Days == 0 && wd != time.Saturday && wd != time.Sunday) || sub.Days.Has(wd) {
			initial = append(initial, o)
		}
	}
	days := slack.NewCheckboxGroupsBlockElement(actionDays, opts...)
	days.InitialOptions = initial
	view := slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: cbHomeTime,
		Title: plain("Your nudge time"), Submit: plain("Save"), Close: plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock(blockHomeTime, plain("Time of day, in your time zone"), nil, tp),
			slack.NewInputBlock(blockHomeDays, plain("Days"), nil, days),
		}},
	}
	err := b.web.do(ctx, "views.open", callPost, func(ctx context.Context) error {
		_, err := b.api.OpenViewContext(ctx, triggerID, view)
		return err
	})
	if err != nil {
		b.log.Warn("opening the time form", "user_id", userID, "error", err)
	}
}

// onHomeTimeSubmission applies the time form like /nudge time and days.
func (b *Bot) onHomeTimeSubmission(cb slack.InteractionCallback, ack func(any), keys []string) {
	clock, err := nudges.ParseClock(stateValue(&cb.View, blockHomeTime, actionTime).SelectedTime)
	errs := map[string]string{}
	if err != nil {
		errs[blockHomeTime] = "Pick a time."
	}
	var names []string
	for _, o := range stateValue(&cb.View, blockHomeDays, actionDays).SelectedOptions {
		names = append(names, o.Value)
	}
	days, derr := nudges.ParseDays(strings.Join(names, ","))
	if derr != nil || len(names) == 0 {
		errs[blockHomeDays] = "Pick at least one day."
	}
	if len(errs) > 0 {
		ack(slack.NewErrorsViewSubmissionResponse(errs))
		return
	}
	ack(nil)
	user := cb.User.ID
	b.afterAck(keys, func(ctx context.Context) {
		b.cmdTime(user, clock)
		b.cmdDays(user, days)
		b.publishHome(ctx, user)
	})
}
