package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files names the PEM files of one party: the CA certificate it trusts
// and its own certificate and key. A client may leave Cert and Key empty
// (it then proves who it is with a token alone).
type Files struct {
	CA, Cert, Key string
}

// Empty reports whether no file is named: TLS is off.
func (f Files) Empty() bool { return f.CA == "" && f.Cert == "" && f.Key == "" }

func (f Files) pool() (*x509.CertPool, error) {
	if f.CA == "" {
		return nil, errors.New("a CA certificate is required (--tls-ca)")
	}
	b, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA certificate %s: no PEM certificate in it", f.CA)
	}
	return pool, nil
}

// pair loads the party's certificate and key and reads its identity.
func (f Files) pair() (tls.Certificate, Identity, error) {
	if f.Cert == "" || f.Key == "" {
		return tls.Certificate{}, Identity{}, errors.New("a certificate and its key are required (--tls-cert and --tls-key)")
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, Identity{}, fmt.Errorf("certificate %s, key %s: %w", f.Cert, f.Key, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return tls.Certificate{}, Identity{}, fmt.Errorf("certificate %s: %w", f.Cert, err)
	}
	pair.Leaf = leaf
	id, err := IdentityOf(leaf)
	if err != nil {
		return tls.Certificate{}, Identity{}, fmt.Errorf("%s: %w", f.Cert, err)
	}
	return pair, id, nil
}

// ServerConfig is the TLS configuration of a server's HTTP API: its own
// certificate (role server), and client certificates verified against the
// CA when given. A request without one can only reach the open endpoints
// (health): the API's middleware asks for a certificate everywhere else.
func (f Files) ServerConfig() (*tls.Config, error) {
	pool, pair, err := f.serverPair("a server")
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}, nil
}

// ClientConfig is the TLS configuration of a client of the API (the CLI,
// an agent, a server forwarding to the leader): the CA to verify servers
// with, and its own certificate when Cert and Key are set.
func (f Files) ClientConfig() (*tls.Config, error) {
	pool, err := f.pool()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool}
	if f.Cert != "" || f.Key != "" {
		pair, _, err := f.pair()
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// PeerConfig is the TLS configuration of raft traffic, used both to
// accept and to dial: both ends must present a certificate of the CA with
// the role server. A client's or an agent's certificate, valid as it may
// be, is refused in the handshake.
func (f Files) PeerConfig() (*tls.Config, error) {
	pool, pair, err := f.serverPair("raft")
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{pair},
		RootCAs:          pool,
		ClientCAs:        pool,
		ClientAuth:       tls.RequireAndVerifyClientCert,
		VerifyConnection: RequireRole(RoleServer),
	}, nil
}

// RequireRole returns a tls.Config.VerifyConnection that accepts a peer
// only if its (already verified) certificate names one of roles.
func RequireRole(roles ...string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		id, err := PeerIdentity(cs)
		if err != nil {
			return err
		}
		for _, r := range roles {
			if id.Role == r {
				return nil
			}
		}
		return fmt.Errorf("peer %s: role %s not allowed here", id, id.Role)
	}
}

// PeerIdentity reads the identity of the peer of a TLS connection from its
// verified certificate.
func PeerIdentity(cs tls.ConnectionState) (Identity, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, errors.New("peer presented no certificate of the CA")
	}
	return IdentityOf(cs.VerifiedChains[0][0])
}

// ServersOnlyConfig is the TLS configuration of an endpoint that only the
// cluster's servers may call: an agent's log API, which the servers proxy
// for `petite job logs`. It serves f's certificate (an agent's or a
// server's) and refuses, in the handshake, any peer without a server
// certificate of the CA.
func (f Files) ServersOnlyConfig() (*tls.Config, error) {
	pool, err := f.pool()
	if err != nil {
		return nil, err
	}
	pair, id, err := f.pair()
	if err != nil {
		return nil, err
	}
	if id.Role == RoleClient {
		return nil, fmt.Errorf("%s names %s: a client certificate cannot serve", f.Cert, id)
	}
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{pair},
		ClientCAs:        pool,
		ClientAuth:       tls.RequireAndVerifyClientCert,
		VerifyConnection: RequireRole(RoleServer),
	}, nil
}

// serverPair reads the CA and this server's own pair, which must name the
// role server; who says who needs it, for the error.
func (f Files) serverPair(who string) (*x509.CertPool, tls.Certificate, error) {
	pool, err := f.pool()
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	pair, id, err := f.pair()
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	if id.Role != RoleServer {
		return nil, tls.Certificate{}, fmt.Errorf("%s names %s: %s needs a server certificate", f.Cert, id, who)
	}
	return pool, pair, nil
}
