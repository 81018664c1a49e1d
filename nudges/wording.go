package nudges

import (
	"hash/fnv"
	"strings"
)

// StrategyPlaceholder marks, in a nudge's strategy_prompt, where one of
// the admins' strategy lines is quoted.
const StrategyPlaceholder = "{line}"

// Wording is a nudge as one person reads it. Every field is plain text;
// escaping is the renderer's job.
type Wording struct {
	Prompt string
	// Fallback is how to do it without the context the prompt assumes;
	// shown under the prompt when the person lacks that context or has
	// not said. Empty otherwise.
	Fallback string
	Say      string // "Try saying: “…”", or empty
	Why      string
	Question string
}

// WordingOptions is what a nudge's wording depends on.
type WordingOptions struct {
	Situation     Situation
	StrategyLines []string
	// Seed picks which strategy line is quoted; pass the delivery id so
	// every render of one delivery quotes the same line.
	Seed string
}

// Worded returns n as the person should read it: the strategy prompt
// quoting one strategy line when there are lines and n has one, and the
// fallback line when the person may lack the context n needs.
func (n Nudge) Worded(o WordingOptions) Wording {
	w := Wording{Prompt: n.Prompt, Why: n.Why, Question: n.Question}
	if line := pickLine(o.StrategyLines, o.Seed); line != "" && n.StrategyPrompt != "" {
		w.Prompt = strings.Replace(n.StrategyPrompt, StrategyPlaceholder, line, 1)
	}
	if o.Situation.needsFallback(n) {
		w.Fallback = n.Fallback
	}
	if n.Say != "" {
		w.Say = "Try saying: “" + n.Say + "”"
	}
	return w
}

// pickLine chooses one non-blank line by a hash of seed.
func pickLine(lines []string, seed string) string {
	var ok []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			ok = append(ok, l)
		}
	}
	if len(ok) == 0 {
		return ""
	}
	h := fnv.New32a()
	h.Write([]byte(seed))
	return ok[h.Sum32()%uint32(len(ok))]
}
