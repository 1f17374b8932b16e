// Package testdeps finds what the repository's tests need from the system
// (the programs they execute, the Python modules their helper scripts
// import) and checks that build.sh installs a Debian package for each, so
// that `./build.sh test` passes on a fresh machine. The scan is static: Go
// sources are parsed, and the program a call such as exec.Command runs is
// traced back through variables, range loops and helper parameters to the
// string literals that name it.
package testdeps

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Need is one thing a test needs from the system.
type Need struct {
	Kind  string   // "program" or "python"
	Names []string // a program's base names (any one of them will do), or one Python module
	Where string   // file:line of the code that needs it
}

func (n Need) String() string {
	return fmt.Sprintf("%s %s (%s)", n.Kind, strings.Join(n.Names, " or "), n.Where)
}

// Lists are the Debian packages build.sh installs: each entry of BUILD_DEBS
// and TEST_DEBS is "command:package".
type Lists struct {
	Build, Test []Entry
}

// Entry is one "command:package" of build.sh.
type Entry struct {
	Command, Package string
}

var listRE = regexp.MustCompile(`(?m)^(BUILD_DEBS|TEST_DEBS)=\(([^)]*)\)`)

// ParseBuildScript reads BUILD_DEBS and TEST_DEBS from build.sh's text.
func ParseBuildScript(text string) (Lists, error) {
	var l Lists
	found := map[string]bool{}
	for _, m := range listRE.FindAllStringSubmatch(text, -1) {
		found[m[1]] = true
		for _, f := range strings.Fields(m[2]) {
			cmd, pkg, ok := strings.Cut(f, ":")
			if !ok || cmd == "" || pkg == "" {
				return Lists{}, fmt.Errorf("cannot read build.sh: %s entry %q is not command:package", m[1], f)
			}
			e := Entry{Command: cmd, Package: pkg}
			if m[1] == "BUILD_DEBS" {
				l.Build = append(l.Build, e)
			} else {
				l.Test = append(l.Test, e)
			}
		}
	}
	if !found["BUILD_DEBS"] || !found["TEST_DEBS"] {
		return Lists{}, fmt.Errorf("cannot read build.sh: no BUILD_DEBS=(...) or TEST_DEBS=(...) line")
	}
	return l, nil
}

// Base are programs every machine that runs build.sh has: those of Debian's
// Priority: required packages (coreutils, mount, libc-bin, bash), and Go and
// git, which build.sh itself and the clone need.
var Base = map[string]string{
	"sh": "dash", "bash": "bash", "mount": "mount", "umount": "mount", "ldd": "libc-bin",
	"dpkg-query": "dpkg", "go": "the Go toolchain build.sh requires", "git": "the clone itself",
}

// Own are the programs this repository builds; the tests run them from
// where they built them.
var Own = map[string]bool{"aimind": true, "synthgguf": true}

// Bundled are programs that a package of build.sh's lists brings along as
// its dependency: program → the listed package.
var Bundled = map[string]string{
	"python3": "python3-sentencepiece", // Depends: python3
	"objdump": "g++",                   // binutils, a dependency of g++
}

// PythonModules are the Debian packages a Python module needs. A module of
// Python's standard library needs none beyond python3 (PythonStdlib).
var PythonModules = map[string][]string{
	"sentencepiece": {"python3-sentencepiece"},
	// The generated protobuf module imports google.protobuf, and Debian's
	// python3-sentencepiece does not depend on python3-protobuf.
	"sentencepiece.sentencepiece_model_pb2": {"python3-sentencepiece", "python3-protobuf"},
	"google.protobuf":                       {"python3-protobuf"},
}

// PythonStdlib are the standard library modules the scripts may import.
var PythonStdlib = map[string]bool{
	"base64": true, "json": true, "sys": true, "os": true, "io": true, "math": true, "re": true,
	"struct": true, "tempfile": true, "unicodedata": true, "collections": true, "itertools": true, "importlib": true,
}

// Missing returns what build.sh's lists do not cover, one line each.
func Missing(needs []Need, l Lists) []string {
	pkgs := map[string]bool{}
	cmds := map[string]bool{}
	for _, e := range append(append([]Entry{}, l.Build...), l.Test...) {
		pkgs[e.Package] = true
		cmds[path.Base(e.Command)] = true
	}
	covered := func(prog string) bool {
		_, base := Base[prog]
		return base || Own[prog] || cmds[prog] || pkgs[prog] || pkgs[Bundled[prog]]
	}
	var out []string
	for _, n := range needs {
		switch n.Kind {
		case "program":
			ok := false
			for _, p := range n.Names {
				ok = ok || covered(p)
			}
			if !ok {
				out = append(out, fmt.Sprintf("%s: no Debian package in build.sh's lists provides it (add command:package to TEST_DEBS)", n))
			}
		case "python":
			mod := n.Names[0]
			if top, _, _ := strings.Cut(mod, "."); PythonStdlib[top] {
				continue
			}
			want, ok := PythonModules[mod]
			for m := mod; !ok && strings.Contains(m, "."); {
				m = m[:strings.LastIndex(m, ".")]
				want, ok = PythonModules[m]
			}
			if !ok {
				out = append(out, fmt.Sprintf("%s: unknown module; name its Debian package in testdeps.PythonModules and TEST_DEBS", n))
				continue
			}
			for _, p := range want {
				if !pkgs[p] {
					out = append(out, fmt.Sprintf("%s: needs Debian package %s, which build.sh's lists lack", n, p))
				}
			}
		}
	}
	return out
}

// Scan finds the needs of every Go and Python file under root (less
// third_party, testdata and dot folders). A call that runs a program the
// scan cannot trace to a name is an error: the scan must not miss it.
func Scan(root string) ([]Need, error) {
	var needs []Need
	var errs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			name := d.Name()
			if p != root && (name == "third_party" || name == "testdata" || name == "node_modules" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			n, e, err := scanGoDir(p, rel)
			if err != nil {
				return err
			}
			needs, errs = append(needs, n...), append(errs, e...)
			return nil
		}
		if strings.HasSuffix(p, ".py") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			src := string(b)
			needs = append(needs, pythonImports(src, func(at int) string {
				return fmt.Sprintf("%s:%d", filepath.ToSlash(rel), 1+strings.Count(src[:at], "\n"))
			})...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return needs, fmt.Errorf("cannot tell which program these calls run:\n  %s", strings.Join(errs, "\n  "))
	}
	return needs, nil
}

var (
	importRE = regexp.MustCompile(`(?m)^\s*import\s+([\w., ]+)`)
	fromRE   = regexp.MustCompile(`(?m)^\s*from\s+([\w.]+)\s+import\s+([\w., ]+)`)
)

// pythonImports lists the modules src imports; "from a import b" also
// counts a.b, which may be a module of its own.
func pythonImports(src string, where func(at int) string) []Need {
	var out []Need
	add := func(mod string, at int) {
		out = append(out, Need{Kind: "python", Names: []string{mod}, Where: where(at)})
	}
	for _, m := range importRE.FindAllStringSubmatchIndex(src, -1) {
		for _, part := range strings.Split(src[m[2]:m[3]], ",") {
			if f := strings.Fields(part); len(f) > 0 {
				add(f[0], m[0])
			}
		}
	}
	for _, m := range fromRE.FindAllStringSubmatchIndex(src, -1) {
		mod := src[m[2]:m[3]]
		add(mod, m[0])
		for _, part := range strings.Split(src[m[4]:m[5]], ",") {
			if f := strings.Fields(part); len(f) > 0 {
				add(mod+"."+f[0], m[0])
			}
		}
	}
	return out
}

// goDir is one folder's Go files, parsed together: helpers and their
// callers may sit in different files of a package.
type goDir struct {
	fset  *token.FileSet
	files []*ast.File
	rel   string
}

// value is one program a run-site may start: any of alts (paths or names).
type value struct{ alts []string }

func scanGoDir(dir, rel string) ([]Need, []string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	g := &goDir{fset: token.NewFileSet(), rel: rel}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		f, err := parser.ParseFile(g.fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot parse %s: %w", filepath.Join(rel, e.Name()), err)
		}
		g.files = append(g.files, f)
	}
	var needs []Need
	var errs []string
	for _, f := range g.files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			where := g.pos(call.Pos())
			if prog := runSite(call); prog != nil {
				vals, internal, err := g.resolve(prog, 0)
				switch {
				case err != nil:
					errs = append(errs, fmt.Sprintf("%s: %v", where, err))
				case len(vals) == 0 && !internal:
					errs = append(errs, fmt.Sprintf("%s: no program name found", where))
				}
				for _, v := range vals {
					needs = append(needs, Need{Kind: "program", Names: baseNames(v.alts), Where: where})
				}
			}
			// python -c 'import x': a Python snippet in a Go string.
			for i := 0; i+1 < len(call.Args); i++ {
				if s, ok := stringLit(call.Args[i]); ok && s == "-c" {
					if src, ok := stringLit(call.Args[i+1]); ok {
						needs = append(needs, pythonImports(src, func(int) string { return where })...)
					}
				}
			}
			return true
		})
	}
	return needs, errs, nil
}

// runSite returns the expression naming the program a call starts or looks
// up, or nil.
func runSite(call *ast.CallExpr) ast.Expr {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return nil
	}
	pkg, ok := sel.X.(*ast.Ident)
	if !ok || len(call.Args) == 0 {
		return nil
	}
	switch pkg.Name + "." + sel.Sel.Name {
	case "exec.Command", "exec.LookPath", "chromedp.ExecPath":
		return call.Args[0]
	case "exec.CommandContext":
		if len(call.Args) > 1 {
			return call.Args[1]
		}
	}
	return nil
}

func baseNames(alts []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range alts {
		b := path.Base(a)
		if !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	sort.Strings(out)
	return out
}

func (g *goDir) pos(p token.Pos) string {
	at := g.fset.Position(p)
	return fmt.Sprintf("%s:%d", filepath.ToSlash(filepath.Join(g.rel, filepath.Base(at.Filename))), at.Line)
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// resolve traces e to the program names it can hold. internal reports a
// program the test builds or finds itself (a path joined inside the
// repository or a temporary folder, the test binary, an environment
// override, a binary built by a helper): no package provides it.
func (g *goDir) resolve(e ast.Expr, depth int) (vals []value, internal bool, err error) {
	if depth > 8 {
		return nil, false, fmt.Errorf("%s is traced too deep", g.pos(e.Pos()))
	}
	if s, ok := stringLit(e); ok {
		switch {
		case s == "":
			return nil, true, nil
		case strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../"):
			return nil, true, nil // a script of the repository
		}
		return []value{{alts: []string{s}}}, false, nil
	}
	switch x := e.(type) {
	case *ast.ParenExpr:
		return g.resolve(x.X, depth+1)
	case *ast.BinaryExpr:
		// "/usr/sbin/" + name: the name decides.
		if x.Op == token.ADD {
			if _, ok := stringLit(x.X); ok {
				return g.resolve(x.Y, depth+1)
			}
		}
	case *ast.IndexExpr:
		if sel, ok := x.X.(*ast.SelectorExpr); ok && isPkg(sel, "os", "Args") {
			return nil, true, nil // the test binary itself
		}
	case *ast.CallExpr:
		if sel, ok := x.Fun.(*ast.SelectorExpr); ok {
			switch {
			case isPkg(sel, "filepath", "Join"), isPkg(sel, "os", "Getenv"):
				return nil, true, nil
			case isPkg(sel, "exec", "LookPath"):
				return g.resolve(x.Args[0], depth+1)
			}
		}
		// A helper such as needTool(t, "nginx", "nginx"): its first string
		// argument names the program; one without (BuildAimind(), or
		// BuildAimind("-ldflags", ...) with flags only) builds it.
		for _, a := range x.Args {
			if s, ok := stringLit(a); ok && !strings.HasPrefix(s, "-") {
				return g.resolve(a, depth+1)
			}
		}
		return nil, true, nil
	case *ast.Ident:
		return g.resolveIdent(x, depth)
	}
	return nil, false, fmt.Errorf("cannot trace %s", g.src(e))
}

func (g *goDir) src(e ast.Expr) string {
	return fmt.Sprintf("%T at %s", e, g.pos(e.Pos()))
}

func isPkg(sel *ast.SelectorExpr, pkg, name string) bool {
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg && sel.Sel.Name == name
}

// resolveIdent finds what an identifier holds: a parameter of the
// enclosing function (then the arguments of its callers), an assignment or
// declaration in the function or the package, or a range loop variable.
func (g *goDir) resolveIdent(id *ast.Ident, depth int) ([]value, bool, error) {
	fn := g.enclosing(id.Pos())
	if fn != nil && fn.Type.Params != nil {
		idx := 0
		for _, field := range fn.Type.Params.List {
			names := field.Names
			if len(names) == 0 {
				idx++
				continue
			}
			for _, n := range names {
				if n.Name == id.Name {
					return g.callers(fn.Name.Name, idx, depth)
				}
				idx++
			}
		}
	}
	var defs []ast.Expr
	var ranges []*ast.CompositeLit
	collect := func(scope ast.Node) {
		ast.Inspect(scope, func(n ast.Node) bool {
			switch s := n.(type) {
			case *ast.AssignStmt:
				for i, l := range s.Lhs {
					if li, ok := l.(*ast.Ident); ok && li.Name == id.Name {
						if len(s.Rhs) == len(s.Lhs) {
							defs = append(defs, s.Rhs[i])
						} else if len(s.Rhs) == 1 {
							defs = append(defs, s.Rhs[0])
						}
					}
				}
			case *ast.ValueSpec:
				for i, n := range s.Names {
					if n.Name == id.Name && i < len(s.Values) {
						defs = append(defs, s.Values[i])
					}
				}
			case *ast.RangeStmt:
				if v, ok := s.Value.(*ast.Ident); ok && v.Name == id.Name {
					if c, ok := s.X.(*ast.CompositeLit); ok {
						ranges = append(ranges, c)
					}
				}
			}
			return true
		})
	}
	if fn != nil {
		collect(fn.Body)
	}
	// Not defined in the function: a package-level variable or constant,
	// set where it is declared or by any function (TestMain).
	if len(defs) == 0 && len(ranges) == 0 && g.packageLevel(id.Name) {
		for _, f := range g.files {
			collect(f)
		}
	}
	if len(defs) == 0 && len(ranges) == 0 {
		return nil, false, fmt.Errorf("cannot find what %s holds (%s)", id.Name, g.pos(id.Pos()))
	}
	var out []value
	internal := false
	for _, d := range defs {
		v, in, err := g.resolve(d, depth+1)
		if err != nil {
			return nil, false, err
		}
		out, internal = append(out, v...), internal || in
	}
	for _, c := range ranges {
		v, in, err := g.rangeValues(c, depth)
		if err != nil {
			return nil, false, err
		}
		out, internal = append(out, v...), internal || in
	}
	return out, internal, nil
}

// rangeValues: a loop over candidates ({name, "/usr/sbin/" + name}, or
// {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) needs any one of them.
// Candidates traced through a helper's parameter give one value per caller:
// they are zipped, caller by caller.
func (g *goDir) rangeValues(c *ast.CompositeLit, depth int) ([]value, bool, error) {
	var per [][]value
	internal := false
	n := 0
	for _, el := range c.Elts {
		v, in, err := g.resolve(el, depth+1)
		if err != nil {
			return nil, false, err
		}
		internal = internal || in
		if len(v) > 0 {
			per = append(per, v)
			n = max(n, len(v))
		}
	}
	if n > 1 {
		out := make([]value, n)
		for _, v := range per {
			if len(v) != n {
				return nil, false, fmt.Errorf("cannot pair the candidates at %s", g.pos(c.Pos()))
			}
			for j := range v {
				out[j].alts = append(out[j].alts, v[j].alts...)
			}
		}
		return out, internal, nil
	}
	var one value
	for _, v := range per {
		one.alts = append(one.alts, v[0].alts...)
	}
	if len(one.alts) == 0 {
		return nil, internal, nil
	}
	return []value{one}, internal, nil
}

// callers traces the idx-th argument of every call of the named function.
func (g *goDir) callers(name string, idx, depth int) ([]value, bool, error) {
	var out []value
	internal, found := false, false
	var err error
	for _, f := range g.files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || err != nil {
				return err == nil
			}
			if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != name || idx >= len(call.Args) {
				return true
			}
			found = true
			v, in, e := g.resolve(call.Args[idx], depth+1)
			if e != nil {
				err = e
				return false
			}
			out, internal = append(out, v...), internal || in
			return true
		})
	}
	if err != nil {
		return nil, false, err
	}
	if !found {
		return nil, false, fmt.Errorf("no call of %s in %s", name, g.rel)
	}
	return out, internal, nil
}

func (g *goDir) packageLevel(name string) bool {
	for _, f := range g.files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || (gd.Tok != token.VAR && gd.Tok != token.CONST) {
				continue
			}
			for _, sp := range gd.Specs {
				for _, n := range sp.(*ast.ValueSpec).Names {
					if n.Name == name {
						return true
					}
				}
			}
		}
	}
	return false
}

func (g *goDir) enclosing(p token.Pos) *ast.FuncDecl {
	for _, f := range g.files {
		if p < f.Pos() || p > f.End() {
			continue
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil && p >= fd.Pos() && p <= fd.End() {
				return fd
			}
		}
	}
	return nil
}
