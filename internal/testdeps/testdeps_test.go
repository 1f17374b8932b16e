package testdeps_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aimind/aimind/internal/testdeps"
)

const root = "../.."

func readBuildScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func scanRepo(t *testing.T) []testdeps.Need {
	t.Helper()
	needs, err := testdeps.Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	return needs
}

// TestBuildScriptInstallsWhatTestsNeed: every program the repository's code
// runs and every Python module its scripts import has a Debian package in
// build.sh's lists, so `./build.sh test` passes on a fresh machine.
func TestBuildScriptInstallsWhatTestsNeed(t *testing.T) {
	lists, err := testdeps.ParseBuildScript(readBuildScript(t))
	if err != nil {
		t.Fatal(err)
	}
	needs := scanRepo(t)
	for _, n := range needs {
		t.Logf("found %s", n)
	}
	if missing := testdeps.Missing(needs, lists); len(missing) > 0 {
		t.Fatalf("build.sh lacks what the tests need:\n%s", strings.Join(missing, "\n"))
	}
}

// TestEachTestPackageIsNeeded removes each TEST_DEBS entry from a copy of
// build.sh in turn: the check must then fail and name what lacks a package.
// This shows the check can fail, and that no entry is dead weight.
func TestEachTestPackageIsNeeded(t *testing.T) {
	text := readBuildScript(t)
	lists, err := testdeps.ParseBuildScript(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(lists.Test) == 0 {
		t.Fatal("TEST_DEBS is empty")
	}
	needs := scanRepo(t)
	line := regexp.MustCompile(`(?m)^TEST_DEBS=\(.*\)$`).FindString(text)
	for _, e := range lists.Test {
		t.Run(e.Package, func(t *testing.T) {
			pair := e.Command + ":" + e.Package
			cut := strings.Replace(text, line, strings.Replace(line, pair, "", 1), 1)
			less, err := testdeps.ParseBuildScript(cut)
			if err != nil {
				t.Fatal(err)
			}
			if len(less.Test) != len(lists.Test)-1 {
				t.Fatalf("removing %s left %d entries of %d", pair, len(less.Test), len(lists.Test))
			}
			missing := testdeps.Missing(needs, less)
			if len(missing) == 0 {
				t.Fatalf("without %s the check still passes: the entry is not needed, or the scan misses its use", pair)
			}
			named := strings.Join(missing, "\n")
			if !strings.Contains(named, e.Package) && !strings.Contains(named, filepath.Base(e.Command)) {
				t.Fatalf("without %s the check fails, but names neither %s nor %s:\n%s", pair, e.Package, e.Command, named)
			}
		})
	}
}

// TestScan runs the scanner on small packages: how it traces program names,
// which programs it leaves to the test (built, joined paths), and that a
// call it cannot trace is an error rather than a silent miss.
func TestScan(t *testing.T) {
	f := func(name, src string, want []string, wantErr string) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "x_test.go"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			needs, err := testdeps.Scan(dir)
			if wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), wantErr) {
					t.Fatalf("error %v, want one containing %q", err, wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range needs {
				got = append(got, n.Kind+" "+strings.Join(n.Names, "|"))
			}
			if strings.Join(got, ", ") != strings.Join(want, ", ") {
				t.Fatalf("found %q, want %q", got, want)
			}
		})
	}
	const head = "package x\nimport (\"os\"; \"os/exec\"; \"path/filepath\"; \"testing\")\nvar _ = filepath.Join\nvar _ = os.Args\n"
	f("literal", head+`func T(t *testing.T) { exec.Command("/usr/bin/nginx", "-t").Run() }`,
		[]string{"program nginx"}, "")
	f("helper parameter, each caller", head+`
func need(t *testing.T, name, pkg string) string {
	for _, p := range []string{name, "/usr/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil { return path }
	}
	return ""
}
func A(t *testing.T) { bin := need(t, "nginx", "nginx"); exec.Command(bin).Run() }
func B(t *testing.T) { need(t, "xz", "xz-utils") }`,
		[]string{"program nginx", "program xz", "program nginx"}, "")
	f("candidates are alternatives", head+`
func T(t *testing.T) {
	path := ""
	for _, p := range []string{os.Getenv("X"), "/usr/bin/chromium", "/usr/bin/google-chrome"} { path = p }
	exec.Command(path).Run()
}`, []string{"program chromium|google-chrome"}, "")
	f("built by the test", head+`
var binary string
func build() (string, error) { return "", nil }
func TestMain(m *testing.M) { binary, _ = build() }
func T(t *testing.T) {
	exec.Command(binary).Run()
	exec.Command(os.Args[0]).Run()
	exec.Command(filepath.Join(t.TempDir(), "run.sh")).Run()
	exec.Command("./build.sh").Run()
}`, nil, "")
	f("python snippet", head+`const python = "/usr/bin/python3"
func T(t *testing.T) { exec.Command(python, "-c", "import json, sentencepiece as s\nfrom google import protobuf").Run() }`,
		[]string{"program python3", "python json", "python sentencepiece", "python google", "python google.protobuf"}, "")
	f("untraceable", head+`type m struct{ tool string }
func T(t *testing.T, x m) { exec.Command(x.tool).Run() }`, nil, "cannot trace")
	f("unknown variable", head+`func T(t *testing.T) { exec.Command(tool).Run() }`, nil, "cannot find what tool holds")
}

// TestMissing checks the coverage rules on made-up lists.
func TestMissing(t *testing.T) {
	lists, err := testdeps.ParseBuildScript("BUILD_DEBS=(c++:g++)\nTEST_DEBS=(nginx:nginx /usr/lib/x.py:python3-sentencepiece)\n")
	if err != nil {
		t.Fatal(err)
	}
	needs := []testdeps.Need{
		{Kind: "program", Names: []string{"nginx"}, Where: "a"},
		{Kind: "program", Names: []string{"g++"}, Where: "b"},               // the package's name
		{Kind: "program", Names: []string{"objdump"}, Where: "c"},           // binutils, with g++
		{Kind: "program", Names: []string{"python3"}, Where: "d"},           // with python3-sentencepiece
		{Kind: "program", Names: []string{"mount"}, Where: "e"},             // base system
		{Kind: "program", Names: []string{"chromium", "nginx"}, Where: "f"}, // one alternative is enough
		{Kind: "python", Names: []string{"json"}, Where: "g"},
		{Kind: "python", Names: []string{"sentencepiece"}, Where: "h"},
		{Kind: "program", Names: []string{"chromium"}, Where: "i"},
		{Kind: "python", Names: []string{"sentencepiece.sentencepiece_model_pb2"}, Where: "j"},
		{Kind: "python", Names: []string{"numpy"}, Where: "k"},
	}
	got := testdeps.Missing(needs, lists)
	want := []string{"chromium (i)", "python3-protobuf", "numpy (k)"}
	if len(got) != len(want) {
		t.Fatalf("missing %q, want %d lines", got, len(want))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Fatalf("line %d %q lacks %q", i, got[i], w)
		}
	}
	if _, err := testdeps.ParseBuildScript("TEST_DEBS=(nginx)\nBUILD_DEBS=()\n"); err == nil {
		t.Fatal("an entry without a package was accepted")
	}
	if _, err := testdeps.ParseBuildScript("BUILD_DEBS=(c++:g++)\n"); err == nil {
		t.Fatal("a script without TEST_DEBS was accepted")
	}
}

// pythonOwn are the packages of the interpreter and its standard library.
var pythonOwn = regexp.MustCompile(`^(libpython3(\.\d+)?-(minimal|stdlib)|python3(\.\d+)?(-minimal)?)$`)

// TestPythonModuleTableMatchesThisMachine checks the hand-kept module table
// against the machine, where the packages are installed (CI, after
// build.sh test): importing each module loads files of exactly the Debian
// packages the table names, besides Python's own. This is how the missing
// python3-protobuf would have shown: sentencepiece_model_pb2 loads it.
func TestPythonModuleTableMatchesThisMachine(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("no dpkg here")
	}
	mods := map[string][]string{}
	for m, pkgs := range testdeps.PythonModules {
		mods[m] = pkgs
	}
	for m := range testdeps.PythonStdlib {
		mods[m] = nil
	}
	for mod, want := range mods {
		t.Run(mod, func(t *testing.T) {
			out, err := exec.Command(python, "-c", `import importlib, sys
before = set(sys.modules)
importlib.import_module(sys.argv[1])
for n in set(sys.modules) - before:
    f = getattr(sys.modules[n], "__file__", None)
    if f:
        print(f)`, mod).CombinedOutput()
			if err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("cannot import %s although build.sh test installs %v: %v\n%s", mod, want, err, out)
				}
				t.Skipf("%s is not importable here (%v)", mod, err)
			}
			got := map[string]bool{}
			files := strings.Fields(string(out))
			if len(files) > 0 {
				q := exec.Command("dpkg-query", append([]string{"-S"}, files...)...)
				var stderr strings.Builder
				q.Stderr = &stderr
				owners, _ := q.Output() // exit 1 when a file has no package: stderr names it
				if strings.Contains(stderr.String(), "no path found") {
					t.Fatalf("%s loads files no Debian package owns (pip?), which build.sh test cannot install:\n%s", mod, stderr.String())
				}
				for _, line := range strings.Split(strings.TrimSpace(string(owners)), "\n") {
					pkgs, _, _ := strings.Cut(line, ": ")
					for _, p := range strings.Split(pkgs, ", ") {
						p, _, _ = strings.Cut(p, ":") // an architecture qualifier
						if p != "" && !pythonOwn.MatchString(p) {
							got[p] = true
						}
					}
				}
			}
			wantSet := map[string]bool{}
			for _, p := range want {
				wantSet[p] = true
			}
			for p := range got {
				if !wantSet[p] {
					t.Errorf("importing %s loads files of %s, which testdeps.PythonModules does not name", mod, p)
				}
			}
			for p := range wantSet {
				if !got[p] {
					t.Errorf("testdeps.PythonModules names %s for %s, but importing it loads nothing of it", p, mod)
				}
			}
		})
	}
}
