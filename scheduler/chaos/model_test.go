package chaos

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/assert"
)

// op builds an operation of client c over [call, ret].
func op(c int, call, ret int64, in Input, out Output) porcupine.Operation {
	return porcupine.Operation{ClientId: c, Call: call, Return: ret, Input: in, Output: out}
}

func sub(key string) Input    { return Input{Kind: OpSubmit, Key: key, RequestID: "r-" + key} }
func stat(key string) Input   { return Input{Kind: OpStatus, Key: key} }
func cancel(key string) Input { return Input{Kind: OpCancel, Key: key} }
func finish(key string) Input { return Input{Kind: OpFinish, Key: key} }

func ok(status string) Output { return Output{Result: ResOK, Status: status} }

var (
	notFound = Output{Result: ResNotFound}
	unknown  = Output{Result: ResUnknown}
	never    = int64(math.MaxInt64 / 2)
)

// The model accepts the histories a correct daemon can give and refuses
// those of the faults it is there to catch: a lost acknowledged write, a
// job made twice, a read that goes back in time.
func TestModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		want bool
	}{
		{"a job's life", []porcupine.Operation{
			op(0, 0, 1, sub("a"), ok("queued")),
			op(1, 2, 3, stat("a"), ok("running")),
			op(0, 4, 5, finish("a"), ok("succeeded")),
			op(1, 6, 7, cancel("a"), ok("succeeded")),
			op(1, 8, 9, stat("a"), ok("succeeded")),
		}, true},
		{"a read concurrent with the submit may miss it", []porcupine.Operation{
			op(0, 0, 10, sub("a"), ok("queued")),
			op(1, 1, 2, stat("a"), notFound),
			op(1, 3, 4, stat("a"), ok("queued")),
		}, true},
		{"an acknowledged submit lost", []porcupine.Operation{
			op(0, 0, 1, sub("a"), ok("queued")),
			op(1, 2, 3, stat("a"), notFound),
		}, false},
		{"a read goes back in time", []porcupine.Operation{
			op(0, 0, 1, sub("a"), ok("queued")),
			op(0, 2, 3, cancel("a"), ok("cancelled")),
			op(1, 4, 5, stat("a"), ok("queued")),
		}, false},
		{"a retried submit answered conflict", []porcupine.Operation{
			op(0, 0, 1, sub("a"), Output{Result: ResConflict}),
		}, false},
		{"an unknown submit may take effect late", []porcupine.Operation{
			op(0, 0, never, sub("a"), unknown),
			op(1, 2, 3, stat("a"), notFound),
			op(1, 4, 5, stat("a"), ok("queued")),
		}, true},
		{"an unknown cancel may take effect or not", []porcupine.Operation{
			op(0, 0, 1, sub("a"), ok("queued")),
			op(0, 2, never, cancel("a"), unknown),
			op(1, 3, 4, stat("a"), ok("running")),
			op(1, 5, 6, stat("a"), ok("cancelled")),
		}, true},
		{"finish of a queued job is refused and changes nothing", []porcupine.Operation{
			op(0, 0, 1, sub("a"), ok("queued")),
			op(0, 2, 3, finish("a"), Output{Result: ResRefused}),
			op(1, 4, 5, stat("a"), ok("queued")),
		}, true},
		{"a finished job cancelled", []porcupine.Operation{
			op(0, 0, 1, sub("a"), ok("queued")),
			op(0, 2, 3, finish("a"), ok("succeeded")),
			op(0, 4, 5, cancel("a"), ok("cancelled")),
		}, false},
		{"a drained node read as ready", []porcupine.Operation{
			op(0, 0, 1, Input{Kind: OpSetNode, Key: "n0", Arg: "draining"}, ok("draining")),
			op(1, 2, 3, Input{Kind: OpGetNode, Key: "n0"}, ok("ready")),
		}, false},
		{"jobs are independent", []porcupine.Operation{
			op(0, 0, 1, sub("a"), ok("queued")),
			op(1, 0, 1, sub("b"), ok("queued")),
			op(0, 2, 3, cancel("b"), ok("cancelled")),
			op(1, 4, 5, stat("a"), ok("running")),
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := porcupine.CheckOperationsTimeout(Model(), tc.ops, 0)
			want := porcupine.Illegal
			if tc.want {
				want = porcupine.Ok
			}
			assert.Equal(t, want, res)
		})
	}
}

func TestPhaseString(t *testing.T) {
	assert.Equal(t, "absent|live", (Absent | Live).String())
	assert.Equal(t, "none", Phase(0).String())
}
