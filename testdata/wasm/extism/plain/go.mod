module github.com/pirn-wasm/pirn/testdata/wasm/extism/plain

go 1.26

require github.com/extism/go-pdk v1.1.3
