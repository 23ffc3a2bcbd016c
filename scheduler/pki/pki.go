// Package pki is petite's small certificate authority: it makes a CA,
// issues certificates that name a role and a name, reads that identity
// back from a peer's certificate, and builds the TLS configurations the
// API, the raft transport and the clients use.
//
// A certificate's identity is its URI SAN spiffe://petite/ROLE/NAME (the
// subject repeats it as OU=ROLE, CN=NAME for people reading it); the URI is
// what petite trusts.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The roles a certificate can carry.
const (
	// RoleServer is a petite server: it may join raft and forward API
	// requests on behalf of the caller it authenticated.
	RoleServer = "server"
	// RoleAgent is a node agent: it may report and run for the node it
	// names, and no other.
	RoleAgent = "agent"
	// RoleClient is a user or a program using the API.
	RoleClient = "client"
)

// Roles lists the roles in the order the CLI shows them.
var Roles = []string{RoleServer, RoleAgent, RoleClient}

// The trust domain of petite's identities: spiffe://petite/ROLE/NAME.
const (
	uriScheme = "spiffe"
	uriHost   = "petite"
)

// File names in a CA directory.
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
)

// Identity is who a certificate names.
type Identity struct {
	Role string
	Name string
}

// String is the identity's URI.
func (id Identity) String() string { return id.URI().String() }

// URI is the identity as a SPIFFE-style URI.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: uriScheme, Host: uriHost, Path: "/" + id.Role + "/" + id.Name}
}

// validName keeps names to what a node or server name is made of, so an
// identity always round-trips through its URI.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)

// Check reports whether the identity has a known role and a valid name.
func (id Identity) Check() error {
	if !slices.Contains(Roles, id.Role) {
		return fmt.Errorf("role %q: want one of %s", id.Role, strings.Join(Roles, ", "))
	}
	if !validName.MatchString(id.Name) {
		return fmt.Errorf("name %q: want letters, digits, '.', '_' or '-' (a node or server name)", id.Name)
	}
	return nil
}

// IdentityOf reads the identity a certificate names in its URI SAN.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	for _, u := range cert.URIs {
		if u.Scheme != uriScheme || u.Host != uriHost {
			continue
		}
		role, name, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		id := Identity{Role: role, Name: name}
		if !ok {
			return Identity{}, fmt.Errorf("certificate %q: identity %s: want spiffe://petite/ROLE/NAME", cert.Subject.CommonName, u)
		}
		if err := id.Check(); err != nil {
			return Identity{}, fmt.Errorf("certificate %q: identity %s: %w", cert.Subject.CommonName, u, err)
		}
		return id, nil
	}
	return Identity{}, fmt.Errorf("certificate %q names no petite identity (a URI SAN spiffe://petite/ROLE/NAME)", cert.Subject.CommonName)
}

// CA is a certificate authority that can issue certificates.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// PEM is the CA certificate as read or written.
	PEM []byte
}

// Files are where a CA directory keeps things.
func caPaths(dir string) (cert, key string) {
	return filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
}

// InitCA makes a new CA (ECDSA P-256) valid from now for validity, and
// writes ca.pem and ca-key.pem (mode 0600) into dir. It refuses to
// overwrite an existing CA: every certificate it issued would stop being
// trusted.
func InitCA(dir, name string, now time.Time, validity time.Duration) (*CA, error) {
	certPath, keyPath := caPaths(dir)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			return nil, fmt.Errorf("%s exists; a new CA would invalidate every certificate issued by it (remove the directory to start again)", p)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"petite"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("CA directory: %w", err)
	}
	if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, PEM: certPEM}, nil
}

// LoadCA reads the CA that InitCA wrote into dir.
func LoadCA(dir string) (*CA, error) {
	certPath, keyPath := caPaths(dir)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("CA: %w (run 'petite tls init' first)", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w", certPath, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("CA %s: key is %T, want ECDSA", keyPath, pair.PrivateKey)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w", certPath, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("CA %s: not a CA certificate", certPath)
	}
	return &CA{Cert: cert, Key: key, PEM: certPEM}, nil
}

// Request says what certificate to issue.
type Request struct {
	Identity
	// DNS and IPs are the host names and addresses a server or agent
	// certificate answers for; a client needs none.
	DNS []string
	IPs []net.IP
	// Validity is how long the certificate is valid from now.
	Validity time.Duration
}

// Issued is a certificate and its private key, PEM-encoded.
type Issued struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Issue makes a key (ECDSA P-256) and a certificate for it, signed by the
// CA, naming req's identity. Servers and agents may serve and dial (raft,
// forwarding, log streams); clients only dial.
func (ca *CA) Issue(req Request, now time.Time) (Issued, error) {
	if err := req.Check(); err != nil {
		return Issued{}, err
	}
	if req.Validity <= 0 {
		return Issued{}, errors.New("validity must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, fmt.Errorf("key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return Issued{}, err
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if req.Role != RoleClient {
		usage = append(usage, x509.ExtKeyUsageServerAuth)
	}
	notAfter := now.Add(req.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.Name, OrganizationalUnit: []string{req.Role}, Organization: []string{"petite"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
		DNSNames:     req.DNS,
		IPAddresses:  req.IPs,
		URIs:         []*url.URL{req.URI()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return Issued{}, fmt.Errorf("certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Issued{}, fmt.Errorf("certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Issued{}, err
	}
	return Issued{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: keyPEM}, nil
}

// Write saves the certificate and key (mode 0600) at the given paths,
// refusing to overwrite either unless force.
func (is Issued) Write(certPath, keyPath string, force bool) error {
	if !force {
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("%s exists (--force replaces it)", p)
			}
		}
	}
	if err := writeFile(keyPath, is.KeyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(certPath, is.CertPEM, 0o644)
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeFile writes through a temporary file and a rename, so a reader
// never sees half a key.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// IssueFiles issues a certificate for req and writes it into dir as
// ROLE-NAME.pem and ROLE-NAME-key.pem; it returns the files a party uses,
// with the CA's certificate beside them.
func (ca *CA) IssueFiles(dir string, req Request, now time.Time, force bool) (Files, error) {
	is, err := ca.Issue(req, now)
	if err != nil {
		return Files{}, err
	}
	base := filepath.Join(dir, req.Role+"-"+req.Name)
	f := Files{CA: filepath.Join(dir, CAFile), Cert: base + ".pem", Key: base + "-key.pem"}
	if err := is.Write(f.Cert, f.Key, force); err != nil {
		return Files{}, err
	}
	return f, nil
}
