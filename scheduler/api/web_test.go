package api

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/state"
)

// webCluster is one server of 4 nodes of 8 H100 running work of two
// tenants: research holds 12 whole GPUs (node n0 and half of another),
// vision three half GPUs.
func webCluster(t *testing.T) *cluster {
	t.Helper()
	c := newCluster(t, 1, 4)
	cl := c.client(0)
	for _, s := range []string{
		"id: full\ntenant: research\ncount: 1\ntask:\n  gpus: 8\n  cpu_milli: 1000\n  memory_mib: 1024\n  command: [x]\n",
		"id: half\ntenant: research\ncount: 1\ntask:\n  gpus: 4\n  cpu_milli: 1000\n  memory_mib: 1024\n  command: [x]\n",
		"id: share\ntenant: vision\ncount: 3\ntask:\n  gpus: 1\n  gpu_milli: 500\n  cpu_milli: 1000\n  memory_mib: 1024\n  command: [x]\n",
	} {
		_, err := cl.Submit(context.Background(), []byte(s))
		require.NoError(t, err)
	}
	for _, id := range []string{"full", "half", "share"} {
		waitStatus(t, cl, id, StatusRunning)
	}
	return c
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// The page is one self-contained document: no script, no asset from
// elsewhere, a policy that forbids them; it lists the jobs and nodes and
// draws one cell per GPU.
func TestWebPage(t *testing.T) {
	c := webCluster(t)
	resp, body := get(t, c.ds[0].URL+"/ui/")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	page := string(body)
	for _, banned := range []string{"<script", "<link", "src=", "href=", "url(", "@import", "http://", "https://"} {
		assert.NotContains(t, strings.ToLower(page), banned, "the page must stand alone")
	}
	for _, want := range []string{"full", "half", "share", "research", "vision", "n0", "n3", "GPU map"} {
		assert.Contains(t, page, want)
	}
	assert.Equal(t, 32, strings.Count(page, `<i style="background:`), "one cell per GPU")
	assert.Equal(t, 12, strings.Count(page, `<i style="background:`+palette[0]+`"`), "research's whole GPUs, one colour each")
	assert.Equal(t, 3, strings.Count(page, "vision 0.5"), "vision's three shares, each on its GPU's cell")

	// A job that ended, of a tenant with nothing else: still listed.
	cl := c.client(0)
	_, err := cl.Submit(context.Background(), []byte("id: gone\ntenant: ops\ncount: 1\ntask:\n  gpus: 1\n  cpu_milli: 1000\n  memory_mib: 1024\n  command: [x]\n"))
	require.NoError(t, err)
	waitStatus(t, cl, "gone", StatusRunning)
	_, err = cl.Finish(context.Background(), "gone", FinishRequest{})
	require.NoError(t, err)
	waitStatus(t, cl, "gone", StatusSucceeded)
	resp, body = get(t, c.ds[0].URL+"/ui/")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), `<td class="status-succeeded">succeeded</td>`)
	assert.Contains(t, string(body), `</span>ops</td><td class="n">`, "the tenant of an ended job has its row (and colour)")

	// Below /ui/ there is nothing; /ui itself leads to the page.
	resp, _ = get(t, c.ds[0].URL+"/ui/nothing")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = get(t, c.ds[0].URL+"/ui")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "/ui/", resp.Request.URL.Path)
}

// blob is a connected area of one colour in a screenshot.
type blob struct{ w, h, area int }

// blobs finds the connected areas of exactly colour c.
func blobs(img image.Image, c color.NRGBA) []blob {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	is := func(x, y int) bool {
		return color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA) == c
	}
	seen := make([]bool, w*h)
	var out []blob
	var stack []int
	for start := range w * h {
		if seen[start] || !is(start%w, start/w) {
			continue
		}
		x0, y0, x1, y1, area := w, h, -1, -1, 0
		stack = append(stack[:0], start)
		seen[start] = true
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := p%w, p/w
			area++
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			for _, d := range [][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
				nx, ny := x+d[0], y+d[1]
				if nx >= 0 && ny >= 0 && nx < w && ny < h && !seen[ny*w+nx] && is(nx, ny) {
					seen[ny*w+nx] = true
					stack = append(stack, ny*w+nx)
				}
			}
		}
		out = append(out, blob{w: x1 - x0 + 1, h: y1 - y0 + 1, area: area})
	}
	return out
}

func hexColour(t *testing.T, s string) color.NRGBA {
	t.Helper()
	require.Regexp(t, regexp.MustCompile(`^#[0-9a-f]{6}$`), s)
	var c color.NRGBA
	c.A = 0xff
	for i, p := range []*uint8{&c.R, &c.G, &c.B} {
		var v uint8
		for _, ch := range s[1+2*i : 3+2*i] {
			v = v*16 + uint8(strings.IndexRune("0123456789abcdef", ch))
		}
		*p = v
	}
	return c
}

// The page as a person sees it: Chromium renders it, and the screenshot
// shows the GPU map with research's twelve GPUs as cells of its colour,
// vision's three halves in its own, the free GPUs in the free colour and
// the stranded capacity marked.
func TestWebPageRendersInChromium(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("chromium is not installed (Debian package chromium): the page's rendering is not checked here")
	}
	c := webCluster(t)
	_, body := get(t, c.ds[0].URL+"/ui/")
	dir := t.TempDir()
	page := filepath.Join(dir, "page.html")
	shot := filepath.Join(dir, "out.png")
	require.NoError(t, os.WriteFile(page, body, 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--force-device-scale-factor=1", "--screenshot="+shot, "--window-size=1200,1400", "file://"+page)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "chromium: %s", out)
	f, err := os.Open(shot)
	require.NoError(t, err, "chromium wrote no screenshot: %s", out)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	if keep := os.Getenv("PETITE_WEB_SHOT"); keep != "" { // to look at it
		b, err := os.ReadFile(shot)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(keep, b, 0o644))
	}

	bg := color.NRGBAModel.Convert(img.At(3, 3)).(color.NRGBA)
	require.Equal(t, hexColour(t, "#f4f5f7"), bg, "the page is not petite's (an error page?)")

	// A cell is 10 px wide; the legend's and tables' chips are wider.
	cells := func(hex string) (whole, area int) {
		for _, b := range blobs(img, hexColour(t, hex)) {
			if b.w == 10 {
				area += b.area
				if b.h == 14 {
					whole++
				}
			}
		}
		return whole, area
	}
	research, _ := cells(palette[0])
	assert.Equal(t, 12, research, "research's GPUs drawn in its colour")
	_, vision := cells(palette[1])
	assert.InDelta(t, 3*70, vision, 30, "vision's three halves of a GPU (70 px each)")
	free, _ := cells(freeColour)
	assert.GreaterOrEqual(t, free, 32-12-3, "free GPUs")
	assert.Less(t, free, 32-12, "a GPU shared by vision drawn as free")
	var strand int
	for _, b := range blobs(img, hexColour(t, "#c0102e")) {
		strand += b.area
	}
	assert.Greater(t, strand, 20, "no stranded capacity marked")
}

// A GPU its agent reports unhealthy is drawn in its own colour, and its
// free part is counted withheld: neither free nor allocated.
func TestWebPageUnhealthyGPUs(t *testing.T) {
	c := webCluster(t)
	// n3 runs nothing (full on n0, half and the shares on n1-n2): two of
	// its GPUs go bad; one share-holding GPU elsewhere too.
	_, body := get(t, c.ds[0].URL+"/ui/")
	before := string(body)
	require.Contains(t, before, "GPUs allocated<b>13.5 / 32</b>")
	_, err := c.ds[0].Server.Apply(context.Background(), state.SetDeviceHealth{Node: "n3", Devices: []int{0, 1}})
	require.NoError(t, err)
	resp, body := get(t, c.ds[0].URL+"/ui/")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	page := string(body)
	assert.Equal(t, 2, strings.Count(page, `<i style="background:`+sickColour+`"`), "two unhealthy cells")
	assert.Contains(t, page, "n3 GPU 0 (unhealthy): unhealthy, withheld from placement 1")
	assert.Contains(t, page, "GPUs withheld (unhealthy)<b>2</b>")
	assert.Contains(t, page, "GPUs allocated<b>13.5 / 32</b>", "withheld GPUs are not allocated")
	assert.Contains(t, page, "GPUs free (ready nodes)<b>16.5</b>", "nor free")
	assert.Contains(t, page, "unhealthy GPU (withheld from placement)", "the legend says what the colour is")
}
