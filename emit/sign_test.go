package emit

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"x":1}`)
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := Sign(secret, now, body)
	if err := Verify(secret, ts, sig, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	for _, c := range []struct {
		name, ts, sig string
		body          []byte
		secret        []byte
		want          error
	}{
		{"no headers", "", "", body, secret, ErrUnsigned},
		{"other body", ts, sig, []byte(`{"x":2}`), secret, ErrBadSignature},
		{"other secret", ts, sig, body, []byte("other"), ErrBadSignature},
		{"not hex", ts, "sha256=zz", body, secret, ErrBadSignature},
		{"no scheme", ts, sig[7:], body, secret, ErrBadSignature},
		{"bad time", "soon", sig, body, secret, ErrBadSignature},
		{"replayed", ts, sig, body, secret, ErrStale},
	} {
		at := now
		if c.want == ErrStale {
			at = now.Add(6 * time.Minute)
		}
		if err := Verify(c.secret, c.ts, c.sig, c.body, at, 5*time.Minute); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
