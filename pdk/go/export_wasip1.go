//go:build wasip1 && !pirn_noexport

package pdk

import (
	"runtime"
	"unsafe"

	"github.com/pirn-wasm/pirn/abi"
)

//go:wasmimport pirn input
func hostInput(ptr uint32)

//go:wasmimport pirn output
func hostOutput(ptr, n uint32)

//go:wasmimport pirn log
func hostLog(level int32, ptr, n uint32)

func init() {
	logSink = func(level abi.LogLevel, msg string) {
		if len(msg) == 0 {
			hostLog(int32(level), 0, 0)
			return
		}
		b := unsafe.StringData(msg)
		hostLog(int32(level), uint32(uintptr(unsafe.Pointer(b))), uint32(len(msg)))
		runtime.KeepAlive(msg)
	}
}

func output(b []byte) {
	if len(b) == 0 {
		hostOutput(0, 0)
		return
	}
	hostOutput(uint32(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b)))
	runtime.KeepAlive(b)
}

//go:wasmexport pirn_abi_version
func pirnABIVersion() int32 { return abi.Version }

//go:wasmexport pirn_manifest
func pirnManifest() int32 {
	b, err := Manifest()
	if err != nil {
		return 1
	}
	output(b)
	return 0
}

// reqBuf is reused across invocations up to reqBufKeep bytes.
var reqBuf []byte

const reqBufKeep = 1 << 20

//go:wasmexport pirn_invoke
func pirnInvoke(n int32) int32 {
	if n < 0 {
		return 1
	}
	var buf []byte
	if int(n) <= cap(reqBuf) {
		buf = reqBuf[:n]
	} else {
		buf = make([]byte, n)
		if n <= reqBufKeep {
			reqBuf = buf
		}
	}
	if n > 0 {
		hostInput(uint32(uintptr(unsafe.Pointer(&buf[0]))))
	}
	respBuf = invoke(buf, respBuf[:0])
	output(respBuf)
	if cap(respBuf) > reqBufKeep {
		respBuf = nil
	}
	runtime.KeepAlive(buf)
	collect(int(n))
	return 0
}

// respBuf is reused across invocations up to reqBufKeep bytes.
var respBuf []byte
