package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPickIsNext checks the turns against the plain statement of whose
// turn it is (ledger.next, a scan): over random ledgers, after random
// changes to holdings, queue positions and done marks, each followed by a
// fix of the tenants it changed, pick names the tenant next names. Ties
// of share are frequent (many tenants hold nothing), so the name order is
// exercised too.
func TestPickIsNext(t *testing.T) {
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 17))
		var given []Tenant
		for i := range rng.IntN(6) {
			given = append(given, Tenant{Name: fmt.Sprintf("g%d", i), Weight: float64(rng.IntN(3))})
		}
		l, err := newLedger(given)
		require.NoError(t, err)
		l.cap = amount{gpu: 8000, cpu: 64000, mem: 1 << 20}
		for i := range 1 + rng.IntN(40) {
			l.tenant(fmt.Sprintf("t%02d", rng.IntN(50)+i))
		}
		for i := range l.tenants {
			tn := &l.tenants[i]
			for range rng.IntN(4) {
				tn.queue = append(tn.queue, &Job{ID: fmt.Sprint(i)})
			}
			tn.used = amount{gpu: int64(500 * rng.IntN(4)), cpu: int64(8000 * rng.IntN(3))}
		}
		l.order()
		for step := range 300 {
			require.Equal(t, l.next(), l.pick(), "seed %d step %d", seed, step)
			i := rng.IntN(len(l.tenants))
			if k := l.pick(); k >= 0 && rng.IntN(2) == 0 {
				i = k // mostly the tenant whose turn it was, as in a pass
			}
			tn := &l.tenants[i]
			switch rng.IntN(4) {
			case 0:
				tn.used.gpu += int64(250 * rng.IntN(3))
			case 1:
				tn.used.gpu = max(0, tn.used.gpu-500)
			case 2:
				tn.pos = min(len(tn.queue), tn.pos+1)
			default:
				tn.done = !tn.done
			}
			l.fix(i)
		}
	}
}
