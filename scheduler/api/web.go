package api

import (
	"bytes"
	"cmp"
	_ "embed"
	"fmt"
	"hash/fnv"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"petite/scheduler"
	"petite/scheduler/metrics"
	"petite/scheduler/server"
	"petite/scheduler/state"
)

// The web page: a read-only view of the cluster for people, in one HTML
// document with its CSS inline, no script and no asset from elsewhere (the
// Content-Security-Policy says so to the browser too). docs/web.md.

//go:embed web/page.html
var pageSource string

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"gpus":  func(milli int64) string { return fmtGPUs(float64(milli) / scheduler.MilliPerGPU) },
	"fgpus": fmtGPUs,
}).Parse(pageSource))

// pageCSP allows the page's inline styles and nothing else: no script, no
// image, font or style from anywhere.
// Its one form, sign-out, posts to this server.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// maxPageJobs bounds the jobs table; the map and the totals cover all.
const maxPageJobs = 500

// palette colours the tenants, in the order of their names; it repeats
// past its length.
var palette = []string{
	"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#6b6ecf",
	"#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939", "#843c39",
}

// Colours of a device's free part and of a node that takes no work.
const (
	freeColour = "#e8ebef"
	// sickColour is the free part of a GPU its agent reports unhealthy:
	// withheld from placement, neither free nor allocated.
	sickColour = "#f2b8b5"
	offColour  = "#9aa1a9"
)

type pageTenant struct {
	Name, Colour      string
	Running, Queued   int
	GPUMilli, Pending int64
}

type pageCell struct {
	// Style is the cell's background: one colour, or stops of the tenants
	// holding shares of it over the free part.
	Style template.CSS
	Title string
}

type pageNode struct {
	Name, State, Model string
	Ready              bool
	Cells              []pageCell
	CapMilli, FreeMill int64
	// Withheld is the free capacity of its unhealthy GPUs.
	Withheld int64
	// Stranded is the node's stranded capacity in GPUs; StrandPct its share
	// of the node's capacity, the width of the mark under its cells.
	Stranded  float64
	StrandPct string
}

type pagePool struct {
	Name, Kind               string
	Nodes                    []pageNode
	Ready, NotReady          int
	CapMilli, UsedMilli      int64
	FreeMilli                int64 // on ready nodes
	Withheld                 int64 // free capacity of unhealthy GPUs
	Stranded                 float64
	StrandedNodes, GPUsTotal int
	CPUOnly                  int // nodes without GPUs, not drawn on the map
}

type pageJob struct {
	ID, Tenant, Colour, Status, Kind string
	Count                            int
	Ask                              string
	Where                            string
	Why                              string
}

type pageData struct {
	Server, Role, Leader string
	Tenants              []pageTenant
	Pools                []pagePool
	Jobs                 []pageJob
	JobsShown, JobsTotal int
	CapMilli, UsedMilli  int64
	FreeMilli            int64
	Withheld             int64
	Stranded             float64
	Queued, Running      int
	Nodes                int
	// SignedIn names the token of a person signed in with the page's
	// form (web_login.go); empty otherwise.
	SignedIn string
}

func fmtGPUs(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// routeWeb serves the page at GET /ui/ (the mux redirects /ui there). Like the other reads it is served by the leader, whose last pass
// knows why jobs wait; ?stale=true draws it from the server asked.
func (h *handler) routeWeb() {
	h.routeWebLogin()
	strand := metrics.NewStrand() // used under the FSM's lock only
	h.route("GET /ui/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ui/" {
			writeErr(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("no page %s: the page is /ui/", r.URL.Path)})
			return
		}
		h.page(w, r, strand)
	}, read)
}

func (h *handler) page(w http.ResponseWriter, r *http.Request, strand *metrics.Strand) {
	d := h.pageData(strand)
	if p, ok := Caller(r); ok && p.Via == viaCookie {
		d.SignedIn = p.Name
	}
	writeHTML(w, http.StatusOK, pageCSP, "page", pageTemplate, d)
}

// writeHTML renders a page of the server's own (no asset from elsewhere,
// never cached, its type not sniffed) with its CSP.
func writeHTML(w http.ResponseWriter, status int, csp, what string, t *template.Template, data any) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		writeErr(w, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: fmt.Sprintf("render %s: %v", what, err)})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// share is a part of a device held by a tenant.
type share struct {
	tenant int
	milli  int32
}

// pageData reads the state under the FSM's lock; the reasons a job waits
// are read after, from the leader's last pass.
func (h *handler) pageData(strand *metrics.Strand) pageData {
	d := pageData{Server: h.s.ID(), Role: strings.ToLower(h.s.State())}
	if id, _, ok := h.s.Leader(); ok {
		d.Leader = id
	}
	tenantIdx := map[string]int{}
	h.s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) {
		// Tenants: the registered ones and any a job names, ended jobs
		// included (each row of the jobs table has its tenant's colour).
		names := []string{}
		for _, t := range m.Tenants() {
			names = append(names, t.Name)
		}
		infos := m.Jobs()
		for _, info := range infos {
			names = append(names, info.Job.Tenant)
		}
		pending, running := m.Pending(), m.Running()
		slices.Sort(names)
		names = slices.Compact(names)
		for i, n := range names {
			tenantIdx[n] = i
			d.Tenants = append(d.Tenants, pageTenant{Name: tenantName(n), Colour: tenantColour(n, i)})
		}

		// Who holds each device.
		held := map[string][][]share{} // node -> device -> shares
		for _, rj := range running {
			ti := tenantIdx[rj.Job.Tenant]
			t := &d.Tenants[ti]
			t.Running++
			t.GPUMilli += rj.GPUMilli()
			for _, tp := range rj.Tasks {
				for _, g := range tp.GPUs {
					devs := held[tp.Node]
					for len(devs) <= g {
						devs = append(devs, nil)
					}
					devs[g] = append(devs[g], share{tenant: ti, milli: tp.GPUMilli})
					held[tp.Node] = devs
				}
			}
		}
		for _, j := range pending {
			t := &d.Tenants[tenantIdx[j.Tenant]]
			t.Queued++
			milli := j.Task.GPUMilli
			if j.Task.GPUs > 0 && milli == 0 {
				milli = scheduler.MilliPerGPU
			}
			t.Pending += int64(j.Count) * int64(j.Task.GPUs) * int64(milli)
		}
		d.Queued, d.Running = len(pending), len(running)

		// Pools and nodes, in the fleet's order.
		v := m.Cluster()
		poolIdx := map[string]int{}
		for _, p := range v.Pools() {
			poolIdx[p.Name] = len(d.Pools)
			d.Pools = append(d.Pools, pagePool{Name: p.Name, Kind: p.Kind.String()})
		}
		d.Nodes = v.NumNodes()
		for i := range v.NumNodes() {
			id := scheduler.NodeID(i)
			n := v.Node(id)
			u := v.Usage(id)
			pi, ok := poolIdx[n.Pool]
			if !ok {
				pi = len(d.Pools)
				poolIdx[n.Pool] = pi
				d.Pools = append(d.Pools, pagePool{Name: n.Pool})
			}
			pn := pageNode{Name: n.Name, State: n.State.String(), Ready: n.State == scheduler.NodeReady,
				CapMilli: u.GPUCap, FreeMill: u.GPUFree}
			if len(n.GPUs) > 0 {
				pn.Model = n.GPUs[0].Model
			}
			pn.Stranded = strand.GPUs(v, id, n.State)
			if u.GPUCap > 0 {
				pn.StrandPct = fmt.Sprintf("%.1f", 100*pn.Stranded*scheduler.MilliPerGPU/float64(u.GPUCap))
			}
			devs := held[n.Name]
			sick := v.UnhealthyDevices(id)
			for g := range n.GPUs {
				var sh []share
				if g < len(devs) {
					sh = devs[g]
				}
				free, bad := int64(u.GPUs[g]), slices.Contains(sick, g)
				if bad {
					// Its free part reads 0 to placement; what it would
					// offer is its capacity less what runs there.
					free = int64(deviceCap(n, g))
					for _, x := range sh {
						free -= int64(x.milli)
					}
					free = max(free, 0)
					pn.Withheld += free
				}
				pn.Cells = append(pn.Cells, deviceCell(n, g, int32(free), sh, d.Tenants, pn.Ready, bad))
			}
			p := &d.Pools[pi]
			p.Nodes = append(p.Nodes, pn)
			if pn.Ready {
				p.Ready++
				p.FreeMilli += u.GPUFree
			} else {
				p.NotReady++
			}
			p.CapMilli += u.GPUCap
			p.UsedMilli += u.GPUCap - u.GPUFree - pn.Withheld
			p.Withheld += pn.Withheld
			p.GPUsTotal += len(n.GPUs)
			if len(n.GPUs) == 0 {
				p.CPUOnly++
			}
			p.Stranded += pn.Stranded
			if pn.Stranded > 0 {
				p.StrandedNodes++
			}
		}
		for _, p := range d.Pools {
			d.CapMilli += p.CapMilli
			d.UsedMilli += p.UsedMilli
			d.FreeMilli += p.FreeMilli
			d.Withheld += p.Withheld
			d.Stranded += p.Stranded
		}

		// Jobs: running and queued first, then the ended ones, each by id.
		d.JobsTotal = len(infos)
		slices.SortStableFunc(infos, func(a, b state.JobInfo) int {
			return cmp.Compare(jobOrder(a.Status), jobOrder(b.Status))
		})
		for _, info := range infos[:min(len(infos), maxPageJobs)] {
			d.Jobs = append(d.Jobs, pageJob{
				ID: info.Job.ID, Tenant: tenantName(info.Job.Tenant), Status: StatusName(info.Status),
				Kind: info.Job.Kind.String(), Count: info.Job.Count, Ask: askText(info.Job.Task),
				Colour: d.Tenants[tenantIdx[info.Job.Tenant]].Colour, Where: whereText(info.Tasks),
			})
		}
		d.JobsShown = len(d.Jobs)
	})
	for i := range d.Jobs {
		if d.Jobs[i].Status == StatusQueued {
			if u, ok := h.s.Unplaced(d.Jobs[i].ID); ok {
				d.Jobs[i].Why = u.Why
			}
		}
	}
	return d
}

// jobOrder puts live jobs before ended ones.
func jobOrder(s state.JobStatus) int {
	switch s {
	case state.Running:
		return 0
	case state.Pending:
		return 1
	}
	return 2
}

// deviceCap is a device's capacity in milli-GPUs.
func deviceCap(n scheduler.Node, g int) int32 {
	if c := n.GPUs[g].MilliCap; c != 0 {
		return c
	}
	return scheduler.MilliPerGPU
}

// deviceCell draws one device: each tenant's share from the bottom, in its
// colour, over the free part; grey when the node takes no work, red when
// the device is unhealthy (its free part withheld from placement).
func deviceCell(n scheduler.Node, g int, free int32, sh []share, tenants []pageTenant, ready, sick bool) pageCell {
	capMilli := deviceCap(n, g)
	title := fmt.Sprintf("%s GPU %d", n.Name, g)
	if n.GPUs[g].MIG != "" {
		title += " (MIG " + n.GPUs[g].MIG + ")"
	}
	rest, restName := freeColour, "free"
	switch {
	case sick:
		rest, restName = sickColour, "unhealthy, withheld from placement"
		title += " (unhealthy)"
	case !ready:
		rest = offColour
	}
	if len(sh) == 0 {
		return pageCell{Style: template.CSS("background:" + rest), Title: title + ": " + restName + " " + fmtGPUs(float64(free)/scheduler.MilliPerGPU)}
	}
	var stops []string
	var at float64
	var who []string
	for _, s := range sh {
		// A share taken whole (a MIG instance, an exclusive device) fills
		// the device.
		part := min(float64(s.milli)/float64(capMilli), 1-at)
		if len(sh) == 1 && free == 0 {
			part = 1
		}
		c := tenants[s.tenant].Colour
		stops = append(stops, fmt.Sprintf("%s %.1f%%,%s %.1f%%", c, 100*at, c, 100*(at+part)))
		at += part
		who = append(who, fmt.Sprintf("%s %s", tenants[s.tenant].Name, fmtGPUs(float64(s.milli)/scheduler.MilliPerGPU)))
	}
	title += ": " + strings.Join(who, ", ")
	if len(sh) == 1 && at == 1 { // one task holds it all
		return pageCell{Style: template.CSS("background:" + tenants[sh[0].tenant].Colour), Title: title}
	}
	if at < 1 {
		stops = append(stops, fmt.Sprintf("%s %.1f%%,%s 100%%", rest, 100*at, rest))
	}
	return pageCell{Style: template.CSS("background:linear-gradient(to top," + strings.Join(stops, ",") + ")"), Title: title}
}

// tenantName shows a job without a tenant as "(none)".
func tenantName(t string) string {
	if t == "" {
		return "(none)"
	}
	return t
}

// tenantColour picks a tenant's colour: by its place among the names, so
// that the tenants shown differ, unless there are more than the palette.
func tenantColour(name string, i int) string {
	if i < len(palette) {
		return palette[i]
	}
	f := fnv.New32a()
	_, _ = f.Write([]byte(name))
	return palette[f.Sum32()%uint32(len(palette))]
}

func askText(t scheduler.Task) string {
	switch {
	case t.GPUs == 0:
		return fmt.Sprintf("%s CPU", fmtGPUs(float64(t.CPUMilli)/1000))
	case t.GPUMilli > 0 && t.GPUMilli < scheduler.MilliPerGPU:
		return fmt.Sprintf("%s GPU", fmtGPUs(float64(t.GPUMilli)/scheduler.MilliPerGPU))
	}
	s := fmt.Sprintf("%d GPU", t.GPUs)
	if len(t.Models) > 0 {
		s += " " + strings.Join(t.Models, "|")
	}
	return s
}

// whereText lists the nodes a job's tasks run on, the first few.
func whereText(tps []scheduler.TaskPlacement) string {
	var nodes []string
	for _, tp := range tps {
		if !slices.Contains(nodes, tp.Node) {
			nodes = append(nodes, tp.Node)
		}
	}
	if len(nodes) > 4 {
		return strings.Join(nodes[:4], ", ") + fmt.Sprintf(" and %d more", len(nodes)-4)
	}
	return strings.Join(nodes, ", ")
}
