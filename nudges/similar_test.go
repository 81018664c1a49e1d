package nudges

import (
	"strings"
	"unicode"
)

// similarity is how much two prompts share: the share of the shorter
// prompt's content words that the other has too (the overlap
// coefficient). Words are lower-cased and stemmed crudely, and words
// nearly every prompt uses are dropped. It catches copies and light
// rewordings; two prompts that ask for one action in quite different
// words score low, so merging those stays a reviewer's job (see
// docs/writing-nudges.md and retiredIDs).
func similarity(a, b string) float64 {
	x, y := contentWords(a), contentWords(b)
	if len(x) == 0 || len(y) == 0 {
		return 0
	}
	shared := 0
	for w := range x {
		if y[w] {
			shared++
		}
	}
	return float64(shared) / float64(min(len(x), len(y)))
}

// nearCopy is the similarity at and above which two prompts count as
// near-copies. The most similar distinct pair in the catalog scores 0.64;
// a prompt with one word changed or dropped scores 0.8 or more.
const nearCopy = 0.7

func contentWords(s string) map[string]bool {
	s = strings.NewReplacer("'", "", "’", "", "1:1", "oneone").Replace(strings.ToLower(s))
	out := map[string]bool{}
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if simStop[w] {
			continue
		}
		w = stem(w)
		if c, ok := simSynonyms[w]; ok {
			w = c
		}
		if simStop[w] {
			continue
		}
		out[w] = true
	}
	return out
}

func stem(w string) string {
	for _, sfx := range []string{"ing", "ed", "es", "s"} {
		if len(w) > len(sfx)+3 && strings.HasSuffix(w, sfx) {
			return w[:len(w)-len(sfx)]
		}
	}
	return w
}

// simStop are words nearly every prompt uses, which say nothing about the
// action asked for.
var simStop = setOf(`a an the and or of to in on for with your you it its is are be one two three four five this that
	what which who how why their them they each at by from as into about not do today team than more less then so if
	when before after minute minutes 10 15 20 week this next day would could can will they them we our us yourself own
	people person someone something thing way just only all any has have had was were been there where other others
	write note pick take share send ask tell list name find spend choose think make give say put`)

// simSynonyms folds a few spellings of one word together.
var simSynonyms = map[string]string{"oneone": "one-to-one", "messag": "message", "remov": "remove"}

func setOf(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}
