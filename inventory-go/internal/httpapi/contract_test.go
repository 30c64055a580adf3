// Contract tests: the code -> status table equals services/contracts/errors.md, and the
// router serves exactly the paths and methods of inventory.openapi.yaml.
package httpapi

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"polyshop/inventory-go/internal/contracttest"
	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/store/memory"
	"polyshop/inventory-go/internal/storetest"
)

func contractFile(t *testing.T, name string) string {
	t.Helper()
	return contracttest.Path(t, name)
}

func TestErrorTableEqualsErrorsMD(t *testing.T) {
	f, err := os.Open(contractFile(t, "errors.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\| (\\d{3}) \\|")
	got := map[Code]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := row.FindStringSubmatch(sc.Text()); m != nil {
			got[Code(m[1])], _ = strconv.Atoi(m[2])
		}
	}
	if len(got) < 10 {
		t.Fatalf("parsed only %d codes from errors.md: has its table changed shape?", len(got))
	}
	for code, status := range got {
		if codeStatus[code] != status {
			t.Errorf("errors.md: %s -> %d, code table: %d", code, status, codeStatus[code])
		}
	}
	for code := range codeStatus {
		if _, ok := got[code]; !ok {
			t.Errorf("code table has %s, errors.md does not", code)
		}
	}
}

// TestCodesAreConstants holds the Code type to its promise: the const block of
// errors.go declares exactly the codes of codeStatus, and no non-test file of this
// package writes a code as a string literal (apiErr("...", ...), Code: "...",
// Code("...")), where a typo would compile and answer 500.
func TestCodesAreConstants(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	declared := map[Code]bool{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			literal := func(e ast.Expr) bool { lit, ok := e.(*ast.BasicLit); return ok && lit.Kind == token.STRING }
			switch n := n.(type) {
			case *ast.ValueSpec:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "Code" {
					for _, v := range n.Values {
						if lit, ok := v.(*ast.BasicLit); ok && filepath.Base(name) == "errors.go" {
							s, _ := strconv.Unquote(lit.Value)
							declared[Code(s)] = true
						}
					}
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && (id.Name == "apiErr" || id.Name == "Code") && len(n.Args) > 0 && literal(n.Args[0]) {
					t.Errorf("%s: %s(%s...): use a Code constant", fset.Position(n.Pos()), id.Name, n.Args[0].(*ast.BasicLit).Value)
				}
			case *ast.KeyValueExpr:
				if id, ok := n.Key.(*ast.Ident); ok && id.Name == "Code" && literal(n.Value) {
					t.Errorf("%s: Code: %s: use a Code constant", fset.Position(n.Pos()), n.Value.(*ast.BasicLit).Value)
				}
			}
			return true
		})
	}
	if len(declared) != len(codeStatus) {
		t.Errorf("errors.go declares %d Code constants, codeStatus has %d", len(declared), len(codeStatus))
	}
	for c := range codeStatus {
		if !declared[c] {
			t.Errorf("codeStatus has %s, which is not a declared Code constant", c)
		}
	}
}

// openAPIOperations reads "path -> methods" from the paths: section. The document's
// layout is ours (2-space path keys, 4-space method keys), so a line scanner suffices
// and no YAML dependency is needed.
func openAPIOperations(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(contractFile(t, "inventory.openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pathRe := regexp.MustCompile(`^  (/[^:]*):\s*$`)
	methodRe := regexp.MustCompile(`^    (get|put|post|delete|patch|head|options):`)
	ops := map[string][]string{}
	inPaths, current := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && line != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "#"):
			inPaths = false
		case inPaths && pathRe.MatchString(line):
			current = pathRe.FindStringSubmatch(line)[1]
			ops[current] = nil
		case inPaths && current != "" && methodRe.MatchString(line):
			ops[current] = append(ops[current], strings.ToUpper(methodRe.FindStringSubmatch(line)[1]))
		}
	}
	return ops
}

func TestRouterServesOpenAPI(t *testing.T) {
	ops := openAPIOperations(t)
	if len(ops) < 5 {
		t.Fatalf("parsed only %d paths from inventory.openapi.yaml", len(ops))
	}
	clock := storetest.NewClock()
	e := &env{srv: New(Deps{Store: memory.New(seedCatalog(t), clock.Now, inventory.DefaultTiming), Warehouses: seedCatalog(t).Warehouses,
		Config: testConfig(), Logger: NewLogger(&syncBuffer{}, "error")})}
	served := map[string][]string{}
	for _, rt := range e.srv.routeTable() {
		served[rt.path] = append(served[rt.path], rt.method)
	}
	for path, methods := range ops {
		sort.Strings(methods)
		sort.Strings(served[path])
		if strings.Join(methods, ",") != strings.Join(served[path], ",") {
			t.Errorf("%s: OpenAPI has %v, router serves %v", path, methods, served[path])
		}
		// and the real mux routes it: a concrete path must not fall to the catch-all
		concrete := strings.NewReplacer("{id}", "RES-0123456789abcdef01234567").Replace(path)
		if strings.HasPrefix(path, "/api/inventory/{id}") {
			concrete = strings.Replace(path, "{id}", "1", 1)
		}
		for _, m := range methods {
			r := e.do(t, m, concrete, "")
			if code, _ := r.body["error"].(map[string]any); code != nil && (code["code"] == "not_found" || code["code"] == "method_not_allowed") {
				t.Errorf("%s %s fell through the router: %s", m, concrete, r.raw)
			}
		}
	}
	for path := range served {
		if _, ok := ops[path]; !ok {
			t.Errorf("router serves %s, inventory.openapi.yaml does not document it", path)
		}
	}
}
