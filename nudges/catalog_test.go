package nudges

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// mustDefault loads the built-in catalog or stops the test.
func mustDefault(tb testing.TB) *Catalog {
	tb.Helper()
	c, err := DefaultCatalog()
	if err != nil {
		tb.Fatalf("DefaultCatalog: %v", err)
	}
	return c
}

// problems splits an errors.Join result into its parts.
func problems(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// Ensure the built-in catalog covers every theme well enough for people
// who focus on one, with both sides of the alternation on every theme.
func TestDefaultCatalog_Coverage(t *testing.T) {
	c := mustDefault(t)
	if c.Len() < 120 {
		t.Errorf("Len()=%d, want at least 120", c.Len())
	}
	total := 0
	for _, info := range Themes {
		ns := c.ByTheme(info.ID)
		total += len(ns)
		if len(ns) < 7 {
			t.Errorf("theme %s has %d nudges, want at least 7", info.ID, len(ns))
		}
		roles := map[Role]int{}
		for _, n := range ns {
			roles[n.Role]++
		}
		// Alternation asks for a lead day, then a managing day: a theme
		// with one side thin would exhaust it within a week.
		if lead, manage := roles[RoleLead]+roles[RoleBoth], roles[RoleManage]+roles[RoleBoth]; lead < 2 || manage < 2 {
			t.Errorf("theme %s has %d nudges on the leading side and %d on the managing side, want at least 2 each", info.ID, lead, manage)
		}
	}
	if total != c.Len() {
		t.Errorf("ByTheme over all themes gives %d nudges, want Len()=%d", total, c.Len())
	}

	roles := map[Role]int{}
	bothThemes := map[Theme]bool{}
	byThemeRole := map[Theme]map[Role]int{}
	for _, n := range c.All() {
		roles[n.Role]++
		if n.Role == RoleBoth {
			bothThemes[n.Theme] = true
		}
		if byThemeRole[n.Theme] == nil {
			byThemeRole[n.Theme] = map[Role]int{}
		}
		byThemeRole[n.Theme][n.Role]++
	}
	for _, r := range []Role{RoleLead, RoleManage, RoleBoth} {
		if roles[r] < c.Len()/8 {
			t.Errorf("role %s has %d nudges, want at least %d", r, roles[r], c.Len()/8)
		}
	}
	if len(bothThemes) < 5 {
		t.Errorf("both-role nudges appear in %d themes, want at least 5", len(bothThemes))
	}
	// Leading is mostly lead work, managing mostly manage work.
	if m := byThemeRole[ThemeLeading]; m[RoleLead] <= m[RoleManage]+m[RoleBoth] {
		t.Errorf("leading roles=%v, want mostly lead", m)
	}
	if m := byThemeRole[ThemeManaging]; m[RoleManage] <= m[RoleLead]+m[RoleBoth] {
		t.Errorf("managing roles=%v, want mostly manage", m)
	}
	// Alternation needs enough on each side to last a while.
	if lead, manage := roles[RoleLead]+roles[RoleBoth], roles[RoleManage]+roles[RoleBoth]; manage < 40 || lead < 40 {
		t.Errorf("lead side %d, manage side %d nudges, want at least 40 each", lead, manage)
	}
	// The half of the article that was thin: how the organisation is
	// doing (at least 6), developing others (8), leadership at every level
	// and knowing your own lean (3 each).
	for th, want := range map[Theme]int{ThemeOrganisation: 6, ThemeDeveloping: 8, ThemeEveryLevel: 3, ThemeOwnLean: 3} {
		if got := len(c.ByTheme(th)); got < want {
			t.Errorf("theme %s has %d nudges, want at least %d", th, got, want)
		}
	}
}

// Ensure merged duplicates stay merged and what they were merged into
// still exists.
func TestDefaultCatalog_Retired(t *testing.T) {
	c := mustDefault(t)
	for old, into := range retiredIDs {
		if _, ok := c.Get(old); ok {
			t.Errorf("nudge %s is back; it was merged into %s", old, into)
		}
		if _, ok := c.Get(into); !ok {
			t.Errorf("nudge %s, which %s was merged into, is gone", into, old)
		}
		// History still reads: an old delivery shows what it became.
		if n, ok := c.Resolve(old); !ok || n.ID != into {
			t.Errorf("Resolve(%s) = %s %v, want %s", old, n.ID, ok, into)
		}
	}
}

// Ensure no two prompts are near-copies.
func TestDefaultCatalog_NoNearCopies(t *testing.T) {
	all := mustDefault(t).All()
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			if s := similarity(all[i].Prompt, all[j].Prompt); s >= nearCopy {
				t.Errorf("nudges %s and %s are near-copies (similarity %.2f, limit %.2f): merge them or make them ask for different things", all[i].ID, all[j].ID, s, nearCopy)
			}
		}
	}
}

// Ensure the near-copy check can fail: a prompt with one word dropped, or
// with its sentences swapped, is a near-copy of the original, and two
// prompts about different things are not.
func TestSimilarity(t *testing.T) {
	for _, n := range mustDefault(t).All() {
		words := strings.Fields(n.Prompt)
		dropped := strings.Join(append(slices.Clone(words[:len(words)/2]), words[len(words)/2+1:]...), " ")
		if s := similarity(n.Prompt, dropped); s < nearCopy {
			t.Errorf("nudge %s: dropping one word gives similarity %.2f, want at least %.2f", n.ID, s, nearCopy)
		}
		if first, rest, ok := strings.Cut(n.Prompt, ". "); ok {
			if s := similarity(n.Prompt, rest+" "+first+"."); s < nearCopy {
				t.Errorf("nudge %s: swapping sentences gives similarity %.2f, want at least %.2f", n.ID, s, nearCopy)
			}
		}
	}
	if s := similarity("Thank a colleague for their help.", "Draw the flow of requests through your team."); s >= nearCopy {
		t.Errorf("unrelated prompts: similarity %.2f, want below %.2f", s, nearCopy)
	}
}

// Ensure the built-in catalog follows the conventions the loader cannot
// check: ids carry their theme and a number, and the text reads as a
// prompt.
func TestDefaultCatalog_Conventions(t *testing.T) {
	c := mustDefault(t)
	prompts := map[string]string{}
	for _, n := range c.All() {
		if err := n.Validate(); err != nil {
			t.Errorf("Validate: %v", err)
		}
		rest, ok := strings.CutPrefix(n.ID, string(n.Theme)+"-")
		if !ok || len(rest) < 4 || strings.Trim(rest[:2], "0123456789") != "" || rest[2] != '-' {
			t.Errorf("id %q, want %s-NN-slug", n.ID, n.Theme)
		}
		if first, _ := utf8.DecodeRuneInString(n.Prompt); !unicode.IsUpper(first) {
			t.Errorf("nudge %s: prompt %q, want a capitalised imperative", n.ID, n.Prompt)
		}
		if !strings.HasSuffix(n.Prompt, ".") {
			t.Errorf("nudge %s: prompt %q, want a full stop at the end", n.ID, n.Prompt)
		}
		if strings.HasSuffix(n.Why, "?") {
			t.Errorf("nudge %s: why %q is a question, want a statement", n.ID, n.Why)
		}
		if other, dup := prompts[n.Prompt]; dup {
			t.Errorf("nudges %s and %s share a prompt", other, n.ID)
		}
		prompts[n.Prompt] = n.ID
		checkWriting(t, n)
	}
}

// roleDefinition catches a why that defines a role ("Agenda-setters
// choose…", "Leading change means…") instead of giving a payoff.
var roleDefinition = regexp.MustCompile(`(?i)^((leaders?|managers?|architects?|diplomats?|strategists?|tacticians?|integrators?|generalists?|agenda-setters?|problem-solvers?|senior leaders)\b|[^,;.]{0,40}\bmeans\b|[^,;.]{0,40}\bis core\b)`)

// jargon are words that only some kinds of team use; nudges are for every
// kind.
var jargon = regexp.MustCompile(`(?i)\b(ship|shipped|shipping|churn|10x|backlog|ticket|tickets|sprint|sprints|deploy|pull request|okrs?|kpis?|bandwidth|circle back|synergy|north star)\b`)

// conversation marks a prompt that asks the person to talk to someone.
var conversation = regexp.MustCompile(`(?i)\b(ask|asks|tell|talk|chat|say)\b`)

// checkWriting applies the rubric in docs/writing-nudges.md that a
// program can check.
func checkWriting(t *testing.T, n Nudge) {
	t.Helper()
	if roleDefinition.MatchString(n.Why) {
		t.Errorf("nudge %s: why %q defines a role: give the payoff or the evidence", n.ID, n.Why)
	}
	for field, text := range map[string]string{"prompt": n.Prompt, "why": n.Why, "question": n.Question, "fallback": n.Fallback, "say": n.Say, "strategy_prompt": n.StrategyPrompt} {
		if m := jargon.FindString(text); m != "" {
			t.Errorf("nudge %s: %s uses %q, which not every team says", n.ID, field, m)
		}
	}
	if n.Say != "" && (strings.HasPrefix(strings.ToLower(n.Say), "try saying") || strings.ContainsAny(n.Say[:1], `"“'`)) {
		t.Errorf("nudge %s: say %q: write only the words; the bot adds “Try saying:” and the quotes", n.ID, n.Say)
	}
	if n.Fallback != "" && !strings.HasSuffix(n.Fallback, ".") {
		t.Errorf("nudge %s: fallback %q, want a full stop at the end", n.ID, n.Fallback)
	}
	if n.StrategyPrompt != "" && n.Theme != ThemeStrategy && n.Theme != ThemeOrganisation {
		t.Errorf("nudge %s: a strategy_prompt belongs on strategy and organisation nudges, not %s", n.ID, n.Theme)
	}
}

// Ensure nudges that send the person into a conversation give them a first
// line, in most cases. Some conversations (a round of asks in a message)
// have no natural opening, so the rule is a floor rather than absolute.
func TestDefaultCatalog_SayLines(t *testing.T) {
	var talk, with int
	for _, n := range mustDefault(t).All() {
		if conversation.MatchString(n.Prompt) {
			talk++
			if n.Say != "" {
				with++
			}
		}
	}
	if talk == 0 || with*10 < talk*7 {
		t.Errorf("%d of %d conversation nudges have a say line, want at least 70%%", with, talk)
	}
}

// Ensure context tags come from the vocabulary and nobody is given a
// nudge they cannot act on: each nudge with needs has a fallback or is
// deliberately context-only, and the catalog says how to do the rest.
func TestDefaultCatalog_Contexts(t *testing.T) {
	var all ContextSet
	for i := range ContextVocabulary {
		all |= 1 << uint(i)
	}
	used := map[Context]int{}
	only := 0
	for _, n := range mustDefault(t).All() {
		if n.Needs&^all != 0 {
			t.Errorf("nudge %s: needs %b has a setting outside the vocabulary", n.ID, n.Needs)
		}
		for _, id := range n.Needs.IDs() {
			used[id]++
		}
		switch {
		case n.Needs == 0 && (n.Fallback != "" || n.ContextOnly):
			t.Errorf("nudge %s: a fallback or context_only without needs", n.ID)
		case n.Needs != 0 && (n.Fallback == "") == !n.ContextOnly:
			t.Errorf("nudge %s: needs %s, want exactly one of a fallback and context_only", n.ID, n.Needs)
		}
		if n.ContextOnly {
			only++
		}
	}
	for _, c := range ContextVocabulary {
		if used[c.ID] == 0 {
			t.Errorf("no nudge needs %s: drop it from the vocabulary or use it", c.ID)
		}
	}
	if only > 5 {
		t.Errorf("%d context-only nudges, want at most 5: most nudges should work for everyone", only)
	}
}

// Ensure each of the seven transitions has an arc of five of its own
// nudges that everyone can be given.
func TestDefaultCatalog_Arcs(t *testing.T) {
	c := mustDefault(t)
	n := 0
	for _, info := range Themes {
		arc := c.Arc(info.ID)
		if !info.Transition {
			if len(arc) > 0 {
				t.Errorf("theme %s is not a transition but has an arc", info.ID)
			}
			continue
		}
		n++
		if len(arc) != 5 {
			t.Errorf("theme %s: arc of %d, want 5", info.ID, len(arc))
		}
		for _, id := range arc {
			nd, ok := c.Get(id)
			if !ok || nd.Theme != info.ID || nd.ContextOnly {
				t.Errorf("theme %s: arc step %s is missing, of another theme, or context-only", info.ID, id)
			}
		}
	}
	if n != 7 {
		t.Errorf("%d transition themes, want the seven", n)
	}
}

// Ensure no nudge copies the seed article: every nudge is written in our
// own words, so no run of eight words may match the article.
func TestDefaultCatalog_OwnWords(t *testing.T) {
	article, err := os.ReadFile(filepath.Join("..", "..", "shared", "seed", "leadership-and-management.txt"))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("seed article not found at ../../shared/seed; skipping the copied-text check")
	}
	if err != nil {
		t.Fatalf("read seed article: %v", err)
	}
	const run = 8
	grams := map[string]bool{}
	for _, g := range wordRuns(string(article), run) {
		grams[g] = true
	}
	if len(grams) < 100 {
		t.Fatalf("article gave %d runs of %d words, want a real article", len(grams), run)
	}
	for _, n := range mustDefault(t).All() {
		for field, text := range map[string]string{"prompt": n.Prompt, "why": n.Why, "question": n.Question, "fallback": n.Fallback, "say": n.Say, "strategy_prompt": n.StrategyPrompt} {
			for _, g := range wordRuns(text, run) {
				if grams[g] {
					t.Errorf("nudge %s: %s repeats the article: %q", n.ID, field, g)
				}
			}
		}
	}
}

// Ensure the copied-text check can fail.
func TestWordRuns(t *testing.T) {
	got := wordRuns("Leaders’ vision, and... the team's work! Today", 3)
	want := []string{"leaders vision and", "vision and the", "and the teams", "the teams work", "teams work today"}
	if !slices.Equal(got, want) {
		t.Errorf("wordRuns=%q, want %q", got, want)
	}
	if got := wordRuns("too short", 3); got != nil {
		t.Errorf("wordRuns(short)=%q, want none", got)
	}
}

// wordRuns lists every run of n consecutive words in s, lower-cased with
// apostrophes dropped, so punctuation and case cannot hide a copy.
func wordRuns(s string, n int) []string {
	s = strings.NewReplacer("'", "", "’", "").Replace(strings.ToLower(s))
	words := strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	var out []string
	for i := 0; i+n <= len(words); i++ {
		out = append(out, strings.Join(words[i:i+n], " "))
	}
	return out
}

// Ensure each bad catalog reports every problem, with the file, the line,
// what is wrong and how to fix it.
func TestParseCatalog_Bad(t *testing.T) {
	tests := []struct {
		file string
		want []string // one substring per reported problem, in order
	}{
		{"catalog-duplicate-id.yaml", []string{
			`catalog-duplicate-id.yaml:8: nudge "x-1": the id is already used on line 2: give each nudge its own id`,
		}},
		{"catalog-missing-field.yaml", []string{
			`catalog-missing-field.yaml:2: nudge "x-1": "why" is missing: add one line`,
		}},
		{"catalog-unknown-theme.yaml", []string{
			`catalog-unknown-theme.yaml:4: nudge "x-1": theme "leadership" is unknown: use one of leading, managing, strategy,`,
		}},
		{"catalog-unknown-role.yaml", []string{
			`catalog-unknown-role.yaml:3: nudge "x-1": role "boss" is unknown: use lead, manage or both`,
		}},
		{"catalog-prompt-too-long.yaml", []string{
			`catalog-prompt-too-long.yaml:5: nudge "x-1": prompt is 231 characters; the limit is 200: shorten it to one concrete action`,
		}},
		{"catalog-why-too-long.yaml", []string{
			`catalog-why-too-long.yaml:6: nudge "x-1": why is 161 characters; the limit is 160: keep it to one short line`,
		}},
		{"catalog-question-too-long.yaml", []string{
			`catalog-question-too-long.yaml:7: nudge "x-1": question is 151 characters; the limit is 150: ask one short question`,
		}},
		{"catalog-question-mark.yaml", []string{
			`catalog-question-mark.yaml:7: nudge "x-1": question must end with "?": phrase it as a question`,
		}},
		{"catalog-unknown-key.yaml", []string{
			`catalog-unknown-key.yaml:8: nudge "x-1": unknown key "tags": a nudge takes only id, role, theme, prompt, why, question, needs, fallback, context_only, say and strategy_prompt`,
		}},
		{"catalog-top-level-key.yaml", []string{
			`catalog-top-level-key.yaml:2: unknown key "nudge" at the top level: the top level takes only "version", "nudges" and "arcs"`,
			`catalog-top-level-key.yaml:1: no "nudges" list: add a top-level "nudges:" list`,
		}},
		{"catalog-bad-version.yaml", []string{
			`catalog-bad-version.yaml:1: version "2" is not supported: use version: 1`,
		}},
		{"catalog-bad-id.yaml", []string{
			`catalog-bad-id.yaml:2: nudge "X_1": id "X_1" is not kebab-case: use 2 to 64 lowercase letters`,
		}},
		{"catalog-not-yaml.yaml", []string{
			`catalog-not-yaml.yaml:3: not valid YAML (`,
		}},
		{"catalog-empty.yaml", []string{
			`catalog catalog-empty.yaml: the file is empty: add a top-level "nudges:" list with at least one nudge`,
		}},
		{"catalog-empty-list.yaml", []string{
			`catalog-empty-list.yaml:2: the "nudges" list is empty: add at least one nudge`,
		}},
		{"catalog-not-a-list.yaml", []string{
			`catalog-not-a-list.yaml:2: "nudges" must be a list: start each nudge with "- id: ..."`,
		}},
		{"catalog-text-not-scalar.yaml", []string{
			`catalog-text-not-scalar.yaml:6: nudge "x-1": prompt must be plain text, not a list or mapping`,
			`catalog-text-not-scalar.yaml:6: nudge "x-1": "prompt" is missing`,
		}},
		{"catalog-many-problems.yaml", []string{
			`catalog-many-problems.yaml:4: nudge "x-1": role "boss" is unknown`,
			`catalog-many-problems.yaml:12: nudge "x-2": prompt is 201 characters; the limit is 200`,
			`catalog-many-problems.yaml:14: nudge "x-2": question must end with "?"`,
			`catalog-many-problems.yaml:15: nudge "x-1": the id is already used on line 3`,
			`catalog-many-problems.yaml:17: nudge "x-1": theme "nowhere" is unknown`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			ns, err := ParseCatalog(tt.file, data)
			if err == nil {
				t.Fatalf("ParseCatalog returned %d nudges and no error, want an error", len(ns))
			}
			if ns != nil {
				t.Errorf("ParseCatalog returned %d nudges with an error, want none", len(ns))
			}
			if !errors.Is(err, ErrInvalidCatalog) {
				t.Errorf("errors.Is(err, ErrInvalidCatalog)=false for %v", err)
			}
			got := problems(err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(got), len(tt.want), err)
			}
			for i, want := range tt.want {
				if !strings.Contains(got[i].Error(), want) {
					t.Errorf("problem %d=%q, want it to contain %q", i, got[i], want)
				}
				if !errors.Is(got[i], ErrInvalidCatalog) {
					t.Errorf("problem %d does not wrap ErrInvalidCatalog", i)
				}
			}
		})
	}
}

// entry is a one-nudge catalog, nudge x-1 of theme leading, with extra
// keys from line 8.
func entry(extra string) string {
	s := "nudges:\n  - id: x-1\n    role: lead\n    theme: leading\n    prompt: Do it.\n    why: Because.\n    question: Did it?\n"
	if extra != "" {
		s += "    " + extra + "\n"
	}
	return s
}

// Ensure the checks on the whole file's shape report where things went
// wrong.
func TestParseCatalog_Shape(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"Comment only", "# nothing here\n", "the file is empty"},
		{"Scalar top level", "hello\n", `:1: the top level must be a mapping with a "nudges:" list`},
		{"Null list", "nudges:\n", `:1: the "nudges" list is empty`},
		{"Entry not mapping", "nudges:\n  - just text\n", `:2: nudge #1: an entry must be a mapping`},
		{"Two documents", "nudges: []\n---\nnudges: []\n", `:2: a second YAML document starts here`},
		{"Repeated key", "nudges:\n  - id: x-1\n    id: x-2\n", `:3: nudge "x-1": key "id" appears twice (also on line 2): keep one`},
		{"Missing id", "nudges:\n  - role: lead\n", `:2: nudge #1: "id" is missing`},
		{"Line break", "nudges:\n  - id: x-1\n    why: |\n      two\n      lines\n", `:3: nudge "x-1": why has a line break`},
		{"Alias", "nudges:\n  - &a {id: x-1}\n  - *a\n", `:3: nudge #2: an entry must be a mapping`},
		{"Unknown need", entry("needs: [standup, hot-desk]\n    fallback: F."), `:8: nudge "x-1": needs "hot-desk" is not a known setting: use team-channel, standup`},
		{"Needs without fallback", entry("needs: standup"), `:8: nudge "x-1": needs standup but has no fallback: add a fallback line`},
		{"Fallback and context only", entry("needs: [standup]\n    fallback: F.\n    context_only: true"), `:10: nudge "x-1": has both a fallback and context_only: true`},
		{"Fallback without needs", entry("fallback: F."), `:8: nudge "x-1": has a fallback but no needs`},
		{"Context only not bool", entry("needs: [standup]\n    context_only: yes please"), `:9: nudge "x-1": context_only must be true or false`},
		{"Say too long", entry("say: " + strings.Repeat("s", 121)), `:8: nudge "x-1": say is 121 characters; the limit is 120`},
		{"Strategy prompt without placeholder", entry("strategy_prompt: Share it."), `:8: nudge "x-1": strategy_prompt must contain {line} exactly once`},
		{"Strategy prompt stray brace", entry("strategy_prompt: Share {line} and {this}."), `:8: nudge "x-1": strategy_prompt has a brace outside {line}`},
		{"Arc unknown id", entry("") + "arcs:\n  generalist: [x-1, nope, x-2]\n", `:9: arc "generalist": no nudge has the id "nope"`},
		{"Arc other theme", entry("") + "arcs:\n  generalist: [x-1, x-1b, x-1c]\n", `:9: nudge "x-1": arc "generalist" includes this nudge, but its theme is leading`},
		{"Arc not transition", entry("") + "arcs:\n  leading: [x-1, x-1b, x-1c]\n", `:9: arc "leading": only the transition themes have arcs`},
		{"Arc too short", entry("") + "arcs:\n  generalist: [x-1]\n", `:9: arc "generalist" has 1 steps: give it 3 to 7`},
		{"Arc repeats", entry("") + "arcs:\n  generalist: [x-1, x-1, x-1]\n", `:9: arc "generalist" lists "x-1" twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCatalog("f.yaml", []byte(tt.data))
			if !errors.Is(err, ErrInvalidCatalog) {
				t.Fatalf("err=%v, want ErrInvalidCatalog", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err=%q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// Ensure every limit accepts its maximum and rejects one more, counting
// runes rather than bytes.
func TestNudgeValidate_Limits(t *testing.T) {
	good := Nudge{ID: "x-1", Role: RoleLead, Theme: ThemeLeading, Prompt: "Do it.", Why: "Because.", Question: "Did it?"}
	tests := []struct {
		name   string
		edit   func(*Nudge)
		wantOK bool
		want   string
	}{
		{"OK", func(*Nudge) {}, true, ""},
		{"Prompt at limit", func(n *Nudge) { n.Prompt = strings.Repeat("a", 200) }, true, ""},
		{"Prompt at limit in runes", func(n *Nudge) { n.Prompt = strings.Repeat("é", 200) }, true, ""},
		{"Prompt over limit", func(n *Nudge) { n.Prompt = strings.Repeat("é", 201) }, false, "prompt is 201 characters; the limit is 200"},
		{"Why at limit", func(n *Nudge) { n.Why = strings.Repeat("w", 160) }, true, ""},
		{"Why over limit", func(n *Nudge) { n.Why = strings.Repeat("w", 161) }, false, "why is 161 characters; the limit is 160"},
		{"Question at limit", func(n *Nudge) { n.Question = strings.Repeat("q", 149) + "?" }, true, ""},
		{"Question over limit", func(n *Nudge) { n.Question = strings.Repeat("q", 150) + "?" }, false, "question is 151 characters; the limit is 150"},
		{"Id at limit", func(n *Nudge) { n.ID = strings.Repeat("a", 64) }, true, ""},
		{"Id over limit", func(n *Nudge) { n.ID = strings.Repeat("a", 65) }, false, "is not kebab-case"},
		{"Id too short", func(n *Nudge) { n.ID = "a" }, false, "is not kebab-case"},
		{"Id two characters", func(n *Nudge) { n.ID = "a1" }, true, ""},
		{"Id upper case", func(n *Nudge) { n.ID = "Abc" }, false, "is not kebab-case"},
		{"Id leading hyphen", func(n *Nudge) { n.ID = "-abc" }, false, "is not kebab-case"},
		{"Blank prompt", func(n *Nudge) { n.Prompt = "   " }, false, `"prompt" is missing`},
		{"Missing role", func(n *Nudge) { n.Role = "" }, false, `"role" is missing`},
		{"Missing theme", func(n *Nudge) { n.Theme = "" }, false, `"theme" is missing`},
		{"Prompt line break", func(n *Nudge) { n.Prompt = "Do\nit." }, false, "prompt has a line break"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := good
			tt.edit(&n)
			err := n.Validate()
			if tt.wantOK {
				if err != nil {
					t.Errorf("Validate()=%v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidCatalog) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate()=%v, want ErrInvalidCatalog containing %q", err, tt.want)
			}
		})
	}
}

// writeCatalog writes a catalog file into a fresh temporary directory.
func writeCatalog(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "extra.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Ensure an overlay replaces nudges by id in place, appends new ones, and
// leaves the base catalog untouched.
func TestLoadCatalogFile(t *testing.T) {
	base := mustDefault(t)
	const replaced = "strategy-01-two-sentence-update"
	pos := slices.IndexFunc(base.All(), func(n Nudge) bool { return n.ID == replaced })
	if pos < 0 {
		t.Fatalf("base has no %s", replaced)
	}
	orig, _ := base.Get(replaced)
	path := writeCatalog(t, `version: 1
nudges:
  - id: strategy-01-two-sentence-update
    role: manage
    theme: strategy
    prompt: "Tell the team in two sentences where we are going and how the last month went."
    why: "Our own wording for the monthly update."
    question: "What did they ask next?"
  - id: acme-01-values-walk
    role: lead
    theme: leading
    prompt: "Walk the floor and ask one person which ACME value they saw today."
    why: "ACME runs on its values."
    question: "Which value came up most?"
`)

	t.Run("OK", func(t *testing.T) {
		c, err := LoadCatalogFile(base, path)
		if err != nil {
			t.Fatalf("LoadCatalogFile: %v", err)
		}
		if c.Len() != base.Len()+1 {
			t.Errorf("Len()=%d, want %d", c.Len(), base.Len()+1)
		}
		all := c.All()
		if got := all[pos]; got.ID != replaced || got.Role != RoleManage || !strings.HasPrefix(got.Prompt, "Tell the team") {
			t.Errorf("All()[%d]=%+v, want the overlay's %s in place", pos, got, replaced)
		}
		if got := all[len(all)-1].ID; got != "acme-01-values-walk" {
			t.Errorf("last id=%s, want the added acme-01-values-walk", got)
		}
		if n, ok := c.Get("acme-01-values-walk"); !ok || n.Theme != ThemeLeading {
			t.Errorf("Get(added)=%+v, %v, want the new nudge", n, ok)
		}
		if n, _ := base.Get(replaced); n != orig {
			t.Errorf("base changed: Get(%s)=%+v, want %+v", replaced, n, orig)
		}
		if base.Len() == c.Len() {
			t.Errorf("base Len()=%d changed with the overlay", base.Len())
		}
	})

	t.Run("OK nil base", func(t *testing.T) {
		c, err := LoadCatalogFile(nil, path)
		if err != nil {
			t.Fatalf("LoadCatalogFile: %v", err)
		}
		if c.Len() != 2 {
			t.Errorf("Len()=%d, want 2", c.Len())
		}
	})

	t.Run("ErrNotExist", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope.yaml")
		_, err := LoadCatalogFile(base, missing)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
			t.Errorf("err=%v, want fs.ErrNotExist naming %s", err, missing)
		}
	})

	t.Run("ErrInvalidCatalog", func(t *testing.T) {
		bad := writeCatalog(t, "nudges:\n  - id: x-1\n    role: boss\n")
		_, err := LoadCatalogFile(base, bad)
		if !errors.Is(err, ErrInvalidCatalog) {
			t.Fatalf("err=%v, want ErrInvalidCatalog", err)
		}
		if want := "catalog " + bad + ":3: nudge \"x-1\": role \"boss\""; !strings.Contains(err.Error(), want) {
			t.Errorf("err=%q, want it to contain %q", err, want)
		}
	})
}

// Ensure the accessors agree and hand out copies.
func TestCatalog_Accessors(t *testing.T) {
	c := mustDefault(t)
	all := c.All()
	if len(all) != c.Len() {
		t.Fatalf("len(All())=%d, want Len()=%d", len(all), c.Len())
	}
	for _, n := range all {
		got, ok := c.Get(n.ID)
		if !ok || got != n {
			t.Errorf("Get(%s)=%+v, %v, want %+v", n.ID, got, ok, n)
		}
	}
	if _, ok := c.Get("no-such-nudge"); ok {
		t.Error("Get(no-such-nudge) found something")
	}
	first := all[0].ID
	all[0].ID = "changed"
	if c.All()[0].ID != first {
		t.Error("changing All()'s result changed the catalog")
	}
	if got := c.ByTheme("no-such-theme"); len(got) != 0 {
		t.Errorf("ByTheme(unknown)=%d nudges, want 0", len(got))
	}
	if !slices.Equal(mustDefault(t).All(), c.All()) {
		t.Error("two loads of the built-in catalog differ in content or order")
	}
}

func FuzzParseCatalog(f *testing.F) {
	f.Add([]byte(defaultCatalogYAML))
	seeds, _ := filepath.Glob(filepath.Join("testdata", "catalog-*.yaml"))
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("nudges: [{id: a-1, role: both, theme: change, prompt: p, why: w, question: q?}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ns, err := ParseCatalog("fuzz.yaml", data)
		if err != nil {
			if ns != nil {
				t.Errorf("got %d nudges with an error", len(ns))
			}
			for _, p := range problems(err) {
				if !errors.Is(p, ErrInvalidCatalog) || !strings.HasPrefix(p.Error(), "catalog fuzz.yaml") {
					t.Errorf("problem %q does not name the file or wrap ErrInvalidCatalog", p)
				}
			}
			return
		}
		if len(ns) == 0 {
			t.Error("accepted an empty catalog")
		}
		ids := map[string]bool{}
		for _, n := range ns {
			if err := n.Validate(); err != nil {
				t.Errorf("accepted an invalid nudge: %v", err)
			}
			if ids[n.ID] {
				t.Errorf("accepted a duplicate id %q", n.ID)
			}
			ids[n.ID] = true
		}
	})
}

// Ensure the writing checks catch what they are for.
func TestWritingChecks(t *testing.T) {
	tests := []struct {
		re   *regexp.Regexp
		text string
		want bool
	}{
		{roleDefinition, "Agenda-setters choose which problems deserve attention.", true},
		{roleDefinition, "Leading change means aiming at big shifts.", true},
		{roleDefinition, "Connecting people is core integrator work.", true},
		{roleDefinition, "Goals with named owners and dates move.", false},
		{jargon, "Read what a competitor shipped recently.", true},
		{jargon, "Take a metric such as churn.", true},
		{jargon, "Read what a competitor did recently.", false},
		{conversation, "Ask one person where the team is headed.", true},
		{conversation, "Write the steps in ten lines.", false},
	}
	for _, tt := range tests {
		if got := tt.re.MatchString(tt.text); got != tt.want {
			t.Errorf("%s matches %q=%v, want %v", tt.re, tt.text, got, tt.want)
		}
	}
}

// Ensure an overlay takes the new fields and arcs, replaces a base arc,
// and is refused, with its line, when it breaks an arc of the base.
func TestLoadCatalogFile_ContextsAndArcs(t *testing.T) {
	base := mustDefault(t)
	good := writeCatalog(t, `nudges:
  - id: generalist-90-acme
    role: manage
    theme: generalist
    prompt: "At the ACME standup, ask who covers for whom."
    needs: [standup]
    fallback: "No standup? Ask in the team thread."
    say: "Who covers for whom this week?"
    why: "Cover gaps show up before holidays, not during them."
    question: "Which gap surprised you?"
arcs:
  generalist: [generalist-90-acme, generalist-01-hand-over-your-craft, generalist-10-reflect-on-the-week]
`)
	c, err := LoadCatalogFile(base, good)
	if err != nil {
		t.Fatalf("LoadCatalogFile: %v", err)
	}
	if got := c.Arc(ThemeGeneralist); len(got) != 3 || got[0] != "generalist-90-acme" {
		t.Errorf("Arc(generalist)=%v, want the overlay's", got)
	}
	if got := c.Arc(ThemeDiplomat); !slices.Equal(got, base.Arc(ThemeDiplomat)) {
		t.Errorf("Arc(diplomat)=%v, want the base's", got)
	}
	if n, _ := c.Get("generalist-90-acme"); n.Needs != ContextsOf(ContextStandup) || n.Say == "" || n.Fallback == "" {
		t.Errorf("overlay nudge=%+v, want its needs, fallback and say", n)
	}

	broken := writeCatalog(t, `nudges:
  - id: diplomat-01-quiet-stakeholder
    role: lead
    theme: leading
    prompt: "Moved to leading."
    why: "Because."
    question: "Did it?"
`)
	_, err = LoadCatalogFile(base, broken)
	if want := broken + `:2: nudge "diplomat-01-quiet-stakeholder": arc "diplomat" includes this nudge, but its theme is leading`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err=%v, want it to contain %q", err, want)
	}
}
