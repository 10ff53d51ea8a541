package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/cas/castest"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/lineagetest"
)

// The tests run against a PostgreSQL server, by default the one CI starts
// on loopback (trust authentication, database test); PIRN_TEST_POSTGRES
// names another. Each test works in a schema of its own, pirn_test_<hex>,
// dropped at its end. A server that does not answer fails the tests.

func TestMain(m *testing.M) {
	if arg := os.Getenv("PIRN_TEST_POSTGRES_HELPER"); arg != "" {
		if err := startAndWait(arg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startAndWait is the helper process of TestKilledProcess: it starts the
// run named by arg ("<schema> <run id>") and waits to be killed.
func startAndWait(arg string) error {
	schema, id, _ := strings.Cut(arg, " ")
	ctx := context.Background()
	h, err := Open(ctx, Config{DSN: testDSN(), Schema: schema})
	if err != nil {
		return err
	}
	if err := h.StartRun(ctx, &lineage.Run{ID: id, Status: lineage.Running, StartedAt: time.Now()}); err != nil {
		return err
	}
	fmt.Println("started")
	select {}
}

// testDSN is the DSN of the test server.
func testDSN() string {
	return cmp.Or(os.Getenv("PIRN_TEST_POSTGRES"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

// admin connects to the test server for a test's own statements; the
// connection is closed at the end of the test.
func admin(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testDSN())
	if err != nil {
		t.Fatalf("PostgreSQL at %s does not answer (start it, or name another server in PIRN_TEST_POSTGRES): %v", Redact(testDSN()), err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// newSchema returns the name of a new schema, dropped with its tables at
// the end of the test (after the History and Store values opened later
// in the test are closed).
func newSchema(t testing.TB) string {
	t.Helper()
	conn := admin(t)
	var b [6]byte
	rand.Read(b[:])
	name := "pirn_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// openHistory opens a history in schema, closed at the end of the test.
func openHistory(t testing.TB, schema string) *History {
	t.Helper()
	return openHistoryDSN(t, testDSN(), schema)
}

func openHistoryDSN(t testing.TB, dsn, schema string) *History {
	t.Helper()
	h, err := Open(t.Context(), Config{DSN: dsn, Schema: schema})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// openStore opens a store in schema, closed at the end of the test.
func openStore(t testing.TB, dsn, schema string) *Store {
	t.Helper()
	s, err := OpenStore(t.Context(), StoreConfig{DSN: dsn, Schema: schema})
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestHistory(t *testing.T) {
	lineagetest.RunHistory(t, func(t *testing.T) lineage.History { return openHistory(t, newSchema(t)) })
}

func TestStore(t *testing.T) {
	castest.RunStore(t, func(t *testing.T) cas.Store { return openStore(t, testDSN(), newSchema(t)) })
}

func TestHistoryAndStoreShareASchema(t *testing.T) {
	schema := newSchema(t)
	h := openHistory(t, schema)
	s := openStore(t, testDSN(), schema)
	ctx := t.Context()
	v, err := cas.NewValue(15)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
		t.Fatal(err)
	}
	if err := h.RecordRun(ctx, lineagetest.SampleRun(t, "run-1", 0)); err != nil {
		t.Fatal(err)
	}
	recs, err := h.ByOutput(ctx, v.Digest)
	if err != nil || len(recs) != 1 || recs[0].KnotID != "answer" {
		t.Errorf("ByOutput(15) = %v, %v; want the record of answer", recs, err)
	}
	var versions int
	if err := admin(t).QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "schema_versions"}.Sanitize()).Scan(&versions); err != nil || versions != 2 {
		t.Errorf("schema_versions rows = %d, %v; want 2 (history, store)", versions, err)
	}
}

func TestStoreCorrupt(t *testing.T) {
	schema := newSchema(t)
	s := openStore(t, testDSN(), schema)
	ctx := t.Context()
	v, err := cas.NewValue("payload")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, v.Digest, []byte("other bytes")); err == nil {
		t.Errorf("Put of bytes that do not hash to the digest: no error")
	}
	if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
		t.Fatal(err)
	}
	if _, err := admin(t).Exec(ctx, "UPDATE "+pgx.Identifier{schema, "cas_values"}.Sanitize()+" SET bytes = 'x'"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, v.Digest); !isCorrupt(err) {
		t.Errorf("Get of altered bytes: error = %v, want ErrCorrupt", err)
	}
	// Put of a large value that is stored already sends nothing.
	big, err := cas.NewValue(strings.Repeat("v", putCheckSize))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Put(ctx, big.Digest, big.Bytes); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Get(ctx, big.Digest); err != nil || string(got) != string(big.Bytes) {
		t.Errorf("Get of a large value: %d bytes, %v", len(got), err)
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://u:secret@db.example:5432/test?sslmode=disable", "postgres://u:xxxxx@db.example:5432/test?sslmode=disable"},
		{"postgresql://u:s%40cr%2Fet@h/d", "postgresql://u:xxxxx@h/d"},
		{"postgres://u@h/d", "postgres://u@h/d"},
		{"postgres://h/d?user=u&password=secret&sslpassword=secret&sslmode=require",
			"postgres://h/d?user=u&password=xxxxx&sslpassword=xxxxx&sslmode=require"},
		{"postgres://h/d?pass%77ord=secret", "postgres://h/d?pass%77ord=xxxxx"},
		{"postgres://h/d?password=%zzsecret", "postgres://h/d?password=xxxxx"},
		{"postgres://u:secret@h1:5432,h2:5433/d?password=secret", "postgres://u:xxxxx@h1:5432,h2:5433/d?password=xxxxx"},
		{"postgres://u:se@cret@h/d", "postgres://u:xxxxx@h/d"},
		{"postgres://u@h/d#password=secret", "postgres://u@h/d"},
		// URLs Go does not parse: what follows the last '@' is kept,
		// without the query.
		{"postgres://u:sec ret@h/d?password=secret", "postgres://xxxxx@h/d"},
		{"postgres://u:se#cret@h/d", "postgres://xxxxx@h/d"},
		{"postgres://u:se%zzcret@h/d", "postgres://xxxxx@h/d"},
		{"host=h user=u password=secret dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password = secret", "host=h password = xxxxx"},
		{`password='se cr\'et' host=h`, "password=xxxxx host=h"},
		{`password=se\ cret host=h sslpassword=secret`, "password=xxxxx host=h sslpassword=xxxxx"},
		{"  host=h\tpassword=secret  ", "  host=h\tpassword=xxxxx  "},
		{"host=h password='secret", "(key=value DSN that does not parse; redacted)"},
		{"host=h secret", "(key=value DSN that does not parse; redacted)"},
		{"", ""},
	} {
		got := Redact(tc.dsn)
		if got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.dsn, got, tc.want)
		}
		if strings.Contains(got, "secret") || strings.Contains(got, "cret") {
			t.Errorf("Redact(%q) = %q shows the password", tc.dsn, got)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name, dsn string
		want      []string // in the error
	}{
		{"empty", "", []string{"DSN is empty"}},
		{"not a URL", "postgres://u:secret@h:port/d", []string{"postgres://u:xxxxx@h:port/d"}},
		{"unreachable URL", "postgres://u:secret@127.0.0.1:1/d?connect_timeout=5", []string{"postgres://u:xxxxx@127.0.0.1:1/d", "127.0.0.1"}},
		{"unreachable key=value", "host=127.0.0.1 port=1 user=u password=secret dbname=d connect_timeout=5",
			[]string{"password=xxxxx", "127.0.0.1"}},
		{"bad option", "postgres://u:secret@127.0.0.1:5432/d?pool_max_conns=many", []string{"postgres://u:xxxxx@127.0.0.1:5432/d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, herr := Open(ctx, Config{DSN: tc.dsn})
			_, serr := OpenStore(ctx, StoreConfig{DSN: tc.dsn})
			for _, err := range []error{herr, serr} {
				if err == nil {
					t.Fatalf("Open(%q): no error", Redact(tc.dsn))
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error shows the password: %v", err)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error = %v, want one containing %q", err, w)
					}
				}
			}
		})
	}
	cfg := Config{DSN: "postgres://u:secret@h/d", Schema: "s"}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprint(StoreConfig(cfg))} {
		if strings.Contains(s, "secret") || !strings.Contains(s, "xxxxx") {
			t.Errorf("printed Config = %s, want the DSN redacted", s)
		}
	}
}

// withAppName returns dsn with its application_name set to name, so that a
// test can end its own sessions.
func withAppName(t testing.TB, dsn, name string) string {
	t.Helper()
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " application_name=" + name
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// terminate ends every session of the server whose application_name is
// name, and returns how many it ended.
func terminate(t testing.TB, conn *pgx.Conn, name string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND pid <> pg_backend_pid()`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
