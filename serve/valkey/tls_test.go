package valkey

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/serve"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
	"github.com/pirn-wasm/pirn/serve/internal/messaging/messagingtest"
)

// TestTLS starts a redis-server of its own that takes only TLS with a
// client certificate, and a password: a stream trigger with the
// authority, the client's certificate and the password (from a file)
// runs the entry and acknowledges it; one trusting another authority
// runs nothing and says why, without the password.
func TestTLS(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("needs redis-server (built with TLS)")
		}
		t.Fatal("needs redis-server (built with TLS)")
	}
	pki := messagingtest.NewPKI(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	srv := exec.Command(bin, "--port", "0", "--bind", "127.0.0.1", "--tls-port", fmt.Sprint(port),
		"--tls-cert-file", pki.ServerCert, "--tls-key-file", pki.ServerKey, "--tls-ca-cert-file", pki.CA,
		"--tls-auth-clients", "yes", "--requirepass", "s3cret-pw", "--save", "", "--appendonly", "no", "--dir", dir)
	var srvLog bytes.Buffer
	srv.Stdout, srv.Stderr = &srvLog, &srvLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server with TLS did not start:\n%s", srvLog.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pw := filepath.Join(dir, "password")
	os.WriteFile(pw, []byte("s3cret-pw\n"), 0o600)
	conn := func(ca string) Conn {
		return Conn{URL: fmt.Sprintf("rediss://127.0.0.1:%d/0", port), Password: &messaging.Secret{File: pw},
			TLS: &messaging.TLS{CA: ca, Cert: pki.ClientCert, Key: pki.ClientKey}}
	}

	t.Run("trusted", func(t *testing.T) {
		cn := conn(pki.CA)
		e, err := OpenEmitter(EmitterConfig{Conn: cn, Stream: "in"}) // the emitter writes the entry the trigger reads
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(context.Background())
		if err := e.Emit(t.Context(), &emit.Event{Kind: emit.RunStarted, RunID: "r1"}); err != nil {
			t.Fatalf("emit over TLS: %v", err)
		}
		sub := &messagingtest.Submitter{}
		stop := runTrigger(t, TriggerConfig{SourceConfig: SourceConfig{Conn: cn, Stream: "in", Group: "g", Consumer: "c1"},
			TriggerSettings: messaging.TriggerSettings{Mapping: serve.Mapping{Param: "v"}}}, nil, sub)
		sub.Wait(t, "a run over TLS", func(s messagingtest.State) bool { return len(s.Recorded) == 1 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("untrusted server", func(t *testing.T) {
		var mu sync.Mutex
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(lockedBuf{&mu, &buf}, nil))
		sub := &messagingtest.Submitter{}
		tr, err := OpenTrigger(TriggerConfig{SourceConfig: SourceConfig{Conn: conn(pki.OtherCA), Stream: "in", Group: "g2", Consumer: "c1"},
			TriggerSettings: messaging.TriggerSettings{Mapping: serve.Mapping{Param: "v"}}}, log)
		text := ""
		if err != nil {
			text = err.Error()
		} else {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			if err := tr.Run(ctx, sub); err != nil {
				text = err.Error()
			}
		}
		mu.Lock()
		text += buf.String()
		mu.Unlock()
		if !strings.Contains(text, "certificate") || len(sub.State().Recorded) != 0 {
			t.Errorf("trusting another CA: %q, %d runs; want a certificate error and no run", text, len(sub.State().Recorded))
		}
		if strings.Contains(text, "s3cret-pw") {
			t.Errorf("the password shows: %q", text)
		}
	})
}

type lockedBuf struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
