package replay

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// TestHotLayouts: the books read per job at a million jobs stay as small
// as they were made — a job's figures in one cache line, an event in three
// eighths of one, a live job's book in six (its source kept apart), of
// which a finish reads four.
func TestHotLayouts(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(figs{}), uintptr(64), "figs")
	assert.LessOrEqual(t, unsafe.Sizeof(entry{}), uintptr(24), "entry")
	assert.LessOrEqual(t, unsafe.Sizeof(jobState{}), uintptr(6*64), "jobState")
	// what a finish reads: the head of the book, to rec, in two lines, and
	// the record's figures, from Submit to Pool, in two more
	var j jobState
	rec := unsafe.Offsetof(j.rec)
	assert.LessOrEqual(t, rec, uintptr(2*64), "the book's head")
	from, to := rec+unsafe.Offsetof(j.rec.Submit), rec+unsafe.Offsetof(j.rec.Pool)+unsafe.Sizeof(j.rec.Pool)
	assert.Equal(t, from/64+1, (to-1)/64, "the record's figures in two lines: bytes %d to %d", from, to)
}
