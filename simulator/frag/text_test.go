package frag

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// The text form of a run states only figures its JSON form carries, and
// those figures are true of the run: the method's figure is read at
// round(100 × inflate)% arrival, and the end of the sequence is where the
// last pod left it (computed here from the decisions themselves).
func TestTextAgreesWithJSON(t *testing.T) {
	f, w := loadSmall(t)
	pct := regexp.MustCompile(`(\d+(?:\.\d+)?)%`)
	for _, inflate := range []float64{0, 0.5, 1, 1.3, 2, 100} {
		t.Run(fmt.Sprint(inflate), func(t *testing.T) {
			var arrived, alloc int64
			r, err := run(f, w, Config{Policy: "fgd", Seed: 42, Inflate: inflate}, func(_ int, pod int32, a scheduler.Assign, ok bool) {
				arrived += w.Pods[pod].GPUMilli()
				if ok {
					alloc += int64(a.Take) * int64(bits.OnesCount64(a.Mask))
				}
			})
			require.NoError(t, err)
			var text strings.Builder
			require.NoError(t, r.WriteText(&text, w))
			b, err := json.Marshal(r)
			require.NoError(t, err)
			var fields map[string]any
			require.NoError(t, json.Unmarshal(b, &fields))

			// Every percentage of the text is a top-level figure of the JSON.
			var figures []string
			for k, v := range fields {
				if x, ok := v.(float64); ok && k != "curve" {
					figures = append(figures, strconv.FormatFloat(x, 'f', 2, 64))
				}
			}
			for _, m := range pct.FindAllStringSubmatch(text.String(), -1) {
				x, err := strconv.ParseFloat(m[1], 64)
				require.NoError(t, err)
				assert.Contains(t, figures, strconv.FormatFloat(x, 'f', 2, 64), "%q in the text is not in the JSON %s", m[0], b[:min(len(b), 300)])
			}
			capMilli := int64(r.GPUs) * scheduler.MilliPerGPU
			hundredths := func(milli int64) string { // half up, in integers
				h := (milli*20000 + capMilli) / (2 * capMilli)
				return fmt.Sprintf("%d.%02d", h/100, h%100)
			}
			assert.Contains(t, text.String(), hundredths(alloc)+"% of GPUs allocated at the end", "the end of the sequence")
			assert.Contains(t, text.String(), "at "+hundredths(arrived)+"% arrival", "the end of the sequence")
			if inflate > 0 {
				at := math.Round(100 * inflate)
				assert.Contains(t, text.String(), fmt.Sprintf("%.2f%% of GPUs allocated at %.0f%% arrival", r.FinalAllocPct, at), "the method's figure")
			}
		})
	}
}
