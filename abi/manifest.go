package abi

import (
	"errors"
	"fmt"
)

// Manifest is what pirn_manifest hands the host: the module's description of
// itself.
type Manifest struct {
	ABI   int        `cbor:"abi" json:"abi"`                       // must be Version
	Name  string     `cbor:"name,omitempty" json:"name,omitempty"` // informational
	Knots []KnotSpec `cbor:"knots" json:"knots"`
}

// KnotSpec describes one knot a module provides.
type KnotSpec struct {
	Name   string      `cbor:"name" json:"name"`
	Doc    string      `cbor:"doc,omitempty" json:"doc,omitempty"`
	Inputs []InputSpec `cbor:"inputs" json:"inputs"`
	// Rest, when set, is the type of any further named inputs the knot
	// accepts (an Aggregator-style knot); empty means none.
	Rest   string `cbor:"rest,omitempty" json:"rest,omitempty"`
	Output string `cbor:"output" json:"output"` // a type expression, see [ParseType]
}

// InputSpec is one named, typed input of a knot.
type InputSpec struct {
	Name     string `cbor:"name" json:"name"`
	Type     string `cbor:"type" json:"type"`
	Doc      string `cbor:"doc,omitempty" json:"doc,omitempty"`
	Optional bool   `cbor:"optional,omitempty" json:"optional,omitempty"` // may be left unbound
}

// ValidKnotName reports whether s is a valid knot (or knot id) name:
// 1 to 256 of A-Z a-z 0-9 _ . : - (the original's id rule, without its
// trailing-newline quirk). Hand-written rather than a regexp so that guests
// importing this package do not link the regexp engine.
func ValidKnotName(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

// ValidInputName reports whether s is a valid input name: an identifier
// (a letter or _ then letters, digits and _) of at most 128 characters.
func ValidInputName(s string) bool {
	if len(s) == 0 || len(s) > 128 || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Validate checks the manifest's structure: version, names, uniqueness and
// type expressions. Every problem is reported, joined.
func (m *Manifest) Validate() error {
	var errs []error
	if m.ABI != Version {
		errs = append(errs, fmt.Errorf("manifest declares ABI version %d; this host speaks version %d", m.ABI, Version))
	}
	if len(m.Knots) == 0 {
		errs = append(errs, errors.New("manifest declares no knots"))
	}
	seen := make(map[string]bool, len(m.Knots))
	for i, k := range m.Knots {
		where := fmt.Sprintf("knot %d (%q)", i, k.Name)
		if !ValidKnotName(k.Name) {
			errs = append(errs, fmt.Errorf("%s: invalid name (want 1-256 of A-Z a-z 0-9 _ . : -)", where))
		}
		if seen[k.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate knot name", where))
		}
		seen[k.Name] = true
		if _, err := ParseType(k.Output); err != nil {
			errs = append(errs, fmt.Errorf("%s: output: %w", where, err))
		}
		if k.Rest != "" {
			if _, err := ParseType(k.Rest); err != nil {
				errs = append(errs, fmt.Errorf("%s: rest: %w", where, err))
			}
		}
		inputs := make(map[string]bool, len(k.Inputs))
		for _, in := range k.Inputs {
			if !ValidInputName(in.Name) {
				errs = append(errs, fmt.Errorf("%s: input %q: invalid name (want an identifier)", where, in.Name))
			}
			if inputs[in.Name] {
				errs = append(errs, fmt.Errorf("%s: input %q declared twice", where, in.Name))
			}
			inputs[in.Name] = true
			if _, err := ParseType(in.Type); err != nil {
				errs = append(errs, fmt.Errorf("%s: input %q: %w", where, in.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Knot returns the spec of the named knot.
func (m *Manifest) Knot(name string) (*KnotSpec, bool) {
	for i := range m.Knots {
		if m.Knots[i].Name == name {
			return &m.Knots[i], true
		}
	}
	return nil, false
}

// Input returns the spec of the named input.
func (k *KnotSpec) Input(name string) (*InputSpec, bool) {
	for i := range k.Inputs {
		if k.Inputs[i].Name == name {
			return &k.Inputs[i], true
		}
	}
	return nil, false
}

// KnotNames returns the names of the knots, in manifest order.
func (m *Manifest) KnotNames() []string {
	names := make([]string, len(m.Knots))
	for i, k := range m.Knots {
		names[i] = k.Name
	}
	return names
}
