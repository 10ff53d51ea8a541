//go:build wasip1 && !pirn_noexport

package pdkhttp

import (
	"runtime"
	"unsafe"
)

//go:wasmimport pirn http
func hostHTTP(ptr, n uint32) uint32

//go:wasmimport pirn http_response
func hostHTTPResponse(ptr uint32)

func init() {
	httpSink = func(req []byte) []byte {
		n := hostHTTP(uint32(uintptr(unsafe.Pointer(&req[0]))), uint32(len(req)))
		runtime.KeepAlive(req)
		if n == 0 {
			return nil
		}
		buf := make([]byte, n)
		hostHTTPResponse(uint32(uintptr(unsafe.Pointer(&buf[0]))))
		return buf
	}
}
