;; badimport imports functions the host does not provide, and a memory.
;; Build: wat2wasm --debug-names badimport.wat -o badimport.wasm
(module
  (import "env" "abort" (func (param i32)))
  (import "pirn" "fetch" (func (param i32) (result i32)))
  (import "pirn" "output" (func (param i64)))
  (import "wasi_snapshot_preview1" "sock_connect" (func (param i32) (result i32)))
  (import "env" "memory" (memory 1))
  (func (export "pirn_abi_version") (result i32) (i32.const 1))
  (func (export "pirn_manifest") (result i32) (i32.const 0))
  (func (export "pirn_invoke") (param i32) (result i32) (i32.const 0)))
