package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decodeYAML decodes data into cfg by walking the YAML node tree against
// cfg's type rather than calling yaml's own decoder: that way every unknown
// key, duplicate key and wrong type is reported with its line, all of them
// at once, and a value in a secret field is never echoed. Lines of the
// keys it sets are recorded in lines for later messages. It reports false
// when the file is not YAML at all, so nothing else about it can be said.
func decodeYAML(name string, data []byte, cfg *Config, lines map[string]int, p *problems) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			p.addf("%s", syntaxMessage(name, data, err))
			return false
		}
		return true // an empty file means all defaults
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		p.addf("%s: a second YAML document starts here: keep the whole configuration in one document (remove the ---)", place{text: fmt.Sprintf("%s:%d", name, extra.Line), line: extra.Line})
	case !errors.Is(err, io.EOF):
		p.addf("%s", syntaxMessage(name, data, err))
		return false
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return true
		}
		root = root.Content[0]
	}
	d := decoder{name: name, lines: lines, p: p}
	d.value(root, reflect.ValueOf(cfg).Elem(), "")
	return true
}

var (
	yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	// A value starting with * reads as an alias to YAML; cron specs
	// often do.
	unquotedStar = regexp.MustCompile(`(^|[:-])\s+\*`)
)

// syntaxMessage rewrites yaml's "yaml: line 3: …" into the usual
// "file:3: …" form and adds the fix for the commonest cron mistake.
func syntaxMessage(name string, data []byte, err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		line = problemLine(data, msg, line)
	}
	hint := "the file is not valid YAML: check indentation and quoting"
	if lines := strings.Split(string(data), "\n"); line > 0 && line <= len(lines) && unquotedStar.MatchString(lines[line-1]) ||
		strings.Contains(msg, "unknown anchor") {
		hint += `; a cron spec that starts with * must be quoted, e.g. "*/30 9 * * *"`
	}
	if line == 0 {
		return fmt.Sprintf("%s: %s (%s)", name, msg, hint)
	}
	return fmt.Sprintf("%s:%d: %s (%s)", name, line, msg, hint)
}

// maxProblemSearch bounds the lines problemLine parses prefixes of, so
// a huge file cannot make an error message cost much: configs are a few
// hundred lines.
const maxProblemSearch = 1000

// problemLine finds the line a syntax error is really on. yaml reports
// some errors at the start of the construct they broke rather than where
// it broke: a key indented too far ("did not find expected key") is
// reported at the first key of its mapping, which can be forty lines up.
// The shortest prefix of the file that fails with the same message ends
// at the line to fix; one that fails otherwise (a prefix cut inside a
// quoted or flow value) is not the answer, and the reported line stands.
func problemLine(data []byte, msg string, reported int) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	prefix := make([]byte, 0, len(data))
	for i, l := range lines {
		prefix = append(prefix, l...)
		if i+1 < reported {
			continue
		}
		if i+1 > maxProblemSearch {
			break
		}
		var n yaml.Node
		err := yaml.Unmarshal(prefix, &n)
		if err == nil {
			continue
		}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil && m[2] == msg {
			return i + 1
		}
	}
	return reported
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	holidayType  = reflect.TypeFor[Holiday]()
	secretType   = reflect.TypeFor[Secret]()
)

type decoder struct {
	name  string
	lines map[string]int
	p     *problems
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.p.addf("%s: %s", place{text: fmt.Sprintf("%s:%d", d.name, n.Line), line: n.Line}, fmt.Sprintf(format, args...))
}

// value decodes n into v. Null leaves v at its default, so "key:" with
// nothing after it means "use the default".
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") {
		return
	}
	t := v.Type()
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			d.wrongType(n, v, path, "a duration such as 10s or 2h")
			return
		}
		dur, err := parseDuration(n.Value)
		if err != nil {
			d.errorf(n, "%s: %q is not a duration: write a number with a unit, e.g. 10s, 90m or 2h", path, n.Value)
			return
		}
		v.SetInt(int64(dur))
		return
	case t == holidayType && n.Kind == yaml.ScalarNode:
		d.lines[path+".date"] = n.Line
		v.Set(reflect.ValueOf(Holiday{Date: n.Value}))
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		d.list(n, v, path)
	case reflect.Map:
		d.dict(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.wrongType(n, v, path, "a single value")
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode {
			d.wrongType(n, v, path, "a whole number")
			return
		}
		i, err := strconv.Atoi(n.Value)
		if err != nil {
			d.errorf(n, "%s: expected a whole number, got %q", path, n.Value)
			return
		}
		v.SetInt(int64(i))
	default:
		panic(fmt.Sprintf("config: no YAML decoding for %s (%s)", t, path))
	}
}

// parseDuration reads a Go duration ("90m", "2h") or a whole number of
// days ("400d"), which a retention period is naturally written in and Go
// has no unit for.
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number of days", s)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func (d *decoder) wrongType(n *yaml.Node, v reflect.Value, path, want string) {
	got := "a single value"
	switch n.Kind {
	case yaml.MappingNode:
		got = "a mapping (key: value lines)"
	case yaml.SequenceNode:
		got = "a list"
	case yaml.ScalarNode:
		if v.Type() != secretType {
			got = strconv.Quote(n.Value)
		}
	}
	if path == "" {
		d.errorf(n, "the file must be a mapping of keys (slack:, storage:, nudges: …), got %s", got)
		return
	}
	d.errorf(n, "%s: expected %s, got %s", path, want, got)
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, v, path, "a mapping (key: value lines)")
		return
	}
	names := yamlNames(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, ok := d.key(n.Content[i], path, seen)
		if !ok {
			continue
		}
		full := joinPath(path, k.Value)
		idx := -1
		for j, name := range names {
			if name != "" && name == k.Value {
				idx = j
			}
		}
		if idx < 0 {
			d.unknownKey(k, path, full, names)
			continue
		}
		d.lines[full] = k.Line
		d.value(n.Content[i+1], v.Field(idx), full)
	}
}

func (d *decoder) list(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.wrongType(n, v, path, "a list")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = e.Line
		d.value(e, s.Index(i), p)
	}
	v.Set(s)
}

func (d *decoder) dict(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, v, path, "a mapping (key: value lines)")
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, ok := d.key(n.Content[i], path, seen)
		if !ok {
			continue
		}
		full := joinPath(path, k.Value)
		d.lines[full] = k.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.value(n.Content[i+1], e, full)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
	}
	v.Set(m)
}

// key checks a mapping key is a plain, first-time name.
func (d *decoder) key(k *yaml.Node, path string, seen map[string]int) (*yaml.Node, bool) {
	k = resolve(k)
	switch {
	case k == nil || k.Kind != yaml.ScalarNode:
		if k != nil {
			d.errorf(k, "%s: keys must be plain names, not lists or mappings", orRoot(path))
		}
		return nil, false
	case k.ShortTag() == "!!merge":
		d.errorf(k, "%s: merge keys (<<) are not supported: write the keys out", orRoot(path))
		return nil, false
	}
	if first, dup := seen[k.Value]; dup {
		d.errorf(k, "%s is set twice (first on line %d): keep one", joinPath(path, k.Value), first)
		return nil, false
	}
	seen[k.Value] = k.Line
	return k, true
}

func (d *decoder) unknownKey(k *yaml.Node, parent, full string, siblings []string) {
	if s := suggest(k.Value, siblings); s != "" {
		d.errorf(k, "unknown key %q; did you mean %q?", full, joinPath(parent, s))
		return
	}
	// A right name at the wrong level, e.g. "schedule" at the top.
	if parent == "" {
		for _, p := range leafPaths(reflect.TypeFor[Config](), "") {
			if strings.HasSuffix(p, "."+k.Value) && !strings.Contains(p, "[") {
				d.errorf(k, "unknown key %q; did you mean %q? (check the indentation)", full, p)
				return
			}
		}
	}
	d.errorf(k, "unknown key %q: remove it, or see config.example.yaml for the keys nudgebot reads", full)
}

// suggest returns the sibling closest to key, if it is close enough to
// be a typo: within two edits and less than half the name.
func suggest(key string, siblings []string) string {
	best, bestDist := "", 3
	for _, s := range siblings {
		if dist := levenshtein(key, s); dist < bestDist && 2*dist < len(s) {
			best, bestDist = s, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// yamlNames lists the yaml key of each field of struct type t, by index;
// "" marks a field the file cannot set.
func yamlNames(t reflect.Type) []string {
	names := make([]string, t.NumField())
	for i := range names {
		f := t.Field(i)
		if t == holidayType {
			names[i] = holidayKey(f.Name)
			continue
		}
		names[i], _, _ = strings.Cut(f.Tag.Get("yaml"), ",")
	}
	return names
}

// leafPaths lists every key path under t, with "[]" marking list
// elements; it is how the example file is checked to document every key.
func leafPaths(t reflect.Type, prefix string) []string {
	var out []string
	switch {
	case t == durationType || t.Kind() != reflect.Struct && t.Kind() != reflect.Slice:
		return []string{prefix}
	case t.Kind() == reflect.Slice:
		return leafPaths(t.Elem(), prefix+"[]")
	}
	for i, name := range yamlNames(t) {
		if name != "" {
			out = append(out, leafPaths(t.Field(i).Type, joinPath(prefix, name))...)
		}
	}
	return out
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}
