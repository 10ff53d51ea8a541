;; ident: the cheapest possible knot, for measuring the host's own cost.
;; ident(x) returns x without looping: in a canonical request for knot
;; "ident" with input x and no config,
;;   a3 64 "knot" 65 "ident" 66 "config" a0 66 "inputs" a1 61 "x" <x>
;; x starts at byte 30, so the response {"ok": x} is written in place as
;; a1 62 "ok" over bytes 26..29. A request of any other shape traps.
;;
;; Build (make wasm does this): wat2wasm --debug-names ident.wat -o ident.wasm
(module
  (import "pirn" "input" (func $input (param i32)))
  (import "pirn" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\a3\63\61\62\69\01\64\6e\61\6d\65\65\69\64\65\6e\74\65\6b\6e\6f\74\73\81\a4\63\64\6f\63\78\41\52\65\74\75\72\6e\73\20\69\74\73\20\69\6e\70\75\74\20\78\20\75\6e\63\68\61\6e\67\65\64\2e\20\46\6f\72\20\62\65\6e\63\68\6d\61\72\6b\73\3a\20\6e\6f\20\63\6f\6e\66\69\67\20\61\6c\6c\6f\77\65\64\2e\64\6e\61\6d\65\65\69\64\65\6e\74\66\69\6e\70\75\74\73\81\a2\64\6e\61\6d\65\61\78\64\74\79\70\65\63\61\6e\79\66\6f\75\74\70\75\74\63\61\6e\79")

  (func (export "pirn_abi_version") (result i32) (i32.const 1))

  (func (export "pirn_manifest") (result i32)
    (call $output (i32.const 0) (i32.const 143))
    (i32.const 0))

  (func (export "pirn_invoke") (param $len i32) (result i32)
    (local $base i32)
    (local.set $base (i32.const 1024))
    ;; grow memory if the request does not fit after $base
    (if (i32.gt_u (i32.add (local.get $len) (local.get $base)) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.lt_s (memory.grow (i32.add (i32.shr_u (local.get $len) (i32.const 16)) (i32.const 1))) (i32.const 0))
        (then unreachable))))
    (call $input (local.get $base))
    ;; shape checks: knot name of length 5, empty config, one input "x"
    (if (i32.or
          (i32.ne (i32.load8_u offset=6 (local.get $base)) (i32.const 0x65))
          (i32.or
            (i32.ne (i32.load8_u offset=19 (local.get $base)) (i32.const 0xa0))
            (i32.ne (i32.and (i32.load offset=27 align=1 (local.get $base)) (i32.const 0x00ffffff)) (i32.const 0x007861a1))))
      (then unreachable))
    (i32.store offset=26 align=1 (local.get $base) (i32.const 0x6b6f62a1))
    (call $output (i32.add (local.get $base) (i32.const 26)) (i32.sub (local.get $len) (i32.const 26)))
    (i32.const 0))
)
