package emit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The headers of a signed webhook delivery, sent by the webhook emitter
// and checked by the webhook trigger: the Unix time in seconds, and
// "sha256=" and the hex HMAC-SHA256, under the shared secret, of the
// timestamp, a '.', and the body.
const (
	TimestampHeader = "X-Pirn-Timestamp"
	SignatureHeader = "X-Pirn-Signature"
)

// Sign returns the signature header's value for body sent at ts.
func Sign(secret []byte, ts time.Time, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, strconv.FormatInt(ts.Unix(), 10), body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrUnsigned     = errors.New("no signature")
	ErrBadSignature = errors.New("the signature does not match the body")
	ErrStale        = errors.New("the timestamp is outside the replay window")
)

// Verify checks a delivery's timestamp and signature headers against
// body: the timestamp must be within window of now, and the signature
// must match in constant time.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, window time.Duration) error {
	if timestamp == "" || signature == "" {
		return ErrUnsigned
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not a Unix time", ErrBadSignature, TimestampHeader)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return ErrStale
	}
	got, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return fmt.Errorf("%w: want sha256=<hex>", ErrBadSignature)
	}
	b, err := hex.DecodeString(got)
	if err != nil || !hmac.Equal(b, mac(secret, timestamp, body)) {
		return ErrBadSignature
	}
	return nil
}
