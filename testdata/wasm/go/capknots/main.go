//go:build wasip1

// Command capknots is a knot module for the host's capability tests: each
// knot reaches for something outside pure computation (files, the
// environment, the clock, randomness), which a knot sees only when its
// pipeline grants it.
//
// Build (make wasm does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags="-w -buildid=" -o capknots.wasm .
package main

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"time"

	pdk "github.com/pirn-wasm/pirn/pdk/go"
)

type pathIn struct {
	Path string `pirn:"path"`
}

type writeIn struct {
	Path string `pirn:"path"`
	Data string `pirn:"data"`
}

type nameIn struct {
	Name string `pirn:"name"`
}

type none struct{}

type msIn struct {
	MS int64 `pirn:"ms"`
}

type loopIn struct {
	Dir string `pirn:"dir"`
	N   int64  `pirn:"n"`
}

func init() {
	pdk.Register("readfile", "Returns the contents of the file at path.", func(in pathIn) (string, error) {
		b, err := os.ReadFile(in.Path)
		return string(b), err
	})
	pdk.Register("writefile", "Writes data to the file at path and returns its length.", func(in writeIn) (int64, error) {
		return int64(len(in.Data)), os.WriteFile(in.Path, []byte(in.Data), 0o644)
	})
	pdk.Register("listdir", "Returns the sorted names in the directory at path.", func(in pathIn) ([]string, error) {
		entries, err := os.ReadDir(in.Path)
		names := []string{}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		return names, err
	})
	pdk.Register("symlink", "Makes a symbolic link at path to /etc/passwd.", func(in pathIn) (bool, error) {
		return true, os.Symlink("/etc/passwd", in.Path)
	})
	pdk.Register("getenv", "Returns the environment variable name, or null if it is unset.", func(in nameIn) (*string, error) {
		v, ok := os.LookupEnv(in.Name)
		if !ok {
			return nil, nil
		}
		return &v, nil
	})
	pdk.Register("failenv", "Errs with a message, a trace-like detail and a log line holding the environment variable name (to test redaction).", func(in nameIn) (bool, error) {
		v := os.Getenv(in.Name)
		fmt.Fprintf(os.Stderr, "connecting with %s\n", v)
		return false, fmt.Errorf("login with token %s refused", v)
	})
	pdk.Register("environ", "Returns the whole environment.", func(none) ([]string, error) {
		return append([]string{}, os.Environ()...), nil
	})
	pdk.Register("now", "Returns the wall clock's Unix time in seconds.", func(none) (int64, error) {
		return time.Now().Unix(), nil
	})
	pdk.Register("sleep", "Sleeps ms milliseconds (really only with the clock granted) and returns ms.", func(in msIn) (int64, error) {
		time.Sleep(time.Duration(in.MS) * time.Millisecond)
		return in.MS, nil
	})
	pdk.Register("random", "Returns 8 random bytes as an integer.", func(none) (int64, error) {
		var b [8]byte
		_, err := rand.Read(b[:])
		return int64(binary.LittleEndian.Uint64(b[:]) >> 1), err
	})
}

// The race knots attack a read-write grant holding a directory d and a
// symbolic link l (made on the host) to a directory outside: swap keeps
// exchanging the two by renames while probe, in another instance, reads
// and writes d/secret. Neither may ever reach outside.
func init() {
	pdk.Register("swap", "Swaps dir/d and dir/l by renames n times; returns how many renames worked.", func(in loopIn) (int64, error) {
		done := int64(0)
		for range in.N {
			for _, mv := range [][2]string{{"d", "tmp"}, {"l", "d"}, {"d", "l"}, {"tmp", "d"}} {
				if os.Rename(in.Dir+"/"+mv[0], in.Dir+"/"+mv[1]) == nil {
					done++
				}
			}
		}
		return done, nil
	})
	pdk.Register("probe", "Reads and writes dir/d/secret n times; returns the distinct contents read.", func(in loopIn) ([]string, error) {
		seen := map[string]bool{}
		for range in.N {
			if b, err := os.ReadFile(in.Dir + "/d/secret"); err == nil {
				seen[string(b)] = true
			}
			os.WriteFile(in.Dir+"/d/secret", []byte("inside"), 0o644)
			if f, err := os.OpenFile(in.Dir+"/d/new", os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				f.Close()
			}
		}
		out := []string{}
		for s := range seen {
			out = append(out, s)
		}
		sort.Strings(out)
		return out, nil
	})
}

func main() {}
