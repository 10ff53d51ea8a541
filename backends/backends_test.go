package backends_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/pirn-wasm/pirn/backends"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

func TestOpenByURL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, u := range []string{"memory:", "sqlite:" + filepath.Join(dir, "h.db"), "sqlite://" + filepath.Join(dir, "h2.db")} {
		h, err := backends.OpenHistory(t.Context(), u)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		run := &lineage.Run{ID: "r1", Status: lineage.Succeeded}
		if err := h.RecordRun(t.Context(), run); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if got, err := h.Run(t.Context(), "r1"); err != nil || got.Status != lineage.Succeeded {
			t.Errorf("%s: read back %+v, %v", u, got, err)
		}
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	}
	for _, u := range []string{"memory:", "file:" + filepath.Join(dir, "data"), "file://" + filepath.Join(dir, "data2")} {
		s, err := backends.OpenStore(t.Context(), u)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		b, _ := cas.Encode("v")
		d := cas.Sum(b)
		if err := s.Put(t.Context(), d, b); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if got, err := s.Get(t.Context(), d); err != nil || string(got) != string(b) {
			t.Errorf("%s: read back %x, %v", u, got, err)
		}
		s.Close()
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url, want string
		history   bool
	}{
		{"mysql://root:hunter2@db/x", `history mysql://root:xxxxx@db/x: unknown scheme "mysql"`, true},
		{"bolt:/tmp/x", `store bolt:/tmp/x: unknown scheme "bolt"`, false},
		{"/just/a/path", `unknown scheme ""`, true},
		{"sqlite:", "no path (sqlite:PATH)", true},
		{"file:", "no directory (file:DIR)", false},
	} {
		var err error
		if tc.history {
			_, err = backends.OpenHistory(t.Context(), tc.url)
		} else {
			_, err = backends.OpenStore(t.Context(), tc.url)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the password: %v", tc.url, err)
		}
		if strings.Contains(tc.want, "unknown scheme") && !errors.Is(err, backends.ErrUnknownScheme) {
			t.Errorf("%s: %v does not wrap ErrUnknownScheme", tc.url, err)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://pirn:s3cret@db.example:5432/pirn?sslmode=disable": "postgres://pirn:xxxxx@db.example:5432/pirn?sslmode=disable",
		"valkey://:pw@127.0.0.1:6379/3":                               "valkey://:xxxxx@127.0.0.1:6379/3",
		"postgres://db/pirn?password=s3cret&user=x":                   "postgres://db/pirn?password=xxxxx&user=x",
		"s3://bucket/prefix?region=eu-west-1":                         "s3://bucket/prefix?region=eu-west-1",
		"sqlite:/var/lib/pirn/history.db":                             "sqlite:/var/lib/pirn/history.db",
		"postgres://u:p%zz@host/db":                                   "postgres://xxxxx@host/db",
	} {
		if got := backends.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenValkey(t *testing.T) {
	t.Parallel()
	s, err := backends.OpenStore(t.Context(), "valkey://127.0.0.1:6379/14?prefix=pirn-backends-test:&ttl=1h")
	if err != nil {
		t.Fatalf("open (CI starts Redis on 127.0.0.1:6379): %v", err)
	}
	defer s.Close()
	b, _ := cas.Encode("by URL")
	d := cas.Sum(b)
	if err := s.Put(t.Context(), d, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Delete(context.Background(), d) })
	if got, err := s.Get(t.Context(), d); err != nil || string(got) != string(b) {
		t.Errorf("read back %x, %v", got, err)
	}
	for _, u := range []string{"valkey://:hunter2@127.0.0.1:1/0", "valkey://127.0.0.1:6379/14?ttl=soon"} {
		_, err := backends.OpenStore(t.Context(), u)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// TestOpenS3 opens an S3 store by URL against an in-process S3 server.
func TestOpenS3(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "pirn-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "pirn-test-secret")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	backend := s3mem.New()
	if err := backend.CreateBucket("pirn"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()
	s, err := backends.OpenStore(t.Context(), "s3://pirn/values?region=us-east-1&path_style=true&endpoint="+url.QueryEscape(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, _ := cas.Encode("in S3")
	d := cas.Sum(b)
	if err := s.Put(t.Context(), d, b); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(t.Context(), d); err != nil || string(got) != string(b) {
		t.Errorf("read back %x, %v", got, err)
	}
	if _, err := backends.OpenStore(t.Context(), "s3://missing/x?path_style=true&region=us-east-1&endpoint="+url.QueryEscape(srv.URL)); err == nil {
		t.Error("a missing bucket opened")
	}
}

// postgresURL is a URL of the test server with a schema of the test's own,
// dropped at its end.
func postgresURL(t testing.TB) string {
	t.Helper()
	base := cmp.Or(os.Getenv("PIRN_TEST_POSTGRES"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	var b [6]byte
	rand.Read(b[:])
	schema := fmt.Sprintf("pirn_backends_%x", b)
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return base + "&schema=" + schema
}

func TestOpenPostgres(t *testing.T) {
	t.Parallel()
	u := postgresURL(t)
	h, err := backends.OpenHistory(t.Context(), u)
	if err != nil {
		t.Fatalf("open (CI starts PostgreSQL on 127.0.0.1:5432): %v", err)
	}
	defer h.Close()
	if err := h.RecordRun(t.Context(), &lineage.Run{ID: "pg", Status: lineage.Succeeded}); err != nil {
		t.Fatal(err)
	}
	if got, err := h.Run(t.Context(), "pg"); err != nil || got.Status != lineage.Succeeded {
		t.Errorf("read back %+v, %v", got, err)
	}
	s, err := backends.OpenStore(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, _ := cas.Encode("in Postgres")
	d := cas.Sum(b)
	if err := s.Put(t.Context(), d, b); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(t.Context(), d); err != nil || string(got) != string(b) {
		t.Errorf("read back %x, %v", got, err)
	}
	_, err = backends.OpenHistory(t.Context(), "postgres://pirn:hunter2@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("unreachable server: %v", err)
	}
}
