package dispatch_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/pirn-wasm/pirn/abi"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/dispatch"
	"github.com/pirn-wasm/pirn/dispatch/dispatchtest"
	"github.com/pirn-wasm/pirn/host"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/scheduler"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ name, url, want string }{
		{"none", "nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"empty", "", ""},
		{"password", "nats://alice:s3cret@127.0.0.1:4222", "nats://alice:xxxxx@127.0.0.1:4222"},
		{"token", "nats://s3cret@127.0.0.1:4222", "nats://xxxxx@127.0.0.1:4222"},
		{"tls", "tls://alice:s3cret@nats.example:4222", "tls://alice:xxxxx@nats.example:4222"},
		{"at in password", "nats://alice:s3@cret@h:4222", "nats://alice:xxxxx@h:4222"},
		{"several", "nats://alice:s3cret@h1:4222,nats://h2:4222,tls://s3cret@h3:4222",
			"nats://alice:xxxxx@h1:4222,nats://h2:4222,tls://xxxxx@h3:4222"},
		{"spaces", "nats://alice:s3cret@h1:4222, nats://bob:s3cret@h2:4222", "nats://alice:xxxxx@h1:4222, nats://bob:xxxxx@h2:4222"},
		// nats.go takes a URL without a scheme as nats://.
		{"no scheme", "alice:s3cret@h:4222", "alice:xxxxx@h:4222"},
		{"no scheme, token", "s3cret@h:4222,h2:4222", "xxxxx@h:4222,h2:4222"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dispatch.Redact(tc.url); got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.url, got, tc.want)
			}
		})
	}
}

// invokerFunc is a host-native function for dispatchtest.Funcs.
type invokerFunc func(ctx context.Context, c *scheduler.Call) abi.Response

func (f invokerFunc) Invoke(ctx context.Context, c *scheduler.Call) abi.Response { return f(ctx, c) }

// invoke dispatches one call of fn, with input x, as run runID and
// returns the response.
func invoke(t *testing.T, coord *dispatch.Coordinator, runID string, fn *scheduler.Fn, x int64) abi.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	end, err := coord.StartRun(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	defer end()
	v, err := cas.Encode(x)
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := coord.Dispatch(ctx, fn, &scheduler.Call{RunID: runID, KnotID: "k", Inputs: []abi.Arg{{Name: "x", Value: v}}})
	if !ok {
		t.Fatal("Dispatch ran the function locally")
	}
	return resp
}

// wantInt checks that resp is ok with the integer want.
func wantInt(t *testing.T, resp abi.Response, want int64) {
	t.Helper()
	if resp.Outcome != abi.OutcomeOK {
		t.Fatalf("response = %v %+v, want ok %d", resp.Outcome, resp.Error, want)
	}
	got, err := cas.Decode(resp.Value)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("response = ok %v, want ok %d", got, want)
	}
}

// roundTrip connects a coordinator and a worker to url with cfg and sends
// one job through them: the input goes to the worker through the store,
// and its output back.
func roundTrip(t *testing.T, url string, cfg dispatch.Config) {
	t.Helper()
	fns := &dispatchtest.Funcs{}
	coord := dispatchtest.Setup(t, url, cfg, cas.NewMemory(), fns, fns.Ship, 1, 1)
	echo := &scheduler.Fn{Name: "host:echo", Invoker: invokerFunc(func(_ context.Context, c *scheduler.Call) abi.Response {
		return abi.OK(c.Inputs[0].Value)
	})}
	wantInt(t, invoke(t, coord, "roundtrip", echo, 42), 42)
}

// refused checks that connecting to url with cfg fails with an error that
// names the server and shows none of the secrets.
func refused(t *testing.T, url string, cfg dispatch.Config, secrets ...string) {
	t.Helper()
	cfg.URL = url
	cfg.ConnectTimeout = 2 * time.Second
	b, err := dispatch.Connect(t.Context(), cfg)
	if err == nil {
		b.Close()
		t.Fatalf("Connect(%s) succeeded, want an error", dispatch.Redact(url))
	}
	msg := err.Error()
	if !strings.Contains(msg, dispatch.Redact(url)) {
		t.Errorf("Connect(%s) = %q, want it to name the server", dispatch.Redact(url), msg)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("Connect(%s) = %q, which shows the secret %q", dispatch.Redact(url), msg, s)
		}
	}
	t.Logf("refused: %v", err)
}

// withCreds returns url with userinfo in it: nats://userinfo@host:port.
func withCreds(url, userinfo string) string {
	scheme, rest, _ := strings.Cut(url, "://")
	return scheme + "://" + userinfo + "@" + rest
}

func TestConnectUserPassword(t *testing.T) {
	const user, password = "alice", "pa55-w0rd-alice"
	s := dispatchtest.Start(t, func(o *server.Options) { o.Username, o.Password = user, password })
	t.Run("fields", func(t *testing.T) { roundTrip(t, s.URL(), dispatch.Config{User: user, Password: password}) })
	t.Run("url", func(t *testing.T) { roundTrip(t, withCreds(s.URL(), user+":"+password), dispatch.Config{}) })
	const wrong = "wr0ng-pa55w0rd"
	t.Run("wrong password", func(t *testing.T) {
		refused(t, s.URL(), dispatch.Config{User: user, Password: wrong}, wrong, password)
	})
	t.Run("wrong password in url", func(t *testing.T) {
		refused(t, withCreds(s.URL(), user+":"+wrong), dispatch.Config{}, wrong, password)
	})
	t.Run("wrong user", func(t *testing.T) {
		refused(t, s.URL(), dispatch.Config{User: "mallory", Password: password}, password)
	})
	t.Run("none", func(t *testing.T) { refused(t, s.URL(), dispatch.Config{}) })
	t.Run("malformed url", func(t *testing.T) {
		// url.Parse's error quotes the whole URL.
		refused(t, withCreds(s.URL(), user+":"+wrong)+"x", dispatch.Config{}, wrong)
	})
}

func TestConnectToken(t *testing.T) {
	const token = "t0ken-0f-the-deployment"
	s := dispatchtest.Start(t, func(o *server.Options) { o.Authorization = token })
	t.Run("field", func(t *testing.T) { roundTrip(t, s.URL(), dispatch.Config{Token: token}) })
	t.Run("url", func(t *testing.T) { roundTrip(t, withCreds(s.URL(), token), dispatch.Config{}) })
	const wrong = "wr0ng-t0ken"
	t.Run("wrong", func(t *testing.T) { refused(t, s.URL(), dispatch.Config{Token: wrong}, wrong, token) })
	t.Run("wrong in url", func(t *testing.T) { refused(t, withCreds(s.URL(), wrong), dispatch.Config{}, wrong, token) })
	t.Run("none", func(t *testing.T) { refused(t, s.URL(), dispatch.Config{}) })
}

// writeFile writes b to name in a temporary directory, readable by its
// owner only, and returns its path.
func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// userKey makes a user nkey pair and writes its seed to a file.
func userKey(t *testing.T) (kp nkeys.KeyPair, pub, seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err = kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return kp, pub, writeFile(t, "user.nk", seed)
}

func seedOf(t *testing.T, kp nkeys.KeyPair) string {
	t.Helper()
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return string(seed)
}

func TestConnectNKey(t *testing.T) {
	_, pub, seedFile := userKey(t)
	stranger, _, strangerFile := userKey(t)
	s := dispatchtest.Start(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
	t.Run("seed file", func(t *testing.T) { roundTrip(t, s.URL(), dispatch.Config{NKey: seedFile}) })
	t.Run("unknown key", func(t *testing.T) {
		refused(t, s.URL(), dispatch.Config{NKey: strangerFile}, seedOf(t, stranger))
	})
	t.Run("none", func(t *testing.T) { refused(t, s.URL(), dispatch.Config{}) })
	t.Run("not a seed", func(t *testing.T) {
		_, err := dispatch.Connect(t.Context(), dispatch.Config{URL: s.URL(), NKey: writeFile(t, "bad.nk", []byte("not a seed\n"))})
		if err == nil || !strings.Contains(err.Error(), "bad.nk") {
			t.Errorf("Connect with a bad seed file = %v, want an error naming the file", err)
		}
	})
}

// operator is an operator, its system account and an account with
// JetStream, as nsc would make them, for a server in operator mode.
type operator struct {
	claims   *jwt.OperatorClaims
	sys, acc nkeys.KeyPair
	resolver *server.MemAccResolver
}

func newOperator(t *testing.T) *operator {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, err := okp.PublicKey()
	must(err)
	op := &operator{claims: jwt.NewOperatorClaims(opub), resolver: &server.MemAccResolver{}}
	op.sys, err = nkeys.CreateAccount()
	must(err)
	op.acc, err = nkeys.CreateAccount()
	must(err)
	spub, err := op.sys.PublicKey()
	must(err)
	op.claims.SystemAccount = spub
	_, err = op.claims.Encode(okp) // signs and validates the claims
	must(err)
	for _, kp := range []nkeys.KeyPair{op.sys, op.acc} {
		pub, err := kp.PublicKey()
		must(err)
		ac := jwt.NewAccountClaims(pub)
		if kp == op.acc {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		tok, err := ac.Encode(okp)
		must(err)
		must(op.resolver.Store(pub, tok))
	}
	return op
}

// options sets a server's options to trust the operator.
func (op *operator) options(o *server.Options) {
	o.TrustedOperators = []*jwt.OperatorClaims{op.claims}
	o.AccountResolver = op.resolver
	o.SystemAccount = op.claims.SystemAccount
}

// creds makes a user of account acc and writes its creds file: the
// user's JWT and its seed.
func creds(t *testing.T, acc nkeys.KeyPair) (path, seed string) {
	t.Helper()
	ukp, pub, _ := userKey(t)
	uc := jwt.NewUserClaims(pub)
	tok, err := uc.Encode(acc)
	if err != nil {
		t.Fatal(err)
	}
	seed = seedOf(t, ukp)
	b, err := jwt.FormatUserConfig(tok, []byte(seed))
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "user.creds", b), seed
}

func TestConnectCreds(t *testing.T) {
	op := newOperator(t)
	s := dispatchtest.Start(t, op.options)
	t.Run("creds file", func(t *testing.T) {
		path, _ := creds(t, op.acc)
		roundTrip(t, s.URL(), dispatch.Config{Creds: path})
	})
	t.Run("unknown account", func(t *testing.T) {
		other, err := nkeys.CreateAccount()
		if err != nil {
			t.Fatal(err)
		}
		path, seed := creds(t, other)
		refused(t, s.URL(), dispatch.Config{Creds: path}, seed)
	})
	t.Run("none", func(t *testing.T) { refused(t, s.URL(), dispatch.Config{}) })
}

// pki is an authority and what it signed: the server's certificate for
// 127.0.0.1 and a client's certificate, in files where a client reads
// them.
type pki struct {
	ca                    string // PEM file of the authority's certificate
	pool                  *x509.CertPool
	server                tls.Certificate
	clientCert, clientKey string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
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
			signer = key
		}
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
		must(err)
		c, err := x509.ParseCertificate(der)
		must(err)
		return c, key
	}
	ca, caKey := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "pirn test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil, nil)
	srv, srvKey := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, caKey)
	cli, cliKey := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "pirn worker"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	certPEM := func(c *x509.Certificate) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	keyPEM := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		must(err)
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	p := &pki{ca: writeFile(t, "ca.pem", certPEM(ca)), pool: x509.NewCertPool(),
		clientCert: writeFile(t, "client.pem", certPEM(cli)), clientKey: writeFile(t, "client-key.pem", keyPEM(cliKey))}
	p.pool.AddCert(ca)
	var err error
	p.server, err = tls.X509KeyPair(certPEM(srv), keyPEM(srvKey))
	must(err)
	return p
}

// options sets a server's options to require TLS with the authority's
// server certificate and, if mutual, a client certificate it signed.
func (p *pki) options(mutual bool) func(*server.Options) {
	return func(o *server.Options) {
		o.TLS = true
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
		if mutual {
			o.TLSVerify = true
			o.TLSConfig.ClientAuth = tls.RequireAndVerifyClientCert
			o.TLSConfig.ClientCAs = p.pool
		}
	}
}

func TestConnectTLS(t *testing.T) {
	p, other := newPKI(t), newPKI(t)
	s := dispatchtest.Start(t, p.options(false))
	if !strings.HasPrefix(s.URL(), "tls://") {
		t.Fatalf("server URL %s, want tls://", s.URL())
	}
	t.Run("ca", func(t *testing.T) { roundTrip(t, s.URL(), dispatch.Config{CA: p.ca}) })
	t.Run("nats url with ca", func(t *testing.T) {
		// A CA turns TLS on for a nats:// URL too.
		roundTrip(t, strings.Replace(s.URL(), "tls://", "nats://", 1), dispatch.Config{CA: p.ca})
	})
	t.Run("other ca", func(t *testing.T) { refused(t, s.URL(), dispatch.Config{CA: other.ca}) })
	t.Run("system roots", func(t *testing.T) { refused(t, s.URL(), dispatch.Config{}) })
	t.Run("nats url without ca", func(t *testing.T) {
		refused(t, strings.Replace(s.URL(), "tls://", "nats://", 1), dispatch.Config{})
	})
}

func TestConnectMutualTLS(t *testing.T) {
	p, other := newPKI(t), newPKI(t)
	s := dispatchtest.Start(t, p.options(true))
	t.Run("client certificate", func(t *testing.T) {
		roundTrip(t, s.URL(), dispatch.Config{CA: p.ca, Cert: p.clientCert, Key: p.clientKey})
	})
	t.Run("no client certificate", func(t *testing.T) { refused(t, s.URL(), dispatch.Config{CA: p.ca}) })
	t.Run("client certificate of another ca", func(t *testing.T) {
		refused(t, s.URL(), dispatch.Config{CA: p.ca, Cert: other.clientCert, Key: other.clientKey})
	})
	t.Run("key missing", func(t *testing.T) {
		_, err := dispatch.Connect(t.Context(), dispatch.Config{URL: s.URL(), CA: p.ca, Cert: p.clientCert})
		if err == nil || !strings.Contains(err.Error(), "key file") {
			t.Errorf("Connect with a certificate and no key = %v, want an error asking for the key file", err)
		}
	})
}

// runWorker runs a worker on the server at url until the test ends.
func runWorker(t *testing.T, url string, cfg dispatch.Config, store cas.Store, exec dispatch.Executor, wcfg dispatch.WorkerConfig) {
	t.Helper()
	cfg.URL = url
	b, err := dispatch.Connect(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	wcfg.Drain = time.Second
	w, err := dispatch.NewWorker(b, store, exec, wcfg)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done; b.Close() })
}

// negate is examples/wasm/wat/negate.wasm: its knot negate(x: int)
// returns -x.
func negate(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../examples/wasm/wat/negate.wasm")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// modules connects a coordinator that ships every function as spec, and
// a worker with wcfg that runs modules from store, to a prefix of their
// own on the shared server.
func modules(t *testing.T, h *host.Host, store cas.Store, spec dispatch.Spec, wcfg dispatch.WorkerConfig) *dispatch.Coordinator {
	t.Helper()
	url, prefix := dispatchtest.Shared(t)
	cfg := dispatch.Config{Prefix: prefix}
	ship := func(*scheduler.Fn) (dispatch.Spec, bool) { return spec, true }
	coord := dispatchtest.Setup(t, url, cfg, store, dispatch.NewModules(h, store), ship, 0, 0)
	runWorker(t, url, cfg, store, dispatch.NewModules(h, store), wcfg)
	return coord
}

// forgetful is a store that drops the puts of one digest.
type forgetful struct {
	cas.Store
	drop cas.Digest
}

func (f forgetful) Put(ctx context.Context, d cas.Digest, b []byte) error {
	if d == f.drop {
		return nil
	}
	return f.Store.Put(ctx, d, b)
}

func TestUnavailable(t *testing.T) {
	h := newHost(t)
	wasm := negate(t)
	mod := cas.Sum(wasm)
	in21, err := cas.Encode(int64(21)) // what invoke sends
	if err != nil {
		t.Fatal(err)
	}
	in22, err := cas.Encode(int64(22))
	if err != nil {
		t.Fatal(err)
	}
	fn := &scheduler.Fn{Name: "negate", Module: mod.String()}
	for _, tc := range []struct {
		name  string
		store func(*cas.Memory) cas.Store // prepares the store
		want  string                      // in the error's message; "" for ok -21
	}{
		{"module in the store", func(s *cas.Memory) cas.Store {
			_ = s.Put(t.Context(), mod, wasm)
			return s
		}, ""},
		{"module missing", func(s *cas.Memory) cas.Store { return s }, mod.String()},
		{"module corrupt", func(s *cas.Memory) cas.Store {
			tampered := append([]byte(nil), wasm...)
			tampered[len(tampered)-1] ^= 1
			_ = s.Put(t.Context(), mod, tampered)
			return s
		}, "do not match"},
		{"input missing", func(s *cas.Memory) cas.Store {
			_ = s.Put(t.Context(), mod, wasm)
			return forgetful{s, cas.Sum(in21)}
		}, cas.Sum(in21).String()},
		{"input corrupt", func(s *cas.Memory) cas.Store {
			_ = s.Put(t.Context(), mod, wasm)
			_ = s.Put(t.Context(), cas.Sum(in21), in22) // the coordinator's put is then a no-op
			return s
		}, "do not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := tc.store(cas.NewMemory())
			spec := dispatch.Spec{Module: mod.String(), ABI: string(host.ABIPirn), Knot: "negate"}
			resp := invoke(t, modules(t, h, store, spec, dispatch.WorkerConfig{}), "unavailable", fn, 21)
			if tc.want == "" {
				wantInt(t, resp, -21)
				return
			}
			if resp.Outcome != abi.OutcomeErr || resp.Error.Type != dispatch.ErrUnavailable {
				t.Fatalf("response = %v %+v, want err %s", resp.Outcome, resp.Error, dispatch.ErrUnavailable)
			}
			if !strings.Contains(resp.Error.Message, tc.want) {
				t.Errorf("error message = %q, want it to contain %q", resp.Error.Message, tc.want)
			}
			t.Logf("%s: %s", resp.Error.Type, resp.Error.Message)
		})
	}
}

func TestGrantRefused(t *testing.T) {
	h := newHost(t)
	wasm := negate(t)
	mod := cas.Sum(wasm)
	fn := &scheduler.Fn{Name: "negate", Module: mod.String()}
	spec := dispatch.Spec{Module: mod.String(), ABI: string(host.ABIPirn), Knot: "negate", Grants: model.Grants{Clock: true}}
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow grants %v", allow), func(t *testing.T) {
			store := cas.NewMemory()
			if err := store.Put(t.Context(), mod, wasm); err != nil {
				t.Fatal(err)
			}
			resp := invoke(t, modules(t, h, store, spec, dispatch.WorkerConfig{AllowGrants: allow}), "grants", fn, 21)
			if allow {
				wantInt(t, resp, -21)
				return
			}
			if resp.Outcome != abi.OutcomeErr || resp.Error.Type != dispatch.ErrGrantRefused {
				t.Fatalf("response = %v %+v, want err %s", resp.Outcome, resp.Error, dispatch.ErrGrantRefused)
			}
			for _, want := range []string{"clock", "--allow-grants"} {
				if !strings.Contains(resp.Error.Message, want) {
					t.Errorf("error message = %q, want it to contain %q", resp.Error.Message, want)
				}
			}
			t.Logf("%s: %s", resp.Error.Type, resp.Error.Message)
		})
	}
}
