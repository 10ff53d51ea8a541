;; badmanifest hands the host a manifest with an invalid knot name and an
;; unknown input type.
;; Build: wat2wasm --debug-names badmanifest.wat -o badmanifest.wasm
(module
  (import "pirn" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\a2\63\61\62\69\01\65\6b\6e\6f\74\73\81\a3\64\6e\61\6d\65\63\61\20\62\66\69\6e\70\75\74\73\81\a2\64\6e\61\6d\65\61\78\64\74\79\70\65\66\77\69\64\67\65\74\66\6f\75\74\70\75\74\63\69\6e\74")
  (func (export "pirn_abi_version") (result i32) (i32.const 1))
  (func (export "pirn_manifest") (result i32)
    (call $output (i32.const 0) (i32.const 62))
    (i32.const 0))
  (func (export "pirn_invoke") (param i32) (result i32) (i32.const 0)))
