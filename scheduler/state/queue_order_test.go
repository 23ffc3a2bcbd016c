package state

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// Jobs leaving the pending queue from the front, the back and the middle
// leave the rest in submission order (unqueue closes the gap from either
// side).
func TestUnqueueKeepsOrder(t *testing.T) {
	for _, order := range [][]int{
		{0, 1, 2, 3, 4, 5, 6, 7},
		{7, 6, 5, 4, 3, 2, 1, 0},
		{3, 4, 2, 5, 1, 6, 0, 7},
		{1, 6, 2, 5, 0, 7, 3, 4},
	} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			m := New()
			var left []string
			for i := range 8 {
				id := fmt.Sprintf("j%d", i)
				_, err := m.Apply(Submit{Job: scheduler.Job{ID: id, Count: 1, Task: scheduler.Task{CPUMilli: 1}}, At: int64(i)})
				require.NoError(t, err)
				left = append(left, id)
			}
			for _, k := range order {
				id := fmt.Sprintf("j%d", k)
				_, err := m.Apply(Cancel{Job: id, At: 10})
				require.NoError(t, err)
				left = slices.DeleteFunc(left, func(s string) bool { return s == id })
				got := []string{}
				for _, j := range m.Pending() {
					got = append(got, j.ID)
				}
				require.Equal(t, left, got)
			}
		})
	}
}
