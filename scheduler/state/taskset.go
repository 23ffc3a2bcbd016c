package state

// taskSet is a set of a job's task indices, for the checks of the task
// lists a client sends: membership in O(1), so that those checks stay
// linear in the list (a job has up to scheduler.MaxTasksPerJob tasks). A
// task is in the set when its stamp is the set's generation, so emptying
// the set costs nothing; the machine keeps a few and reuses them.
type taskSet struct {
	stamp []uint32
	gen   uint32
}

// reset empties the set and makes room for tasks 0..n-1. n is a job's
// Count, bounded where the job entered.
func (s *taskSet) reset(n int) {
	s.gen++
	if s.gen == 0 { // wrapped: old stamps could match again
		clear(s.stamp)
		s.gen = 1
	}
	if n > len(s.stamp) {
		s.stamp = append(s.stamp, make([]uint32, n-len(s.stamp))...)
	}
}

// add puts task t in the set and reports whether it was not there yet.
func (s *taskSet) add(t int) bool {
	if s.stamp[t] == s.gen {
		return false
	}
	s.stamp[t] = s.gen
	return true
}

// has reports whether task t is in the set.
func (s *taskSet) has(t int) bool { return s.stamp[t] == s.gen }
