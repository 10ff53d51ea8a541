;; badversion declares ABI version 2, which this host does not speak.
;; Build: wat2wasm --debug-names badversion.wat -o badversion.wasm
(module
  (memory (export "memory") 1)
  (func (export "pirn_abi_version") (result i32) (i32.const 2))
  (func (export "pirn_manifest") (result i32) (i32.const 0))
  (func (export "pirn_invoke") (param i32) (result i32) (i32.const 0)))
