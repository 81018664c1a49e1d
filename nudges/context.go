package nudges

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Context is one situation a nudge may need: a team channel to post in, a
// standup, 1:1s and so on. The vocabulary is small and fixed so people can
// answer it once in a few clicks, and so every nudge that needs a situation
// can say how to do it without one.
type Context string

const (
	ContextTeamChannel       Context = "team-channel"
	ContextStandup           Context = "standup"
	ContextTeamMeeting       Context = "team-meeting"
	ContextOneToOnes         Context = "one-to-ones"
	ContextLeadershipMeeting Context = "leadership-meeting"
	ContextChangeUnderWay    Context = "change-under-way"
	ContextCompanyFigures    Context = "company-figures"
	ContextManagesManagers   Context = "manages-managers"
)

// ContextInfo names a context for people.
type ContextInfo struct {
	ID    Context
	Label string // completes "I have …", e.g. "a daily standup"
}

// ContextVocabulary lists every context in the order people see them. A
// ContextSet's bit i stands for entry i, so new entries go at the end.
var ContextVocabulary = []ContextInfo{
	{ContextTeamChannel, "a team channel you can post in"},
	{ContextStandup, "a standup or daily check-in"},
	{ContextTeamMeeting, "a regular team meeting"},
	{ContextOneToOnes, "regular 1:1s with the people you manage"},
	{ContextLeadershipMeeting, "meetings with your peers or seniors"},
	{ContextChangeUnderWay, "a change under way that you lead or help lead"},
	{ContextCompanyFigures, "company figures you are cleared to share"},
	{ContextManagesManagers, "people reporting to you who manage others"},
}

// LookupContext returns the context with the given id.
func LookupContext(id Context) (ContextInfo, bool) {
	for _, c := range ContextVocabulary {
		if c.ID == id {
			return c, true
		}
	}
	return ContextInfo{}, false
}

func contextBit(id Context) (ContextSet, bool) {
	for i, c := range ContextVocabulary {
		if c.ID == id {
			return 1 << uint(i), true
		}
	}
	return 0, false
}

func contextList() string {
	ids := make([]string, len(ContextVocabulary))
	for i, c := range ContextVocabulary {
		ids[i] = string(c.ID)
	}
	return strings.Join(ids, ", ")
}

// ContextSet is a set of contexts. It is a bit set rather than a slice so
// that Nudge stays comparable with ==.
type ContextSet uint16

// ContextsOf builds a set; ids outside the vocabulary are ignored.
func ContextsOf(ids ...Context) ContextSet {
	var s ContextSet
	for _, id := range ids {
		if b, ok := contextBit(id); ok {
			s |= b
		}
	}
	return s
}

// Has reports whether id is in the set.
func (s ContextSet) Has(id Context) bool {
	b, ok := contextBit(id)
	return ok && s&b != 0
}

// Covers reports whether every context in need is also in s.
func (s ContextSet) Covers(need ContextSet) bool { return need&^s == 0 }

// IDs lists the set's contexts in vocabulary order.
func (s ContextSet) IDs() []Context {
	var out []Context
	for i, c := range ContextVocabulary {
		if s&(1<<uint(i)) != 0 {
			out = append(out, c.ID)
		}
	}
	return out
}

// Labels lists the set's contexts for people, in vocabulary order.
func (s ContextSet) Labels() []string {
	var out []string
	for i, c := range ContextVocabulary {
		if s&(1<<uint(i)) != 0 {
			out = append(out, c.Label)
		}
	}
	return out
}

// String is the ids joined by ", "; the empty set reads "none".
func (s ContextSet) String() string {
	ids := s.IDs()
	if len(ids) == 0 {
		return "none"
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = string(id)
	}
	return strings.Join(parts, ", ")
}

// MarshalJSON writes the set as a list of ids, so stored records stay
// readable and survive new contexts being added to the vocabulary.
func (s ContextSet) MarshalJSON() ([]byte, error) {
	ids := s.IDs()
	if ids == nil {
		ids = []Context{}
	}
	return json.Marshal(ids)
}

// UnmarshalJSON reads a list of ids. An id no longer in the vocabulary is
// dropped rather than failing the whole record.
func (s *ContextSet) UnmarshalJSON(data []byte) error {
	var ids []Context
	if err := json.Unmarshal(data, &ids); err != nil {
		return fmt.Errorf("contexts: %w", err)
	}
	*s = ContextsOf(ids...)
	return nil
}

// Situation is what a person told nudgebot about their work. The zero
// value means they have not answered yet, which is not the same as
// answering "none of these".
type Situation struct {
	Known bool       `json:"known"`
	Has   ContextSet `json:"has,omitempty"`
}

// Describe says in one line what nudgebot knows, for /nudge status and
// App Home.
func (s Situation) Describe() string {
	switch {
	case !s.Known:
		return "not told yet (nudges that need a particular setting come with a way to do them without it)"
	case s.Has == 0:
		return "none of the listed settings"
	}
	return strings.Join(s.Has.Labels(), "; ")
}

// canAct reports whether the person can do n as written or through its
// fallback.
func (s Situation) canAct(n Nudge) bool {
	if n.Needs == 0 || !n.ContextOnly {
		return true
	}
	return s.Known && s.Has.Covers(n.Needs)
}

// needsFallback reports whether n should be shown with its fallback line:
// the person lacks one of its contexts, or has not said.
func (s Situation) needsFallback(n Nudge) bool {
	return n.Needs != 0 && n.Fallback != "" && !(s.Known && s.Has.Covers(n.Needs))
}

// ContextArgs is a parsed "/nudge context" argument: either a request to
// show what is set, or the new answer.
type ContextArgs struct {
	Show bool
	Set  Situation
}

// ContextUsage is the line shown with a malformed /nudge context.
const ContextUsage = "/nudge context standup one-to-ones (or none; alone it shows what is set)"

// contextAliases maps the words people type to the vocabulary.
var contextAliases = map[string]Context{
	"channel": ContextTeamChannel, "team-channel": ContextTeamChannel, "slack-channel": ContextTeamChannel,
	"standup": ContextStandup, "standups": ContextStandup, "stand-up": ContextStandup, "stand-ups": ContextStandup, "daily": ContextStandup, "check-in": ContextStandup,
	"team-meeting": ContextTeamMeeting, "team-meetings": ContextTeamMeeting, "meeting": ContextTeamMeeting, "meetings": ContextTeamMeeting,
	"one-to-ones": ContextOneToOnes, "one-to-one": ContextOneToOnes, "1:1": ContextOneToOnes, "1:1s": ContextOneToOnes, "1on1": ContextOneToOnes,
	"1on1s": ContextOneToOnes, "1-1": ContextOneToOnes, "1-1s": ContextOneToOnes, "one-on-ones": ContextOneToOnes, "one-on-one": ContextOneToOnes,
	"leadership-meeting": ContextLeadershipMeeting, "leadership-meetings": ContextLeadershipMeeting, "leadership": ContextLeadershipMeeting, "peers": ContextLeadershipMeeting,
	"change-under-way": ContextChangeUnderWay, "change": ContextChangeUnderWay, "changes": ContextChangeUnderWay, "change-underway": ContextChangeUnderWay,
	"company-figures": ContextCompanyFigures, "figures": ContextCompanyFigures, "numbers": ContextCompanyFigures, "metrics": ContextCompanyFigures,
	"manages-managers": ContextManagesManagers, "managers": ContextManagesManagers, "manage-managers": ContextManagesManagers,
}

// ParseContextArgs reads what follows "/nudge context": nothing or "show"
// to see the answer, "none" for none of the settings, or the settings
// that apply, separated by spaces or commas ("standup, 1:1s and channel").
// Words are matched without case against the ids and common aliases. The
// error wraps ErrInvalidInput and lists the vocabulary.
func ParseContextArgs(s string) (ContextArgs, error) {
	fail := func(why string) (ContextArgs, error) {
		return ContextArgs{}, inputErr("context", s, why+"; use "+contextList()+", or none")
	}
	t := strings.ToLower(strings.TrimSpace(s))
	if len(t) > 2*maxArgLen {
		return fail("it is too long")
	}
	words := strings.FieldsFunc(t, func(r rune) bool { return r == ' ' || r == ',' || r == ';' || r == '\t' || r == '+' })
	var (
		set  ContextSet
		none bool
		some bool
	)
	for _, w := range words {
		switch w {
		case "and", "&":
			continue
		case "show", "list":
			if len(words) == 1 {
				return ContextArgs{Show: true}, nil
			}
			return fail(fmt.Sprintf("%q goes on its own", w))
		case "none", "nothing", "no":
			none = true
			continue
		}
		id, ok := contextAliases[w]
		if !ok {
			if _, known := LookupContext(Context(w)); !known {
				return fail(fmt.Sprintf("%q is not a setting nudgebot knows", clipArg(w, 24)))
			}
			id = Context(w)
		}
		b, _ := contextBit(id)
		set |= b
		some = true
	}
	switch {
	case none && some:
		return fail(`"none" cannot go with settings`)
	case none:
		return ContextArgs{Set: Situation{Known: true}}, nil
	case !some:
		return ContextArgs{Show: true}, nil
	}
	return ContextArgs{Set: Situation{Known: true, Has: set}}, nil
}
