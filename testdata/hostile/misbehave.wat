;; misbehave: one healthy knot and many that break the ABI or the limits.
;; The host must contain each of them: the invocation errs, the instance is
;; discarded, and the next invocation of "one" works.
;;
;; Build (make wasm does this): wat2wasm misbehave.wat -o misbehave.wasm
;;
;; Dispatch is on the knot name, which in a canonical request starts at byte
;; 7: a3 64 "knot" 6N <name>.
(module
  (import "pirn" "input" (func $input (param i32)))
  (import "pirn" "output" (func $output (param i32 i32)))
  (import "pirn" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  ;; 0: {"ok": 1}
  (data (i32.const 0) "\a1\62\6f\6b\01")
  ;; 16: "not cbor" (0xff is a stray break)
  (data (i32.const 16) "\ff\ff\ff")
  ;; 32: {"ok": "7"}, 48: {"ok": "x"}
  (data (i32.const 32) "\a1\62\6f\6b\61\37")
  (data (i32.const 48) "\a1\62\6f\6b\61\78")
  ;; 256: the manifest
  (data (i32.const 256) "\a3\63\61\62\69\01\64\6e\61\6d\65\69\6d\69\73\62\65\68\61\76\65\65\6b\6e\6f\74\73\8f\a4\63\64\6f\63\78\24\52\65\74\75\72\6e\73\20\31\20\77\69\74\68\6f\75\74\20\72\65\61\64\69\6e\67\20\69\74\73\20\69\6e\70\75\74\2e\64\6e\61\6d\65\63\6f\6e\65\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\4a\52\65\74\75\72\6e\73\20\69\74\73\20\69\6e\70\75\74\20\78\20\75\6e\63\68\61\6e\67\65\64\20\28\78\20\6d\75\73\74\20\62\65\20\74\68\65\20\6f\6e\6c\79\20\69\6e\70\75\74\20\61\6e\64\20\63\6f\6e\66\69\67\20\65\6d\70\74\79\29\2e\64\6e\61\6d\65\64\65\63\68\6f\66\69\6e\70\75\74\73\81\a2\64\6e\61\6d\65\61\78\64\74\79\70\65\63\61\6e\79\66\6f\75\74\70\75\74\63\61\6e\79\a4\63\64\6f\63\75\45\78\65\63\75\74\65\73\20\75\6e\72\65\61\63\68\61\62\6c\65\2e\64\6e\61\6d\65\64\74\72\61\70\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\6e\4c\6f\6f\70\73\20\66\6f\72\65\76\65\72\2e\64\6e\61\6d\65\64\6c\6f\6f\70\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\3c\47\72\6f\77\73\20\6d\65\6d\6f\72\79\20\6f\6e\65\20\70\61\67\65\20\61\74\20\61\20\74\69\6d\65\20\75\6e\74\69\6c\20\69\74\20\63\61\6e\6e\6f\74\2c\20\74\68\65\6e\20\6c\6f\6f\70\73\2e\64\6e\61\6d\65\64\67\72\6f\77\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\20\52\65\74\75\72\6e\73\20\62\79\74\65\73\20\74\68\61\74\20\61\72\65\20\6e\6f\74\20\43\42\4f\52\2e\64\6e\61\6d\65\67\62\61\64\63\62\6f\72\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\2a\50\61\73\73\65\73\20\6f\75\74\70\75\74\20\61\20\70\6f\69\6e\74\65\72\20\62\65\79\6f\6e\64\20\69\74\73\20\6d\65\6d\6f\72\79\2e\64\6e\61\6d\65\63\70\74\72\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\21\52\65\74\75\72\6e\73\20\30\20\77\69\74\68\6f\75\74\20\63\61\6c\6c\69\6e\67\20\6f\75\74\70\75\74\2e\64\6e\61\6d\65\66\73\69\6c\65\6e\74\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\1a\4c\6f\67\73\20\36\34\20\4b\69\42\20\6c\69\6e\65\73\20\66\6f\72\65\76\65\72\2e\64\6e\61\6d\65\65\66\6c\6f\6f\64\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\23\52\65\63\75\72\73\65\73\20\75\6e\74\69\6c\20\74\68\65\20\73\74\61\63\6b\20\6f\76\65\72\66\6c\6f\77\73\2e\64\6e\61\6d\65\64\64\65\65\70\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\1a\43\6c\61\69\6d\73\20\61\6e\20\6f\75\74\70\75\74\20\6f\66\20\33\20\47\69\42\2e\64\6e\61\6d\65\64\68\75\67\65\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\25\43\61\6c\6c\73\20\6f\75\74\70\75\74\20\63\6f\72\72\65\63\74\6c\79\20\61\6e\64\20\72\65\74\75\72\6e\73\20\37\2e\64\6e\61\6d\65\67\72\65\74\63\6f\64\65\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\3c\44\65\63\6c\61\72\65\73\20\61\6e\20\69\6e\74\20\6f\75\74\70\75\74\20\61\6e\64\20\72\65\74\75\72\6e\73\20\74\68\65\20\74\65\78\74\20\22\37\22\20\28\63\6f\65\72\63\69\62\6c\65\29\2e\64\6e\61\6d\65\66\78\73\65\76\65\6e\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\40\44\65\63\6c\61\72\65\73\20\61\6e\20\69\6e\74\20\6f\75\74\70\75\74\20\61\6e\64\20\72\65\74\75\72\6e\73\20\74\68\65\20\74\65\78\74\20\22\78\22\20\28\6e\6f\74\20\63\6f\65\72\63\69\62\6c\65\29\2e\64\6e\61\6d\65\65\77\6f\72\64\73\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74\a4\63\64\6f\63\78\35\47\72\6f\77\73\20\6d\65\6d\6f\72\79\20\62\79\20\31\30\20\4d\69\42\20\61\6e\64\20\68\61\6e\64\73\20\61\6c\6c\20\6f\66\20\69\74\20\74\6f\20\6f\75\74\70\75\74\2e\64\6e\61\6d\65\67\6d\61\73\73\69\76\65\66\69\6e\70\75\74\73\80\66\6f\75\74\70\75\74\63\69\6e\74")

  (func (export "pirn_abi_version") (result i32) (i32.const 1))

  (func (export "pirn_manifest") (result i32)
    (call $output (i32.const 256) (i32.const 1209))
    (i32.const 0))

  (func $deep (param $n i32) (result i32)
    (i32.add (call $deep (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))

  (func (export "pirn_invoke") (param $len i32) (result i32)
    (local $c i32)
    ;; requests are read at 65536 (the second page); grow if needed
    (if (i32.gt_u (local.get $len) (i32.const 65536))
      (then (if (i32.lt_s (memory.grow (i32.add (i32.shr_u (local.get $len) (i32.const 16)) (i32.const 1))) (i32.const 0))
        (then unreachable))))
    (call $input (i32.const 65536))
    (local.set $c (i32.load8_u (i32.const 65543)))
    ;; "one"
    (if (i32.eq (local.get $c) (i32.const 0x6f)) (then
      (call $output (i32.const 0) (i32.const 5))
      (return (i32.const 0))))
    ;; "echo": the request ends with "inputs" a1 61 78 <x>; find the 6-byte
    ;; marker a1 61 78 after "inputs" and return {"ok": <rest>}
    (if (i32.eq (local.get $c) (i32.const 0x65)) (then
      (return (call $echo (local.get $len)))))
    ;; "trap"
    (if (i32.eq (local.get $c) (i32.const 0x74)) (then unreachable))
    ;; "massive": a real 10 MiB output (over any sane max_output)
    (if (i32.eq (local.get $c) (i32.const 0x6d)) (then
      (if (i32.lt_s (memory.grow (i32.const 160)) (i32.const 0)) (then unreachable))
      (call $output (i32.const 0) (i32.const 10485760))
      (return (i32.const 0))))
    ;; "loop"
    (if (i32.eq (local.get $c) (i32.const 0x6c)) (then (loop $l (br $l))))
    ;; "grow"
    (if (i32.eq (local.get $c) (i32.const 0x67)) (then
      (loop $g (br_if $g (i32.ge_s (memory.grow (i32.const 1)) (i32.const 0))))
      (loop $l (br $l))))
    ;; "badcbor"
    (if (i32.eq (local.get $c) (i32.const 0x62)) (then
      (call $output (i32.const 16) (i32.const 3))
      (return (i32.const 0))))
    ;; "ptr"
    (if (i32.eq (local.get $c) (i32.const 0x70)) (then
      (call $output (i32.const 0x7ffffff0) (i32.const 64))
      (return (i32.const 0))))
    ;; "silent"
    (if (i32.eq (local.get $c) (i32.const 0x73)) (then
      (return (i32.const 0))))
    ;; "flood"
    (if (i32.eq (local.get $c) (i32.const 0x66)) (then
      (loop $f (call $log (i32.const 1) (i32.const 0) (i32.const 65536)) (br $f))))
    ;; "deep"
    (if (i32.eq (local.get $c) (i32.const 0x64)) (then
      (return (call $deep (i32.const 0)))))
    ;; "huge"
    (if (i32.eq (local.get $c) (i32.const 0x68)) (then
      (call $output (i32.const 0) (i32.const 0xc0000000))
      (return (i32.const 0))))
    ;; "xseven"
    (if (i32.eq (local.get $c) (i32.const 0x78)) (then
      (call $output (i32.const 32) (i32.const 6))
      (return (i32.const 0))))
    ;; "words"
    (if (i32.eq (local.get $c) (i32.const 0x77)) (then
      (call $output (i32.const 48) (i32.const 6))
      (return (i32.const 0))))
    ;; "retcode" (anything else)
    (call $output (i32.const 0) (i32.const 5))
    (i32.const 7))

  ;; echo copies the request's last item (the value of the single input "x")
  ;; after a {"ok": head, writing {"ok": x} just before it.
  (func $echo (param $len i32) (result i32)
    (local $i i32) (local $end i32)
    (local.set $end (i32.add (i32.const 65536) (local.get $len)))
    ;; scan for a1 61 78 ("inputs": {"x": ...)
    (local.set $i (i32.const 65536))
    (block $found
      (loop $scan
        (br_if $found (i32.and
          (i32.eq (i32.load8_u (local.get $i)) (i32.const 0xa1))
          (i32.and (i32.eq (i32.load8_u (i32.add (local.get $i) (i32.const 1))) (i32.const 0x61))
                   (i32.eq (i32.load8_u (i32.add (local.get $i) (i32.const 2))) (i32.const 0x78)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $scan (i32.lt_u (local.get $i) (local.get $end)))
        unreachable))
    ;; overwrite a1 61 78 with a1 62 "o" "k": that needs 4 bytes where there
    ;; are 3, so shift the start back one byte (it is the tail of "inputs").
    (local.set $i (i32.sub (local.get $i) (i32.const 1)))
    (i32.store8 (local.get $i) (i32.const 0xa1))
    (i32.store8 (i32.add (local.get $i) (i32.const 1)) (i32.const 0x62))
    (i32.store8 (i32.add (local.get $i) (i32.const 2)) (i32.const 0x6f))
    (i32.store8 (i32.add (local.get $i) (i32.const 3)) (i32.const 0x6b))
    (call $output (local.get $i) (i32.sub (local.get $end) (local.get $i)))
    (i32.const 0))
)
