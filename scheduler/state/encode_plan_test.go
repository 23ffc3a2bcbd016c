package state

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// planCases are plans at the edges of the wire form: nil and empty lists,
// zero and extreme numbers, strings that need escaping or do not survive
// encoding.
func planCases() map[string]ApplyPlan {
	full := examples()[7].(ApplyPlan)
	return map[string]ApplyPlan{
		"golden example": full,
		"empty":          {},
		"empty lists":    {Evict: []scheduler.Eviction{}, Place: []scheduler.JobPlacement{}, At: -1},
		"nil tasks":      {Place: []scheduler.JobPlacement{{Job: "a"}}, At: 1},
		"empty tasks":    {Place: []scheduler.JobPlacement{{Job: "a", Tasks: []scheduler.TaskPlacement{}}}},
		"zero fields": {Place: []scheduler.JobPlacement{{Job: "", Tasks: []scheduler.TaskPlacement{{GPUs: []int{}}}}},
			Evict: []scheduler.Eviction{{Tasks: []int{}, Seen: []scheduler.TaskPlacement{}}}},
		"extremes": {Place: []scheduler.JobPlacement{{Job: "x", Tasks: []scheduler.TaskPlacement{{
			Task: math.MinInt, Node: "n", GPUs: []int{math.MaxInt, -1, 0}, GPUMilli: math.MinInt32, CPUMilli: math.MaxInt64, MemoryMiB: math.MinInt64,
		}}}}, At: math.MinInt64},
		"escapes": {Place: []scheduler.JobPlacement{{Job: "a\"b\\c\n<&>\u2028é", Tasks: []scheduler.TaskPlacement{{Node: "\x01\x7f", GPUMilli: 1}}}},
			Evict: []scheduler.Eviction{{Job: "日本", For: "\t", Seen: []scheduler.TaskPlacement{{Node: "ü"}}}}},
		"invalid utf-8": {Place: []scheduler.JobPlacement{{Job: "a\xffb", Tasks: []scheduler.TaskPlacement{{Node: "n\xc3"}}}}},
		"random":        randomPlan(rand.New(rand.NewPCG(1, 2)), 200),
	}
}

// randomPlan draws a plan of about n placements with every field in use.
func randomPlan(r *rand.Rand, n int) ApplyPlan {
	ints := func(k int) []int {
		if k == 0 && r.IntN(2) == 0 {
			return nil
		}
		out := make([]int, k)
		for i := range out {
			out[i] = r.IntN(16) - 2
		}
		return out
	}
	tasks := func(k int) []scheduler.TaskPlacement {
		out := make([]scheduler.TaskPlacement, k)
		for i := range out {
			out[i] = scheduler.TaskPlacement{
				Task: r.IntN(8), Node: fmt.Sprintf("n%03d", r.IntN(300)), GPUs: ints(r.IntN(4)),
				GPUMilli: int32(r.IntN(3) * 500), CPUMilli: int64(r.IntN(3) * 1000), MemoryMiB: int64(r.IntN(2) * 4096),
			}
		}
		return out
	}
	p := ApplyPlan{At: r.Int64()}
	for i := range n {
		p.Place = append(p.Place, scheduler.JobPlacement{Job: fmt.Sprintf("j%d", i), Tasks: tasks(1 + r.IntN(3))})
		if r.IntN(10) == 0 {
			p.Evict = append(p.Evict, scheduler.Eviction{Job: fmt.Sprintf("e%d", i), Tasks: ints(r.IntN(3)), For: []string{"", "j1"}[r.IntN(2)], Seen: tasks(r.IntN(3))})
		}
	}
	return p
}

// TestPlanEncoding checks the plan's own encoder and decoder against
// encoding/json's: the same bytes, the same command back, and
// EncodeDecoded's command the one the bytes decode to.
func TestPlanEncoding(t *testing.T) {
	for name, p := range planCases() {
		t.Run(name, func(t *testing.T) {
			want, err := encodeJSON(p)
			require.NoError(t, err)
			got, err := Encode(p)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got), "the plan encoder writes encoding/json's bytes")

			strict, err := decodeStrict(got)
			require.NoError(t, err)
			fast, ok := decodePlan(got)
			if name == "escapes" || name == "invalid utf-8" {
				assert.False(t, ok, "escaped strings are left to the strict decoder")
			} else {
				require.True(t, ok, "the canonical form decodes on the fast path")
				assert.Equal(t, strict, fast)
			}
			viaDecode, err := Decode(got)
			require.NoError(t, err)
			assert.Equal(t, strict, viaDecode)

			b, dec, err := EncodeDecoded(&p)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(b))
			if name == "invalid utf-8" {
				assert.Nil(t, dec, "a string that encoding changes is not handed back")
				return
			}
			require.NotNil(t, dec)
			assert.Equal(t, strict, dec, "EncodeDecoded's command is what Decode returns")
		})
	}
}

// TestEncodeDecodedSharesNothing changes every list of the plan it encoded
// and finds the command it returned unchanged.
func TestEncodeDecodedSharesNothing(t *testing.T) {
	p := examples()[7].(ApplyPlan)
	b, dec, err := EncodeDecoded(p)
	require.NoError(t, err)
	p.Place[0].Tasks[0].GPUs[0] = 7
	p.Place[0].Tasks[1].Node = "other"
	p.Evict[0].Tasks[0] = 9
	p.Evict[0].Seen[0].GPUMilli = 1
	p.Place[0].Job = "changed"
	back, err := Decode(b)
	require.NoError(t, err)
	assert.Equal(t, back, dec)

	raw, cmd, err := EncodeDecoded(Cancel{Job: "a"})
	require.NoError(t, err)
	assert.Nil(t, cmd, "only plans are handed back")
	want, err := Encode(Cancel{Job: "a"})
	require.NoError(t, err)
	assert.Equal(t, string(want), string(raw))
	_, _, err = EncodeDecoded((*ApplyPlan)(nil))
	assert.ErrorContains(t, err, "nil *state.ApplyPlan")
}

// TestDecodePlanNonCanonical feeds plans that are not in the canonical form:
// the fast path refuses each, and Decode answers as the strict decoder does
// (the same command, or the same error), so old or hand-written entries
// read as they always did.
func TestDecodePlanNonCanonical(t *testing.T) {
	tests := []struct {
		name, in, err string
	}{
		{"fields reordered", `{"type":"apply_plan","v":1,"at":3,"place":[{"tasks":[{"node":"n","task":0}],"job":"a"}]}`, ""},
		{"whitespace", `{"v":1,"type":"apply_plan", "at":3}`, ""},
		{"trailing newline", `{"v":1,"type":"apply_plan","at":3}` + "\n", ""},
		{"zero written", `{"v":1,"type":"apply_plan","place":[{"job":"a","tasks":[{"task":0,"node":"n","gpu_milli":0}]}],"at":3}`, ""},
		{"empty list written", `{"v":1,"type":"apply_plan","evict":[],"at":3}`, ""},
		{"empty devices written", `{"v":1,"type":"apply_plan","place":[{"job":"a","tasks":[{"task":0,"node":"n","gpus":[]}]}],"at":3}`, ""},
		{"empty for written", `{"v":1,"type":"apply_plan","evict":[{"job":"a","for":""}],"at":3}`, ""},
		{"null list", `{"v":1,"type":"apply_plan","evict":null,"at":3}`, ""},
		{"escaped string", `{"v":1,"type":"apply_plan","place":[{"job":"\u0061","tasks":null}],"at":3}`, ""},
		{"exponent", `{"v":1,"type":"apply_plan","at":3e2}`, "of type int64"},
		{"fraction", `{"v":1,"type":"apply_plan","at":3.0}`, "of type int64"},
		{"leading zero", `{"v":1,"type":"apply_plan","at":03}`, "invalid character"},
		{"minus zero", `{"v":1,"type":"apply_plan","at":-0}`, ""},
		{"int32 overflow", `{"v":1,"type":"apply_plan","place":[{"job":"a","tasks":[{"task":0,"node":"n","gpu_milli":2147483648}]}],"at":3}`, "of type int32"},
		{"int64 overflow", `{"v":1,"type":"apply_plan","at":9223372036854775808}`, "of type int64"},
		{"unknown field", `{"v":1,"type":"apply_plan","place":[{"job":"a","tasks":[{"task":0,"node":"n","vram":1}]}],"at":3}`, "field place[0].tasks[0].vram: unknown"},
		{"repeated field", `{"v":1,"type":"apply_plan","at":3,"at":4}`, "field at: repeated"},
		{"null number", `{"v":1,"type":"apply_plan","place":[{"job":"a","tasks":[{"task":null,"node":"n"}]}],"at":3}`, "want int, got null"},
		{"trailing data", `{"v":1,"type":"apply_plan","at":3}{}`, "invalid character"},
		{"truncated", `{"v":1,"type":"apply_plan","place":[{"job":"a","tasks":[{"task":0,"node":"n"`, "unexpected end"},
		{"no at", `{"v":1,"type":"apply_plan"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ok := decodePlan([]byte(tt.in))
			assert.False(t, ok, "not canonical: the strict decoder decides")
			want, wantErr := decodeStrict([]byte(tt.in))
			got, err := Decode([]byte(tt.in))
			assert.Equal(t, want, got)
			if tt.err == "" {
				require.NoError(t, err)
				require.NoError(t, wantErr)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
			assert.Equal(t, wantErr.Error(), err.Error())
		})
	}
}

// TestDecodeStoredPlanEntries decodes plan entries as an earlier build
// wrote them to a raft log (testdata/entries), through Decode: each is
// the command it was written from.
func TestDecodeStoredPlanEntries(t *testing.T) {
	want := map[string]ApplyPlan{
		// The canonical form, as every build so far has written it.
		"apply_plan_v1.json": examples()[7].(ApplyPlan),
		// A plan written field by field in another order, with spaces: an
		// entry from a writer other than Encode.
		"apply_plan_v1_reordered.json": {At: 9, Place: []scheduler.JobPlacement{{Job: "j", Tasks: []scheduler.TaskPlacement{{Node: "n1", Task: 2, GPUs: []int{3}, GPUMilli: 250}}}}},
	}
	for file, p := range want {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "entries", file))
			require.NoError(t, err)
			got, err := Decode([]byte(strings.TrimSuffix(string(b), "\n")))
			require.NoError(t, err)
			assert.Equal(t, p, got)
		})
	}
}

// FuzzEncodePlan builds plans from arbitrary fields: the plan encoder must
// write encoding/json's bytes, Decode must read them back as the strict
// decoder does, and EncodeDecoded's command must be that command.
func FuzzEncodePlan(f *testing.F) {
	f.Add("train-1", "dgx-1", "", 0, 3, int32(500), int64(2000), int64(8192), int64(140), uint8(0))
	f.Add("a\"b", "n\xff", "for", -1, math.MaxInt, int32(0), int64(0), int64(-1), int64(math.MinInt64), uint8(0xff))
	f.Add("", "", "\u2028", 0, 0, int32(math.MinInt32), int64(math.MaxInt64), int64(0), int64(0), uint8(0x55))
	f.Fuzz(func(t *testing.T, job, node, forJob string, task, gpu int, milli int32, cpu, mem, at int64, shape uint8) {
		tp := scheduler.TaskPlacement{Task: task, Node: node, GPUMilli: milli, CPUMilli: cpu, MemoryMiB: mem}
		switch shape & 3 { // device list: nil, empty, one, two
		case 1:
			tp.GPUs = []int{}
		case 2:
			tp.GPUs = []int{gpu}
		case 3:
			tp.GPUs = []int{gpu, -gpu}
		}
		p := ApplyPlan{At: at}
		switch shape >> 2 & 3 { // the job's tasks: nil, empty, one, two
		case 0:
			p.Place = []scheduler.JobPlacement{{Job: job}}
		case 1:
			p.Place = []scheduler.JobPlacement{{Job: job, Tasks: []scheduler.TaskPlacement{}}}
		case 2:
			p.Place = []scheduler.JobPlacement{{Job: job, Tasks: []scheduler.TaskPlacement{tp}}}
		case 3:
			p.Place = []scheduler.JobPlacement{{Job: job, Tasks: []scheduler.TaskPlacement{tp, tp}}, {Job: node}}
		}
		if shape&16 != 0 {
			p.Evict = []scheduler.Eviction{{Job: job, For: forJob, Tasks: tp.GPUs, Seen: p.Place[0].Tasks}}
		}
		if shape&32 != 0 {
			p.Place = nil
		}
		want, err := encodeJSON(p)
		require.NoError(t, err)
		got, err := Encode(p)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
		strict, err := decodeStrict(got)
		require.NoError(t, err)
		back, err := Decode(got)
		require.NoError(t, err)
		require.Equal(t, strict, back)
		b, dec, err := EncodeDecoded(p)
		require.NoError(t, err)
		require.Equal(t, string(want), string(b))
		if dec != nil {
			require.Equal(t, strict, dec)
		}
	})
}

// BenchmarkPlanCodec encodes and decodes a plan of 1,000 one-task
// placements (the batched entry of bench.BenchmarkRaftCommit) with the
// plan's own code and with encoding/json's; one op is one decision.
func BenchmarkPlanCodec(b *testing.B) {
	p := ApplyPlan{At: 1}
	for i := range 1000 {
		p.Place = append(p.Place, scheduler.JobPlacement{Job: fmt.Sprintf("r0-%06d", i), Tasks: []scheduler.TaskPlacement{
			{Node: fmt.Sprintf("n%04d", i/80), GPUs: []int{i / 10 % 8}, GPUMilli: 100},
		}})
	}
	raw, err := Encode(p)
	require.NoError(b, err)
	run := func(name string, fn func() error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := fn(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/decision")
		})
	}
	run("encode", func() error { _, err := Encode(p); return err })
	run("encode-json", func() error { _, err := encodeJSON(p); return err })
	run("encode-decoded", func() error { _, _, err := EncodeDecoded(p); return err })
	run("decode", func() error { _, err := Decode(raw); return err })
	run("decode-strict", func() error { _, err := decodeStrict(raw); return err })
}

// FuzzDecodePlan feeds the plan's fast path arbitrary bytes: what it takes
// must be canonical (Encode writes those very bytes) and read as the
// strict decoder reads it; Decode must answer as the strict decoder does.
func FuzzDecodePlan(f *testing.F) {
	for _, p := range planCases() {
		b, err := Encode(p)
		require.NoError(f, err)
		f.Add(b)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "entries", "*.json"))
	require.NoError(f, err)
	for _, p := range files {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		strict, strictErr := decodeStrict(data)
		if p, ok := decodePlan(data); ok {
			require.NoError(t, strictErr, "the fast path took what the strict decoder refuses")
			require.Equal(t, strict, Command(p))
			enc, err := Encode(p)
			require.NoError(t, err)
			require.Equal(t, string(data), string(enc), "the fast path took bytes that are not canonical")
		}
		got, err := Decode(data)
		require.Equal(t, strict, got)
		if strictErr != nil {
			require.EqualError(t, err, strictErr.Error())
		}
	})
}
