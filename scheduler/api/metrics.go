package api

import "petite/scheduler/metrics"

// routeObservability serves what lets people watch a server: Prometheus
// metrics at GET /metrics, always from the server asked (each server
// reports its own raft view and counts its own work while it leads; a
// scraper scrapes every server), and the web page (web.go).
func (h *handler) routeObservability() {
	m := metrics.New(h.s, metrics.Options{})
	h.route("GET /metrics", m.Handler().ServeHTTP, local)
	h.routeWeb()
}
