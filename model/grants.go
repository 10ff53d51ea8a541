package model

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Grants are the capabilities a knot's instances get beyond pure
// computation (docs/security.md). The zero value grants nothing: such a
// knot is hermetic, its output a function of its module, configuration
// and inputs alone.
type Grants struct {
	// Dirs are host directories the knot sees (WASI preopens).
	Dirs []DirGrant
	// Env names host environment variables the knot sees (those that are
	// set, with their values when its instance starts).
	Env []string
	// Clock gives the real wall clock, monotonic clock and sleep instead
	// of the deterministic fake ones.
	Clock bool
	// Random gives a cryptographic random source instead of the
	// deterministic one.
	Random bool
	// HTTP allows outbound HTTP requests through the pirn.http import, to
	// these hosts with these methods.
	HTTP []HTTPGrant
}

// DirGrant is one directory a knot sees.
type DirGrant struct {
	// Path is the directory on the host. A pipeline's relative paths are
	// relative to its file; the host makes it absolute.
	Path  string
	Mount string // where the knot sees it: a clean absolute guest path
	Write bool   // read-write; read-only otherwise
}

// HTTPGrant allows requests to one host.
type HTTPGrant struct {
	// Host is a host name (api.example.com), an IP address, or a pattern
	// whose first label is "*" (*.example.com, which matches subdomains
	// but not example.com itself). A port, if given, must match too.
	Host string
	// Methods are the allowed methods; none means GET.
	Methods []string
}

// HTTPMethods are the methods an HTTPGrant may allow.
var HTTPMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// Empty reports whether g grants nothing.
func (g Grants) Empty() bool {
	return len(g.Dirs) == 0 && len(g.Env) == 0 && !g.Clock && !g.Random && len(g.HTTP) == 0
}

// Describe lists the grants in a canonical, sorted form, for lineage and
// messages: "clock", "random", "env:NAME", "dir:ro:/mount=/host/path",
// "http:GET,POST:api.example.com".
func (g Grants) Describe() []string {
	var d []string
	for _, dir := range g.Dirs {
		mode := "ro"
		if dir.Write {
			mode = "rw"
		}
		d = append(d, fmt.Sprintf("dir:%s:%s=%s", mode, dir.Mount, dir.Path))
	}
	for _, e := range g.Env {
		d = append(d, "env:"+e)
	}
	if g.Clock {
		d = append(d, "clock")
	}
	if g.Random {
		d = append(d, "random")
	}
	for _, h := range g.HTTP {
		d = append(d, fmt.Sprintf("http:%s:%s", strings.Join(h.AllowedMethods(), ","), h.Host))
	}
	slices.Sort(d)
	return slices.Compact(d)
}

// AllowedMethods returns h's methods upper-cased, sorted and without
// repeats; GET if it names none.
func (h HTTPGrant) AllowedMethods() []string {
	if len(h.Methods) == 0 {
		return []string{"GET"}
	}
	m := make([]string, len(h.Methods))
	for i, s := range h.Methods {
		m[i] = strings.ToUpper(s)
	}
	slices.Sort(m)
	return slices.Compact(m)
}

// Validate checks the form of g, without looking at the host: each
// directory has a path and a clean absolute mount, no mount twice,
// variable names, and HTTP hosts and methods.
func (g Grants) Validate() error {
	var errs []error
	mounts := map[string]bool{}
	for _, d := range g.Dirs {
		if err := d.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if mounts[d.Mount] {
			errs = append(errs, fmt.Errorf("dir %q: mount %q is granted twice", d.Path, d.Mount))
		}
		mounts[d.Mount] = true
	}
	for _, e := range g.Env {
		if err := ValidateEnvName(e); err != nil {
			errs = append(errs, err)
		}
	}
	for _, h := range g.HTTP {
		if err := h.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Validate checks that d has a path and a clean absolute mount.
func (d DirGrant) Validate() error {
	switch {
	case d.Path == "":
		return errors.New("a dir needs a path (on the host)")
	case d.Mount == "":
		return fmt.Errorf("dir %q needs a mount (the path the knot sees, such as /data)", d.Path)
	case !path.IsAbs(d.Mount) || path.Clean(d.Mount) != d.Mount:
		return fmt.Errorf("dir %q: mount %q must be a clean absolute path such as /data", d.Path, d.Mount)
	}
	return nil
}

// ValidateEnvName checks that name can be an environment variable's.
func ValidateEnvName(name string) error {
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return fmt.Errorf("env %q: not a variable name", name)
	}
	return nil
}

// Validate checks h's host and methods.
func (h HTTPGrant) Validate() error {
	var errs []error
	host := strings.TrimPrefix(h.Host, "*.")
	if host == "" || strings.ContainsAny(host, "/*?[]@ ") {
		errs = append(errs, fmt.Errorf("http host %q: want a host name, an IP address or *.domain (no scheme or path)", h.Host))
	}
	for _, m := range h.Methods {
		if !slices.Contains(HTTPMethods, strings.ToUpper(m)) {
			errs = append(errs, fmt.Errorf("http host %q: method %q is not an HTTP method (want one of %s)", h.Host, m, strings.Join(HTTPMethods, ", ")))
		}
	}
	return errors.Join(errs...)
}
