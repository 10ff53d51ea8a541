// Package redact keeps secrets out of what pirn writes: error records and
// the history, logs, emitted events and terminal output. A Redactor
// replaces known secret values (the environment variables granted to
// knots, webhook tokens, the passwords of database URLs) and the matches
// of patterns (the common shapes of credentials, and an operator's own)
// with "[REDACTED]".
package redact

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Mask is what a secret is replaced with.
const Mask = "[REDACTED]"

// Bounds on what a Redactor holds.
const (
	MinSecret   = 4    // shorter values are not secrets worth masking (they would mask ordinary text)
	MaxSecret   = 4096 // bytes of one secret value; longer ones are refused
	MaxSecrets  = 4096 // distinct secret values
	MaxPatterns = 64
	MaxPattern  = 1024 // bytes of one pattern's source
)

// Config configures a Redactor.
type Config struct {
	// Secrets are exact values to mask wherever they occur.
	Secrets []string
	// Patterns are regular expressions (RE2 syntax, matched in linear
	// time): the whole match is masked, or only its first group if it has
	// groups ("token=(\S+)" keeps "token=").
	Patterns []string
	// NoCommon turns off the built-in patterns: the password of a URL's
	// user information, "password=…"-like keys (password, passwd, secret,
	// token, api_key, apikey, access_key) with '=' or ':', and the
	// credentials of an Authorization header.
	NoCommon bool
}

// common are the built-in patterns; each masks its first group.
var common = []string{
	`[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@`,
	`(?i)\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret)["']?\s*[:=]\s*["']?([^\s"',;&]+)`,
	`(?i)\bauthorization:\s*(?:bearer|basic|token)\s+([^\s"',;]+)`,
}

// Redactor masks secrets in text. It is safe for concurrent use; a nil
// Redactor masks nothing.
type Redactor struct {
	mu       sync.Mutex // serialises AddSecrets
	patterns []*regexp.Regexp
	secrets  atomic.Pointer[secretSet]
}

type secretSet struct {
	values []string // sorted, distinct
	repl   *strings.Replacer
}

// New returns a Redactor; a pattern that does not compile, or a bound
// exceeded, is an error naming it.
func New(cfg Config) (*Redactor, error) {
	r := &Redactor{}
	srcs := cfg.Patterns
	if !cfg.NoCommon {
		srcs = append(slices.Clone(common), srcs...)
	}
	if len(cfg.Patterns) > MaxPatterns {
		return nil, fmt.Errorf("redact: %d patterns, at most %d", len(cfg.Patterns), MaxPatterns)
	}
	for _, src := range srcs {
		if len(src) > MaxPattern {
			return nil, fmt.Errorf("redact: pattern %.40q… is %d bytes, at most %d", src, len(src), MaxPattern)
		}
		re, err := regexp.Compile(src)
		if err != nil {
			return nil, fmt.Errorf("redact: pattern %q: %w", src, err)
		}
		if re.MatchString("") {
			return nil, fmt.Errorf("redact: pattern %q matches the empty string", src)
		}
		r.patterns = append(r.patterns, re)
	}
	r.secrets.Store(&secretSet{})
	if err := r.AddSecrets(cfg.Secrets...); err != nil {
		return nil, err
	}
	return r, nil
}

// ErrTooMany is returned by AddSecrets past MaxSecrets.
var ErrTooMany = errors.New("redact: too many secrets")

// AddSecrets adds values to mask. Values shorter than MinSecret are
// ignored; one longer than MaxSecret is an error.
func (r *Redactor) AddSecrets(values ...string) error {
	if r == nil {
		return nil
	}
	if r.known(values) { // the common case: each run adds the same values again
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.secrets.Load()
	set := slices.Clone(old.values)
	for _, v := range values {
		switch {
		case len(v) < MinSecret:
			continue
		case len(v) > MaxSecret:
			return fmt.Errorf("redact: a secret of %d bytes, at most %d", len(v), MaxSecret)
		}
		if i, found := slices.BinarySearch(set, v); !found {
			set = slices.Insert(set, i, v)
		}
	}
	if len(set) == len(old.values) {
		return nil
	}
	if len(set) > MaxSecrets {
		return fmt.Errorf("%w: %d, at most %d", ErrTooMany, len(set), MaxSecrets)
	}
	// Longest first, so that a secret containing another is masked whole.
	byLen := slices.Clone(set)
	slices.SortStableFunc(byLen, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(byLen))
	for _, v := range byLen {
		pairs = append(pairs, v, Mask)
	}
	r.secrets.Store(&secretSet{values: set, repl: strings.NewReplacer(pairs...)})
	return nil
}

// known reports whether every value is masked already or too short to be.
func (r *Redactor) known(values []string) bool {
	set := r.secrets.Load().values
	for _, v := range values {
		if _, found := slices.BinarySearch(set, v); !found && len(v) >= MinSecret {
			return false
		}
	}
	return true
}

// String returns s with every secret and every pattern's match masked.
func (r *Redactor) String(s string) string {
	if r == nil || s == "" {
		return s
	}
	if set := r.secrets.Load(); set.repl != nil {
		s = set.repl.Replace(s)
	}
	for _, re := range r.patterns {
		s = maskMatches(re, s)
	}
	return s
}

// maskMatches masks each match of re in s: its first group if it has
// one, else the whole match.
func maskMatches(re *regexp.Regexp, s string) string {
	locs := re.FindAllStringSubmatchIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, loc := range locs {
		start, end := loc[0], loc[1]
		if len(loc) >= 4 && loc[2] >= 0 {
			start, end = loc[2], loc[3]
		}
		if start < last || start == end {
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString(Mask)
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

// Func returns r.String, or nil for a nil Redactor: for hooks that take
// a func(string) string.
func (r *Redactor) Func() func(string) string {
	if r == nil {
		return nil
	}
	return r.String
}
