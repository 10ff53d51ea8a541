package cas

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Size is the length of a digest in bytes.
const Size = sha256.Size

const prefix = "sha256:"

// Digest is the SHA-256 of a value's canonical encoding. The zero Digest
// means "no value" (for example the output of a knot that failed).
type Digest [Size]byte

// Sum returns the digest of canonical, which must already be a canonical
// encoding (see [Encode]).
func Sum(canonical []byte) Digest { return sha256.Sum256(canonical) }

// String returns "sha256:<64 hex>", or "" for the zero Digest.
func (d Digest) String() string {
	if d.IsZero() {
		return ""
	}
	var b [len(prefix) + 2*Size]byte
	copy(b[:], prefix)
	hex.Encode(b[len(prefix):], d[:])
	return string(b[:])
}

// Hex returns the 64 hex digits without the "sha256:" prefix.
func (d Digest) Hex() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is the zero Digest.
func (d Digest) IsZero() bool { return d == Digest{} }

// ParseDigest parses "sha256:<64 hex>". Upper-case hex is refused so that a
// digest has exactly one spelling.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	h, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return d, fmt.Errorf("cas: digest %q: want prefix %q", s, prefix)
	}
	if len(h) != 2*Size {
		return d, fmt.Errorf("cas: digest %q: want %d hex digits, got %d", s, 2*Size, len(h))
	}
	if strings.ToLower(h) != h {
		return d, fmt.Errorf("cas: digest %q: hex must be lower case", s)
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, fmt.Errorf("cas: digest %q: %w", s, err)
	}
	return d, nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. Empty text is the zero Digest.
func (d *Digest) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Digest{}
		return nil
	}
	v, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
