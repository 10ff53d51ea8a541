package kafka

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pirn-wasm/pirn/serve/internal/messaging"
	"github.com/pirn-wasm/pirn/serve/internal/messaging/messagingtest"
)

// TestTLSAndSASL reads a topic from a cluster that requires TLS and SASL,
// with each mechanism: the right password (from a file) reads the value;
// a wrong one, or a server the client does not trust, reads nothing and
// the log says why, without the password.
func TestTLSAndSASL(t *testing.T) {
	t.Parallel()
	pki := messagingtest.NewPKI(t)
	dir := t.TempDir()
	secret := func(name, pw string) messaging.Secret {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return messaging.Secret{File: p}
	}
	good, bad := secret("good", "s3cret-pw"), secret("bad", "wrong-pw")
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"),
				kfake.TLS(pki.ServerConfig(false)), kfake.EnableSASL(), kfake.Superuser(mech, "pirn", "s3cret-pw"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conn := func(pw messaging.Secret, ca string) Conn {
				return Conn{Brokers: c.ListenAddrs(), SASL: &SASL{Mechanism: mech, User: "pirn", Password: pw}, TLS: &messaging.TLS{CA: ca}}
			}
			producer := conn(good, pki.CA)
			opts, err := producer.options(nil)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "in", Value: []byte(`{"x": 7}`)}).FirstErr(); err != nil {
				t.Fatalf("produce over TLS with %s: %v", mech, err)
			}

			read := func(cn Conn, wait time.Duration) (any, string, error) {
				var mu sync.Mutex
				var buf bytes.Buffer
				log := slog.New(slog.NewTextHandler(lockedBuffer{&mu, &buf}, nil))
				src, err := OpenSource(SourceConfig{Conn: cn, Topic: "in", Group: "g-" + mech}, log)
				if err != nil {
					return nil, "", err
				}
				defer src.Close()
				ctx, cancel := context.WithTimeout(t.Context(), wait)
				defer cancel()
				it, err := src.Next(ctx)
				mu.Lock()
				defer mu.Unlock()
				return it.Value, buf.String(), err
			}
			v, log, err := read(conn(good, pki.CA), 30*time.Second)
			if err != nil || v == nil {
				t.Fatalf("read with the right password: %v, %v\n%s", v, err, log)
			}
			for _, tc := range []struct {
				name string
				cn   Conn
				want string
			}{
				{"wrong password", conn(bad, pki.CA), "SASL"},
				{"untrusted server", conn(good, pki.OtherCA), "certificate"},
			} {
				v, log, err := read(tc.cn, 2*time.Second)
				if err == nil || v != nil || !strings.Contains(log, tc.want) {
					t.Errorf("%s: read %v, %v, log %q; want nothing read and a log naming %s", tc.name, v, err, log, tc.want)
				}
				if strings.Contains(log, "s3cret-pw") || strings.Contains(log, "wrong-pw") {
					t.Errorf("%s: a password shows in the log: %q", tc.name, log)
				}
			}
		})
	}
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
