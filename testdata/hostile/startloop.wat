;; startloop loops forever in its start function: instantiating it must
;; time out rather than hang the host.
;; Build: wat2wasm --debug-names startloop.wat -o startloop.wasm
(module
  (memory (export "memory") 1)
  (func $start (loop $l (br $l)))
  (start $start)
  (func (export "pirn_abi_version") (result i32) (i32.const 1))
  (func (export "pirn_manifest") (result i32) (i32.const 0))
  (func (export "pirn_invoke") (param i32) (result i32) (i32.const 0)))
