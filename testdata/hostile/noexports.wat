;; noexports lacks pirn_invoke and exports pirn_manifest with the wrong
;; signature: it is not a knot module.
;; Build: wat2wasm --debug-names noexports.wat -o noexports.wasm
(module
  (memory (export "memory") 1)
  (func (export "pirn_abi_version") (result i32) (i32.const 1))
  (func (export "pirn_manifest") (param i32) (result i32) (i32.const 0)))
