;; loose: a knot whose output is small as CBOR but not canonical, for the
;; hostile-module suite (docs/security.md): a list of 4,000,000 empty lists,
;; each written 98 00 (its length in a byte of its own) rather than 80. The
;; host re-encodes it canonically working on the bytes: decoded into Go
;; values it would take gigabytes.
;;
;;   loose() -> list   the list, 8 MB of CBOR
;;   one() -> int      1: a healthy knot beside it
;;
;; The manifest at 256 is abi.EncodeManifest of the two knots above (name
;; "loose"). Build (make wasm does this): wat2wasm --debug-names loose.wat.
(module
  (import "pirn" "input" (func $input (param i32)))
  (import "pirn" "output" (func $output (param i32 i32)))
  (memory (export "memory") 2)
  ;; 0: {"ok": 1}
  (data (i32.const 0) "\a1\62\6f\6b\01")
  (data (i32.const 256) "\a3\63\61\62\69\01\64\6e\61\6d\65\65\6c\6f\6f\73\65\65\6b\6e\6f\74\73\82\a4\63\64\6f\63\78\4e\52\65\74\75\72\6e\73\20\61\20\6c\69\73\74\20\6f\66\20\34\2c\30\30\30\2c\30\30\30\20\65\6d\70\74\79\20\6c\69\73\74\73\2c\20\65\61\63\68\20\69\6e\20\61\20\6c\6f\6e\67\65\72\20\66\6f\72\6d\20\74\68\61\6e\20\63\61\6e\6f\6e\69\63\61\6c\2e\64\6e\61\6d\65\65\6c\6f\6f\73\65\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\64\6c\69\73\74\a4\63\64\6f\63\6a\52\65\74\75\72\6e\73\20\31\2e\64\6e\61\6d\65\63\6f\6e\65\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74")

  (func (export "pirn_abi_version") (result i32) (i32.const 1))

  (func (export "pirn_manifest") (result i32)
    (call $output (i32.const 256) (i32.const 184))
    (i32.const 0))

  (func (export "pirn_invoke") (param $len i32) (result i32)
    (local $p i32)
    (if (i32.gt_u (local.get $len) (i32.const 65536)) (then unreachable))
    (call $input (i32.const 65536))
    ;; "one"
    (if (i32.eq (i32.load8_u (i32.const 65543)) (i32.const 0x6f)) (then
      (call $output (i32.const 0) (i32.const 5))
      (return (i32.const 0))))
    ;; "loose": {"ok": [98 00 x 4,000,000]} at 131072, 8 MB: 123 more pages
    (if (i32.lt_s (memory.grow (i32.const 123)) (i32.const 0)) (then unreachable))
    ;; a1 62 6f 6b 9a 00 3d 09 00: {"ok": array(4000000)}
    (i32.store (i32.const 131072) (i32.const 0x6b6f62a1))
    (i32.store8 (i32.const 131076) (i32.const 0x9a))
    (i32.store (i32.const 131077) (i32.const 0x00093d00))
    (local.set $p (i32.const 131081))
    (loop $l
      (i32.store16 (local.get $p) (i32.const 0x0098))
      (local.set $p (i32.add (local.get $p) (i32.const 2)))
      (br_if $l (i32.lt_u (local.get $p) (i32.const 8131081))))
    (call $output (i32.const 131072) (i32.const 8000009))
    (i32.const 0))
)
