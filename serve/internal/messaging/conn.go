package messaging

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Redact returns a connection URL, or a comma-separated list of them,
// with every password or token in its user info replaced by "xxxxx", for
// errors and logs. A URL without a scheme ("user:pw@host:4222") is
// redacted the same way.
func Redact(urls string) string {
	var out []string
	for u := range strings.SplitSeq(urls, ",") {
		i := 0
		if s := strings.Index(u, "://"); s >= 0 {
			i = s + 3
		}
		end := len(u)
		if j := strings.IndexAny(u[i:], "/?#"); j >= 0 {
			end = i + j
		}
		if j := strings.LastIndex(u[i:end], "@"); j >= 0 {
			cred := u[i : i+j]
			if k := strings.Index(cred, ":"); k >= 0 {
				cred = cred[:k] + ":xxxxx"
			} else {
				cred = "xxxxx"
			}
			u = u[:i] + cred + u[i+j:]
		}
		out = append(out, u)
	}
	return strings.Join(out, ",")
}

// Secret names where a credential is read from: an environment variable
// or a file (its content, without a trailing newline). Credentials are
// never written in serve.yaml itself.
type Secret struct {
	Env  string `json:"env,omitempty"`
	File string `json:"file,omitempty"`
}

// Value reads the secret; what says what it is for in errors. An unset
// Secret gives "". A variable that is not set, or an unreadable file, is
// an error naming the variable or file (never the value).
func (s *Secret) Value(what string) (string, error) {
	if s == nil {
		return "", nil
	}
	switch {
	case s.Env != "" && s.File != "":
		return "", fmt.Errorf("%s: set env or file, not both", what)
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return "", fmt.Errorf("%s: environment variable %s is not set", what, s.Env)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
}

// TLS configures a client's TLS: a CA bundle to trust instead of the
// system's, a client certificate and key, the server name to verify.
type TLS struct {
	CA         string `json:"ca,omitempty"`   // PEM file
	Cert       string `json:"cert,omitempty"` // PEM file, with Key
	Key        string `json:"key,omitempty"`
	ServerName string `json:"server_name,omitempty"`
	// InsecureSkipVerify accepts any server certificate: for tests only.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// Config builds the tls.Config (TLS 1.2 at least); a nil TLS gives nil.
func (t *TLS) Config() (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // an explicit, documented test option
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca: %s holds no PEM certificate", t.CA)
		}
		c.RootCAs = pool
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, errors.New("tls: cert and key go together")
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("tls cert: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}
