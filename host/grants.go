package host

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
)

// Grants are the capabilities a knot's instances get beyond pure
// computation. The zero value grants nothing: such a knot is hermetic, its
// output a function of its module, configuration and inputs alone.
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
	Path  string // on the host; made absolute when the knot is created
	Mount string // where the knot sees it: an absolute guest path
	Write bool   // read-write; read-only otherwise
}

// HTTPGrant allows requests to one host.
type HTTPGrant struct {
	// Host is a host name (api.example.com), an IP address, or a pattern
	// whose first label is "*" (*.example.com, which matches subdomains
	// but not example.com itself). A port, if given, must match too.
	Host string
	// Methods are the allowed methods (upper case); none means GET.
	Methods []string
}

// Hermetic reports whether g grants nothing.
func (g Grants) Hermetic() bool {
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
		d = append(d, fmt.Sprintf("http:%s:%s", strings.Join(h.methods(), ","), h.Host))
	}
	slices.Sort(d)
	return slices.Compact(d)
}

func (h HTTPGrant) methods() []string {
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

// key identifies a set of grants for pooling: instances with different
// grants are configured differently.
func (g Grants) key() string { return strings.Join(g.Describe(), "\n") }

// validate checks and normalises g: directories exist and are made
// absolute, mounts are absolute guest paths, names are well-formed.
func (g Grants) validate() (Grants, error) {
	var errs []error
	out := g
	out.Dirs = make([]DirGrant, len(g.Dirs))
	mounts := map[string]bool{}
	for i, d := range g.Dirs {
		abs, err := filepath.Abs(d.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("dir %q: %v", d.Path, err))
			continue
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("dir %q: not a directory on the host", d.Path))
		}
		mount := d.Mount
		if mount == "" {
			errs = append(errs, fmt.Errorf("dir %q: no mount (the path the knot sees, such as /data)", d.Path))
		} else if !path.IsAbs(mount) || path.Clean(mount) != mount {
			errs = append(errs, fmt.Errorf("dir %q: mount %q must be a clean absolute path such as /data", d.Path, mount))
		}
		if mounts[mount] {
			errs = append(errs, fmt.Errorf("dir %q: mount %q is granted twice", d.Path, mount))
		}
		mounts[mount] = true
		out.Dirs[i] = DirGrant{Path: abs, Mount: mount, Write: d.Write}
	}
	for _, e := range g.Env {
		if e == "" || strings.ContainsAny(e, "=\x00") {
			errs = append(errs, fmt.Errorf("env %q: not a variable name", e))
		}
	}
	for _, h := range g.HTTP {
		host := strings.TrimPrefix(h.Host, "*.")
		if host == "" || strings.ContainsAny(host, "/*?[]@ ") {
			errs = append(errs, fmt.Errorf("http host %q: want a host name, an IP address or *.domain", h.Host))
		}
		for _, m := range h.Methods {
			if !validMethod(m) {
				errs = append(errs, fmt.Errorf("http host %q: method %q is not an HTTP method", h.Host, m))
			}
		}
	}
	return out, errors.Join(errs...)
}

func validMethod(m string) bool {
	return slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, strings.ToUpper(m))
}

// fsConfig builds the file systems of g's directories, once per pool. The
// returned roots must be closed with the pool.
func (g Grants) fsConfig() (wazero.FSConfig, []*os.Root, error) {
	if len(g.Dirs) == 0 {
		return nil, nil, nil
	}
	fsc := wazero.NewFSConfig()
	var roots []*os.Root
	for _, d := range g.Dirs {
		cfs, err := confine(d.Path, !d.Write)
		if err != nil {
			for _, r := range roots {
				r.Close()
			}
			return nil, nil, fmt.Errorf("dir %q: %w", d.Path, err)
		}
		roots = append(roots, cfs.root)
		fsc = fsc.(sysfs.FSConfig).WithSysFSMount(cfs, d.Mount)
	}
	return fsc, roots, nil
}

// configure applies the pool's grants to the configuration of inst.
func (p *pool) configure(cfg wazero.ModuleConfig, inst *instance) wazero.ModuleConfig {
	g := p.grants
	if p.fsc != nil {
		cfg = cfg.WithFSConfig(p.fsc)
	}
	for _, e := range g.Env {
		if v, ok := os.LookupEnv(e); ok {
			cfg = cfg.WithEnv(e, v)
		}
	}
	if g.Clock {
		cfg = cfg.WithSysWalltime().WithSysNanotime().WithNanosleep(inst.sleep)
	} else {
		// The fake clock, from its start again after every reset.
		cfg = cfg.WithWalltime(inst.clock.walltime, sys.ClockResolution(1)).WithNanotime(inst.clock.nanotime, sys.ClockResolution(1))
	}
	if g.Random {
		cfg = cfg.WithRandSource(rand.Reader)
	} else if inst.rand != nil {
		cfg = cfg.WithRandSource(inst.rand)
	}
	return cfg
}

// sleep is a granted clock's sleep: it ends early when the current call
// must end (its timeout, or the run's cancellation), so that a knot asleep
// for days still stops on time; the guest is then stopped at its next
// check of the context.
func (inst *instance) sleep(ns int64) {
	if ns <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-inst.wake:
	}
}
