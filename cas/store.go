package cas

import (
	"context"
	"errors"
)

// ErrNotFound is wrapped by Store.Get when no value has the digest.
var ErrNotFound = errors.New("cas: not found")

// ErrCorrupt is wrapped by Store.Get when stored bytes do not hash to the
// digest they are stored under.
var ErrCorrupt = errors.New("cas: stored bytes do not match their digest")

// Store holds canonical encodings by digest: the "DataStore" of the Python
// original. Implementations are safe for concurrent use.
type Store interface {
	// Put stores b, which must hash to d. Putting a digest that is already
	// present is a no-op. The store does not retain b.
	Put(ctx context.Context, d Digest, b []byte) error
	// Get returns the bytes stored under d, or an error wrapping
	// [ErrNotFound]. The caller owns the returned slice.
	Get(ctx context.Context, d Digest) ([]byte, error)
	// Has reports whether d is stored.
	Has(ctx context.Context, d Digest) (bool, error)
	// Delete removes d. Deleting an absent digest is not an error. Lineage
	// records that name d are unaffected.
	Delete(ctx context.Context, d Digest) error
}
