package bot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/nudgebot/nudgebot/app"
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
	actHomeContext     = "home_context"
	actHomeFocusLead   = "home_focus_lead"
	actHomeFocusManage = "home_focus_manage"
	actHomeFocusBoth   = "home_focus_both"

	cbHomeTime    = "home_time"
	cbHomeContext = "home_context"
	blockContext  = "context"
	actionContext = "context"
	blockHomeTime = "time"
	blockHomeDays = "days"
	actionTime    = "time"
	actionDays    = "days"
)

func (b *Bot) onAppHomeOpened(ctx context.Context, ev *slackevents.AppHomeOpenedEvent) {
	if ev.Tab != "home" {
		return
	}
	b.publishHome(ctx, app.Person(ev.User))
}

// publishHome renders the person's own home: only they see it, so it may
// show their reflections.
func (b *Bot) publishHome(ctx context.Context, who app.Actor) {
	h, err := b.core.Home(ctx, who, b.now())
	if err != nil {
		b.log.Warn("reading App Home", "user_id", who.UserID, "error", err)
		return
	}
	view := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: b.homeBlocks(who.UserID, h)}}
	err = b.slack.web.do(ctx, "views.publish", callSafe, func(ctx context.Context) error {
		_, err := b.slack.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: who.UserID, View: view})
		return err
	})
	if err != nil {
		b.log.Warn("publishing App Home", "user_id", who.UserID, "error", err)
	}
}

func (b *Bot) homeBlocks(userID string, h app.Home) []slack.Block {
	now := b.now()
	sub, loc := h.Subscriber, h.Location
	blocks := []slack.Block{slack.NewHeaderBlock(plain("Your leadership nudges"))}

	var state string
	var toggle *slack.ButtonBlockElement
	switch {
	case !h.Known || !sub.Subscribed:
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

	facts := []string{
		fmt.Sprintf("Streak: %d", h.Streak),
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
	var more []string
	if h.HasArc {
		more = append(more, "Arc: "+h.Arc.String())
	}
	more = append(more, "Your work has: "+Escape(sub.Contexts.Describe()))
	blocks = append(blocks, slack.NewContextBlock("home_situation", mrkdwn(strings.Join(more, " · "))))
	if sub.PausedUntil.After(now) {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("Paused until "+sub.PausedUntil.In(loc).Format("Mon 2 Jan, 15:04")+"."), nil,
			slack.NewAccessory(button(actHomeResume, "Resume now", userID, ""))))
	}
	blocks = append(blocks, b.weekBlocks(h)...)
	blocks = append(blocks, homeReflectionBlocks(h)...)
	blocks = append(blocks, slack.NewDividerBlock(), slack.NewActionBlock("home_actions",
		button(actHomePauseWeek, "Pause for a week", userID, ""),
		button(actHomeTime, "Change time and days", userID, ""),
		button(actHomeContext, "What my work has", userID, ""),
		button(actHomeFocusLead, "Focus: leading", userID, ""),
		button(actHomeFocusManage, "Focus: managing", userID, ""),
		button(actHomeFocusBoth, "Focus: both", userID, ""),
	))
	return blocks
}

// weekBlocks list this week's nudges with what the person did.
func (b *Bot) weekBlocks(h app.Home) []slack.Block {
	cat := b.core.Catalog()
	var week []string
	for _, d := range h.Week {
		n, _ := cat.Resolve(d.NudgeID)
		what := nudges.OutcomeText(d.Outcome)
		if d.State == nudges.StateMissed {
			what = "Missed while nudgebot was away"
		}
		week = append(week, fmt.Sprintf("• %s · %s · %s", d.Slot.In(h.Location).Format("Mon 15:04"), Escape(truncate(n.Prompt, 80)), what))
	}
	if len(week) == 0 {
		week = []string{"No nudges yet this week."}
	}
	return []slack.Block{
		slack.NewDividerBlock(), slack.NewSectionBlock(mrkdwn("*This week*"), nil, nil),
		slack.NewSectionBlock(mrkdwn(truncate(strings.Join(week, "\n"), 2900)), nil, nil),
	}
}

// homeReflectionBlocks show the person's latest reflections, each with a
// button to draft a team update.
func homeReflectionBlocks(h app.Home) []slack.Block {
	blocks := []slack.Block{slack.NewDividerBlock(), slack.NewSectionBlock(mrkdwn("*Your last reflections* (only you see these)"), nil, nil)}
	if len(h.Reflections) == 0 {
		blocks = append(blocks, slack.NewContextBlock("home_no_reflections", mrkdwn("None yet. `/reflect` followed by a few words saves one.")))
	}
	for _, r := range h.Reflections {
		text := fmt.Sprintf("*#%d* · %s\n%s", r.Seq, r.Created.In(h.Location).Format("Mon 2 Jan"), fitEscaped(r.Text, 280, false))
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(text), nil, slack.NewAccessory(button(actDraft, "Draft a team update", fmt.Sprint(r.Seq), ""))))
	}
	return blocks
}

// onHomeAction applies a home button and refreshes the home. It reports
// whether the action was a home action. Each does what the matching slash
// command does.
func (b *Bot) onHomeAction(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) bool {
	who := app.Person(cb.User.ID)
	var err error
	now := b.now()
	switch a.ActionID {
	case actHomeStart:
		_, err = b.core.Subscribe(ctx, who, now)
	case actHomeStop:
		_, err = b.core.Unsubscribe(ctx, who, now)
	case actHomePauseWeek:
		_, err = b.core.ChangeSettings(ctx, who, now, app.PauseFor("1w"))
	case actHomeResume:
		_, err = b.core.ChangeSettings(ctx, who, now, app.Resume())
	case actHomeFocusLead:
		_, err = b.core.ChangeSettings(ctx, who, now, app.SetFocus("lead"))
	case actHomeFocusManage:
		_, err = b.core.ChangeSettings(ctx, who, now, app.SetFocus("manage"))
	case actHomeFocusBoth:
		_, err = b.core.ChangeSettings(ctx, who, now, app.SetFocus("both"))
	case actHomeTime:
		b.openTimeModal(ctx, who, cb.TriggerID)
		return true
	case actHomeContext:
		b.openContextModal(ctx, who, cb.TriggerID)
		return true
	default:
		return false
	}
	if err != nil {
		b.log.Error("applying a home action", "user_id", who.UserID, "action_id", a.ActionID, "error", err)
	}
	b.publishHome(ctx, who)
	return true
}

var weekdayOptions = []struct{ value, label string }{
	{"mon", "Mon"}, {"tue", "Tue"}, {"wed", "Wed"}, {"thu", "Thu"}, {"fri", "Fri"}, {"sat", "Sat"}, {"sun", "Sun"},
}

func (b *Bot) openTimeModal(ctx context.Context, who app.Actor, triggerID string) {
	st, err := b.core.Status(ctx, who, b.now())
	if err != nil {
		b.log.Warn("reading settings for the time form", "user_id", who.UserID, "error", err)
	}
	clock, chosen := st.Subscriber.FormSettings()
	tp := slack.NewTimePickerBlockElement(actionTime)
	tp.InitialTime = clock
	var opts, initial []*slack.OptionBlockObject
	for i, d := range weekdayOptions {
		o := slack.NewOptionBlockObject(d.value, plain(d.label), nil)
		opts = append(opts, o)
		wd := time.Weekday((i + 1) % 7)
		if chosen.Has(wd) {
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
	if err := b.slack.openView(ctx, triggerID, view); err != nil {
		b.log.Warn("opening the time form", "user_id", who.UserID, "error", err)
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
	who := app.Person(cb.User.ID)
	b.afterAck(who.UserID, keys, func(ctx context.Context) {
		if _, err := b.core.ChangeSettings(ctx, who, b.now(), app.SetTime(clock), app.SetDays(days)); err != nil {
			b.log.Error("applying the time form", "user_id", who.UserID, "error", err)
		}
		b.publishHome(ctx, who)
	})
}

// openContextModal asks what the person's work has, with what they said
// before ticked.
func (b *Bot) openContextModal(ctx context.Context, who app.Actor, triggerID string) {
	st, err := b.core.Status(ctx, who, b.now())
	if err != nil {
		b.log.Warn("reading settings for the context form", "user_id", who.UserID, "error", err)
	}
	var opts, initial []*slack.OptionBlockObject
	for _, c := range nudges.ContextVocabulary {
		o := slack.NewOptionBlockObject(string(c.ID), plain(c.Label), nil)
		opts = append(opts, o)
		if st.Subscriber.Contexts.Has.Has(c.ID) {
			initial = append(initial, o)
		}
	}
	boxes := slack.NewCheckboxGroupsBlockElement(actionContext, opts...)
	boxes.InitialOptions = initial
	input := slack.NewInputBlock(blockContext, plain("My work has"), plain("Tick none if none apply: nudges that need one come with a way to do them without it."), boxes)
	input.Optional = true
	view := slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: cbHomeContext,
		Title: plain("What your work has"), Submit: plain("Save"), Close: plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{input}},
	}
	if err := b.slack.openView(ctx, triggerID, view); err != nil {
		b.log.Warn("opening the context form", "user_id", who.UserID, "error", err)
	}
}

// onHomeContextSubmission applies the context form like /nudge context.
func (b *Bot) onHomeContextSubmission(cb slack.InteractionCallback, ack func(any), keys []string) {
	var ids []nudges.Context
	for _, o := range stateValue(&cb.View, blockContext, actionContext).SelectedOptions {
		if _, ok := nudges.LookupContext(nudges.Context(o.Value)); !ok {
			ack(slack.NewErrorsViewSubmissionResponse(map[string]string{blockContext: "Pick from the list."}))
			return
		}
		ids = append(ids, nudges.Context(o.Value))
	}
	ack(nil)
	sit := nudges.Situation{Known: true, Has: nudges.ContextsOf(ids...)}
	who := app.Person(cb.User.ID)
	b.afterAck(who.UserID, keys, func(ctx context.Context) {
		if _, err := b.core.ChangeSettings(ctx, who, b.now(), app.SetContexts(sit)); err != nil {
			b.log.Error("applying the context form", "user_id", who.UserID, "error", err)
		}
		b.publishHome(ctx, who)
	})
}
