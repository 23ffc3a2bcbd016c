package state

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// corePackages are the packages that must not know who drives them, with
// their directories relative to this one.
var corePackages = map[string]string{
	"petite/scheduler":       "..",
	"petite/scheduler/state": ".",
}

// underCI reports whether the tests run under CI (CI=true, as CI services
// set it), where a guard that cannot run must fail rather than skip.
func underCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// cannotRun ends a guard that cannot run: a skip on a developer's machine,
// a failure under CI, where a skip would let the guard pass in silence.
func cannotRun(t testing.TB, why string) {
	t.Helper()
	if underCI() {
		t.Fatalf("the architecture guard cannot run under CI: %s", why)
		return
	}
	t.Skip(why)
}

// skipOrFail records what cannotRun did, without ending the test.
type skipOrFail struct {
	testing.TB
	failed, skipped bool
}

func (r *skipOrFail) Helper()               {}
func (r *skipOrFail) Fatalf(string, ...any) { r.failed = true }
func (r *skipOrFail) Skip(...any)           { r.skipped = true }

// TestArchitectureGuardFailsUnderCI checks that a guard that cannot run
// fails under CI and skips elsewhere.
func TestArchitectureGuardFailsUnderCI(t *testing.T) {
	for _, tc := range []struct {
		ci         string
		fail, skip bool
	}{{"true", true, false}, {"1", true, false}, {"", false, true}, {"false", false, true}} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &skipOrFail{TB: t}
			cannotRun(r, "no go command on PATH")
			assert.Equal(t, tc.fail, r.failed, "failed")
			assert.Equal(t, tc.skip, r.skipped, "skipped")
		})
	}
}

// TestArchitectureDeps guards the one rule of the architecture: the core
// packages, with everything they pull in, import no consensus, network,
// metrics or NVML code.
func TestArchitectureDeps(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		cannotRun(t, "no go command on PATH")
		return
	}
	args := []string{"list", "-deps"}
	for p := range corePackages {
		args = append(args, p)
	}
	out, err := exec.Command(goBin, args...).CombinedOutput()
	require.NoError(t, err, "go list: %s", out)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "petite/scheduler", "go list listed the core itself")
	for _, d := range deps {
		for _, banned := range []string{"raft", "net/http", "prometheus", "go-nvml", "etcd"} {
			assert.NotContains(t, d, banned, "the core depends on %s", d)
		}
	}
}

// TestArchitectureNoClockNoIO checks the core's own source: no import of
// os, net, math/rand (v1) or unsafe, no call that reads the clock or waits,
// and no use of math/rand/v2's global generator; time and chance come from
// the drivers.
func TestArchitectureNoClockNoIO(t *testing.T) {
	bannedImports := map[string]bool{"os": true, "net": true, "net/http": true, "math/rand": true, "unsafe": true, "syscall": true}
	bannedTime := map[string]bool{
		"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "AfterFunc": true,
		"Tick": true, "NewTicker": true, "NewTimer": true,
	}
	// math/rand/v2 names that do not draw from the global generator.
	allowedRand := map[string]bool{
		"New": true, "NewPCG": true, "NewChaCha8": true, "NewZipf": true,
		"Rand": true, "Source": true, "PCG": true, "ChaCha8": true, "Zipf": true,
	}
	for pkg, dir := range corePackages {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		require.NotEmpty(t, files, pkg)
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			require.NoError(t, err)
			names := map[string]string{} // local name -> import path
			for _, im := range f.Imports {
				p, _ := strconv.Unquote(im.Path.Value)
				assert.False(t, bannedImports[p], "%s imports %s", path, p)
				name := p[strings.LastIndex(p, "/")+1:]
				if p == "math/rand/v2" {
					name = "rand"
				}
				if im.Name != nil {
					name = im.Name.Name
				}
				names[name] = p
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				id, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				switch names[id.Name] {
				case "time":
					assert.False(t, bannedTime[sel.Sel.Name], "%s: time.%s reads the clock or waits", fset.Position(sel.Pos()), sel.Sel.Name)
				case "math/rand/v2":
					assert.True(t, allowedRand[sel.Sel.Name], "%s: rand.%s uses the global generator", fset.Position(sel.Pos()), sel.Sel.Name)
				}
				return true
			})
		}
	}
}
