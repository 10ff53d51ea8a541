// Package messaging holds what the Kafka, Valkey and NATS triggers,
// sources and emitters share: the bounded decoding of a message into a
// value, run ids and labels derived from where a message came from, the
// redaction of connection URLs, credentials and TLS settings from
// configuration, a rate-limited log of bad messages, and the Trigger that
// turns any Source into runs.
package messaging

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bounds on what a message may carry.
const (
	// DefaultMaxBytes bounds a message's body when the configuration
	// leaves max_bytes at 0: 1 MiB.
	DefaultMaxBytes = 1 << 20
	// MaxLabel bounds a label's value (a message key, a subject) in bytes
	// before escaping; a longer one is cut and marked with "…".
	MaxLabel = 256
	// DefaultInFlight bounds, when the configuration leaves in_flight at
	// 0, how many of a trigger's runs may be submitted and not yet
	// recorded (their messages not yet committed).
	DefaultInFlight = 64
	// maxRunID is the scheduler's bound on a run id.
	maxRunID = 256
)

// ErrTooLarge is wrapped by Decode for a body over the bound.
var ErrTooLarge = errors.New("message too large")

// Decode decodes a message's body, at most max bytes (DefaultMaxBytes if
// max is 0), as one JSON value: objects as map[string]any, numbers as
// float64. A body over the bound, empty, or not valid JSON is an error.
func Decode(body []byte, max int) (any, error) {
	if max <= 0 {
		max = DefaultMaxBytes
	}
	if len(body) > max {
		return nil, fmt.Errorf("%w: %d bytes, the bound is %d", ErrTooLarge, len(body), max)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("the body is not JSON: %w", err)
	}
	return v, nil
}

// Label returns s bounded to MaxLabel bytes and escaped for a terminal:
// Text(s, MaxLabel).
func Label(s string) string { return Text(s, MaxLabel) }

func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsGraphic(r) || r == '\\' {
			return false
		}
	}
	return true
}

// RunID joins parts (a system, a group, a topic, a partition, an offset)
// with ':' into a run id. Parts with characters a run id may not hold,
// or an id over the scheduler's 256 characters, give instead the first
// part, ':' and 32 hex digits of the SHA-256 of all the parts: the same
// parts always give the same id.
func RunID(parts ...string) string {
	id := strings.Join(parts, ":")
	if len(id) <= maxRunID && validRunID(id) {
		return id
	}
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	prefix := parts[0]
	if len(prefix) > 64 || !validRunID(prefix) {
		prefix = "msg"
	}
	return prefix + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}

func validRunID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '_', c == '-', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}
