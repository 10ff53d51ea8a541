package messagingtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority for TLS tests: a CA, a server
// certificate for 127.0.0.1 and a client certificate, valid for an hour.
type PKI struct {
	CA         string // PEM file of the authority's certificate
	Pool       *x509.CertPool
	Server     tls.Certificate
	ClientCert string // PEM files of the client's certificate and key
	ClientKey  string
	ServerCert string // PEM files of the server's certificate and key
	ServerKey  string
	// OtherCA is the PEM file of an unrelated authority, for tests that a
	// client refuses a server it should not trust.
	OtherCA string
}

// NewPKI makes a PKI whose files are in a temporary directory.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	serial := int64(0)
	issue := func(tmpl, parent *x509.Certificate, signer *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		if signer == nil {
			signer, parent = key, tmpl
		}
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
		must(err)
		c, err := x509.ParseCertificate(der)
		must(err)
		return c, key
	}
	caTmpl := func(name string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	}
	ca, caKey := issue(caTmpl("pirn test CA"), nil, nil)
	other, _ := issue(caTmpl("another CA"), nil, nil)
	srv, srvKey := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, caKey)
	cli, cliKey := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "pirn client"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	certPEM := func(c *x509.Certificate) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	keyPEM := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		must(err)
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		must(os.WriteFile(p, b, 0o600))
		return p
	}
	p := &PKI{CA: write("ca.pem", certPEM(ca)), OtherCA: write("other-ca.pem", certPEM(other)), Pool: x509.NewCertPool(),
		ClientCert: write("client.pem", certPEM(cli)), ClientKey: write("client-key.pem", keyPEM(cliKey)),
		ServerCert: write("server.pem", certPEM(srv)), ServerKey: write("server-key.pem", keyPEM(srvKey))}
	p.Pool.AddCert(ca)
	var err error
	p.Server, err = tls.X509KeyPair(certPEM(srv), keyPEM(srvKey))
	must(err)
	return p
}

// ServerConfig is a server's TLS configuration, requiring a client
// certificate signed by the authority if mutual.
func (p *PKI) ServerConfig(mutual bool) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{p.Server}}
	if mutual {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, p.Pool
	}
	return c
}

// ClientConfig is a client's TLS configuration trusting the authority.
func (p *PKI) ClientConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.Pool}
}
