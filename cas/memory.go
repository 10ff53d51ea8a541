package cas

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Memory is an in-memory [Store]. The zero value is not usable; use
// [NewMemory].
type Memory struct {
	mu sync.RWMutex
	m  map[Digest][]byte
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{m: make(map[Digest][]byte)} }

// Put implements [Store].
func (s *Memory) Put(_ context.Context, d Digest, b []byte) error {
	s.mu.RLock()
	_, ok := s.m[d]
	s.mu.RUnlock()
	if ok {
		return nil
	}
	c := slices.Clone(b)
	s.mu.Lock()
	s.m[d] = c
	s.mu.Unlock()
	return nil
}

// Get implements [Store].
func (s *Memory) Get(_ context.Context, d Digest) ([]byte, error) {
	s.mu.RLock()
	b, ok := s.m[d]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("get %s: %w", d, ErrNotFound)
	}
	return slices.Clone(b), nil
}

// Has implements [Store].
func (s *Memory) Has(_ context.Context, d Digest) (bool, error) {
	s.mu.RLock()
	_, ok := s.m[d]
	s.mu.RUnlock()
	return ok, nil
}

// Delete implements [Store].
func (s *Memory) Delete(_ context.Context, d Digest) error {
	s.mu.Lock()
	delete(s.m, d)
	s.mu.Unlock()
	return nil
}

// Len returns the number of stored values.
func (s *Memory) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}
