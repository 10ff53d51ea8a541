// Package oci pushes bundles (package bundle) to OCI registries and pulls
// them back, through go-containerregistry.
//
// A bundle file is an OCI image layout, and a registry holds exactly its
// parts: each module and the pipeline as blobs, the manifest by its
// digest, and the layout's index.json, byte for byte, as an image index
// under the reference's tag. The index carries the bundle's name and its
// signature (annotations on the manifest's descriptor), so a pulled
// bundle verifies as the file did, and [Pull] writes the same file again:
// the registry's digest of a bundle (the index's) and the file's digest
// each name it.
//
// References are oci://HOST/REPOSITORY:TAG or oci://HOST/REPOSITORY@sha256:…
// (the registry must be named). Credentials come from the Docker
// configuration and its credential helpers (as docker login leaves them),
// never from a reference, and never appear in an error. Plain HTTP is
// spoken only to a registry on the loopback interface that does not speak
// HTTPS, unless [Options].Insecure allows it for any.
//
// A registry is not trusted: a pull fetches nothing before the manifest
// says what it is, refuses an index or manifest over
// [bundle.MaxManifest] bytes, a manifest that names more than
// [bundle.MaxEntries] blobs or more than [bundle.MaxBlob] or
// [bundle.MaxTotal] bytes, and any blob whose bytes do not hash to its
// digest, and the bundle it assembles passes [bundle.Read]'s checks
// before it is returned. The whole push or pull is bounded in time
// ([Options].Timeout).
package oci

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Scheme starts every reference.
const Scheme = "oci://"

// DefaultTimeout bounds a push or a pull whose Options give no Timeout.
const DefaultTimeout = 5 * time.Minute

// Options say how to reach a registry. The zero value is the default.
type Options struct {
	// Insecure allows plain HTTP to any registry. Without it a registry
	// is spoken to over HTTPS, or over plain HTTP only if it is on the
	// loopback interface (localhost, 127.0.0.0/8, [::1]).
	Insecure bool
	// Timeout bounds a whole push or pull; 0 means DefaultTimeout.
	Timeout time.Duration
}

// ErrNotFound is wrapped by the error of a pull whose tag or digest the
// registry does not hold.
var ErrNotFound = errors.New("not in the registry")

// ErrTimeout is wrapped by the error of a push or pull that did not end
// within its Timeout.
var ErrTimeout = errors.New("timed out")

// IsRef reports whether s is an oci:// reference rather than a file.
func IsRef(s string) bool { return strings.HasPrefix(s, Scheme) }

// ref is a parsed reference and the options that reach it.
type ref struct {
	text string // as given: it names the bundle in errors
	name name.Reference
	opts Options
}

// parse reads an oci:// reference.
func parse(s string, o Options) (*ref, error) {
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return nil, fmt.Errorf("%q is not an oci:// reference", s)
	}
	// An @ with a / after it ends user:password@, not a repository: the
	// last such @ ends whatever a password holds. Never repeat it.
	for at := len(rest) - 1; at >= 0; at-- {
		if rest[at] == '@' && strings.Contains(rest[at+1:], "/") {
			return nil, fmt.Errorf("%s***@%s: a reference names no credentials: the registry's come from the Docker configuration (docker login) or a credential helper", Scheme, rest[at+1:])
		}
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("oci: Timeout = %s, want >= 0", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	opts := []name.Option{name.StrictValidation}
	if o.Insecure {
		opts = append(opts, name.Insecure)
	}
	var n name.Reference
	var err error
	if strings.Contains(rest, "@") {
		n, err = name.NewDigest(rest, opts...)
	} else {
		n, err = name.NewTag(rest, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v: want %sHOST/REPOSITORY:TAG or %sHOST/REPOSITORY@sha256:<hex>", s, err, Scheme, Scheme)
	}
	return &ref{text: s, name: n, opts: o}, nil
}

// withDigest is the reference pinned to digest: oci://HOST/REPO@digest.
func (r *ref) withDigest(digest string) string {
	return Scheme + r.name.Context().Name() + "@" + digest
}

// start bounds an operation on r in time, and gives the options of
// go-containerregistry that reach the registry.
func (r *ref) start(ctx context.Context) (context.Context, context.CancelFunc, []remote.Option) {
	ctx, cancel := context.WithTimeoutCause(ctx, r.opts.Timeout, fmt.Errorf("%w after %s", ErrTimeout, r.opts.Timeout))
	return ctx, cancel, []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(&guard{next: remote.DefaultTransport, insecure: r.opts.Insecure}),
		remote.WithUserAgent("pirn"),
	}
}

// fail wraps err, the failure of op (push or pull) on r, so that it names
// the reference and, when the time ran out, says so.
func (r *ref) fail(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		err = context.Cause(ctx) // the time ran out, or the caller cancelled
	}
	var terr *transport.Error
	var nerr *net.OpError
	switch {
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		err = ErrNotFound
	case errors.As(err, &nerr) && nerr.Op == "dial":
		err = fmt.Errorf("cannot reach %s: %w", r.name.Context().RegistryStr(), nerr)
	}
	return fmt.Errorf("%s %s: %w", op, r.text, err)
}
