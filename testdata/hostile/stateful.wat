;; stateful: knots that keep state from one invocation to the next, for the
;; hostile-module suite (docs/security.md). With instances kept
;; (instance: keep) they see what earlier invocations left; reset or fresh,
;; every invocation starts from the state after initialisation, and a knot
;; with no grants is hermetic.
;;
;;   counter() -> int     1, 2, 3, ... from a cell of memory
;;   gcounter() -> int    1, 2, 3, ... from a mutable global
;;   stash(x: bytes) -> int   keeps x (8 bytes) in memory
;;   spy() -> bytes       what stash kept, if anything: another run's input
;;   clock() -> int       the (fake) wall clock, which advances per reading
;;   random() -> bytes    8 bytes of the (fake) random source
;;   grow() -> int        grows memory by a page; returns its size in pages
;;
;; Dispatch is on the knot name at byte 7 of the request, and on its length
;; at byte 6 (a3 64 "knot" 6N <name>). The manifest at 1024 is
;; abi.EncodeManifest of the knots above (name "stateful"). Build (make
;; wasm does this): wat2wasm --debug-names stateful.wat.
(module
  (import "pirn" "input" (func $input (param i32)))
  (import "pirn" "output" (func $output (param i32 i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $g (mut i32) (i32.const 0))
  (data (i32.const 1024) "\a3\63\61\62\69\01\64\6e\61\6d\65\68\73\74\61\74\65\66\75\6c\65\6b\6e\6f\74\73\87\a4\63\64\6f\63\78\21\43\6f\75\6e\74\73\20\69\74\73\20\69\6e\76\6f\63\61\74\69\6f\6e\73\20\69\6e\20\6d\65\6d\6f\72\79\2e\64\6e\61\6d\65\67\63\6f\75\6e\74\65\72\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\23\43\6f\75\6e\74\73\20\69\74\73\20\69\6e\76\6f\63\61\74\69\6f\6e\73\20\69\6e\20\61\20\67\6c\6f\62\61\6c\2e\64\6e\61\6d\65\68\67\63\6f\75\6e\74\65\72\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\26\4b\65\65\70\73\20\78\20\69\6e\20\6d\65\6d\6f\72\79\3b\20\72\65\74\75\72\6e\73\20\69\74\73\20\6c\65\6e\67\74\68\2e\64\6e\61\6d\65\65\73\74\61\73\68\66\69\6e\70\75\74\73\81\a2\64\6e\61\6d\65\61\78\64\74\79\70\65\65\62\79\74\65\73\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\25\52\65\74\75\72\6e\73\20\77\68\61\74\20\73\74\61\73\68\20\6b\65\70\74\2c\20\69\66\20\61\6e\79\74\68\69\6e\67\2e\64\6e\61\6d\65\63\73\70\79\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\65\62\79\74\65\73\a4\63\64\6f\63\78\26\52\65\74\75\72\6e\73\20\74\68\65\20\77\61\6c\6c\20\63\6c\6f\63\6b\20\69\6e\20\6e\61\6e\6f\73\65\63\6f\6e\64\73\2e\64\6e\61\6d\65\65\63\6c\6f\63\6b\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\77\52\65\74\75\72\6e\73\20\38\20\72\61\6e\64\6f\6d\20\62\79\74\65\73\2e\64\6e\61\6d\65\66\72\61\6e\64\6f\6d\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\65\62\79\74\65\73\a4\63\64\6f\63\78\2a\47\72\6f\77\73\20\6d\65\6d\6f\72\79\20\62\79\20\61\20\70\61\67\65\3b\20\72\65\74\75\72\6e\73\20\69\74\73\20\70\61\67\65\73\2e\64\6e\61\6d\65\64\67\72\6f\77\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74")

  (func (export "pirn_abi_version") (result i32) (i32.const 1))

  (func (export "pirn_manifest") (result i32)
    (call $output (i32.const 1024) (i32.const 557))
    (i32.const 0))

  ;; {"ok": v} with v a uint64, at 0
  (func $ok_u64 (param $v i64)
    (local $i i32)
    (i32.store (i32.const 0) (i32.const 0x6b6f62a1))
    (i32.store8 (i32.const 4) (i32.const 0x1b))
    (loop $l
      (i64.store8 (i32.add (i32.const 5) (local.get $i))
        (i64.shr_u (local.get $v) (i64.extend_i32_u (i32.sub (i32.const 56) (i32.mul (local.get $i) (i32.const 8))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 8))))
    (call $output (i32.const 0) (i32.const 13)))

  ;; {"ok": bytes(mem[p : p+n])} (n < 256), built at 512
  (func $ok_bytes (param $p i32) (param $n i32)
    (i32.store (i32.const 512) (i32.const 0x6b6f62a1))
    (i32.store8 (i32.const 516) (i32.const 0x58))
    (i32.store8 (i32.const 517) (local.get $n))
    (memory.copy (i32.const 518) (local.get $p) (local.get $n))
    (call $output (i32.const 512) (i32.add (local.get $n) (i32.const 6))))

  (func (export "pirn_invoke") (param $len i32) (result i32)
    (local $c i32) (local $n i32)
    (if (i32.gt_u (local.get $len) (i32.const 60000)) (then unreachable))
    (call $input (i32.const 4096))
    (local.set $c (i32.load8_u (i32.const 4103)))
    ;; "counter" / "clock": both start with c; counter is 7 letters (0x67)
    (if (i32.eq (local.get $c) (i32.const 0x63)) (then
      (if (i32.eq (i32.load8_u (i32.const 4102)) (i32.const 0x67)) (then
        (i32.store (i32.const 256) (i32.add (i32.load (i32.const 256)) (i32.const 1)))
        (call $ok_u64 (i64.extend_i32_u (i32.load (i32.const 256))))
        (return (i32.const 0))))
      (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 264)))
      (call $ok_u64 (i64.load (i32.const 264)))
      (return (i32.const 0))))
    ;; "gcounter"
    (if (i32.eq (local.get $c) (i32.const 0x67)) (then
      (if (i32.eq (i32.load8_u (i32.const 4102)) (i32.const 0x68)) (then
        (global.set $g (i32.add (global.get $g) (i32.const 1)))
        (call $ok_u64 (i64.extend_i32_u (global.get $g)))
        (return (i32.const 0))))
      ;; "grow"
      (drop (memory.grow (i32.const 1)))
      (call $ok_u64 (i64.extend_i32_u (memory.size)))
      (return (i32.const 0))))
    ;; "stash": x is the request's last 8 bytes (callers pass 8): keep
    ;; them at 300, and their count at 296
    (if (i32.eq (local.get $c) (i32.const 0x73)) (then
      (if (i32.eq (i32.load8_u (i32.const 4104)) (i32.const 0x74)) (then
        (local.set $n (i32.const 8))
        (i32.store (i32.const 296) (local.get $n))
        (memory.copy (i32.const 300) (i32.sub (i32.add (i32.const 4096) (local.get $len)) (local.get $n)) (local.get $n))
        (call $ok_u64 (i64.extend_i32_u (local.get $n)))
        (return (i32.const 0))))
      ;; "spy"
      (call $ok_bytes (i32.const 300) (i32.load (i32.const 296)))
      (return (i32.const 0))))
    ;; "random"
    (drop (call $random_get (i32.const 280) (i32.const 8)))
    (call $ok_bytes (i32.const 280) (i32.const 8))
    (i32.const 0))
)
