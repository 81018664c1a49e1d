package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
)

// Identifiers of the reflection surfaces.
const (
	cbReflect     = "reflect_modal"
	cbDraftUpdate = "draft_update"

	blockReflection   = "reflection"
	blockCommitment   = "commitment"
	blockShare        = "share"
	blockShareChannel = "share_channel"
	blockUpdate       = "update"
	blockChannel      = "channel"
	actionText        = "text"
	actionChoice      = "choice"
	actionChannel     = "channel"

	actDraft        = "reflect_draft"
	actCommitKept   = "commit_kept"
	actCommitNotYet = "commit_not_yet"
	actForget       = "forget_confirm"
	actForgetCancel = "forget_cancel"

	maxListed = 40 // one section per reflection; Block Kit allows 50
)

func reflectHelp() string {
	return lines(
		"*/reflect* keeps a private journal: only you ever see it, unless you choose to share one reflection in your team's digest.",
		"• `/reflect what happened and what I noticed`: save a reflection now",
		"• `/reflect`: write one in a form, with the day's nudge and its question",
		"• `/reflect list` (or `/reflect list 20`): your latest reflections",
		"• `/reflect search WORD`: find reflections",
		"• `/reflect export`: all your reflections and nudge history, as files in your DMs",
		"• `/reflect delete 12`: delete reflection #12",
		"• `/nudge forget`: delete everything nudgebot keeps about you",
	)
}

// routeReflect reads /reflect. The verbs are only verbs when the text is
// exactly their form ("list 20", "search roadmap"); anything else is a
// reflection, so "list of what went well" is saved, not listed.
func (b *Bot) routeReflect(cmd slack.SlashCommand, c Command) (*ephemeral, workFunc) {
	user := app.Person(cmd.UserID)
	switch {
	case c.Verb == "":
		trigger := cmd.TriggerID
		return nil, func(ctx context.Context) *ephemeral { return b.openReflectModal(ctx, user, trigger, "") }
	case c.Verb == "help" && len(c.Args) == 0:
		return reply(reflectHelp()), nil
	case c.Verb == "list" && len(c.Args) <= 1:
		n := 5
		if len(c.Args) == 1 {
			v, err := strconv.Atoi(c.Args[0])
			if err != nil || v < 1 {
				return reply(lines("Give how many to list as a number.", "Usage: `/reflect list [N]`", "Example: `/reflect list 20`")), nil
			}
			n = min(v, maxListed)
		}
		return nil, func(ctx context.Context) *ephemeral { return b.listReflections(ctx, user, n) }
	case c.Verb == "search" && len(c.Args) == 1:
		word := c.Args[0]
		return nil, func(ctx context.Context) *ephemeral { return b.searchReflections(ctx, user, word) }
	case c.Verb == "search" && len(c.Args) == 0:
		return reply(lines("Tell me what to look for.", "Usage: `/reflect search WORD`", "Example: `/reflect search roadmap`")), nil
	case c.Verb == "export" && len(c.Args) == 0:
		return nil, func(ctx context.Context) *ephemeral { return b.exportReflections(ctx, user) }
	case c.Verb == "delete" && len(c.Args) <= 1:
		if len(c.Args) == 0 {
			return reply(lines("Tell me which one.", "Usage: `/reflect delete ID`", "Example: `/reflect delete 12` (`/reflect list` shows the numbers)")), nil
		}
		seq, err := strconv.Atoi(strings.TrimPrefix(c.Args[0], "#"))
		if err != nil || seq < 1 {
			return reply(lines(fmt.Sprintf("%q is not a reflection number.", Escape(truncate(c.Args[0], 20))), "Usage: `/reflect delete ID`", "Example: `/reflect delete 12`")), nil
		}
		return nil, func(ctx context.Context) *ephemeral { return b.deleteReflection(ctx, user, seq) }
	}
	text := strings.TrimSpace(Sanitize(cmd.Text))
	if problem := nudges.ReflectionTextProblem(text); problem != "" {
		return reply(problem + " Nothing was saved."), nil
	}
	return nil, func(ctx context.Context) *ephemeral {
		saved, err := b.core.Reflect(ctx, user, app.Reflection{Text: text}, b.now())
		if err != nil {
			// The command's text is nowhere in Slack to copy again.
			return reply(b.failed(user, "saving a reflection", err).Text + wordsBack(text))
		}
		return reply(fmt.Sprintf("Saved privately; %d %s so far. `/reflect list` shows them.", saved.Count, plural(saved.Count, "reflection", "reflections")))
	}
}

// openReflectModal opens the reflection form. It must run within the
// trigger's three-second life, so it is the first thing the worker does.
func (b *Bot) openReflectModal(ctx context.Context, who app.Actor, triggerID, deliveryID string) *ephemeral {
	form, err := b.core.OpenReflection(ctx, who, deliveryID, b.now())
	if err != nil {
		return b.failed(who, "opening the reflection form", err)
	}
	if err := b.slack.openView(ctx, triggerID, reflectModal(form)); err != nil {
		b.log.Warn("opening the reflection form", "user_id", who.UserID, "error", err)
		return reply("I couldn't open the form in time. Type `/reflect` followed by your thoughts instead, or try again.")
	}
	return nil
}

func reflectModal(form app.ReflectionForm) slack.ModalViewRequest {
	var blocks []slack.Block
	deliveryID := form.DeliveryID
	hint := "What happened, what did you notice, what would you do differently?"
	if form.HaveNudge {
		w := form.Wording
		if w.Prompt == "" {
			w = form.Nudge.Worded(nudges.WordingOptions{})
		}
		blocks = append(blocks,
			slack.NewSectionBlock(mrkdwn("*Today's nudge:* "+Escape(w.Prompt)), nil, nil),
			slack.NewContextBlock("reflect_question", mrkdwn("_"+Escape(w.Question)+"_")),
		)
		hint = w.Question
	}
	text := slack.NewPlainTextInputBlockElement(plain(truncate(hint, 140)), actionText)
	text.Multiline = true
	text.MaxLength = nudges.MaxReflectionLen
	commit := slack.NewPlainTextInputBlockElement(plain("e.g. hand the roadmap review to Priya"), actionText)
	commit.MaxLength = nudges.MaxCommitmentLen
	commitBlock := slack.NewInputBlock(blockCommitment, plain("One thing I will do next"), plain("I'll ask you about it in a few working days."), commit)
	commitBlock.Optional = true
	blocks = append(blocks,
		slack.NewInputBlock(blockReflection, plain("Your reflection"), nil, text),
		commitBlock,
	)
	blocks = append(blocks, shareBlocks(form.ShareIn)...)
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      cbReflect,
		Title:           plain("Reflect"),
		Submit:          plain("Save"),
		Close:           plain("Cancel"),
		PrivateMetadata: formMeta{Delivery: deliveryID, Channels: shareChoices(form.ShareIn)}.encode(),
		Blocks:          slack.Blocks{BlockSet: blocks},
	}
}

// shareBlocks ask who may see the reflection: private unless the author
// chooses one team digest they are in, told how many people are there.
func shareBlocks(opts []app.ShareOption) []slack.Block {
	private := slack.NewOptionBlockObject(string(shareNoneValue), plain("Keep it private (only you)"), nil)
	if len(opts) == 0 {
		return []slack.Block{slack.NewContextBlock("share_none", mrkdwn("Private: only you will see it. (You are in no channel with a team digest, so there is nowhere to share it.)"))}
	}
	choice := slack.NewRadioButtonsBlockElement(actionChoice,
		private,
		slack.NewOptionBlockObject(string(nudges.ShareNamed), plain("Share in a team digest, with my name"), nil),
		slack.NewOptionBlockObject(string(nudges.ShareAnonymous), plain("Share in a team digest, anonymously"), nil),
	)
	choice.InitialOption = private
	var chans []*slack.OptionBlockObject
	for _, o := range opts {
		label := fmt.Sprintf("#%s: %d people will see it", o.Name, o.Members)
		if !o.Anonymous {
			label += " (too few to share anonymously)"
		}
		chans = append(chans, slack.NewOptionBlockObject(o.Channel, plain(truncate(label, 70)), nil))
	}
	pick := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Choose the team"), actionChannel, chans...)
	where := slack.NewInputBlock(blockShareChannel, plain("Which team's digest, if you share it"), plain("Only channels you are in. It goes to that digest and nowhere else."), pick)
	where.Optional = true
	return []slack.Block{slack.NewInputBlock(blockShare, plain("Who may see it"), nil, choice), where}
}

// formMeta is what the reflection form carries in private_metadata: the
// nudge it answers and the channels the author may share in (true where
// sharing anonymously is possible).
type formMeta struct {
	Delivery string          `json:"d,omitempty"`
	Channels map[string]bool `json:"c,omitempty"`
}

func shareChoices(opts []app.ShareOption) map[string]bool {
	m := make(map[string]bool, len(opts))
	for _, o := range opts {
		m[o.Channel] = o.Anonymous
	}
	return m
}

func (m formMeta) encode() string {
	b, err := json.Marshal(m)
	if err != nil {
		return ""
	}
	return string(b)
}

// readFormMeta reads private_metadata; a form opened before it held JSON
// carried the delivery id alone.
func readFormMeta(s string) formMeta {
	var m formMeta
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return formMeta{Delivery: s}
	}
	return m
}

// shareNoneValue is the radio value for "private": option values cannot
// be empty.
const shareNoneValue = "private"

func stateValue(v *slack.View, block, action string) slack.BlockAction {
	if v == nil || v.State == nil {
		return slack.BlockAction{}
	}
	return v.State.Values[block][action]
}

// onViewSubmission validates in place (errors ride in the ack, so the
// person's text stays in the form) and does the work after the ack.
func (b *Bot) onViewSubmission(cb slack.InteractionCallback, ack func(payload any), keys []string) {
	switch cb.View.CallbackID {
	case cbReflect:
		text := strings.TrimSpace(Sanitize(stateValue(&cb.View, blockReflection, actionText).Value))
		commitment := strings.TrimSpace(Sanitize(stateValue(&cb.View, blockCommitment, actionText).Value))
		share := nudges.Share(stateValue(&cb.View, blockShare, actionChoice).SelectedOption.Value)
		if share == shareNoneValue {
			share = nudges.ShareNone
		}
		errs := map[string]string{}
		if p := nudges.ReflectionTextProblem(text); p != "" {
			errs[blockReflection] = p
		}
		if p := nudges.CommitmentProblem(commitment); p != "" {
			errs[blockCommitment] = p
		}
		meta := readFormMeta(cb.View.PrivateMetadata)
		channel := stateValue(&cb.View, blockShareChannel, actionChannel).SelectedOption.Value
		shareProblem(errs, share, channel, meta)
		if len(errs) > 0 {
			ack(slack.NewErrorsViewSubmissionResponse(errs))
			return
		}
		ack(nil)
		who := app.Person(cb.User.ID)
		in := app.Reflection{Text: text, Commitment: commitment, Share: share, ShareChannel: channel, DeliveryID: meta.Delivery}
		b.afterAck(who.UserID, keys, func(ctx context.Context) {
			res, err := b.core.Reflect(ctx, who, in, b.now())
			if err != nil {
				b.slack.tell(ctx, who.UserID, b.reflectRefused(who, err, text))
				return
			}
			b.slack.tell(ctx, who.UserID, savedText(res.Reflection, res.Count))
		})

	case cbDraftUpdate:
		text := strings.TrimSpace(Sanitize(stateValue(&cb.View, blockUpdate, actionText).Value))
		channel := stateValue(&cb.View, blockChannel, actionChannel).SelectedConversation
		errs := map[string]string{}
		if text == "" {
			errs[blockUpdate] = "Write the update you want to post."
		} else if utf8.RuneCountInString(text) > 3000 {
			errs[blockUpdate] = "Keep the update to at most 3,000 characters."
		}
		if channel == "" {
			errs[blockChannel] = "Choose the channel to post in."
		}
		if len(errs) > 0 {
			ack(slack.NewErrorsViewSubmissionResponse(errs))
			return
		}
		ack(nil)
		who := app.Person(cb.User.ID)
		b.afterAck(who.UserID, keys, func(ctx context.Context) { b.postTeamUpdate(ctx, who, channel, text) })
	case cbHearMore:
		b.onHearMoreSubmission(cb, ack, keys)
	case cbHomeTime:
		b.onHomeTimeSubmission(cb, ack, keys)
	case cbHomeContext:
		b.onHomeContextSubmission(cb, ack, keys)
	default:
		ack(nil)
		b.log.Debug("ignored view submission", "callback_id", cb.View.CallbackID)
	}
}

// shareProblem checks the share choice against what the form offered.
func shareProblem(errs map[string]string, share nudges.Share, channel string, meta formMeta) {
	switch {
	case share == nudges.ShareNone:
	case share != nudges.ShareNamed && share != nudges.ShareAnonymous:
		errs[blockShare] = "Choose one of the options."
	case channel == "":
		errs[blockShareChannel] = "Choose which team's digest to share it in."
	default:
		anon, ok := meta.Channels[channel]
		if !ok {
			errs[blockShareChannel] = "Choose one of the channels listed."
		} else if share == nudges.ShareAnonymous && !anon {
			errs[blockShare] = "That team is too small to share anonymously: the others could tell it was you. Share it with your name, or keep it private."
		}
	}
}

// reflectRefused is what a person is told when their reflection from the
// form was not saved: why, and their words back, so nothing is lost.
func (b *Bot) reflectRefused(who app.Actor, err error, text string) string {
	back := wordsBack(text)
	var refused *app.ErrShareRefused
	var notYours *app.Forbidden
	switch {
	case errors.As(err, &refused):
		return "I didn't save it: I can't share it there, since " + Escape(refused.Why) + "." + back
	case errors.As(err, &notYours) && notYours.Who == app.WhoOwner:
		return "I didn't save it: the form named a nudge that belongs to someone else." + back
	case app.IsForbidden(err):
		return "I didn't save it: you can only share in the digest of a channel you are in." + back
	case errors.Is(err, nudges.ErrTooManyReflections), app.NotSaved(err):
		return b.failed(who, "saving a reflection", err).Text + back
	}
	b.log.Error("saving a reflection from the form", "user_id", who.UserID, "error", err)
	return "Sorry, I couldn't save your reflection just now. Nothing was stored; please try again in a minute." + back
}

// savedText confirms a reflection from the form: private, or shared in
// one digest only, as the person chose; never both.
func savedText(saved nudges.Reflection, count int) string {
	msg := fmt.Sprintf("Saved privately as #%d; %d %s so far.", saved.Seq, count, plural(count, "reflection", "reflections"))
	switch saved.Share {
	case nudges.ShareNamed:
		msg = fmt.Sprintf("Saved as #%d, to be shared with your name in the digest of <#%s> and nowhere else; %d %s so far.",
			saved.Seq, saved.ShareChannel, count, plural(count, "reflection", "reflections"))
	case nudges.ShareAnonymous:
		msg = fmt.Sprintf("Saved as #%d, to be shared without your name in the digest of <#%s> and nowhere else; %d %s so far.",
			saved.Seq, saved.ShareChannel, count, plural(count, "reflection", "reflections"))
	}
	if saved.Commitment != "" {
		msg += " I'll ask about your next step in a few working days."
	}
	return msg
}

// wordsBack quotes what a person wrote under a refusal, so that a
// reflection that was not saved is not lost either.
func wordsBack(text string) string {
	return "\nYour words, so nothing is lost:\n>" + fitEscaped(text, 2500, true)
}

func shareText(r nudges.Reflection) string {
	where := "the digest"
	if r.ShareChannel != "" {
		where = "the digest of <#" + r.ShareChannel + ">"
	}
	switch r.Share {
	case nudges.ShareNamed:
		return "shared in " + where + " with your name"
	case nudges.ShareAnonymous:
		return "shared in " + where + " anonymously"
	}
	return "private"
}

// reflectionBlocks renders reflections for their author: each with its
// number, date, the nudge it answered and a button to draft a team update.
func (b *Bot) reflectionBlocks(title string, rs []nudges.Reflection, loc *time.Location) []slack.Block {
	cat := b.core.Catalog()
	blocks := []slack.Block{slack.NewSectionBlock(mrkdwn(title), nil, nil)}
	for _, r := range rs {
		head := fmt.Sprintf("*#%d* · %s", r.Seq, r.Created.In(loc).Format("Mon 2 Jan 2006"))
		if n, ok := cat.Resolve(r.NudgeID); ok {
			head += " · on: _" + fitEscaped(n.Prompt, 90, false) + "_"
		}
		// Cut to fit once escaped: 600 ampersands are 3,000 characters
		// as Slack counts them.
		body := fitEscaped(r.Text, 600, false)
		var extra []string
		if r.Commitment != "" {
			extra = append(extra, "next step: "+fitEscaped(r.Commitment, 200, false))
		}
		extra = append(extra, shareText(r))
		text := head + "\n" + body + "\n_" + strings.Join(extra, " · ") + "_"
		btn := button(actDraft, "Draft a team update", strconv.Itoa(r.Seq), "")
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(text), nil, slack.NewAccessory(btn)))
	}
	return blocks
}

func (b *Bot) listReflections(ctx context.Context, who app.Actor, n int) *ephemeral {
	j, err := b.core.ListReflections(ctx, who, n)
	if err != nil {
		return b.failed(who, "listing reflections", err)
	}
	if len(j.Reflections) == 0 {
		return reply("You have no reflections yet. `/reflect` followed by a few words saves one; only you will see it.")
	}
	title := fmt.Sprintf("*Your latest %d of %d %s* (only you can see this)", len(j.Reflections), j.Total, plural(j.Total, "reflection", "reflections"))
	msg := reply(fmt.Sprintf("Your latest %d reflections", len(j.Reflections)))
	msg.Blocks = b.reflectionBlocks(title, j.Reflections, j.Location)
	return msg
}

func (b *Bot) searchReflections(ctx context.Context, who app.Actor, word string) *ephemeral {
	j, err := b.core.SearchReflections(ctx, who, word, maxListed)
	if err != nil {
		return b.failed(who, "searching reflections", err)
	}
	if len(j.Reflections) == 0 {
		return reply(fmt.Sprintf("None of your reflections mention “%s”.", fitEscaped(word, 60, false)))
	}
	n := len(j.Reflections)
	msg := reply(fmt.Sprintf("%d reflections mention the word", n))
	msg.Blocks = b.reflectionBlocks(fmt.Sprintf("*%d %s mentioning “%s”* (only you can see this)", n, plural(n, "reflection", "reflections"), fitEscaped(word, 60, false)), j.Reflections, j.Location)
	return msg
}

func (b *Bot) deleteReflection(ctx context.Context, who app.Actor, seq int) *ephemeral {
	err := b.core.DeleteReflection(ctx, who, seq)
	if errors.Is(err, nudges.ErrNotFound) {
		return reply(fmt.Sprintf("You have no reflection #%d. `/reflect list` shows their numbers.", seq))
	}
	if err != nil {
		return b.failed(who, "deleting a reflection", err)
	}
	return reply(fmt.Sprintf("Deleted reflection #%d.", seq))
}

// exportReflections sends the person everything about them, as JSON and
// as Markdown files in their DM, spooled a record at a time.
func (b *Bot) exportReflections(ctx context.Context, who app.Actor) *ephemeral {
	now := b.now()
	files, err := newExportFiles(who.UserID, now, b.core.Location(who.UserID))
	if err != nil {
		return b.failed(who, "exporting", err)
	}
	defer files.close()
	unreadable, err := b.core.ExportTo(ctx, who, files)
	if err != nil {
		return b.failed(who, "exporting", err)
	}
	js, md, err := files.finish()
	if err != nil {
		return b.failed(who, "writing the export", err)
	}
	stamp := now.Format("2006-01-02")
	for _, f := range []struct {
		name, title string
		data        io.ReadSeeker
		size        int64
	}{
		{"nudgebot-export-" + stamp + ".json", "Your nudgebot data (JSON)", js.data, js.size},
		{"nudgebot-export-" + stamp + ".md", "Your nudgebot journal (Markdown)", md.data, md.size},
	} {
		err := b.slack.inDM(ctx, who.UserID, func(ctx context.Context, channel string) error {
			// From the start: a kept DM that turned out gone is tried
			// again in the one opened anew.
			if _, err := f.data.Seek(0, io.SeekStart); err != nil {
				return err
			}
			return b.slack.web.do(ctx, "files.getUploadURLExternal", callPost, func(ctx context.Context) error {
				_, err := b.slack.api.UploadFileContext(ctx, slack.UploadFileParameters{
					Reader: f.data, FileSize: int(f.size), Filename: f.name, Title: f.title, Channel: channel,
				})
				return err
			})
		})
		if err != nil {
			b.log.Error("uploading an export", "user_id", who.UserID, "error", err)
			return reply("Sorry, I couldn't send your export just now. Nothing was changed; please try again in a minute.")
		}
	}
	sent := fmt.Sprintf("Sent to your DMs with me: %d %s and %d %s, as JSON and as Markdown.",
		files.refl, plural(files.refl, "reflection", "reflections"), files.nudges, plural(files.nudges, "nudge", "nudges"))
	if unreadable > 0 {
		sent += fmt.Sprintf(" %d of your records could not be read and are not in it; your admin can see which in the log.", unreadable)
	}
	return reply(sent)
}

// openDraftModal turns a reflection into an editable team update.
func (b *Bot) openDraftModal(ctx context.Context, who app.Actor, triggerID string, seq int) {
	r, err := b.core.DraftUpdate(ctx, who, seq)
	if err != nil {
		b.log.Warn("draft from reflection", "user_id", who.UserID, "seq", seq, "error", err)
		return
	}
	text := slack.NewPlainTextInputBlockElement(nil, actionText)
	text.Multiline = true
	text.InitialValue = r.Text
	text.MaxLength = 3000
	ch := slack.NewOptionsSelectBlockElement(slack.OptTypeConversations, plain("Choose a channel"), actionChannel)
	ch.Filter = &slack.SelectBlockElementFilter{Include: []string{"public", "private"}, ExcludeBotUsers: true}
	view := slack.ModalViewRequest{
		Type:       slack.VTModal,
		CallbackID: cbDraftUpdate,
		Title:      plain("Team update"),
		Submit:     plain("Post"),
		Close:      plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewContextBlock("draft_note", mrkdwn("Edit it into something your team can use: where we are headed, how we are doing, what it means for them. Nothing is posted until you press Post.")),
			slack.NewInputBlock(blockUpdate, plain("Your update"), nil, text),
			slack.NewInputBlock(blockChannel, plain("Post in"), plain("I must be a member of the channel; /invite me first if needed."), ch),
		}},
	}
	if err := b.slack.openView(ctx, triggerID, view); err != nil {
		b.log.Warn("opening the draft form", "user_id", who.UserID, "error", err)
	}
}

// postTeamUpdate posts the author's edited text in their name, and gives
// them their text back whenever it could not be posted.
func (b *Bot) postTeamUpdate(ctx context.Context, who app.Actor, channel, text string) {
	err := b.core.PostUpdate(ctx, who, channel, text)
	giveBack := " Your text, so nothing is lost:\n>" + Escape(truncate(text, 2500))
	switch code := slackCode(err); {
	case err == nil:
		b.slack.tell(ctx, who.UserID, "Posted your update in <#"+channel+">.")
	case app.IsForbidden(err):
		b.slack.tell(ctx, who.UserID, "I can only post your update in a channel you are a member of; join it first, or choose another."+giveBack)
	case code == "not_in_channel" || code == "channel_not_found":
		b.slack.tell(ctx, who.UserID, "I couldn't post there: I'm not in that channel. Invite me with `/invite @nudgebot` and try again."+giveBack)
	default:
		b.log.Warn("posting a team update", "user_id", who.UserID, "error", err)
		b.slack.tell(ctx, who.UserID, "I couldn't post your update just now."+giveBack)
	}
}

// teamUpdateBlocks credit the author with a real mention: a display name
// is free text anyone can change, a mention is not. The text gets
// sections of its own: up to 3,000 characters with the credit added and
// escaping applied would not fit in one.
func teamUpdateBlocks(authorID, text string) []slack.Block {
	blocks := []slack.Block{slack.NewSectionBlock(mrkdwn("*Team update from <@"+authorID+">*"), nil, nil)}
	blocks = append(blocks, escapedSections(text, maxSectionText)...)
	return append(blocks, slack.NewContextBlock("update_via", mrkdwn("Written by <@"+authorID+">, posted with nudgebot")))
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// forgetPrompt is the confirmation /nudge forget shows first.
func forgetPrompt(userID string) *ephemeral {
	msg := reply("This deletes everything nudgebot keeps about you.")
	yes := button(actForget, "Yes, delete everything", userID, slack.StyleDanger)
	msg.Blocks = []slack.Block{
		slack.NewSectionBlock(mrkdwn("*Delete everything nudgebot keeps about you?*\nYour subscription, settings, nudge history and every reflection. This cannot be undone; `/reflect export` first if you want a copy."), nil, nil),
		slack.NewActionBlock("forget_actions", yes, button(actForgetCancel, "Cancel", userID, "")),
	}
	return msg
}

// forget deletes everything about the person who clicked, if the button
// was theirs (app.Service.Forget says in what order).
func (b *Bot) forget(ctx context.Context, cb slack.InteractionCallback, whom string) {
	who := app.Person(cb.User.ID)
	err := b.core.Forget(ctx, who, whom)
	switch {
	case app.IsForbidden(err):
		return // a forged button: someone else's data stays where it is
	case err != nil:
		b.log.Error("forgetting a person", "user_id", who.UserID, "error", err)
		b.slack.respond(ctx, cb.ResponseURL, reply("Sorry, I couldn't delete your data just now. Nothing is half-deleted: your data key is the first thing to go, so try again in a minute."))
		return
	}
	b.slack.respond(ctx, cb.ResponseURL, &ephemeral{ResponseType: slack.ResponseTypeEphemeral, Text: "Done: everything nudgebot kept about you is deleted. `/nudge start` begins afresh.", ReplaceOriginal: true})
}

// followUpBlocks quote a person's own words back to them.
func followUpBlocks(r nudges.Reflection, loc *time.Location) []slack.Block {
	day := r.Created.In(loc).Format("Monday")
	return []slack.Block{
		slack.NewDividerBlock(),
		slack.NewSectionBlock(mrkdwn(fmt.Sprintf("On %s you said you would: “%s”. Did you?", day, fitEscaped(r.Commitment, nudges.MaxCommitmentLen, false))), nil, nil),
		slack.NewActionBlock("commitment_actions",
			button(actCommitKept, "Done", strconv.Itoa(r.Seq), slack.StylePrimary),
			button(actCommitNotYet, "Not yet", strconv.Itoa(r.Seq), ""),
		),
	}
}

// onCommitment records whether the person did what they said they would.
func (b *Bot) onCommitment(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) {
	seq, err := strconv.Atoi(a.Value)
	if err != nil {
		return
	}
	kept := a.ActionID == actCommitKept
	if _, err := b.core.AnswerCommitment(ctx, app.Person(cb.User.ID), seq, kept, b.now()); err != nil {
		b.log.Warn("recording a commitment answer", "user_id", cb.User.ID, "seq", seq, "error", err)
		return
	}
	line := "✅ You did what you said you would. Nice."
	if !kept {
		line = "Noted: not yet. What is in the way? `/reflect` is a good place to think it through."
	}
	// Replace the question's buttons with the answer; keep the rest.
	var blocks []slack.Block
	for _, bl := range cb.Message.Blocks.BlockSet {
		if ab, ok := bl.(*slack.ActionBlock); ok && ab.BlockID == "commitment_actions" {
			blocks = append(blocks, slack.NewContextBlock("commitment_answer", mrkdwn(line)))
			continue
		}
		blocks = append(blocks, bl)
	}
	channel, ts := cb.Container.ChannelID, cb.Container.MessageTs
	if channel == "" || ts == "" || len(blocks) == 0 {
		return
	}
	if err := b.slack.updateMessage(ctx, channel, ts, cb.Message.Text, blocks); err != nil {
		b.log.Warn("updating the commitment question", "user_id", cb.User.ID, "error", err)
	}
}
