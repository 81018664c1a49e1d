package config_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/nudgebot/nudgebot/config"
)

// Slack's JSON Schema for app manifests, copied into testdata from
// shared/reference/slack-artefacts/manifest-schema (slackapi/manifest-schema
// at c50cfa8). The checker below implements the part of JSON Schema
// draft-07 those files use, and fails on any keyword it does not know,
// so a schema it cannot read never passes a manifest silently.

const schemaDir = "testdata/manifest-schema"

// Ensure `nudgebot manifest` is a valid Slack app manifest by Slack's own
// schema.
func TestManifest_MatchesSlackSchema(t *testing.T) {
	doc := manifestAsJSON(t, config.Manifest())
	if problems := newSchemaChecker(t).validate(doc); len(problems) > 0 {
		t.Errorf("the manifest breaks Slack's schema:\n%s", strings.Join(problems, "\n"))
	}
}

// Ensure the checker finds what is wrong: a test that cannot fail proves
// nothing.
func TestManifestSchemaChecker_Refuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"unknown top-level key", func(m map[string]any) { m["colour"] = "blue" }, "colour"},
		{"name too long", func(m map[string]any) {
			m["display_information"].(map[string]any)["name"] = strings.Repeat("n", 36)
		}, "/display_information/name"},
		{"no display information", func(m map[string]any) { delete(m, "display_information") }, "display_information"},
		{"a scope that is not a string", func(m map[string]any) {
			m["oauth_config"].(map[string]any)["scopes"].(map[string]any)["bot"] = []any{42.0}
		}, "/oauth_config/scopes/bot/0"},
		{"a slash command without a description", func(m map[string]any) {
			cmds := m["features"].(map[string]any)["slash_commands"].([]any)
			delete(cmds[0].(map[string]any), "description")
		}, "/features/slash_commands/0"},
	}
	checker := newSchemaChecker(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := manifestAsJSON(t, config.Manifest()).(map[string]any)
			tt.edit(doc)
			problems := checker.validate(doc)
			if !strings.Contains(strings.Join(problems, "\n"), tt.want) {
				t.Errorf("problems %q; want one about %s", problems, tt.want)
			}
		})
	}
}

// manifestAsJSON decodes YAML into what encoding/json would make of the
// same document, numbers as float64, as the schema sees it.
func manifestAsJSON(t *testing.T, text string) any {
	t.Helper()
	var y any
	if err := yaml.Unmarshal([]byte(text), &y); err != nil {
		t.Fatalf("the manifest is not YAML: %v", err)
	}
	raw, err := json.Marshal(y)
	if err != nil {
		t.Fatalf("the manifest does not convert to JSON: %v", err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

type schemaChecker struct {
	t    *testing.T
	docs map[string]any // file name → schema document
	res  map[string]*regexp.Regexp
}

func newSchemaChecker(t *testing.T) *schemaChecker {
	t.Helper()
	c := &schemaChecker{t: t, docs: map[string]any{}, res: map[string]*regexp.Regexp{}}
	files, err := filepath.Glob(filepath.Join(schemaDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schema in %s: %v", schemaDir, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c.docs[filepath.Base(f)] = doc
	}
	return c
}

func (c *schemaChecker) validate(v any) []string {
	var problems []string
	c.check("manifest.schema.json", c.docs["manifest.schema.json"], v, "", &problems)
	return problems
}

// Keywords that only annotate. "requires" is not JSON Schema; Slack's
// files use it in places and validators ignore it.
var annotations = map[string]bool{
	"description": true, "title": true, "default": true, "$schema": true, "$id": true,
	"$comment": true, "definitions": true, "_note": true, "requires": true, "examples": true,
	"format": true, // only "uri", on $schema, which the manifest leaves out
}

// check validates v at JSON pointer at against schema s from document doc.
func (c *schemaChecker) check(doc string, s any, v any, at string, problems *[]string) {
	if b, ok := s.(bool); ok {
		if !b {
			*problems = append(*problems, at+": not allowed")
		}
		return
	}
	sch, ok := s.(map[string]any)
	if !ok {
		c.t.Fatalf("schema at %s in %s is not an object", at, doc)
	}
	fail := func(format string, args ...any) {
		*problems = append(*problems, fmt.Sprintf("%s: ", cmpOr(at, "/"))+fmt.Sprintf(format, args...))
	}
	keys := make([]string, 0, len(sch))
	for k := range sch {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kw := sch[k]
		switch k {
		case "$ref":
			rdoc, target := c.resolve(doc, kw.(string))
			c.check(rdoc, target, v, at, problems)
		case "type":
			if !typeMatches(kw, v) {
				fail("is %s, want type %v", jsonType(v), kw)
			}
		case "enum":
			if !containsValue(kw.([]any), v) {
				fail("is %v, want one of %v", v, kw)
			}
		case "const":
			if !reflect.DeepEqual(kw, v) {
				fail("is %v, want %v", v, kw)
			}
		case "properties", "patternProperties", "additionalProperties", "required", "minProperties", "maxProperties":
			if k == "properties" { // the object keywords are checked together, once
				c.checkObject(doc, sch, v, at, problems)
			} else if _, has := sch["properties"]; !has && k == firstObjectKeyword(sch) {
				c.checkObject(doc, sch, v, at, problems)
			}
		case "items", "minItems", "maxItems", "uniqueItems":
			if k == firstArrayKeyword(sch) {
				c.checkArray(doc, sch, v, at, problems)
			}
		case "minLength", "maxLength", "pattern":
			c.checkString(k, kw, v, fail)
		case "anyOf", "oneOf", "allOf":
			c.checkCombination(doc, k, kw.([]any), v, at, problems, fail)
		case "not":
			var sub []string
			c.check(doc, kw, v, at, &sub)
			if len(sub) == 0 {
				fail("matches a schema it must not match")
			}
		default:
			if !annotations[k] {
				c.t.Fatalf("schema keyword %q at %s in %s is not supported by this checker: extend it", k, at, doc)
			}
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

var objectKeywords = []string{"additionalProperties", "maxProperties", "minProperties", "patternProperties", "required"}

func firstObjectKeyword(sch map[string]any) string {
	for _, k := range objectKeywords {
		if _, ok := sch[k]; ok {
			return k
		}
	}
	return ""
}

func firstArrayKeyword(sch map[string]any) string {
	for _, k := range []string{"items", "maxItems", "minItems", "uniqueItems"} {
		if _, ok := sch[k]; ok {
			return k
		}
	}
	return ""
}

func (c *schemaChecker) checkObject(doc string, sch map[string]any, v any, at string, problems *[]string) {
	obj, ok := v.(map[string]any)
	if !ok {
		return // "type" says what v must be
	}
	fail := func(format string, args ...any) {
		*problems = append(*problems, fmt.Sprintf("%s: ", cmpOr(at, "/"))+fmt.Sprintf(format, args...))
	}
	for _, r := range asList(sch["required"]) {
		if _, ok := obj[r.(string)]; !ok {
			fail("lacks required %q", r)
		}
	}
	if n, ok := sch["minProperties"].(float64); ok && float64(len(obj)) < n {
		fail("has %d properties, want at least %v", len(obj), n)
	}
	if n, ok := sch["maxProperties"].(float64); ok && float64(len(obj)) > n {
		fail("has %d properties, want at most %v", len(obj), n)
	}
	props, _ := sch["properties"].(map[string]any)
	patterns, _ := sch["patternProperties"].(map[string]any)
	names := make([]string, 0, len(obj))
	for name := range obj {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		child := at + "/" + name
		matched := false
		if ps, ok := props[name]; ok {
			matched = true
			c.check(doc, ps, obj[name], child, problems)
		}
		for p, ps := range patterns {
			if c.regexp(p).MatchString(name) {
				matched = true
				c.check(doc, ps, obj[name], child, problems)
			}
		}
		if !matched {
			if ap, ok := sch["additionalProperties"]; ok {
				c.check(doc, ap, obj[name], child, problems)
			}
		}
	}
}

func (c *schemaChecker) checkArray(doc string, sch map[string]any, v any, at string, problems *[]string) {
	list, ok := v.([]any)
	if !ok {
		return
	}
	fail := func(format string, args ...any) {
		*problems = append(*problems, fmt.Sprintf("%s: ", cmpOr(at, "/"))+fmt.Sprintf(format, args...))
	}
	if n, ok := sch["minItems"].(float64); ok && float64(len(list)) < n {
		fail("has %d items, want at least %v", len(list), n)
	}
	if n, ok := sch["maxItems"].(float64); ok && float64(len(list)) > n {
		fail("has %d items, want at most %v", len(list), n)
	}
	if u, _ := sch["uniqueItems"].(bool); u {
		for i := range list {
			for j := i + 1; j < len(list); j++ {
				if reflect.DeepEqual(list[i], list[j]) {
					fail("items %d and %d are equal, want unique items", i, j)
				}
			}
		}
	}
	switch items := sch["items"].(type) {
	case map[string]any, bool:
		for i, item := range list {
			c.check(doc, items, item, fmt.Sprintf("%s/%d", at, i), problems)
		}
	case []any:
		for i, item := range list {
			if i < len(items) {
				c.check(doc, items[i], item, fmt.Sprintf("%s/%d", at, i), problems)
			}
		}
	}
}

func (c *schemaChecker) checkString(k string, kw, v any, fail func(string, ...any)) {
	s, ok := v.(string)
	if !ok {
		return
	}
	switch k {
	case "minLength":
		if n := utf8.RuneCountInString(s); float64(n) < kw.(float64) {
			fail("is %d characters, want at least %v", n, kw)
		}
	case "maxLength":
		if n := utf8.RuneCountInString(s); float64(n) > kw.(float64) {
			fail("is %d characters, want at most %v", n, kw)
		}
	case "pattern":
		if !c.regexp(kw.(string)).MatchString(s) {
			fail("%q does not match %s", s, kw)
		}
	}
}

func (c *schemaChecker) checkCombination(doc, k string, subs []any, v any, at string, problems *[]string, fail func(string, ...any)) {
	var passed int
	var all []string
	for _, sub := range subs {
		var p []string
		c.check(doc, sub, v, at, &p)
		if len(p) == 0 {
			passed++
		}
		all = append(all, p...)
	}
	switch {
	case k == "allOf" && passed < len(subs):
		*problems = append(*problems, all...)
	case k == "anyOf" && passed == 0:
		fail("matches none of anyOf: %s", strings.Join(all, "; "))
	case k == "oneOf" && passed != 1:
		fail("matches %d of oneOf, want exactly 1: %s", passed, strings.Join(all, "; "))
	}
}

// regexp compiles a schema pattern. Go's RE2 lacks lookaround; a pattern
// it cannot compile fails the test rather than passing everything.
func (c *schemaChecker) regexp(p string) *regexp.Regexp {
	if re, ok := c.res[p]; ok {
		return re
	}
	re, err := regexp.Compile(p)
	if err != nil {
		c.t.Fatalf("schema pattern %q needs a feature Go's regexp lacks (%v): the manifest now reaches a part of the schema this checker cannot read", p, err)
	}
	c.res[p] = re
	return re
}

// resolve follows a $ref: "#/definitions/…" within doc, or one of
// Slack's schema URLs, read from testdata by file name.
func (c *schemaChecker) resolve(doc, ref string) (string, any) {
	file, frag, _ := strings.Cut(ref, "#")
	if file != "" {
		doc = path.Base(file)
	}
	node, ok := c.docs[doc]
	if !ok {
		c.t.Fatalf("$ref %q: no schema %s in %s", ref, doc, schemaDir)
	}
	for _, part := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if part == "" {
			continue
		}
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := node.(map[string]any)
		if !ok {
			c.t.Fatalf("$ref %q does not resolve", ref)
		}
		if node, ok = m[part]; !ok {
			c.t.Fatalf("$ref %q does not resolve: no %q", ref, part)
		}
	}
	return doc, node
}

func typeMatches(kw, v any) bool {
	for _, want := range asList(kw) {
		got := jsonType(v)
		if got == want || (want == "number" && got == "integer") {
			return true
		}
	}
	return false
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}

func containsValue(list []any, v any) bool {
	for _, x := range list {
		if reflect.DeepEqual(x, v) {
			return true
		}
	}
	return false
}
