package nats

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"log/slog"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pirn-wasm/pirn/dispatch/dispatchtest"
	"github.com/pirn-wasm/pirn/serve"
	"github.com/pirn-wasm/pirn/serve/internal/messaging"
	"github.com/pirn-wasm/pirn/serve/internal/messaging/messagingtest"
)

// TestTLS runs a trigger against a server that requires TLS with a
// client certificate and a user and password: with the authority, the
// client's certificate and the password from a file, a message
// becomes a run; trusting another authority, the trigger never connects
// and says why.
func TestTLS(t *testing.T) {
	t.Parallel()
	pki := messagingtest.NewPKI(t)
	srv := dispatchtest.Start(t, func(o *natsserver.Options) {
		o.TLS, o.TLSVerify, o.TLSConfig = true, true, pki.ServerConfig(true)
		o.Username, o.Password = "pirn", "s3cret-pw"
	})
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte("s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := func(ca string) Conn {
		return Conn{URL: srv.URL(), User: "pirn", Password: &messaging.Secret{File: pw},
			TLS: &messaging.TLS{CA: ca, Cert: pki.ClientCert, Key: pki.ClientKey}}
	}

	t.Run("trusted", func(t *testing.T) {
		sub := &messagingtest.Submitter{}
		stop := runTrigger(t, TriggerConfig{SourceConfig: SourceConfig{Conn: conn(pki.CA), Subject: "in.>"},
			TriggerSettings: messaging.TriggerSettings{Mapping: serve.Mapping{Param: "v"}}}, nil, sub)
		nc, err := nats.Connect(srv.URL(), nats.UserInfo("pirn", "s3cret-pw"), nats.Secure(pki.ClientConfig()),
			nats.ClientCert(pki.ClientCert, pki.ClientKey))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		// The trigger subscribes in the background: publish until a run comes.
		deadline := time.Now().Add(30 * time.Second)
		for len(sub.State().Recorded) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no run over TLS in 30 s")
			}
			nc.Publish("in.a", []byte(`{"x": 1}`))
			time.Sleep(50 * time.Millisecond)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("untrusted server", func(t *testing.T) {
		var mu sync.Mutex
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
		sub := &messagingtest.Submitter{}
		var openErr error
		tr, err := OpenTrigger(TriggerConfig{SourceConfig: SourceConfig{Conn: conn(pki.OtherCA), Subject: "in.>"},
			TriggerSettings: messaging.TriggerSettings{Mapping: serve.Mapping{Param: "v"}}}, log)
		if err != nil {
			openErr = err
		} else {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			openErr = tr.Run(ctx, sub)
		}
		text := buf.String()
		if openErr != nil {
			text += openErr.Error()
		}
		if !strings.Contains(text, "certificate") || len(sub.State().Recorded) != 0 {
			t.Errorf("trusting another CA: error %v, log %q, want a certificate error and no run", openErr, buf.String())
		}
		t.Logf("refused: %s", text)
		if strings.Contains(text, "s3cret-pw") {
			t.Errorf("the password shows: %q", text)
		}
	})
}
