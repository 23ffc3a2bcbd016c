package report

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromium finds a headless-capable Chromium, or "".
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// region is a box of the screenshot, in pixels.
type region struct{ x0, y0, x1, y1 int }

// whiteRegions finds the connected areas of white pixels at least minW ×
// minH in size: the plots' pages, which the report sets on a grey
// background.
func whiteRegions(img image.Image, minW, minH int) []region {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	white := func(x, y int) bool {
		r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
		return r>>8 >= 250 && g>>8 >= 250 && bl>>8 >= 250
	}
	seen := make([]bool, w*h)
	var out []region
	var stack []int
	for start := range w * h {
		if seen[start] || !white(start%w, start/w) {
			continue
		}
		rg := region{w, h, -1, -1}
		stack = append(stack[:0], start)
		seen[start] = true
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := p%w, p/w
			rg.x0, rg.y0, rg.x1, rg.y1 = min(rg.x0, x), min(rg.y0, y), max(rg.x1, x), max(rg.y1, y)
			for _, d := range [][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
				nx, ny := x+d[0], y+d[1]
				if nx < 0 || ny < 0 || nx >= w || ny >= h {
					continue
				}
				q := ny*w + nx
				if !seen[q] && white(nx, ny) {
					seen[q] = true
					stack = append(stack, q)
				}
			}
		}
		if rg.x1-rg.x0+1 >= minW && rg.y1-rg.y0+1 >= minH {
			out = append(out, rg)
		}
	}
	return out
}

// ink counts, in a region, the dark pixels (text, axes) and the coloured
// ones (the data, drawn in the palette's colours).
func ink(img image.Image, rg region) (dark, coloured int) {
	for y := rg.y0; y <= rg.y1; y++ {
		for x := rg.x0; x <= rg.x1; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			hi := max(c.R, c.G, c.B)
			lo := min(c.R, c.G, c.B)
			if hi < 110 {
				dark++
			}
			if int(hi)-int(lo) > 60 {
				coloured++
			}
		}
	}
	return dark, coloured
}

// The report as a person sees it: Chromium renders the page, and the
// screenshot shows, on the report's own background (not an error page),
// one white plot per plot the report names, each with text and axes and
// with data drawn in colour.
func TestReportRendersInChromium(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("chromium is not installed (Debian package chromium): the report's rendering is not checked here")
	}
	r := testReport(t)
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, r))
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	shot := filepath.Join(dir, "out.png")
	require.NoError(t, os.WriteFile(page, buf.Bytes(), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--screenshot="+shot, "--window-size=1400,3200", "file://"+page)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir) // its profile in the test's folder
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "chromium: %s", out)
	f, err := os.Open(shot)
	require.NoError(t, err, "chromium wrote no screenshot: %s", out)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	if keep := os.Getenv("PETITE_REPORT_SHOT"); keep != "" { // to look at it
		b, err := os.ReadFile(shot)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(keep, b, 0o644))
	}

	// The report's background in the corner: an error page has its own.
	bg := color.NRGBAModel.Convert(img.At(3, 3)).(color.NRGBA)
	require.Equal(t, color.NRGBA{0xee, 0xf0, 0xf3, 0xff}, bg, "the page is not the report (an error page?)")

	// Plots are 620 px wide in the page; anything of 400 × 250 white is one.
	regions := whiteRegions(img, 400, 250)
	slices.SortFunc(regions, func(a, b region) int {
		if a.y0/50 != b.y0/50 { // same row, within a few pixels
			return a.y0 - b.y0
		}
		return a.x0 - b.x0
	})
	want := r.Plots()
	require.Len(t, regions, len(want), "plots seen: %v", regions)
	for i, rg := range regions {
		area := (rg.x1 - rg.x0 + 1) * (rg.y1 - rg.y0 + 1)
		dark, coloured := ink(img, rg)
		assert.Greater(t, dark, area/400, "plot %s at %v: too little text and axes", want[i], rg)
		assert.Greater(t, coloured, 150, "plot %s at %v: no data drawn in colour", want[i], rg)
		// Nothing cut at the right: the page's width holds the plot.
		assert.Less(t, rg.x1, img.Bounds().Dx()-1, "plot %s runs off the page", want[i])
	}
}
