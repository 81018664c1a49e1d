package nudges

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits on a nudge's text, counted in runes. They keep a nudge readable
// at a glance in a Slack DM.
const (
	MaxPromptLen   = 200
	MaxWhyLen      = 160
	MaxQuestionLen = 150
	MaxFallbackLen = 160
	MaxSayLen      = 120
)

// defaultCatalogYAML is a string, not a []byte, so nothing can modify the
// built-in catalog at run time.
//
//go:embed catalog.yaml
var defaultCatalogYAML string

// defaultCatalogName is how errors in the built-in catalog name the file,
// so a developer knows which file to open.
const defaultCatalogName = "nudges/catalog.yaml"

// Catalog is a validated set of nudges with unique ids. It is immutable
// after loading and so safe for concurrent use.
type Catalog struct {
	nudges []Nudge
	byID   map[string]int
	arcs   map[Theme][]string // ordered nudge ids per transition theme
}

// newCatalog indexes nudges, which must already be validated and have
// unique ids, and arcs, which must refer to them.
func newCatalog(ns []Nudge, arcs ...arcDecl) *Catalog {
	c := &Catalog{nudges: ns, byID: make(map[string]int, len(ns)), arcs: map[Theme][]string{}}
	for i, n := range ns {
		c.byID[n.ID] = i
	}
	for _, a := range arcs {
		c.arcs[a.theme] = a.ids
	}
	return c
}

// DefaultCatalog returns the built-in catalog. It fails only if the
// embedded file is invalid, which the package's tests rule out.
func DefaultCatalog() (*Catalog, error) {
	f, err := parseCatalogFile(defaultCatalogName, []byte(defaultCatalogYAML))
	if err != nil {
		return nil, fmt.Errorf("load built-in catalog: %w", err)
	}
	return newCatalog(f.nudges, f.arcs...), nil
}

// LoadCatalogFile returns base overlaid with the nudges in the YAML file
// at path: an entry whose id is already in base replaces it in place, and
// new entries follow base's in file order. base is not changed and may be
// nil. A bad file yields every problem in it, each wrapping
// ErrInvalidCatalog and naming path and line.
func LoadCatalogFile(base *Catalog, path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w: check the path and that the file is readable", err)
	}
	p := &parser{name: path}
	overlay := p.parse(data)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	var merged []Nudge
	index := map[string]int{}
	arcs := map[Theme]arcDecl{}
	if base != nil {
		merged = slices.Clone(base.nudges)
		for id, i := range base.byID {
			index[id] = i
		}
		for t, ids := range base.arcs {
			arcs[t] = arcDecl{theme: t, ids: ids}
		}
	}
	for _, n := range overlay.nudges {
		if i, ok := index[n.ID]; ok {
			merged[i] = n
			continue
		}
		index[n.ID] = len(merged)
		merged = append(merged, n)
	}
	for _, a := range overlay.arcs {
		arcs[a.theme] = a
	}
	all := make([]arcDecl, 0, len(arcs))
	for _, info := range Themes {
		if a, ok := arcs[info.ID]; ok {
			all = append(all, a)
		}
	}
	// A base arc is checked too: the overlay may have replaced one of its
	// nudges with one of another theme.
	p.checkArcs(all, merged, index, overlay.lines)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return newCatalog(merged, all...), nil
}

// Get returns the nudge with the given id.
func (c *Catalog) Get(id string) (Nudge, bool) {
	i, ok := c.byID[id]
	if !ok {
		return Nudge{}, false
	}
	return c.nudges[i], true
}

// Resolve is Get for an id from people's history: a retired id gives the
// nudge it was merged into, so an old delivery still shows its prompt and
// its buttons still work.
func (c *Catalog) Resolve(id string) (Nudge, bool) {
	if n, ok := c.Get(id); ok {
		return n, true
	}
	if into, ok := retiredIDs[id]; ok {
		return c.Get(into)
	}
	return Nudge{}, false
}

// retiredIDs are nudges merged into another because they asked for the
// same action. Their ids stay retired (bringing one back would bring the
// duplicate back), but people's history still refers to them, so Resolve
// maps each to the nudge it became.
var retiredIDs = map[string]string{
	"integrator-06-dependency-map":        "diplomat-01-quiet-stakeholder",
	"strategist-04-pattern-in-the-fires":  "architect-01-recurring-problem",
	"generalist-03-give-away-an-approval": "every-level-02-lend-a-decision",
	"change-07-remove-a-barrier":          "managing-05-clear-a-blocker",
	"managing-10-milestones":              "change-08-one-page-roadmap",
	"strategy-07-tag-the-objective":       "leading-03-purpose-before-task",
	"leading-10-wind-down-one":            "strategist-01-stop-list",
	"leading-05-name-the-behaviour":       "leading-08-specific-thanks",
	"strategy-03-least-clear-part":        "leading-02-hear-the-vision-back",
	"strategy-12-view-from-the-floor":     "strategy-04-carry-it-up",
	"leading-11-why-we-exist":             "leading-01-success-in-three-lines",
	"strategy-06-one-slide-why":           "leading-01-success-in-three-lines",
	"leading-12-outcome-on-top":           "leading-01-success-in-three-lines",
	// Merged when the catalog was rewritten against the blind review.
	"developing-01-ask-dont-tell":          "developing-07-coaching-question",
	"developing-06-feedback-in-the-moment": "developing-13-name-the-skill",
	"change-06-hand-over-a-decision":       "every-level-02-lend-a-decision",
	"lead-role-08-own-the-follow-up":       "diplomat-08-agreement-note",
}

// All returns every nudge in catalog order: built-in file order, then
// overlay additions. The slice is the caller's to keep.
func (c *Catalog) All() []Nudge { return slices.Clone(c.nudges) }

// Len returns the number of nudges.
func (c *Catalog) Len() int { return len(c.nudges) }

// ByTheme returns the nudges of one theme in catalog order.
func (c *Catalog) ByTheme(t Theme) []Nudge {
	var out []Nudge
	for _, n := range c.nudges {
		if n.Theme == t {
			out = append(out, n)
		}
	}
	return out
}

// CatalogError is one problem in a catalog. ParseCatalog reports every
// problem it finds, joined with errors.Join, so a whole file can be fixed
// in one pass. Each CatalogError wraps ErrInvalidCatalog.
type CatalogError struct {
	File    string // the name given to ParseCatalog; empty from Nudge.Validate
	Line    int    // 1-based; 0 when no single line is at fault
	NudgeID string // the nudge's id, when it has one
	Index   int    // the nudge's 1-based position in the list, when it has no id
	Msg     string // what is wrong and how to fix it
}

func (e *CatalogError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString("catalog ")
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	switch {
	case e.NudgeID != "":
		fmt.Fprintf(&b, "nudge %q: ", e.NudgeID)
	case e.Index > 0:
		fmt.Fprintf(&b, "nudge #%d: ", e.Index)
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *CatalogError) Unwrap() error { return ErrInvalidCatalog }

// Validate reports every problem with n: a missing field, an unknown role
// or theme, an id that is not kebab-case, or text over its limit. The
// error wraps ErrInvalidCatalog.
func (n Nudge) Validate() error {
	var errs []error
	for _, p := range n.problems() {
		errs = append(errs, &CatalogError{NudgeID: n.ID, Msg: p.msg})
	}
	return errors.Join(errs...)
}

// fieldProblem is a problem with one field of a nudge; the parser turns
// the field into a line number.
type fieldProblem struct {
	field string
	msg   string
}

func (n Nudge) problems() []fieldProblem {
	var ps []fieldProblem
	add := func(field, format string, args ...any) {
		ps = append(ps, fieldProblem{field, fmt.Sprintf(format, args...)})
	}
	switch {
	case n.ID == "":
		add("id", `"id" is missing: add a kebab-case id such as "strategy-13-town-hall"`)
	case !validID(n.ID):
		add("id", "id %q is not kebab-case: use 2 to 64 lowercase letters, digits and hyphens, starting with a letter or digit", n.ID)
	}
	switch n.Role {
	case RoleLead, RoleManage, RoleBoth:
	case "":
		add("role", `"role" is missing: add role: lead, manage or both`)
	default:
		add("role", "role %q is unknown: use lead, manage or both", n.Role)
	}
	if _, ok := LookupTheme(n.Theme); !ok {
		if n.Theme == "" {
			add("theme", `"theme" is missing: add one of %s`, themeList())
		} else {
			add("theme", "theme %q is unknown: use one of %s", n.Theme, themeList())
		}
	}
	text := func(field, v string, limit int, addHint, shortenHint string) {
		switch count := utf8.RuneCountInString(v); {
		case strings.TrimSpace(v) == "":
			add(field, "%q is missing: %s", field, addHint)
		case strings.ContainsAny(v, "\r\n"):
			add(field, `%s has a line break: keep it on one line (a ">-" block folds lines into one)`, field)
		case count > limit:
			add(field, "%s is %d characters; the limit is %d: %s", field, count, limit, shortenHint)
		}
	}
	text("prompt", n.Prompt, MaxPromptLen, "add one concrete thing to do today", "shorten it to one concrete action")
	text("why", n.Why, MaxWhyLen, "add one line tying the prompt to its idea", "keep it to one short line")
	text("question", n.Question, MaxQuestionLen, `add a reflection question ending in "?"`, "ask one short question")
	if strings.TrimSpace(n.Question) != "" && !strings.HasSuffix(n.Question, "?") {
		add("question", `question must end with "?": phrase it as a question`)
	}
	optional := func(field, v string, limit int, shortenHint string) {
		switch count := utf8.RuneCountInString(v); {
		case v == "":
		case strings.TrimSpace(v) == "":
			add(field, "%s is blank: write it or remove the key", field)
		case strings.ContainsAny(v, "\r\n"):
			add(field, `%s has a line break: keep it on one line (a ">-" block folds lines into one)`, field)
		case count > limit:
			add(field, "%s is %d characters; the limit is %d: %s", field, count, limit, shortenHint)
		}
	}
	optional("fallback", n.Fallback, MaxFallbackLen, "keep it to one line on how to do it without that setting")
	optional("say", n.Say, MaxSayLen, "keep it to one sentence a person could say")
	ps = append(ps, n.contextProblems()...)
	ps = append(ps, n.strategyPromptProblems()...)
	return ps
}

// contextProblems enforces the rule that nobody gets a nudge they cannot
// act on: needs come with a fallback, or the nudge is marked context-only.
func (n Nudge) contextProblems() []fieldProblem {
	var ps []fieldProblem
	switch {
	case n.Needs != 0 && n.Fallback == "" && !n.ContextOnly:
		ps = append(ps, fieldProblem{"needs", fmt.Sprintf("needs %s but has no fallback: add a fallback line on how to do it without that, or context_only: true if it cannot be done without it", n.Needs)})
	case n.Needs != 0 && n.Fallback != "" && n.ContextOnly:
		ps = append(ps, fieldProblem{"context_only", "has both a fallback and context_only: true: keep the fallback, or remove it if the nudge cannot be done without its setting"})
	case n.Needs == 0 && n.Fallback != "":
		ps = append(ps, fieldProblem{"fallback", "has a fallback but no needs: add needs (one of " + contextList() + ") or remove the fallback"})
	case n.Needs == 0 && n.ContextOnly:
		ps = append(ps, fieldProblem{"context_only", "is context_only but has no needs: add needs (one of " + contextList() + ") or remove context_only"})
	}
	return ps
}

func (n Nudge) strategyPromptProblems() []fieldProblem {
	v := n.StrategyPrompt
	if v == "" {
		return nil
	}
	var ps []fieldProblem
	add := func(format string, args ...any) {
		ps = append(ps, fieldProblem{"strategy_prompt", fmt.Sprintf(format, args...)})
	}
	rest := strings.Replace(v, StrategyPlaceholder, "", 1)
	switch {
	case strings.Count(v, StrategyPlaceholder) != 1:
		add("strategy_prompt must contain %s exactly once, where a strategy line is quoted", StrategyPlaceholder)
	case strings.ContainsAny(rest, "{}"):
		add("strategy_prompt has a brace outside %s: the only placeholder is %s", StrategyPlaceholder, StrategyPlaceholder)
	case strings.ContainsAny(v, "\r\n"):
		add("strategy_prompt has a line break: keep it on one line")
	case utf8.RuneCountInString(rest) > MaxPromptLen:
		add("strategy_prompt is %d characters without %s; the limit is %d: shorten it to one concrete action", utf8.RuneCountInString(rest), StrategyPlaceholder, MaxPromptLen)
	}
	return ps
}

// idPattern is the id rule from the catalog's documentation.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,63}$`)

func validID(id string) bool { return idPattern.MatchString(id) }

func themeList() string {
	ids := make([]string, len(Themes))
	for i, t := range Themes {
		ids[i] = string(t.ID)
	}
	return strings.Join(ids, ", ")
}

// ParseCatalog decodes and validates a catalog file's contents; name is
// used only in errors. The file is a mapping with a "nudges" list, an
// optional "arcs" mapping and an optional "version: 1". Unknown keys are
// errors, so a typo cannot silently drop a field. Arcs must refer to
// nudges in the same file. Every problem is reported, each wrapping
// ErrInvalidCatalog.
func ParseCatalog(name string, data []byte) ([]Nudge, error) {
	f, err := parseCatalogFile(name, data)
	if err != nil {
		return nil, err
	}
	return f.nudges, nil
}

// catalogFile is a parsed catalog file: its nudges, its arcs, and the line
// of each nudge's id, for messages about arcs.
type catalogFile struct {
	nudges []Nudge
	arcs   []arcDecl
	lines  map[string]int
}

// arcDecl is one theme's arc as written in a file.
type arcDecl struct {
	theme   Theme
	line    int // of the theme's key; 0 for an arc from the base catalog
	ids     []string
	idLines []int
}

func parseCatalogFile(name string, data []byte) (catalogFile, error) {
	p := &parser{name: name}
	f := p.parse(data)
	if len(p.errs) == 0 {
		index := make(map[string]int, len(f.nudges))
		for i, n := range f.nudges {
			index[n.ID] = i
		}
		p.checkArcs(f.arcs, f.nudges, index, f.lines)
	}
	if len(p.errs) > 0 {
		return catalogFile{}, errors.Join(p.errs...)
	}
	return f, nil
}

type parser struct {
	name string
	errs []error
}

func (p *parser) fail(line int, id string, index int, format string, args ...any) {
	p.errs = append(p.errs, &CatalogError{File: p.name, Line: line, NudgeID: id, Index: index, Msg: fmt.Sprintf(format, args...)})
}

const emptyHint = `add a top-level "nudges:" list with at least one nudge`

// MinArcLen and MaxArcLen bound an arc: about a working week.
const (
	MinArcLen = 3
	MaxArcLen = 7
)

func (p *parser) parse(data []byte) catalogFile {
	f := catalogFile{lines: map[string]int{}}
	// Walking a yaml.Node rather than decoding into structs keeps line
	// numbers for every message and never expands aliases.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.fail(0, "", 0, "the file is empty: %s", emptyHint)
		} else {
			p.yamlError(err)
		}
		return f
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.yamlError(err)
		return f
	default:
		p.fail(next.Line, "", 0, `a second YAML document starts here: keep the whole catalog in one document (remove the "---")`)
		return f
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		p.fail(0, "", 0, "the file has no content: %s", emptyHint)
		return f
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.fail(root.Line, "", 0, `the top level must be a mapping with a "nudges:" list: %s`, emptyHint)
		return f
	}
	var list, arcs *yaml.Node
	keys := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if prev, dup := keys[k.Value]; dup {
			p.fail(k.Line, "", 0, "key %q appears twice (also on line %d): keep one", k.Value, prev)
			continue
		}
		keys[k.Value] = k.Line
		switch k.Value {
		case "version":
			if v.Kind != yaml.ScalarNode || v.Value != "1" {
				p.fail(v.Line, "", 0, "version %q is not supported: use version: 1 or leave it out", v.Value)
			}
		case "nudges":
			list = v
		case "arcs":
			arcs = v
		default:
			p.fail(k.Line, "", 0, `unknown key %q at the top level: the top level takes only "version", "nudges" and "arcs"`, k.Value)
		}
	}
	if arcs != nil {
		f.arcs = p.arcs(arcs)
	}
	switch {
	case list == nil:
		p.fail(root.Line, "", 0, `no "nudges" list: %s`, emptyHint)
		return f
	case list.Kind != yaml.SequenceNode && !isNull(list):
		p.fail(list.Line, "", 0, `"nudges" must be a list: start each nudge with "- id: ..."`)
		return f
	case len(list.Content) == 0:
		p.fail(list.Line, "", 0, `the "nudges" list is empty: add at least one nudge`)
		return f
	}
	f.nudges = make([]Nudge, 0, len(list.Content))
	for i, item := range list.Content {
		n, ok := p.entry(i+1, item, f.lines)
		if ok {
			f.nudges = append(f.nudges, n)
		}
	}
	return f
}

// arcs decodes the top-level "arcs" mapping: a transition theme's id to
// the ordered list of its nudges' ids.
func (p *parser) arcs(node *yaml.Node) []arcDecl {
	const shape = `"arcs" maps a transition theme to its nudge ids in order, e.g. "generalist: [generalist-05-calendar-audit, ...]"`
	if isNull(node) {
		return nil
	}
	if node.Kind != yaml.MappingNode {
		p.fail(node.Line, "", 0, "%s", shape)
		return nil
	}
	var out []arcDecl
	seen := map[string]int{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		if prev, dup := seen[k.Value]; dup {
			p.fail(k.Line, "", 0, "arc %q appears twice (also on line %d): keep one", k.Value, prev)
			continue
		}
		seen[k.Value] = k.Line
		info, ok := LookupTheme(Theme(k.Value))
		switch {
		case !ok:
			p.fail(k.Line, "", 0, "arc %q is not a theme: use one of the transition themes: %s", k.Value, transitionList())
			continue
		case !info.Transition:
			p.fail(k.Line, "", 0, "arc %q: only the transition themes have arcs: %s", k.Value, transitionList())
			continue
		case v.Kind != yaml.SequenceNode:
			p.fail(v.Line, "", 0, "arc %q must be a list of nudge ids: %s", k.Value, shape)
			continue
		case len(v.Content) < MinArcLen || len(v.Content) > MaxArcLen:
			p.fail(v.Line, "", 0, "arc %q has %d steps: give it %d to %d, about a working week", k.Value, len(v.Content), MinArcLen, MaxArcLen)
			continue
		}
		a := arcDecl{theme: info.ID, line: k.Line}
		ok = true
		for _, item := range v.Content {
			if item.Kind != yaml.ScalarNode || item.Value == "" {
				p.fail(item.Line, "", 0, "arc %q: each step must be a nudge id", k.Value)
				ok = false
				continue
			}
			if slices.Contains(a.ids, item.Value) {
				p.fail(item.Line, "", 0, "arc %q lists %q twice: each step must be a different nudge", k.Value, item.Value)
				ok = false
				continue
			}
			a.ids = append(a.ids, item.Value)
			a.idLines = append(a.idLines, item.Line)
		}
		if ok {
			out = append(out, a)
		}
	}
	return out
}

// checkArcs reports each arc step that names no nudge, a nudge of another
// theme, or one that only some people could be given. lines holds the
// file's nudge id lines, to point at a nudge that broke a base arc.
func (p *parser) checkArcs(arcs []arcDecl, ns []Nudge, index map[string]int, lines map[string]int) {
	for _, a := range arcs {
		for j, id := range a.ids {
			line := lines[id]
			if a.line > 0 {
				line = a.idLines[j]
			}
			i, ok := index[id]
			switch {
			case !ok:
				p.fail(line, "", 0, "arc %q: no nudge has the id %q: use the id of a %s nudge", a.theme, id, a.theme)
			case ns[i].Theme != a.theme:
				p.fail(line, id, 0, "arc %q includes this nudge, but its theme is %s: an arc's steps are all of its theme", a.theme, ns[i].Theme)
			case ns[i].ContextOnly:
				p.fail(line, id, 0, "arc %q includes this nudge, but it is context_only: give it a fallback so everyone on the arc can do it", a.theme)
			}
		}
	}
}

func transitionList() string {
	var ids []string
	for _, t := range Themes {
		if t.Transition {
			ids = append(ids, string(t.ID))
		}
	}
	return strings.Join(ids, ", ")
}

// yamlLine picks the line out of the yaml package's "yaml: line N: ..."
// messages so syntax errors read like every other problem.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) yamlError(err error) {
	const hint = "check the indentation and quoting near that line"
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.fail(line, "", 0, "not valid YAML (%s): %s", m[2], hint)
		return
	}
	p.fail(0, "", 0, "not valid YAML (%s): %s", strings.TrimPrefix(msg, "yaml: "), hint)
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// nudgeKeys lists the keys a nudge takes, for messages.
const nudgeKeys = "id, role, theme, prompt, why, question, needs, fallback, context_only, say and strategy_prompt"

type lineProblem struct {
	line int
	msg  string
}

// entry decodes one list item. idLines holds the line of every id seen so
// far in the file, to report duplicates.
func (p *parser) entry(index int, item *yaml.Node, idLines map[string]int) (Nudge, bool) {
	if item.Kind != yaml.MappingNode {
		p.fail(item.Line, "", index, "an entry must be a mapping of "+nudgeKeys)
		return Nudge{}, false
	}
	var n Nudge
	var problems []lineProblem
	lines := map[string]int{} // field → line of its value
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		if prev, dup := lines[k.Value]; dup {
			problems = append(problems, lineProblem{k.Line, fmt.Sprintf("key %q appears twice (also on line %d): keep one", k.Value, prev)})
			continue
		}
		switch k.Value {
		case "needs":
			lines[k.Value] = v.Line
			problems = append(problems, n.decodeNeeds(v)...)
			continue
		case "context_only":
			lines[k.Value] = v.Line
			switch {
			case v.Kind == yaml.ScalarNode && v.Value == "true":
				n.ContextOnly = true
			case v.Kind == yaml.ScalarNode && (v.Value == "false" || isNull(v)):
			default:
				problems = append(problems, lineProblem{v.Line, "context_only must be true or false"})
			}
			continue
		}
		dst := n.field(k.Value)
		if dst == nil {
			problems = append(problems, lineProblem{k.Line, fmt.Sprintf("unknown key %q: a nudge takes only %s", k.Value, nudgeKeys)})
			continue
		}
		lines[k.Value] = v.Line
		switch {
		case isNull(v):
			// Reported as missing below.
		case v.Kind != yaml.ScalarNode:
			problems = append(problems, lineProblem{v.Line, fmt.Sprintf("%s must be plain text, not a list or mapping", k.Value)})
		default:
			*dst = v.Value
		}
	}
	for _, fp := range n.problems() {
		line, ok := lines[fp.field]
		if !ok {
			line = item.Line
		}
		problems = append(problems, lineProblem{line, fp.msg})
	}
	if prev, dup := idLines[n.ID]; dup && n.ID != "" {
		problems = append(problems, lineProblem{lines["id"], fmt.Sprintf("the id is already used on line %d: give each nudge its own id", prev)})
	} else if n.ID != "" {
		idLines[n.ID] = lines["id"]
	}
	// Sorting by line lets a person fix the file top to bottom.
	slices.SortStableFunc(problems, func(a, b lineProblem) int { return a.line - b.line })
	for _, pr := range problems {
		p.fail(pr.line, n.ID, index, "%s", pr.msg)
	}
	return n, len(problems) == 0
}

// decodeNeeds reads needs as a list of context ids ("[standup,
// team-channel]") or a single id.
func (n *Nudge) decodeNeeds(v *yaml.Node) []lineProblem {
	var items []*yaml.Node
	switch {
	case isNull(v):
		return nil
	case v.Kind == yaml.ScalarNode:
		items = []*yaml.Node{v}
	case v.Kind == yaml.SequenceNode:
		items = v.Content
	default:
		return []lineProblem{{v.Line, "needs must be a list of settings, e.g. needs: [standup]"}}
	}
	var ps []lineProblem
	for _, it := range items {
		b, ok := contextBit(Context(it.Value))
		if it.Kind != yaml.ScalarNode || !ok {
			ps = append(ps, lineProblem{it.Line, fmt.Sprintf("needs %q is not a known setting: use %s", it.Value, contextList())})
			continue
		}
		n.Needs |= b
	}
	return ps
}

// field returns where the YAML key of a text field belongs in n, or nil
// for an unknown key.
func (n *Nudge) field(key string) *string {
	switch key {
	case "id":
		return &n.ID
	case "role":
		return (*string)(&n.Role)
	case "theme":
		return (*string)(&n.Theme)
	case "prompt":
		return &n.Prompt
	case "why":
		return &n.Why
	case "question":
		return &n.Question
	case "fallback":
		return &n.Fallback
	case "say":
		return &n.Say
	case "strategy_prompt":
		return &n.StrategyPrompt
	}
	return nil
}
