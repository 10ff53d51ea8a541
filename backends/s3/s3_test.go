package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/cas/castest"
)

const (
	testBucket = "pirn-test"
	// testSecret is the secret access key the tests' credential chain
	// finds; no error may contain it.
	testSecret = "pirnTestSecretKEY-do-not-print"
)

// TestMain gives the SDK's credential chain static keys through the
// environment, as a user would, and keeps it off the network and away from
// the machine's own AWS configuration.
func TestMain(m *testing.M) {
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION",
		"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_MAX_ATTEMPTS",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CA_BUNDLE"} {
		os.Unsetenv(k)
	}
	os.Setenv("AWS_ACCESS_KEY_ID", "PIRNTESTKEYID")
	os.Setenv("AWS_SECRET_ACCESS_KEY", testSecret)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Exit(m.Run())
}

// fakeS3 is an in-process S3 server (gofakes3's memory backend) that logs
// the requests it is sent and can be told to misbehave.
type fakeS3 struct {
	*httptest.Server
	mu   sync.Mutex
	log  []string // "METHOD /path?query", in arrival order
	hook atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
}

// newFakeS3 starts a server with testBucket, closed at the end of the test.
func newFakeS3(t testing.TB) *fakeS3 {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	f := &fakeS3{}
	faker := gofakes3.New(backend).Server()
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.log = append(f.log, r.Method+" "+r.URL.RequestURI())
		f.mu.Unlock()
		if h := f.hook.Load(); h != nil && (*h)(w, r) {
			return
		}
		faker.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// intercept makes h see every request first; a request h returns true for
// is answered by h alone.
func (f *fakeS3) intercept(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.hook.Store(&h)
}

// requests returns and clears the request log.
func (f *fakeS3) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.log
	f.log = nil
	return l
}

func (f *fakeS3) config(prefix string) Config {
	return Config{Bucket: testBucket, Prefix: prefix, Endpoint: f.URL, PathStyle: true}
}

// open opens a store on f, closed at the end of the test.
func open(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func value(t testing.TB, v any) cas.Value {
	t.Helper()
	x, err := cas.NewValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// rawPut writes b under key directly, as something other than the Store.
func rawPut(t *testing.T, s *Store, key string, b []byte) {
	t.Helper()
	_, err := s.client.PutObject(t.Context(), &awss3.PutObjectInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), Body: bytes.NewReader(b),
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStore(t *testing.T) {
	for _, prefix := range []string{"", "teams/a"} {
		t.Run(fmt.Sprintf("prefix=%q", prefix), func(t *testing.T) {
			castest.RunStore(t, func(t *testing.T) cas.Store {
				return open(t, newFakeS3(t).config(prefix))
			})
		})
	}
	// Values of several parts, in the conformance suite's large-value and
	// cancellation tests too.
	t.Run("multipart", func(t *testing.T) {
		castest.RunStore(t, func(t *testing.T) cas.Store {
			cfg := newFakeS3(t).config("mp")
			cfg.PartSize = MinPartSize
			return open(t, cfg)
		})
	})
}

func TestKeyLayout(t *testing.T) {
	f := newFakeS3(t)
	s := open(t, f.config("/teams/a/"))
	v := value(t, "layout")
	if err := s.Put(t.Context(), v.Digest, v.Bytes); err != nil {
		t.Fatal(err)
	}
	h := v.Digest.Hex()
	want := "teams/a/sha256/" + h[:2] + "/" + h
	if got := s.Key(v.Digest); got != want {
		t.Errorf("Key(%s) = %q, want %q", v.Digest, got, want)
	}
	out, err := s.client.ListObjectsV2(t.Context(), &awss3.ListObjectsV2Input{Bucket: aws.String(testBucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	if diff := cmp.Diff([]string{want}, keys); diff != "" {
		t.Errorf("objects in the bucket (-want +got):\n%s", diff)
	}
}

func TestCorrupt(t *testing.T) {
	s := open(t, newFakeS3(t).config("c"))
	v := value(t, map[string]any{"payload": strings.Repeat("x", 100)})
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"tampered", []byte("tampered")},
		{"truncated", v.Bytes[:len(v.Bytes)/2]},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rawPut(t, s, s.Key(v.Digest), tc.bytes)
			_, err := s.Get(t.Context(), v.Digest)
			if !errors.Is(err, cas.ErrCorrupt) || errors.Is(err, cas.ErrNotFound) {
				t.Fatalf("Get of wrong bytes: error = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), s.Key(v.Digest)) {
				t.Errorf("error %q does not name the object %s", err, s.Key(v.Digest))
			}
		})
	}
}

// TestNoRewrite: a Put of a digest that is stored only asks (HEAD); one that
// races with another writer is refused by the server (If-None-Match: *)
// and is not an error.
func TestNoRewrite(t *testing.T) {
	f := newFakeS3(t)
	s := open(t, f.config("nr"))
	ctx := t.Context()
	v := value(t, "written once")
	if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
		t.Fatal(err)
	}
	f.requests()
	if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
		t.Fatal(err)
	}
	if got, want := f.requests(), []string{"HEAD /" + testBucket + "/" + s.Key(v.Digest)}; !cmp.Equal(got, want) {
		t.Errorf("second Put sent %q, want %q", got, want)
	}

	// Another writer got there between our HEAD and our PUT: the server
	// holds its bytes (wrong ones, to tell them apart) and says so only
	// when we write.
	w := value(t, "raced")
	rawPut(t, s, s.Key(w.Digest), []byte("the other writer's bytes"))
	f.intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/sha256/") {
			w.WriteHeader(http.StatusNotFound)
			return true
		}
		return false
	})
	f.requests()
	if err := s.Put(ctx, w.Digest, w.Bytes); err != nil {
		t.Fatalf("Put refused by If-None-Match: %v, want nil", err)
	}
	log := f.requests()
	if len(log) != 2 || !strings.HasPrefix(log[1], "PUT ") {
		t.Errorf("Put sent %q, want a HEAD then a PUT", log)
	}
	if _, err := s.Get(ctx, w.Digest); !errors.Is(err, cas.ErrCorrupt) {
		t.Errorf("Get after a refused Put: error = %v, want ErrCorrupt (the other writer's bytes kept)", err)
	}
}

// TestPutHeaders: a single-part Put signs its body by the digest, asks the
// server to check the body against it, and writes only if the key is free.
func TestPutHeaders(t *testing.T) {
	f := newFakeS3(t)
	s := open(t, f.config("h"))
	v := value(t, "signed by its digest")
	var got http.Header
	f.intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut {
			got = r.Header.Clone()
		}
		return false
	})
	if err := s.Put(t.Context(), v.Digest, v.Bytes); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"X-Amz-Content-Sha256":  v.Digest.Hex(),
		"X-Amz-Checksum-Sha256": base64.StdEncoding.EncodeToString(v.Digest[:]),
		"If-None-Match":         "*",
	}
	for k, w := range want {
		if g := got.Get(k); g != w {
			t.Errorf("PUT header %s = %q, want %q", k, g, w)
		}
	}
}

func TestMultipart(t *testing.T) {
	f := newFakeS3(t)
	cfg := f.config("mp")
	cfg.PartSize = MinPartSize
	cfg.Concurrency = 2
	s := open(t, cfg)
	ctx := t.Context()
	big := make([]byte, 2*MinPartSize+12345)
	for i := range big {
		big[i] = byte(i * 7 / 5)
	}
	v := value(t, big)
	f.requests()
	if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
		t.Fatal(err)
	}
	var parts, starts, completes int
	for _, r := range f.requests() {
		switch {
		case strings.HasPrefix(r, "PUT ") && strings.Contains(r, "partNumber="):
			parts++
		case strings.HasPrefix(r, "POST ") && strings.Contains(r, "?uploads"):
			starts++
		case strings.HasPrefix(r, "POST ") && strings.Contains(r, "uploadId="):
			completes++
		case strings.HasPrefix(r, "PUT "):
			t.Errorf("single-part PUT %s for a value of %d bytes", r, len(v.Bytes))
		}
	}
	if parts != 3 || starts != 1 || completes != 1 {
		t.Errorf("multipart Put: %d starts, %d parts, %d completes; want 1, 3, 1", starts, parts, completes)
	}
	got, err := s.Get(ctx, v.Digest)
	if err != nil || !bytes.Equal(got, v.Bytes) {
		t.Fatalf("Get of a multipart value: %d bytes, %v; want %d", len(got), err, len(v.Bytes))
	}
	assertNoUploads(t, s)

	// At PartSize itself a value is one PUT.
	edge := value(t, make([]byte, MinPartSize-5)) // + a 5-byte CBOR head: PartSize bytes
	if int64(len(edge.Bytes)) != cfg.PartSize {
		t.Fatalf("edge value is %d bytes, want %d", len(edge.Bytes), cfg.PartSize)
	}
	f.requests()
	if err := s.Put(ctx, edge.Digest, edge.Bytes); err != nil {
		t.Fatal(err)
	}
	if log := f.requests(); len(log) != 2 || !strings.HasPrefix(log[1], "PUT ") || strings.Contains(log[1], "partNumber") {
		t.Errorf("Put of PartSize bytes sent %q, want a HEAD and one PUT", log)
	}
}

// assertNoUploads fails if a multipart upload was left open.
func assertNoUploads(t *testing.T, s *Store) {
	t.Helper()
	out, err := s.client.ListMultipartUploads(t.Context(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(s.cfg.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range out.Uploads {
		t.Errorf("multipart upload of %s left open", aws.ToString(u.Key))
	}
}

// TestCancelMidUpload cancels a multipart Put while a part is on the wire:
// the error wraps context.Canceled, the upload is aborted and nothing is
// stored.
func TestCancelMidUpload(t *testing.T) {
	f := newFakeS3(t)
	cfg := f.config("cancel")
	cfg.PartSize = MinPartSize
	cfg.Concurrency = 1
	s := open(t, cfg)
	v := value(t, bytes.Repeat([]byte{1, 2, 3}, MinPartSize))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	release := make(chan struct{})
	f.intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Query().Get("partNumber") == "2" {
			cancel()
			<-release // the part hangs until the client has given up
			return true
		}
		return false
	})
	err := s.Put(ctx, v.Digest, v.Bytes)
	close(release)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put cancelled mid-upload: error = %v, want context.Canceled", err)
	}
	f.intercept(func(http.ResponseWriter, *http.Request) bool { return false })
	if ok, err := s.Has(t.Context(), v.Digest); err != nil || ok {
		t.Errorf("Has after a cancelled Put = %v, %v; want false, nil", ok, err)
	}
	assertNoUploads(t, s)
}

func TestOpenUnreachable(t *testing.T) {
	t.Setenv("AWS_MAX_ATTEMPTS", "1") // connection refused is retried otherwise
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	_, err = Open(t.Context(), Config{Bucket: testBucket, Endpoint: endpoint, PathStyle: true})
	if err == nil {
		t.Fatal("Open of an unreachable endpoint succeeded")
	}
	t.Log(err)
	for _, want := range []string{endpoint, "cannot reach", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Errorf("Open error %q contains the secret access key", err)
	}
}

// TestOpenRefused: a bucket that does not exist, or credentials the server
// refuses, fail Open with an error that says so.
func TestOpenRefused(t *testing.T) {
	f := newFakeS3(t)
	_, err := Open(t.Context(), Config{Bucket: "no-such-bucket", Endpoint: f.URL, PathStyle: true})
	if err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) {
		t.Errorf("Open of a missing bucket: error = %v, want one saying it does not exist", err)
	}
	f.intercept(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusForbidden)
		return true
	})
	_, err = Open(t.Context(), f.config(""))
	if err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("Open refused with 403: error = %v, want one saying access denied", err)
	}
	if err != nil && strings.Contains(err.Error(), testSecret) {
		t.Errorf("Open error %q contains the secret access key", err)
	}
}

// TestCABundle: a server whose certificate only AWS_CA_BUNDLE vouches for,
// as an S3-compatible server with a private CA is.
func TestCABundle(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(gofakes3.New(backend).Server())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cfg := Config{Bucket: testBucket, Endpoint: srv.URL, PathStyle: true}
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	if _, err := Open(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Open of a server with an unknown CA: error = %v, want a certificate error", err)
	}
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(bundle, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)
	s := open(t, cfg)
	v := value(t, "over TLS")
	if err := s.Put(t.Context(), v.Digest, v.Bytes); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(t.Context(), v.Digest); err != nil || !bytes.Equal(got, v.Bytes) {
		t.Fatalf("Get over TLS = %x, %v; want %x", got, err, v.Bytes)
	}
}

func TestOpenConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no bucket", Config{}, "Bucket is empty"},
		{"bucket with slash", Config{Bucket: "a/b"}, "not a bucket name"},
		{"part size too small", Config{Bucket: "b", PartSize: MinPartSize - 1}, "PartSize"},
		{"part size too large", Config{Bucket: "b", PartSize: MaxPartSize + 1}, "PartSize"},
		{"negative concurrency", Config{Bucket: "b", Concurrency: -1}, "Concurrency"},
		{"endpoint not http", Config{Bucket: "b", Endpoint: "ftp://host"}, "http://"},
		{"endpoint without host", Config{Bucket: "b", Endpoint: "http://"}, "http://"},
		{"endpoint with user info", Config{Bucket: "b", Endpoint: "http://key:" + testSecret + "@host"}, "user info"},
		{"endpoint with query", Config{Bucket: "b", Endpoint: "http://host/?X-Amz-Credential=" + testSecret}, "query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(t.Context(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%+v) error = %v, want one saying %q", tc.cfg, err, tc.want)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("Open error %q contains the secret", err)
			}
		})
	}
}

func TestOpenDefaults(t *testing.T) {
	s := open(t, newFakeS3(t).config(""))
	if s.cfg.PartSize != DefaultPartSize || s.cfg.Concurrency != DefaultConcurrency {
		t.Errorf("PartSize, Concurrency = %d, %d; want %d, %d", s.cfg.PartSize, s.cfg.Concurrency, DefaultPartSize, DefaultConcurrency)
	}
	if got := s.client.Options().Region; got != "us-east-1" {
		t.Errorf("region with none configured = %q, want us-east-1", got)
	}
	t.Setenv("AWS_REGION", "eu-west-3")
	s = open(t, newFakeS3(t).config(""))
	if got := s.client.Options().Region; got != "eu-west-3" {
		t.Errorf("region from AWS_REGION = %q, want eu-west-3", got)
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Config
	}{
		{"s3://bucket", Config{Bucket: "bucket"}},
		{"s3://bucket/", Config{Bucket: "bucket"}},
		{"s3://bucket/team/values/", Config{Bucket: "bucket", Prefix: "team/values"}},
		{"s3://bucket/p?region=eu-west-1", Config{Bucket: "bucket", Prefix: "p", Region: "eu-west-1"}},
		{
			"s3://values/pirn?region=us-east-1&endpoint=http://127.0.0.1:9000&path_style=true&part_size=8388608&concurrency=8",
			Config{Bucket: "values", Prefix: "pirn", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000", PathStyle: true, PartSize: 8 << 20, Concurrency: 8},
		},
		{"s3://b?endpoint=https%3A%2F%2Fminio.local%3A9000&path_style=1", Config{Bucket: "b", Endpoint: "https://minio.local:9000", PathStyle: true}},
	} {
		got, err := ParseURL(tc.url)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.url, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, want %+v", tc.url, got, tc.want)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, tc := range []struct {
		url, want string
	}{
		{"file:///tmp", "scheme"},
		{"s3:bucket", "no bucket"},
		{"s3:///prefix", "no bucket"},
		{"s3://bucket:9000/p", "port"},
		{"s3://KEYID:" + testSecret + "@bucket/p", "user info"},
		{"s3://bucket/p?secret=" + testSecret, `unknown URL parameter "secret"`},
		{"s3://bucket/p?region=a&region=b", "2 times"},
		{"s3://bucket/p?path_style=maybe", "path_style"},
		{"s3://bucket/p?part_size=16MiB", "part_size"},
		{"s3://bucket/p?concurrency=-", "concurrency"},
		{"s3://bucket/p#frag", "fragment"},
		{"s3://bu%zzcket:" + testSecret + "@/", "does not parse"},
	} {
		_, err := ParseURL(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURL(%q) error = %v, want one saying %q", tc.url, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), testSecret) {
			t.Errorf("ParseURL(%q) error %q repeats the secret", tc.url, err)
		}
	}
}

// TestErrorsHideSecrets: the errors of a working store's operations, failing
// for a server error, name no credential.
func TestErrorsHideSecrets(t *testing.T) {
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	f := newFakeS3(t)
	s := open(t, f.config("e"))
	f.intercept(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "<Error><Code>InternalError</Code><Message>down</Message></Error>", http.StatusInternalServerError)
		return true
	})
	v := value(t, "x")
	ctx := t.Context()
	_, herr := s.Has(ctx, v.Digest)
	_, gerr := s.Get(ctx, v.Digest)
	for _, err := range []error{s.Put(ctx, v.Digest, v.Bytes), herr, gerr, s.Delete(ctx, v.Digest)} {
		if err == nil {
			t.Error("operation against a failing server succeeded")
			continue
		}
		t.Log(err)
		if errors.Is(err, cas.ErrNotFound) {
			t.Errorf("error %q wraps ErrNotFound for a server error", err)
		}
		if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "PIRNTESTKEYID") {
			t.Errorf("error %q names a credential", err)
		}
	}
}

// TestServerGoneAndBack: the server drops connections mid-request, then
// goes away, then comes back. Dropped requests are retried with backoff,
// a server that stays away fails the operation with an error naming the
// value when the caller's deadline passes, one that comes back within the
// retries is waited for, and nothing stored before is lost.
func TestServerGoneAndBack(t *testing.T) {
	f := newFakeS3(t)
	cfg := f.config("gone")
	cfg.PartSize = MinPartSize
	s := open(t, cfg)
	ctx := t.Context()
	before := value(t, "stored before")
	if err := s.Put(ctx, before.Digest, before.Bytes); err != nil {
		t.Fatal(err)
	}
	// drop makes the server close the connection of a request, without
	// an answer, while it returns true.
	drop := func(while func() bool) {
		f.intercept(func(w http.ResponseWriter, r *http.Request) bool {
			if !while() {
				return false
			}
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return true
		})
	}

	// Every other request is dropped: each operation succeeds on a retry,
	// a multipart upload's parts included.
	var n atomic.Int64
	drop(func() bool { return n.Add(1)%2 == 1 })
	small := value(t, "across dropped connections")
	large := value(t, bytes.Repeat([]byte("large "), (2*MinPartSize+1000)/6))
	for _, v := range []cas.Value{small, large} {
		if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
			t.Fatalf("Put of %d bytes with dropped connections: %v", len(v.Bytes), err)
		}
		if got, err := s.Get(ctx, v.Digest); err != nil || !bytes.Equal(got, v.Bytes) {
			t.Fatalf("Get of %d bytes with dropped connections: %d bytes, %v", len(v.Bytes), len(got), err)
		}
	}
	if n.Load() < 8 {
		t.Errorf("only %d requests were seen; want the drops to have been retried", n.Load())
	}

	// The server is gone: every connection is dropped.
	drop(func() bool { return true })
	gone := value(t, "written while the server is gone")
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start := time.Now()
	err := s.Put(dctx, gone.Digest, gone.Bytes)
	if err == nil || !strings.Contains(err.Error(), gone.Digest.String()) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Put with the server gone: %v; want an error naming the value and the deadline", err)
	}
	if strings.Contains(fmt.Sprint(err), testSecret) {
		t.Errorf("the error names the secret key: %v", err)
	}
	t.Logf("Put with the server gone failed after %v: %v", time.Since(start).Round(time.Millisecond), err)

	// It comes back 1.5 s after a Put has begun: the Put waits for it.
	back := time.Now().Add(1500 * time.Millisecond)
	drop(func() bool { return time.Now().Before(back) })
	if err := s.Put(ctx, gone.Digest, gone.Bytes); err != nil {
		t.Errorf("Put while the server comes back: %v", err)
	}
	if time.Now().Before(back) {
		t.Error("the Put succeeded before the server came back")
	}
	// What was stored before is there.
	f.intercept(func(http.ResponseWriter, *http.Request) bool { return false })
	for _, v := range []cas.Value{before, small, large} {
		if got, err := s.Get(ctx, v.Digest); err != nil || !bytes.Equal(got, v.Bytes) {
			t.Errorf("Get of %s after the server came back: %d bytes, %v", v.Digest, len(got), err)
		}
	}
	assertNoUploads(t, s)
}
