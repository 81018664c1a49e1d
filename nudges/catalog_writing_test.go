package nudges

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// The checks in this file are the parts of the rubric in
// docs/writing-nudges.md that a program can see. Each names its pattern
// and returns what it found, so a failure says what to rewrite. They catch
// wordings, not meanings: a reviewer still reads every nudge.

// presumedOutcomes are question wordings that take for granted what the
// person found: a surprise, a gap, a hesitation, a fair point, a lesson.
// Such a question has no comfortable answer for "nothing" or "no". Each
// entry was seen in a question a blind reviewer failed.
var presumedOutcomes = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`(?i)\bsurpris`), "a surprise"},
	{regexp.MustCompile(`(?i)\b(had you|you had|have you) missed\b`), "something missed"},
	{regexp.MustCompile(`(?i)^which (part|point|bit)\b.*\b(fair|right|valid)\b`), "a fair point"},
	{regexp.MustCompile(`(?i)\bmade you (hesitate|wait|hold back)\b|^what held you back\b|^what stopped you\b`), "a hesitation"},
	{regexp.MustCompile(`(?i)^what did\b.*\b(show|teach|tell|remind) you\b`), "a lesson"},
	{regexp.MustCompile(`(?i)^what did you (learn|notice|discover|find|realise|realize)\b`), "a lesson"},
	{regexp.MustCompile(`(?i)^what (came up|changed|shifted|moved)\b`), "a change"},
	{regexp.MustCompile(`(?i)^how did\b.*\b(change|changed|shift|shifted|improve|improved)\b`), "a change"},
	{regexp.MustCompile(`(?i)^(who|which \w+) was missing\b`), "a gap"},
	{regexp.MustCompile(`(?i)^what did (they|their \w+|the \w+|people) (add|offer|raise|say|tell you|come up with)\b.*\bthat\b`), "a contribution"},
	{regexp.MustCompile(`(?i)^what questions came\b`), "questions came"},
	{regexp.MustCompile(`(?i)^what made (it|the \w+) (hard|harder|difficult)\b`), "a difficulty"},
	{regexp.MustCompile(`(?i)^why (had|has|did) nobody\b`), "that nobody did it"},
	{regexp.MustCompile(`(?i)^what problems might\b.*\balready\b`), "harm already done"},
	{regexp.MustCompile(`(?i)\bmost relieved\b`), "relief"},
	{regexp.MustCompile(`(?i)^which [\w' ]+ had you not\b`), "a gap"},
	{regexp.MustCompile(`(?i)\bdid you most want\b|^at what point did you\b`), "an urge"},
	// A cost: the question takes for granted that keeping to the action
	// means dropping something, when it may fit as it is.
	{regexp.MustCompile(`(?i)\b(have|need) to (say no to|decline|give up|turn down|drop|sacrifice)\b`), "a cost"},
	{regexp.MustCompile(`(?i)\b(holding|held|hold) (them|you|people|the team) back\b`), "a hesitation"},
	{regexp.MustCompile(`(?i)^what would you need to start\b`), "a gap"},
	// A forced choice leaves no room for "about as expected".
	{regexp.MustCompile(`(?i)\b(better or worse|worse or better|wider or narrower|narrower or wider|too tight or too loose|too loose or too tight|easier or harder|harder or easier)\b`), "a difference either way"},
}

// openAnswer marks a question that says "nothing" is a fine answer, which
// the presumption check then accepts.
var openAnswer = regexp.MustCompile(`(?i)\bif (anything|any|at all|so)\b|\bor nothing\b|\bor none\b`)

// presumedOutcome returns what a question takes for granted, or "".
func presumedOutcome(question string) string {
	if openAnswer.MatchString(question) {
		return ""
	}
	for _, p := range presumedOutcomes {
		if p.re.MatchString(question) {
			return p.what
		}
	}
	return ""
}

// waitingForEvent are wordings that make an action wait for something that
// may not happen today: a meeting, a problem, a request.
var waitingForEvent = regexp.MustCompile(`(?i)\bwhen something\b|\bwhen (someone (asks|brings|comes|raises)|you (see|hear|notice)|a \w+ (comes|arrives))\b|\b(in|at|after|before) (your|the) next\b|\bnext (meeting|time|planning|team meeting|1:1|one-to-one|conversation|discussion)\b|\bthe next time\b|\bbefore escalating\b|\bif there is\b`)

// eventWaits reports a nudge whose action waits for an event. A prompt
// may wait for one in a setting the person said they have, such as their
// next standup, only when a fallback gives something to do today instead;
// a fallback never waits.
func eventWaits(n Nudge) []string {
	var out []string
	if m := waitingForEvent.FindString(n.Fallback); m != "" {
		out = append(out, fmt.Sprintf("fallback waits for an event (%q): say what to do today", m))
	}
	if m := waitingForEvent.FindString(n.Prompt); m != "" && (n.Fallback == "" || n.ContextOnly) {
		out = append(out, fmt.Sprintf("prompt waits for an event (%q) and has no fallback that works today: make it something prepared or done today", m))
	}
	return out
}

// contextCues are, for each setting a nudge may need, the words a prompt
// uses when it relies on that setting. A prompt tagged with a setting
// should use one, and a prompt that uses one should be tagged, so that
// people without the setting get a fallback. Once a fallback takes the
// setting away, the why, question and say line must not refer to it.
var contextCues = map[Context]*regexp.Regexp{
	ContextTeamChannel:       regexp.MustCompile(`(?i)\bchannel\b|\bpost\b|\bpulse\b`),
	ContextStandup:           regexp.MustCompile(`(?i)\bstand-?ups?\b|\bdaily check-in\b|\bopen the day\b`),
	ContextTeamMeeting:       regexp.MustCompile(`(?i)\bteam meetings?\b`),
	ContextOneToOnes:         regexp.MustCompile(`(?i)\b1:1s?\b|\bone-to-ones?\b`),
	ContextLeadershipMeeting: regexp.MustCompile(`(?i)\bpeers or seniors\b|\bleadership (or planning )?meetings?\b|\bplanning meetings?\b`),
	ContextChangeUnderWay:    regexp.MustCompile(`(?i)\b(the|your|a|current) change (you|under way)\b|\bchange you are (leading|planning)\b|\byour (current |next )?change\b|\bthe change\b|\bcurrent change\b`),
	ContextCompanyFigures:    regexp.MustCompile(`(?i)\bfigures?\b`),
	ContextManagesManagers:   regexp.MustCompile(`(?i)\bmanagers who report\b|\bwho report to you\b|\byour managers\b`),
}

// contextMismatches reports a prompt tagged with a setting it never uses,
// one that uses a setting it is not tagged with, and a why, question or
// say line that refers to the setting its fallback removed.
func contextMismatches(n Nudge) []string {
	var out []string
	for _, c := range ContextVocabulary {
		cue := contextCues[c.ID]
		needs := n.Needs.Has(c.ID)
		switch {
		case needs && !cue.MatchString(n.Prompt):
			out = append(out, fmt.Sprintf("needs %s but the prompt never uses it: drop the tag or say where the prompt uses it", c.ID))
		case !needs && cue.MatchString(n.Prompt):
			out = append(out, fmt.Sprintf("prompt uses %s (%q) without needs: tag it and give a fallback", c.ID, cue.FindString(n.Prompt)))
		}
		if !needs || n.Fallback == "" {
			continue
		}
		for _, f := range []struct{ name, text string }{{"why", n.Why}, {"question", n.Question}, {"say", n.Say}} {
			if m := cue.FindString(f.text); m != "" {
				out = append(out, fmt.Sprintf("%s mentions %q, which the fallback does without: write it so it fits both", f.name, m))
			}
		}
	}
	return out
}

// repeatLimit is the share of a question's content words that may also be
// in its prompt. Above it the question mostly asks the person to restate
// what they did. The most overlapping question in the catalog shares two
// thirds of its words, in questions of three to six content words.
const repeatLimit = 0.75

// repeatsPrompt reports the share of the question's content words found
// in the prompt when it is over repeatLimit, with at least three such
// words so a short question is not judged on one word.
func repeatsPrompt(n Nudge) (float64, bool) {
	q, p := contentWords(n.Question), contentWords(n.Prompt)
	if len(q) < 3 {
		return 0, false
	}
	shared := 0
	for w := range q {
		if p[w] {
			shared++
		}
	}
	share := float64(shared) / float64(len(q))
	return share, share > repeatLimit
}

// countCue marks a prompt that has the person count or measure something,
// and countBack a question that asks for that figure again: the person
// has just written it down, so the question only makes them read it out.
var (
	countCue  = regexp.MustCompile(`(?i)\bcount\b|\btally\b|\badd up\b|\bmark (each|the) hours?\b|\bhow (many|much)\b`)
	countBack = regexp.MustCompile(`(?i)^(what|which) (share|proportion|percentage|fraction)\b|^how (many|much)\b`)
)

// asksBackCount reports a question that asks for the count its prompt had
// the person make.
func asksBackCount(n Nudge) bool {
	return countCue.MatchString(n.Prompt) && countBack.MatchString(n.Question)
}

// rumourCue are wordings that hint at a departure or a reorganisation
// nobody announced ("if I were away for a while", "if the team's way of
// working changed"); said to a team member, they start a rumour.
var rumourCue = regexp.MustCompile(`(?i)\bif (I|you) (were|was) (away|gone|to leave|to go)\b|\bif (I|you) left\b|\bwhen I leave\b|\bif the team'?s? (way of working|structure|setup) (changed|were to change)\b`)

// rumours reports each part of a nudge a person would say or act on that
// carries a rumour cue.
func rumours(n Nudge) []string {
	var out []string
	for _, f := range []struct{ name, text string }{{"prompt", n.Prompt}, {"fallback", n.Fallback}, {"say", n.Say}, {"strategy_prompt", n.StrategyPrompt}} {
		if m := rumourCue.FindString(f.text); m != "" {
			out = append(out, fmt.Sprintf("%s says %q, which can start a rumour: ask about today's team instead", f.name, m))
		}
	}
	return out
}

// checkRubric applies this file's checks to one nudge.
func checkRubric(t *testing.T, n Nudge) {
	t.Helper()
	if what := presumedOutcome(n.Question); what != "" {
		t.Errorf("nudge %s: question %q presumes %s: ask so that \"nothing\" or \"no\" is an honest answer", n.ID, n.Question, what)
	}
	for _, p := range eventWaits(n) {
		t.Errorf("nudge %s: %s", n.ID, p)
	}
	for _, p := range contextMismatches(n) {
		t.Errorf("nudge %s: %s", n.ID, p)
	}
	if asksBackCount(n) {
		t.Errorf("nudge %s: question %q asks back the count the prompt had them make: ask what the count means to them", n.ID, n.Question)
	}
	for _, p := range rumours(n) {
		t.Errorf("nudge %s: %s", n.ID, p)
	}
	if share, bad := repeatsPrompt(n); bad {
		t.Errorf("nudge %s: question %q repeats the prompt (%.0f%% of its words): ask about what the action showed", n.ID, n.Question, share*100)
	}
}

// Ensure the built-in catalog passes every rubric check a program can make.
func TestDefaultCatalog_Rubric(t *testing.T) {
	for _, n := range mustDefault(t).All() {
		checkRubric(t, n)
	}
}

// Ensure the presumption check catches each pattern a reviewer failed and
// accepts questions that leave "nothing" open.
func TestPresumedOutcome(t *testing.T) {
	tests := []struct {
		question string
		bad      bool
	}{
		{"What surprised you about where the team's energy is right now?", true},
		{"Which trend surprised you most?", true},
		{"What had you missed by not hearing from them?", true},
		{"Which part of their concern was fair?", true},
		{"What made you hesitate?", true},
		{"What held you back, and what did holding back cost?", true},
		{"What stopped you from proposing the bigger version?", true},
		{"What did writing the follow-up show you about what was really decided?", true},
		{"What did choosing the story tell you about the team?", true},
		{"What did you learn about why the step exists?", true},
		{"What came up that would not have if you had gone first?", true},
		{"How did the discussion shift once you asked?", true},
		{"Who was missing from your first version of the list?", true},
		{"What did they add that you had not thought of?", true},
		{"What questions came to you, and what do they say about the plan?", true},
		{"What made the norm hard to keep?", true},
		{"Why had nobody raised that problem already?", true},
		{"What did people seem most relieved to hear?", true},
		{"Which workaround had you not thought of before you listed them?", true},
		{"Which comment on method did you most want to make?", true},
		{"At what point did you most want to give advice, and why?", true},
		{"Was their answer better or worse than you expected?", true},
		{"Were the limits wider or narrower than you first wanted?", true},
		{"Did the guardrails feel too tight or too loose?", true},
		{"What will you have to say no to in order to keep that slot?", true},
		{"What will you have to decline to protect that block?", true},
		{"What would you need to turn down to give the theme more room?", true},
		{"What would each team have to give up for the shared win?", true},
		{"Did anyone want to take it on? If not, what might be holding them back?", true},
		{"What would you need to start doing now to be ready for it?", true},
		{"Which part of your week, if any, is most likely to crowd the slot out?", false},
		{"Did anyone mind the routine meeting moving? If so, what did you agree?", false},
		{"What, if anything, did they correct?", false},
		{"Did anything in their answer surprise you? If so, what?", false},
		{"Where, if anywhere, did your picture of finished differ from theirs?", false},
		{"Would more data really have changed the choice?", false},
		{"Which step was hardest to give an owner, and what does that tell you?", false},
		{"Did the team's answer match the order you had in mind?", false},
	}
	for _, tt := range tests {
		if got := presumedOutcome(tt.question) != ""; got != tt.bad {
			t.Errorf("presumedOutcome(%q) = %q, want presumes=%v", tt.question, presumedOutcome(tt.question), tt.bad)
		}
	}
}

// Ensure the event check catches prompts that wait for something, unless a
// fallback works today, and catches every fallback that waits.
func TestEventWaits(t *testing.T) {
	base := Nudge{ID: "x-1", Role: RoleLead, Theme: ThemeLeading, Why: "W.", Question: "Q?"}
	tests := []struct {
		name string
		edit func(*Nudge)
		bad  bool
	}{
		{"When something goes wrong", func(n *Nudge) { n.Prompt = "When something goes wrong today, pause before reacting." }, true},
		{"Next meeting", func(n *Nudge) { n.Prompt = "In your next meeting, give your view first." }, true},
		{"Before escalating", func(n *Nudge) { n.Prompt = "Before escalating a conflict, ask their manager for 10 minutes." }, true},
		{"The next time", func(n *Nudge) { n.Prompt = "The next time someone asks you how to solve something, ask two questions." }, true},
		{"After your next", func(n *Nudge) { n.Prompt = "After your next agreement with another team, send a note." }, true},
		{"If there is news", func(n *Nudge) { n.Prompt = "If there is bad news you may share, tell the team." }, true},
		{"Context only still waits", func(n *Nudge) {
			n.Prompt = "At your next team meeting, hand one topic to someone else."
			n.Needs, n.ContextOnly = ContextsOf(ContextTeamMeeting), true
		}, true},
		{"Fallback waits", func(n *Nudge) {
			n.Prompt = "Open today's standup with one figure."
			n.Needs, n.Fallback = ContextsOf(ContextStandup), "No standup? Share it in your next team meeting."
		}, true},
		{"Prompt waits, fallback works today", func(n *Nudge) {
			n.Prompt = "At your next team meeting, hand one topic to someone else."
			n.Needs, n.Fallback = ContextsOf(ContextTeamMeeting), "No team meeting? Ask someone today to write the team's note on the topic."
		}, false},
		{"Today", func(n *Nudge) {
			n.Prompt = "Write three lines today on a recent setback: what happened and what came next."
		}, false},
		{"Upcoming", func(n *Nudge) { n.Prompt = "Prepare one question for a meeting you have this week." }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := base
			tt.edit(&n)
			if got := eventWaits(n); (len(got) > 0) != tt.bad {
				t.Errorf("eventWaits = %q, want problems=%v", got, tt.bad)
			}
		})
	}
}

// Ensure the context check catches a tag the prompt never uses, a setting
// the prompt uses untagged, and a why, question or say line that still
// refers to what the fallback took away.
func TestContextMismatches(t *testing.T) {
	channel := func(n *Nudge) {
		n.Prompt = "Post the team's top three priorities in the team channel."
		n.Needs, n.Fallback = ContextsOf(ContextTeamChannel), "No team channel? Email the three to the team."
	}
	tests := []struct {
		name string
		edit func(*Nudge)
		bad  bool
	}{
		{"Tag fits", channel, false},
		{"Tagged, never used", func(n *Nudge) {
			n.Prompt = "Ask each person what they are looking forward to this week."
			n.Needs, n.Fallback = ContextsOf(ContextTeamChannel), "No team channel? Ask one at a time."
		}, true},
		{"Used, not tagged", func(n *Nudge) { n.Prompt = "Open your standup with one figure you may share." }, true},
		{"One-to-one untagged", func(n *Nudge) { n.Prompt = "In a 1:1 today, ask what they want to learn." }, true},
		{"Question names the channel", func(n *Nudge) { channel(n); n.Question = "Who replied in the channel?" }, true},
		{"Why names the channel", func(n *Nudge) { channel(n); n.Why = "A channel post is read by everyone." }, true},
		{"Say names the pulse", func(n *Nudge) {
			n.Prompt = "Look at what the team asked in the last clarity pulse and answer one topic."
			n.Needs, n.Fallback = ContextsOf(ContextTeamChannel), "No pulse? Ask two people what they want to hear more about."
			n.Say = "You asked in the pulse about …"
		}, true},
		{"Question names the figure", func(n *Nudge) {
			n.Prompt = "Explain one figure you are cleared to share in three sentences."
			n.Needs, n.Fallback = ContextsOf(ContextCompanyFigures), "No figures you may share? Explain one recent decision instead."
			n.Question = "What was hard to explain about the figure?"
		}, true},
		{"Context only may name it", func(n *Nudge) {
			n.Prompt = "Ask one of the managers who report to you which decision they want to own."
			n.Needs, n.ContextOnly = ContextsOf(ContextManagesManagers), true
			n.Question = "Which of your managers is ready for more?"
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := Nudge{ID: "x-1", Why: "W.", Question: "Q?"}
			tt.edit(&n)
			if got := contextMismatches(n); (len(got) > 0) != tt.bad {
				t.Errorf("contextMismatches = %q, want problems=%v", got, tt.bad)
			}
		})
	}
}

// Ensure the repeat check catches a question that restates its prompt and
// accepts one that asks about what the action showed.
func TestRepeatsPrompt(t *testing.T) {
	prompt := "Write down three kinds of decision your team makes often and who owns each. Share the list."
	tests := []struct {
		question string
		bad      bool
	}{
		{"Which kinds of decision does your team make often, and who owns each?", true},
		{"Who owns the decisions your team makes often?", true},
		{"Where, if anywhere, did people see ownership differently from you?", false},
		{"Did it?", false},
	}
	for _, tt := range tests {
		n := Nudge{Prompt: prompt, Question: tt.question}
		if share, bad := repeatsPrompt(n); bad != tt.bad {
			t.Errorf("repeatsPrompt(%q) = %.2f %v, want %v", tt.question, share, bad, tt.bad)
		}
	}
}

// Ensure the checks reach their targets in a real catalog entry: a nudge
// that breaks each rule fails it, so the catalog test cannot pass by
// never looking.
func TestCheckRubric_Wired(t *testing.T) {
	bad := Nudge{
		ID: "x-1", Role: RoleLead, Theme: ThemeLeading,
		Prompt:   "When something goes wrong today, post what happens next in the team channel.",
		Needs:    ContextsOf(ContextTeamChannel),
		Fallback: "No channel? Tell them at your next team meeting.",
		Why:      "Teams take their cue from the manager.",
		Question: "What surprised you about the replies in the channel?",
		Say:      "If I were away for a while, this is who to ask.",
	}
	var found []string
	if presumedOutcome(bad.Question) != "" {
		found = append(found, "presumes")
	}
	if len(eventWaits(bad)) > 0 {
		found = append(found, "event")
	}
	if len(contextMismatches(bad)) > 0 {
		found = append(found, "context")
	}
	if len(rumours(bad)) > 0 {
		found = append(found, "rumour")
	}
	if want := "presumes event context rumour"; strings.Join(found, " ") != want {
		t.Errorf("checks found %q, want %q", strings.Join(found, " "), want)
	}
}

// Ensure every theme works on both kinds of day: for a person who has set
// no context (only nudges that are not context-only reach them) and for
// one who has, on the leading side and on the managing side alike.
func TestDefaultCatalog_EveryThemeWithoutContext(t *testing.T) {
	c := mustDefault(t)
	for _, info := range Themes {
		lead, manage := 0, 0
		for _, n := range c.ByTheme(info.ID) {
			if n.ContextOnly {
				continue
			}
			if n.Role != RoleManage {
				lead++
			}
			if n.Role != RoleLead {
				manage++
			}
		}
		if lead < 2 || manage < 2 {
			t.Errorf("theme %s: %d leading-side and %d managing-side nudges reach people with no context set, want at least 2 each", info.ID, lead, manage)
		}
	}
}

// Ensure the count check catches a question asking for the figure the
// prompt had the person work out, and lets other questions about it pass.
func TestAsksBackCount(t *testing.T) {
	tests := []struct {
		prompt, question string
		bad              bool
	}{
		{"Look at last week's calendar and mark the hours spent inside your old specialty.", "What share of your week went to your old specialty, and is that what you want?", true},
		{"Mark each hour of last week's calendar as managing or leading. Count each side.", "How many hours went to leading?", true},
		{"Check how much of this week's work points at the theme.", "How much of the work fitted?", true},
		{"Look at last week's calendar and mark the hours spent inside your old specialty.", "Which, if any, of those specialist hours could someone on your team have taken?", false},
		{"Write one sentence on your team's purpose.", "How many people would recognise it?", false},
	}
	for _, tt := range tests {
		n := Nudge{Prompt: tt.prompt, Question: tt.question}
		if got := asksBackCount(n); got != tt.bad {
			t.Errorf("asksBackCount(%q, %q) = %v, want %v", tt.prompt, tt.question, got, tt.bad)
		}
	}
}

// Ensure the rumour check catches wordings that hint at a departure or an
// unannounced change, in whatever part of the nudge carries them.
func TestRumours(t *testing.T) {
	tests := []struct {
		name string
		n    Nudge
		bad  bool
	}{
		{"Say, away", Nudge{Prompt: "Write who would keep work organised.", Say: "If I were away for a while, I would count on you for …."}, true},
		{"Prompt, away", Nudge{Prompt: "Write who would cover if you were away for two weeks."}, true},
		{"Fallback, way of working", Nudge{Prompt: "Ask what to keep in the change.", Fallback: "No change under way? Ask one person what they would want kept if the team's way of working changed."}, true},
		{"Today's team", Nudge{Prompt: "Write down who on your team is strongest on the side you lean away from.", Say: "You are better at … than I am."}, false},
		{"Away from", Nudge{Prompt: "Name the side you lean away from and book 15 minutes for it."}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rumours(tt.n); (len(got) > 0) != tt.bad {
				t.Errorf("rumours = %q, want problems=%v", got, tt.bad)
			}
		})
	}
}
