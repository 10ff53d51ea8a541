// Package castest is the conformance suite every [cas.Store] implementation
// runs from its own tests.
package castest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/pirn-wasm/pirn/cas"
)

// RunStore exercises a store returned fresh by newStore for each subtest:
// the contract of [cas.Store], values absent and present, large values,
// concurrent callers, and contexts that are done before or during a call
// (a call may then fail with an error wrapping the context's error, or
// succeed; either way the store holds each value whole or not at all).
func RunStore(t *testing.T, newStore func(t *testing.T) cas.Store) {
	t.Helper()
	val := func(t *testing.T, v any) cas.Value {
		t.Helper()
		x, err := cas.NewValue(v)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}

	t.Run("PutGetHasDelete", func(t *testing.T) {
		s, ctx := newStore(t), t.Context()
		v := val(t, map[string]any{"k": []any{1, 2.5, "x"}})
		if ok, err := s.Has(ctx, v.Digest); err != nil || ok {
			t.Fatalf("Has before Put = %v, %v; want false, nil", ok, err)
		}
		if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, err := s.Get(ctx, v.Digest)
		if err != nil || !bytes.Equal(got, v.Bytes) {
			t.Fatalf("Get = %x, %v; want %x", got, err, v.Bytes)
		}
		if ok, err := s.Has(ctx, v.Digest); err != nil || !ok {
			t.Fatalf("Has after Put = %v, %v; want true, nil", ok, err)
		}
		if err := s.Delete(ctx, v.Digest); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Get(ctx, v.Digest); !errors.Is(err, cas.ErrNotFound) {
			t.Fatalf("Get after Delete error = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, v.Digest); err != nil {
			t.Fatalf("second Delete = %v, want nil", err)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		s, ctx := newStore(t), t.Context()
		v := val(t, "never put")
		if got, err := s.Get(ctx, v.Digest); !errors.Is(err, cas.ErrNotFound) || errors.Is(err, cas.ErrCorrupt) || got != nil {
			t.Errorf("Get of a digest never put = %x, %v; want nil, ErrNotFound", got, err)
		}
		if ok, err := s.Has(ctx, v.Digest); err != nil || ok {
			t.Errorf("Has of a digest never put = %v, %v; want false, nil", ok, err)
		}
		if err := s.Delete(ctx, v.Digest); err != nil {
			t.Errorf("Delete of a digest never put = %v, want nil", err)
		}
	})

	t.Run("PutIsIdempotent", func(t *testing.T) {
		s, ctx := newStore(t), t.Context()
		v := val(t, "same")
		for range 3 {
			if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
				t.Fatalf("Put: %v", err)
			}
		}
		got, err := s.Get(ctx, v.Digest)
		if err != nil || !bytes.Equal(got, v.Bytes) {
			t.Fatalf("Get = %x, %v; want %x", got, err, v.Bytes)
		}
	})

	t.Run("CallerOwnsSlices", func(t *testing.T) {
		s, ctx := newStore(t), t.Context()
		v := val(t, []byte("abc"))
		in := bytes.Clone(v.Bytes)
		if err := s.Put(ctx, v.Digest, in); err != nil {
			t.Fatal(err)
		}
		in[1] ^= 0xff
		got, err := s.Get(ctx, v.Digest)
		if err != nil || !bytes.Equal(got, v.Bytes) {
			t.Fatalf("Get after caller modified its slice = %x, %v; want %x", got, err, v.Bytes)
		}
		got[1] ^= 0xff
		again, err := s.Get(ctx, v.Digest)
		if err != nil || !bytes.Equal(again, v.Bytes) {
			t.Fatalf("Get after caller modified a returned slice = %x, %v; want %x", again, err, v.Bytes)
		}
	})

	t.Run("LargeValue", func(t *testing.T) {
		s, ctx := newStore(t), t.Context()
		b := make([]byte, 10<<20)
		for i := range b {
			b[i] = byte(i * 7 / 251)
		}
		v := val(t, b)
		if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, v.Digest)
		if err != nil || !bytes.Equal(got, v.Bytes) {
			t.Fatalf("Get of 10 MiB value: len %d, %v; want len %d", len(got), err, len(v.Bytes))
		}
	})

	// A store may ignore a cancelled context (a memory store does), but if an
	// operation fails for it the error wraps context.Canceled, and a Put that
	// was cancelled leaves the value whole or absent, never partial.
	t.Run("Cancelled", func(t *testing.T) {
		s := newStore(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		small, large := val(t, "cancelled"), val(t, bytes.Repeat([]byte{0xcd}, 1<<20))
		for _, v := range []cas.Value{small, large} {
			if err := s.Put(ctx, v.Digest, v.Bytes); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Put with a cancelled context: error = %v, want nil or context.Canceled", err)
			}
			got, err := s.Get(t.Context(), v.Digest)
			if err != nil && !errors.Is(err, cas.ErrNotFound) {
				t.Errorf("Get after a cancelled Put: error = %v, want nil or ErrNotFound", err)
			} else if err == nil && !bytes.Equal(got, v.Bytes) {
				t.Errorf("Get after a cancelled Put: %d bytes, want the %d put or none", len(got), len(v.Bytes))
			}
		}
		if err := s.Put(t.Context(), small.Digest, small.Bytes); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, small.Digest); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Get with a cancelled context: error = %v, want nil or context.Canceled", err)
		} else if err == nil && !bytes.Equal(got, small.Bytes) {
			t.Errorf("Get with a cancelled context = %x, want %x", got, small.Bytes)
		}
		if _, err := s.Has(ctx, small.Digest); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Has with a cancelled context: error = %v, want nil or context.Canceled", err)
		}
		if err := s.Delete(ctx, small.Digest); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Delete with a cancelled context: error = %v, want nil or context.Canceled", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s, ctx := newStore(t), t.Context()
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := range 64 {
			wg.Go(func() {
				v, err := cas.NewValue(fmt.Sprint(i % 8)) // 8 writers per digest
				if err != nil {
					errs <- err
					return
				}
				if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
					errs <- err
					return
				}
				got, err := s.Get(ctx, v.Digest)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, v.Bytes) {
					errs <- fmt.Errorf("Get(%s) = %x, want %x", v.Digest, got, v.Bytes)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	// Concurrent puts, gets and deletes of the same few digests: a Get sees
	// a whole value or none.
	t.Run("ConcurrentDelete", func(t *testing.T) {
		s, ctx := newStore(t), t.Context()
		var wg sync.WaitGroup
		errs := make(chan error, 3*32)
		for i := range 32 {
			v, err := cas.NewValue(fmt.Sprint("d", i%4))
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
					errs <- err
				}
			})
			wg.Go(func() {
				if err := s.Delete(ctx, v.Digest); err != nil {
					errs <- err
				}
			})
			wg.Go(func() {
				got, err := s.Get(ctx, v.Digest)
				if err != nil && !errors.Is(err, cas.ErrNotFound) {
					errs <- err
				} else if err == nil && !bytes.Equal(got, v.Bytes) {
					errs <- fmt.Errorf("Get(%s) = %x, want %x", v.Digest, got, v.Bytes)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("DoneContext", func(t *testing.T) {
		s := newStore(t)
		done, cancel := context.WithCancel(t.Context())
		cancel()
		v := val(t, "put with a done context")
		in := bytes.Clone(v.Bytes)
		checkCtxErr(t, "Put", s.Put(done, v.Digest, in))
		in[0] ^= 0xff // the caller reuses its slice
		got, err := s.Get(done, v.Digest)
		if err == nil && !bytes.Equal(got, v.Bytes) {
			t.Errorf("Get with a done context = %x, want %x or an error", got, v.Bytes)
		}
		checkCtxErr(t, "Get", ignore(err, cas.ErrNotFound))
		_, err = s.Has(done, v.Digest)
		checkCtxErr(t, "Has", err)
		checkCtxErr(t, "Delete", s.Delete(done, v.Digest))
		ctx := t.Context()
		checkWholeOrAbsent(t, s, v)
		if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
			t.Fatalf("Put after calls with a done context: %v", err)
		}
		if got, err := s.Get(ctx, v.Digest); err != nil || !bytes.Equal(got, v.Bytes) {
			t.Errorf("Get after calls with a done context = %x, %v; want %x", got, err, v.Bytes)
		}
	})

	// A context cancelled while puts are in flight: each call succeeds or
	// fails with the context's error, and every value the callers then
	// overwrite in their own slices is stored whole or not at all.
	t.Run("CancelDuringPuts", func(t *testing.T) {
		s := newStore(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		vs := make([]cas.Value, 256)
		for i := range vs {
			vs[i] = val(t, bytes.Repeat([]byte{byte(i)}, 1+i*64))
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(vs))
		for i, v := range vs {
			if i == len(vs)/4 {
				cancel()
			}
			wg.Go(func() {
				in := bytes.Clone(v.Bytes)
				err := s.Put(ctx, v.Digest, in)
				clear(in)
				if err != nil && !errors.Is(err, context.Canceled) {
					errs <- fmt.Errorf("after cancel, Put = %v; want nil or an error wrapping context.Canceled", err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, v := range vs {
			checkWholeOrAbsent(t, s, v)
		}
	})

	// Distinct values of 64 KiB, each put, read, checked and deleted by a
	// goroutine of its own while the others do the same.
	t.Run("ConcurrentDistinct", func(t *testing.T) {
		s, ctx := newStore(t), t.Context()
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 32 {
			wg.Go(func() {
				errs <- func() error {
					v, err := cas.NewValue(bytes.Repeat([]byte{byte(i)}, 64<<10))
					if err != nil {
						return err
					}
					if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
						return err
					}
					if ok, err := s.Has(ctx, v.Digest); err != nil || !ok {
						return fmt.Errorf("Has(%s) after Put = %v, %v; want true, nil", v.Digest, ok, err)
					}
					if got, err := s.Get(ctx, v.Digest); err != nil || !bytes.Equal(got, v.Bytes) {
						return fmt.Errorf("Get(%s): %d bytes, %v; want %d", v.Digest, len(got), err, len(v.Bytes))
					}
					if err := s.Delete(ctx, v.Digest); err != nil {
						return err
					}
					if ok, err := s.Has(ctx, v.Digest); err != nil || ok {
						return fmt.Errorf("Has(%s) after Delete = %v, %v; want false, nil", v.Digest, ok, err)
					}
					return nil
				}()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
}

// checkCtxErr fails t unless err is nil or wraps context.Canceled.
func checkCtxErr(t *testing.T, op string, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("%s with a done context = %v, want nil or an error wrapping context.Canceled", op, err)
	}
}

func ignore(err, target error) error {
	if errors.Is(err, target) {
		return nil
	}
	return err
}

// checkWholeOrAbsent fails t unless s holds v's exact bytes or nothing
// under its digest.
func checkWholeOrAbsent(t *testing.T, s cas.Store, v cas.Value) {
	t.Helper()
	got, err := s.Get(t.Context(), v.Digest)
	if errors.Is(err, cas.ErrNotFound) {
		return
	}
	if err != nil || !bytes.Equal(got, v.Bytes) {
		t.Errorf("Get(%s) = %d bytes, %v; want the value whole (%d bytes) or ErrNotFound", v.Digest, len(got), err, len(v.Bytes))
	}
}
