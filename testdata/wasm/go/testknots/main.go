//go:build wasip1

// Command testknots is a test module: len returns the length of its bytes
// input, make returns n bytes, retain keeps every input alive (a deliberate
// leak), and ambient reports what the sandbox lets a knot see of the
// outside world.
//
// Build (make wasm does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags="-w -buildid=" -o testknots.wasm .
package main

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"time"

	pdk "github.com/pirn-wasm/pirn/pdk/go"
)

type none struct{}

type data struct {
	Data []byte `pirn:"data"`
}

type size struct {
	N int64 `pirn:"n"`
}

var kept [][]byte

func init() {
	pdk.Register("len", "Returns the length of data.", func(in data) (int64, error) {
		var sum byte
		for _, b := range in.Data {
			sum += b
		}
		_ = sum
		return int64(len(in.Data)), nil
	})
	pdk.Register("make", "Returns n bytes of 0xab.", func(in size) ([]byte, error) {
		b := make([]byte, in.N)
		for i := range b {
			b[i] = 0xab
		}
		return b, nil
	})
	pdk.Register("retain", "Keeps data forever and returns how many inputs it holds.", func(in data) (int64, error) {
		kept = append(kept, in.Data)
		return int64(len(kept)), nil
	})
}

func init() {
	pdk.Register("ambient", "Reports the files, environment, arguments, clock and randomness the knot can see.", func(none) (map[string]any, error) {
		out := map[string]any{}
		errString := func(err error) string {
			if err == nil {
				return ""
			}
			return err.Error()
		}
		_, err := os.ReadFile("/etc/passwd")
		out["read_passwd"] = errString(err)
		_, err = os.ReadDir(".")
		out["read_cwd"] = errString(err)
		err = os.WriteFile("/tmp/pirn-escape", []byte("x"), 0o644)
		out["write_tmp"] = errString(err)
		_, err = net.Dial("tcp", "127.0.0.1:22")
		out["dial"] = errString(err)
		out["env"] = len(os.Environ())
		out["args"] = len(os.Args)
		out["year"] = time.Now().Year()
		var b [8]byte
		rand.Read(b[:])
		out["random"] = fmt.Sprintf("%x", b)
		return out, nil
	})
}

func main() {}
