package host

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pirn-wasm/pirn/model"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
)

// grantsKey identifies a set of grants for pooling: instances with
// different grants are configured differently.
func grantsKey(g model.Grants) string { return strings.Join(g.Describe(), "\n") }

// validateGrants checks g's form (model.Grants.Validate) and that each
// directory exists on the host, and returns g with the directories made
// absolute.
func validateGrants(g model.Grants) (model.Grants, error) {
	errs := []error{g.Validate()}
	out := g
	out.Dirs = make([]model.DirGrant, len(g.Dirs))
	for i, d := range g.Dirs {
		abs, err := filepath.Abs(d.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("dir %q: %v", d.Path, err))
			continue
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("dir %q: not a directory on the host", d.Path))
		}
		out.Dirs[i] = model.DirGrant{Path: abs, Mount: d.Mount, Write: d.Write}
	}
	return out, errors.Join(errs...)
}

// fsConfig builds the file systems of g's directories, once per pool. The
// returned roots must be closed with the pool.
func fsConfig(g model.Grants) (wazero.FSConfig, []*os.Root, error) {
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
