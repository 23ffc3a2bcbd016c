package server

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

// unsetenv removes key from the environment for the test's length.
func unsetenv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "") // restores the old value, if any, after the test
	os.Unsetenv(key)
}

func TestGCApply(t *testing.T) {
	const before, limitBefore = 123, int64(7 << 40)
	for _, tc := range []struct {
		name     string
		gc       GC
		env      map[string]string
		percent  int
		memLimit int64
	}{
		{"zero value: the default", GC{}, nil, DefaultGCPercent, limitBefore},
		{"a percent", GC{Percent: 150}, nil, 150, limitBefore},
		{"negative: left alone", GC{Percent: -1}, nil, before, limitBefore},
		{"GOGC wins", GC{Percent: 150}, map[string]string{"GOGC": "100"}, before, limitBefore},
		{"a memory limit", GC{MemoryLimit: 1 << 30}, nil, DefaultGCPercent, 1 << 30},
		{"GOMEMLIMIT wins", GC{MemoryLimit: 1 << 30}, map[string]string{"GOMEMLIMIT": "2GiB"}, DefaultGCPercent, limitBefore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unsetenv(t, "GOGC")
			unsetenv(t, "GOMEMLIMIT")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			oldPercent := debug.SetGCPercent(before)
			oldLimit := debug.SetMemoryLimit(limitBefore)
			t.Cleanup(func() { debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) })
			tc.gc.apply()
			assert.Equal(t, tc.percent, debug.SetGCPercent(before), "GC percent")
			assert.Equal(t, tc.memLimit, debug.SetMemoryLimit(limitBefore), "memory limit")
		})
	}
}
