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
}

// newCatalog indexes nudges, which must already be validated and have
// unique ids.
func newCatalog(ns []Nudge) *Catalog {
	c := &Catalog{nudges: ns, byID: make(map[string]int, len(ns))}
	for i, n := range ns {
		c.byID[n.ID] = i
	}
	return c
}

// DefaultCatalog returns the built-in catalog. It fails only if the
// embedded file is invalid, which the package's tests rule out.
func DefaultCatalog() (*Catalog, error) {
	ns, err := ParseCatalog(defaultCatalogName, []byte(defaultCatalogYAML))
	if err != nil {
		return nil, fmt.Errorf("load built-in catalog: %w", err)
	}
	return newCatalog(ns), nil
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
	overlay, err := ParseCatalog(path, data)
	if err != nil {
		return nil, err
	}
	var merged []Nudge
	index := map[string]int{}
	if base != nil {
		merged = slices.Clone(base.nudges)
		for id, i := range base.byID {
			index[id] = i
		}
	}
	for _, n := range overlay {
		if i, ok := index[n.ID]; ok {
			merged[i] = n
			continue
		}
		index[n.ID] = len(merged)
		merged = append(merged, n)
	}
	return newCatalog(merged), nil
}

// Get returns the nudge with the given id.
func (c *Catalog) Get(id string) (Nudge, bool) {
	i, ok := c.byID[id]
	if !ok {
		return Nudge{}, false
	}
	return c.nudges[i], true
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
// used only in errors. The file is a mapping with a "nudges" list and an
// optional "version: 1". Unknown keys are errors, so a typo cannot silently
// drop a field. Every problem is reported, each wrapping ErrInvalidCatalog.
func ParseCatalog(name string, data []byte) ([]Nudge, error) {
	p := &parser{name: name}
	ns := p.parse(data)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return ns, nil
}

type parser struct {
	name string
	errs []error
}

func (p *parser) fail(line int, id string, index int, format string, args ...any) {
	p.errs = append(p.errs, &CatalogError{File: p.name, Line: line, NudgeID: id, Index: index, Msg: fmt.Sprintf(format, args...)})
}

const emptyHint = `add a top-level "nudges:" list with at least one nudge`

func (p *parser) parse(data []byte) []Nudge {
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
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.yamlError(err)
		return nil
	default:
		p.fail(next.Line, "", 0, `a second YAML document starts here: keep the whole catalog in one document (remove the "---")`)
		return nil
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		p.fail(0, "", 0, "the file has no content: %s", emptyHint)
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.fail(root.Line, "", 0, `the top level must be a mapping with a "nudges:" list: %s`, emptyHint)
		return nil
	}
	var list *yaml.Node
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
		default:
			p.fail(k.Line, "", 0, `unknown key %q at the top level: the top level takes only "version" and "nudges"`, k.Value)
		}
	}
	switch {
	case list == nil:
		p.fail(root.Line, "", 0, `no "nudges" list: %s`, emptyHint)
		return nil
	case list.Kind != yaml.SequenceNode && !isNull(list):
		p.fail(list.Line, "", 0, `"nudges" must be a list: start each nudge with "- id: ..."`)
		return nil
	case len(list.Content) == 0:
		p.fail(list.Line, "", 0, `the "nudges" list is empty: add at least one nudge`)
		return nil
	}
	ns := make([]Nudge, 0, len(list.Content))
	idLines := map[string]int{}
	for i, item := range list.Content {
		n, ok := p.entry(i+1, item, idLines)
		if ok {
			ns = append(ns, n)
		}
	}
	return ns
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

// entry decodes one list item. idLines holds the line of every id seen so
// far in the file, to report duplicates.
func (p *parser) entry(index int, item *yaml.Node, idLines map[string]int) (Nudge, bool) {
	if item.Kind != yaml.MappingNode {
		p.fail(item.Line, "", index, "an entry must be a mapping of id, role, theme, prompt, why and question")
		return Nudge{}, false
	}
	var n Nudge
	type problem struct {
		line int
		msg  string
	}
	var problems []problem
	lines := map[string]int{} // field → line of its value
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		if prev, dup := lines[k.Value]; dup {
			problems = append(problems, problem{k.Line, fmt.Sprintf("key %q appears twice (also on line %d): keep one", k.Value, prev)})
			continue
		}
		dst := n.field(k.Value)
		if dst == nil {
			problems = append(problems, problem{k.Line, fmt.Sprintf("unknown key %q: a nudge takes only id, role, theme, prompt, why and question", k.Value)})
			continue
		}
		lines[k.Value] = v.Line
		switch {
		case isNull(v):
			// Reported as missing below.
		case v.Kind != yaml.ScalarNode:
			problems = append(problems, problem{v.Line, fmt.Sprintf("%s must be plain text, not a list or mapping", k.Value)})
		default:
			*dst = v.Value
		}
	}
	for _, fp := range n.problems() {
		line, ok := lines[fp.field]
		if !ok {
			line = item.Line
		}
		problems = append(problems, problem{line, fp.msg})
	}
	if prev, dup := idLines[n.ID]; dup && n.ID != "" {
		problems = append(problems, problem{lines["id"], fmt.Sprintf("the id is already used on line %d: give each nudge its own id", prev)})
	} else if n.ID != "" {
		idLines[n.ID] = lines["id"]
	}
	// Sorting by line lets a person fix the file top to bottom.
	slices.SortStableFunc(problems, func(a, b problem) int { return a.line - b.line })
	for _, pr := range problems {
		p.fail(pr.line, n.ID, index, "%s", pr.msg)
	}
	return n, len(problems) == 0
}

// field returns where the YAML key belongs in n, or nil for an unknown key.
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
	}
	return nil
}
