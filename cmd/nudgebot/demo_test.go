package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// parseDir parses the non-test Go files of dir.
func parseDir(t *testing.T, dir string) map[string]*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*ast.File{}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(name)] = f
	}
	return files
}

// emulatorFiles are the files of the commands that reach the emulator:
// the demo, and the emulator served for `run` to be tried against.
var emulatorFiles = map[string]bool{"demo.go": true, "emulator.go": true}

// Ensure the emulator the binary carries for `nudgebot demo` and
// `nudgebot emulator` stays out of `nudgebot run`: only their files
// import slackemu, nothing but the command table reaches into them, and
// slackemu runs no code at package initialisation (no init function, no
// package variable built by a call or a map literal), so merely linking
// it costs `run` nothing.
func TestEmulatorOutOfRunPath(t *testing.T) {
	const emu = "github.com/nudgebot/nudgebot/slackemu"
	files := parseDir(t, ".")
	fenced := map[string]bool{}
	for name := range emulatorFiles {
		for _, d := range files[name].Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					fenced[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						fenced[s.Name.Name] = true
					case *ast.ValueSpec:
						for _, n := range s.Names {
							fenced[n.Name] = true
						}
					}
				}
			}
		}
	}
	entries := map[string]bool{"cmdDemo": true, "cmdEmulator": true}
	for name, f := range files {
		if emulatorFiles[name] {
			continue
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == emu {
				t.Errorf("%s imports slackemu; only the demo's and the emulator command's files may", name)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			id, ok := n.(*ast.Ident)
			if ok && fenced[id.Name] && !(name == "main.go" && entries[id.Name]) {
				t.Errorf("%s uses %s from the demo or the emulator command; only the command table may reach them", name, id.Name)
			}
			return true
		})
	}

	for name, f := range parseDir(t, filepath.Join("..", "..", "slackemu")) {
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.Name == "init" {
				t.Errorf("slackemu/%s has an init function", name)
			}
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			ast.Inspect(g, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "New" || !isIdent(sel.X, "errors") {
						t.Errorf("slackemu/%s: a package variable is built by a call at %v", name, n.Pos())
					}
				case *ast.MapType:
					t.Errorf("slackemu/%s: a package variable holds a map, built at start-up", name)
				case *ast.FuncLit:
					return false // its body runs only when called
				}
				return true
			})
		}
	}
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// Ensure the demo tells a story that holds together, pinned by its key
// lines: a form is shown once with what was typed in it; a reflection is
// private or shared, never both; counts agree with their nouns; channels
// read as Slack shows them; the "hear more" promise is the one the
// product keeps; and the digest a week later counts a week that was
// lived, not a week skipped.
func TestDemoTranscript(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs for several seconds")
	}
	var out, stderr strings.Builder
	if code := cmdDemo(t.Context(), []string{"-step", "1ms"}, &out, &stderr, nil); code != 0 {
		t.Fatalf("demo exited %d: %s\n%s", code, stderr.String(), out.String())
	}
	got := out.String()
	pinned := []string{
		"Priya (08:30 Europe/London) fills in the form and submits it:\n      Your reflection: I let Jo decide the vendor question without me.",
		"One thing I will do next: hand the roadmap review to Jo as well",
		"Saved as #1, to be shared with your name in the digest of #leadership-team and nowhere else; 1 reflection so far.",
		"Sent to your DMs with me: 1 reflection and 1 nudge, as JSON and as Markdown.",
		"Last 4 weeks: 1 leading and 0 managing nudges acted on.",
		"Aiko (01:00 Asia/Tokyo) fills in the form and submits it:\n      What would you like to hear more about?: how we chose this year's two priorities",
		"Thanks: your answer is kept without your name. The team sees the answers, never who wrote them, in the digest after this pulse, and only if at least 5 people wrote in",
		"— Tuesday to Friday, not shown: each gets their nudge at their own time and marks it done —",
		"*3.6* out of 5, from 5 answers",
		"Done: ",
	}
	for _, want := range pinned {
		if !strings.Contains(got, want) {
			t.Errorf("the transcript lacks %q", want)
		}
	}
	for _, never := range []string{"<#", "<@", `submits "`, "1 reflections", "1 nudges", "*0* nudges received", "it will appear, without your name, in the next digest"} {
		if strings.Contains(got, never) {
			t.Errorf("the transcript contains %q", never)
		}
	}
	if n := strings.Count(got, "fills in the form"); n != 2 {
		t.Errorf("forms filled in: %d lines, want 2 (Priya's reflection, Aiko's answer), each once", n)
	}
	for line := range strings.SplitSeq(got, "\n") {
		if strings.Contains(line, "privately") && strings.Contains(line, "share") {
			t.Errorf("a line says both private and shared: %q", line)
		}
	}
	_, later, ok := strings.Cut(got, "— A week later")
	received := regexp.MustCompile(`\*(\d+)\* nudges received`).FindStringSubmatch(later)
	if !ok || received == nil || received[1] == "0" {
		t.Errorf("the digest a week later does not count the week's nudges: %v\n%s", received, later)
	}
}
