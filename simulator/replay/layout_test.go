package replay

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// TestHotLayouts: the books read per job at a million jobs stay as small
// as they were made — a job's figures in one cache line, an event in three
// eighths of one, a live job's book in six (its source kept apart).
func TestHotLayouts(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(figs{}), uintptr(64), "figs")
	assert.LessOrEqual(t, unsafe.Sizeof(entry{}), uintptr(24), "entry")
	assert.LessOrEqual(t, unsafe.Sizeof(jobState{}), uintptr(6*64), "jobState")
}
