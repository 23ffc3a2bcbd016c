package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds the decoder arbitrary files: it must return a scenario or
// an error naming the file, never panic.
func FuzzLoad(f *testing.F) {
	paths, err := filepath.Glob(examples + "*.yaml")
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seed corpus in %s: %v", examples, err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("fleet: demo\nworkload: {trace: x}\nactions: [{at: +1d2h, do: mtbf, pool: p, mtbf: 1h, mttr: 1h, until: +2h}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(strings.NewReader(string(data)), "f.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if s.Fleet == "" || len(s.acts) != len(s.Actions) {
			t.Fatalf("accepted a scenario that is not checked: %+v", s.Spec)
		}
	})
}
