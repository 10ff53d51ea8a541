//go:build unix

package host

import "syscall"

// reserveMaps: reserve maps address space, so that a reservation of a
// memory's maximum costs only the pages used.
const reserveMaps = true

// reserve maps max bytes of address space, backed by memory only as pages
// are touched (and not counted in the Go heap).
func reserve(max uint64) []byte {
	b, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|mapNoReserve)
	if err != nil {
		return nil
	}
	return b
}

func release(b []byte) {
	if b != nil {
		syscall.Munmap(b)
	}
}
