package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// tlsStream is raft's stream layer over mutual TLS. Both ends present a
// certificate of the cluster's CA, and the configuration (built by
// pki.Files.PeerConfig) accepts only certificates with the role server:
// a client's or an agent's certificate cannot vote, append or install a
// snapshot.
type tlsStream struct {
	net.Listener
	cfg *tls.Config
}

// Dial connects to a peer's raft listener and completes the handshake
// within timeout. The peer's certificate must answer for the host of its
// raft address (its --ip or --dns at issue).
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, fmt.Errorf("raft peer address %q: %w", address, err)
	}
	cfg := s.cfg.Clone()
	cfg.ServerName = host
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(address), cfg)
	if err != nil {
		return nil, fmt.Errorf("raft TLS to %s: %w", address, err)
	}
	return conn, nil
}

// newTransport is raft's network transport: over TLS when cfg.RaftTLS is
// set, plain TCP otherwise.
func newTransport(cfg Config, log hclog.Logger) (*raft.NetworkTransport, error) {
	if cfg.RaftTLS == nil {
		// With no advertise address the transport advertises what it bound
		// ("127.0.0.1:0" resolved to its port); an unspecified IP is refused.
		return raft.NewTCPTransportWithLogger(cfg.RaftAddr, nil, 8, 5*time.Second, log)
	}
	if len(cfg.RaftTLS.Certificates) == 0 || cfg.RaftTLS.ClientAuth != tls.RequireAndVerifyClientCert {
		return nil, errors.New("raft TLS: the configuration must carry the server's certificate and require the peer's (pki.Files.PeerConfig)")
	}
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, err
	}
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok || addr.IP == nil || addr.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %s is not one peers can dial: give an IP or a name of this host", cfg.RaftAddr)
	}
	stream := &tlsStream{Listener: tls.NewListener(ln, cfg.RaftTLS), cfg: cfg.RaftTLS}
	return raft.NewNetworkTransportWithLogger(stream, 8, 5*time.Second, log), nil
}
