;; tables: a knot that grows its table until it cannot, for the
;; hostile-module suite (docs/security.md). The table declares no maximum;
;; the host gives it one (MaxTableElements) before compiling, so table.grow
;; fails there, as the standard allows, instead of growing to 2^32 elements
;; (32 GiB of host memory, a fatal out-of-memory that ends every run).
;;
;;   grow() -> int   the table's size once table.grow refuses to grow it
;;   one() -> int    1: a healthy knot beside it
;;
;; The manifest at 256 is abi.EncodeManifest of the two knots above (name
;; "tables"). Build (make wasm does this): wat2wasm --debug-names tables.wat.
(module
  (import "pirn" "input" (func $input (param i32)))
  (import "pirn" "output" (func $output (param i32 i32)))
  (memory (export "memory") 2)
  (table $t 1 funcref)
  ;; 0: {"ok": 1}
  (data (i32.const 0) "\a1\62\6f\6b\01")
  (data (i32.const 256) "\a3\63\61\62\69\01\64\6e\61\6d\65\66\74\61\62\6c\65\73\65\6b\6e\6f\74\73\82\a4\63\64\6f\63\78\36\47\72\6f\77\73\20\69\74\73\20\74\61\62\6c\65\20\75\6e\74\69\6c\20\69\74\20\63\61\6e\6e\6f\74\2c\20\61\6e\64\20\72\65\74\75\72\6e\73\20\69\74\73\20\73\69\7a\65\2e\64\6e\61\6d\65\64\67\72\6f\77\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\6a\52\65\74\75\72\6e\73\20\31\2e\64\6e\61\6d\65\63\6f\6e\65\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74")

  (func (export "pirn_abi_version") (result i32) (i32.const 1))

  (func (export "pirn_manifest") (result i32)
    (call $output (i32.const 256) (i32.const 159))
    (i32.const 0))

  (func (export "pirn_invoke") (param $len i32) (result i32)
    (local $size i32)
    (if (i32.gt_u (local.get $len) (i32.const 65536)) (then unreachable))
    (call $input (i32.const 65536))
    ;; "one"
    (if (i32.eq (i32.load8_u (i32.const 65543)) (i32.const 0x6f)) (then
      (call $output (i32.const 0) (i32.const 5))
      (return (i32.const 0))))
    ;; "grow": 65536 elements at a time until table.grow answers -1
    (loop $g
      (br_if $g (i32.ge_s (table.grow $t (ref.null func) (i32.const 65536)) (i32.const 0))))
    (local.set $size (table.size $t))
    ;; {"ok": size} as a0 62 "ok" 1a <4 bytes, big-endian> at 16
    (i32.store (i32.const 16) (i32.const 0x6b6f62a1))
    (i32.store8 (i32.const 20) (i32.const 0x1a))
    (i32.store8 (i32.const 21) (i32.shr_u (local.get $size) (i32.const 24)))
    (i32.store8 (i32.const 22) (i32.shr_u (local.get $size) (i32.const 16)))
    (i32.store8 (i32.const 23) (i32.shr_u (local.get $size) (i32.const 8)))
    (i32.store8 (i32.const 24) (local.get $size))
    (call $output (i32.const 16) (i32.const 9))
    (i32.const 0))
)
