package lineage

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// Bounds of Run.Labels, checked by [CheckLabels]. A label comes from
// outside (a trigger's event, a stream's message), so each is bounded.
const (
	MaxLabels        = 64   // labels a run may carry
	MaxLabelKey      = 128  // bytes of a key, at least 1
	MaxLabelValue    = 1024 // bytes of a value
	labelKeyAlphabet = "A-Z a-z 0-9 _ . : / -"
)

// ErrLabel is wrapped by the error of a label that breaks a bound.
var ErrLabel = errors.New("lineage: invalid label")

// Label is one label of a run: a key and its value. As a Query filter, a
// zero Label (no Key) matches every run.
type Label struct {
	Key   string
	Value string
}

// String reads "key=value". A key holds no '=', so the first one
// separates them.
func (l Label) String() string { return l.Key + "=" + l.Value }

// IsZero reports whether l has no key: as a filter, it matches every run.
func (l Label) IsZero() bool { return l.Key == "" }

// CheckLabels checks labels against the bounds: at most MaxLabels; each key
// 1 to MaxLabelKey bytes of A-Z a-z 0-9 _ . : / -; each value at most
// MaxLabelValue bytes of valid UTF-8 without a NUL byte (which no SQL
// history can store in text). Other control characters are allowed: they
// are stored as they are and escaped wherever a label is shown. The error
// wraps ErrLabel and names the first offending label (by key, quoted) in
// key order.
func CheckLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return fmt.Errorf("%w: %d labels, want at most %d", ErrLabel, len(labels), MaxLabels)
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if err := CheckLabelKey(k); err != nil {
			return err
		}
		v := labels[k]
		switch {
		case len(v) > MaxLabelValue:
			return fmt.Errorf("%w: label %q: value of %d bytes, want at most %d", ErrLabel, k, len(v), MaxLabelValue)
		case !utf8.ValidString(v):
			return fmt.Errorf("%w: label %q: value is not valid UTF-8", ErrLabel, k)
		case strings.IndexByte(v, 0) >= 0:
			return fmt.Errorf("%w: label %q: value holds a NUL byte", ErrLabel, k)
		}
	}
	return nil
}

// CheckLabelKey checks one label key: 1 to MaxLabelKey bytes of A-Z a-z
// 0-9 _ . : / -. The error wraps ErrLabel.
func CheckLabelKey(k string) error {
	if k == "" || len(k) > MaxLabelKey {
		return fmt.Errorf("%w: label key %.140q: %d bytes, want 1 to %d", ErrLabel, k, len(k), MaxLabelKey)
	}
	for i := range len(k) {
		if !labelKeyByte(k[i]) {
			return fmt.Errorf("%w: label key %q: byte %d (%q) is not one of %s", ErrLabel, k, i, k[i], labelKeyAlphabet)
		}
	}
	return nil
}

func labelKeyByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("_.:/-", c) >= 0
}

// ParseLabel reads "key=value" (as `pirn runs --label` takes it): the key
// is what precedes the first '=', and is checked like a run's; the value
// may be empty but must be present.
func ParseLabel(s string) (Label, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return Label{}, fmt.Errorf("%w: %q is not key=value", ErrLabel, s)
	}
	if err := CheckLabels(map[string]string{k: v}); err != nil {
		return Label{}, err
	}
	return Label{Key: k, Value: v}, nil
}

// HasLabel reports whether r carries l; every run has the zero Label.
func (r *Run) HasLabel(l Label) bool {
	if l.IsZero() {
		return true
	}
	v, ok := r.Labels[l.Key]
	return ok && v == l.Value
}
