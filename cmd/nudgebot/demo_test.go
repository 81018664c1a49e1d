package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
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

// Ensure the emulator the binary carries for `nudgebot demo` stays out of
// `nudgebot run`: only demo.go imports slackemu, nothing but the command
// table reaches into demo.go, and slackemu runs no code at package
// initialisation (no init function, no package variable built by a call
// or a map literal), so merely linking it costs `run` nothing.
func TestEmulatorOutOfRunPath(t *testing.T) {
	const emu = "github.com/nudgebot/nudgebot/slackemu"
	files := parseDir(t, ".")
	demoNames := map[string]bool{}
	for _, d := range files["demo.go"].Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				demoNames[d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					demoNames[s.Name.Name] = true
				case *ast.ValueSpec:
					for _, n := range s.Names {
						demoNames[n.Name] = true
					}
				}
			}
		}
	}
	for name, f := range files {
		if name == "demo.go" {
			continue
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == emu {
				t.Errorf("%s imports slackemu; only demo.go may", name)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			id, ok := n.(*ast.Ident)
			if ok && demoNames[id.Name] && !(name == "main.go" && id.Name == "cmdDemo") {
				t.Errorf("%s uses %s from demo.go; only the command table may reach the demo", name, id.Name)
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
