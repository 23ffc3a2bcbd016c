package api

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// CodeRateLimited answers a client over its request rate (429, with
// Retry-After).
const CodeRateLimited = "rate_limited"

// RateLimit is the API's per-client request rate: a token bucket per
// client address, refilled at PerSecond up to Burst. A server forwarding a
// client's request counts as one client with Forwarded times the bucket:
// it speaks for all of its own clients.
type RateLimit struct {
	PerSecond float64
	Burst     int
	// Forwarded multiplies rate and burst for forwarded requests.
	Forwarded int
}

// DefaultRateLimit is generous for any one client (a CLI, an agent, a
// dashboard) and stops a flood from one address long before the server
// runs out of CPU.
var DefaultRateLimit = RateLimit{PerSecond: 500, Burst: 1000, Forwarded: 16}

// WithRateLimit sets the API's per-client rate limit; PerSecond <= 0 turns
// it off.
func WithRateLimit(rl RateLimit) Option { return func(o *options) { o.rate = &rl } }

// maxLimited bounds the clients tracked: past it, those idle for a while
// are forgotten (a full bucket is what a new client gets anyway).
const maxLimited = 10000

// limiter is the per-client rate limit in front of the API.
type limiter struct {
	rl      RateLimit
	next    http.Handler
	mu      sync.Mutex
	clients map[string]*client
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

// limitClients puts a per-client rate limit in front of h (nil: the
// default).
func limitClients(h http.Handler, rl *RateLimit) http.Handler {
	if rl == nil {
		rl = &DefaultRateLimit
	}
	if rl.PerSecond <= 0 {
		return h
	}
	return &limiter{rl: *rl, next: h, clients: map[string]*client{}}
}

func (l *limiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		key = r.RemoteAddr
	}
	per, burst := l.rl.PerSecond, l.rl.Burst
	if r.Header.Get(ForwardedHeader) != "" && l.rl.Forwarded > 1 {
		key = "forwarded " + key
		per, burst = per*float64(l.rl.Forwarded), burst*l.rl.Forwarded
	}
	now := time.Now()
	l.mu.Lock()
	c, ok := l.clients[key]
	if !ok {
		if len(l.clients) >= maxLimited {
			l.forget(now)
		}
		c = &client{lim: rate.NewLimiter(rate.Limit(per), burst)}
		l.clients[key] = c
	}
	c.seen = now
	res := c.lim.ReserveN(now, 1)
	l.mu.Unlock()
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now) // a refused request takes no token
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
		writeErr(w, &Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited,
			Message: fmt.Sprintf("more than %g requests a second from %s; retry after %s", per, key, d.Round(time.Millisecond))})
		return
	}
	l.next.ServeHTTP(w, r)
}

// forget drops clients idle for a minute, or every one when none is (a
// flood from many addresses must not grow the table without bound).
func (l *limiter) forget(now time.Time) {
	for k, c := range l.clients {
		if now.Sub(c.seen) > time.Minute {
			delete(l.clients, k)
		}
	}
	if len(l.clients) >= maxLimited {
		clear(l.clients)
	}
}

// Timeouts bound how long a client may hold a connection of the API:
// headers and body must arrive within ReadHeader and Read (a slow-loris
// client is cut off), an idle keep-alive connection is closed after Idle.
// There is no write timeout: a snapshot or a log stream may take long to
// send to a slow but live reader.
type Timeouts struct {
	ReadHeader, Read, Idle time.Duration
}

// DefaultTimeouts are the API server's.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 60 * time.Second, Idle: 2 * time.Minute}

// Apply sets the timeouts of an HTTP server.
func (t Timeouts) Apply(hs *http.Server) *http.Server {
	hs.ReadHeaderTimeout, hs.ReadTimeout, hs.IdleTimeout = t.ReadHeader, t.Read, t.Idle
	return hs
}
