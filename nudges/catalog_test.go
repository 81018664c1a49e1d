package nudges

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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
// who focus on one, with a healthy mix of roles.
func TestDefaultCatalog_Coverage(t *testing.T) {
	c := mustDefault(t)
	if c.Len() < 80 {
		t.Errorf("Len()=%d, want at least 80", c.Len())
	}
	big := map[Theme]bool{ThemeLeading: true, ThemeManaging: true, ThemeStrategy: true, ThemeChange: true}
	total := 0
	for _, info := range Themes {
		ns := c.ByTheme(info.ID)
		total += len(ns)
		want := 6
		if big[info.ID] {
			want = 9
		}
		if len(ns) < want {
			t.Errorf("theme %s has %d nudges, want at least %d", info.ID, len(ns), want)
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
	if lead, manage := roles[RoleLead]+roles[RoleBoth], roles[RoleManage]+roles[RoleBoth]; manage < 30 || lead < 30 {
		t.Errorf("lead side %d, manage side %d nudges, want at least 30 each", lead, manage)
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
		for field, text := range map[string]string{"prompt": n.Prompt, "why": n.Why, "question": n.Question} {
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
