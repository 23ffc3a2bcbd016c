package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"petite/scheduler/server"
)

// Daemon is a server and its HTTP API, started together.
type Daemon struct {
	Server *server.Server
	// URL is the API's address, http://HOST:PORT.
	URL  string
	http *http.Server
	ln   net.Listener
	done chan error

	closeOnce sync.Once
	closeErr  error
}

// Start listens for the API on httpAddr ("127.0.0.1:0" picks a port),
// starts the server with that address recorded for forwarding, and
// serves. It returns at once; Ready waits for a leader. WithSecurity
// turns on TLS (the URL is then https://) and authentication.
func Start(cfg server.Config, httpAddr string, log *slog.Logger, opts ...Option) (*Daemon, error) {
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for the API on %s: %w", httpAddr, err)
	}
	url := "http://" + ln.Addr().String()
	if sec := applyOptions(opts).sec; sec != nil && sec.TLS != nil {
		ln, url = tls.NewListener(ln, sec.TLS), "https://"+ln.Addr().String()
	}
	cfg.HTTPAddr = url
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	s, err := server.New(cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	d := &Daemon{
		Server: s, URL: url, ln: ln, done: make(chan error, 1),
		http: DefaultTimeouts.Apply(&http.Server{Handler: limitClients(NewHandler(s, log, opts...), applyOptions(opts).rate)}), // limit.go
	}
	go func() { d.done <- d.http.Serve(ln) }()
	return d, nil
}

// Ready waits until the server knows a leader and has caught up.
func (d *Daemon) Ready(ctx context.Context) error { return d.Server.Ready(ctx) }

// Close stops the API and the server; the data dir keeps the state. A
// second Close returns the first one's result: the serve loop's end is read
// once.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.close() })
	return d.closeErr
}

func (d *Daemon) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	herr := d.http.Shutdown(ctx)
	if errors.Is(herr, context.DeadlineExceeded) {
		herr = d.http.Close()
	}
	if err := <-d.done; !errors.Is(err, http.ErrServerClosed) && herr == nil {
		herr = err
	}
	return errors.Join(herr, d.Server.Close())
}
