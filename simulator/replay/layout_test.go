package replay

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// TestHotLayouts: the books read per job at a million jobs stay as small
// as they were made — a job's figures in one cache line, an event in half
// of one.
func TestHotLayouts(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(figs{}), uintptr(64), "figs")
	assert.LessOrEqual(t, unsafe.Sizeof(item{}), uintptr(32), "item")
}
