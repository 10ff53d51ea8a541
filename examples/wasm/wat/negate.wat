;; negate: a pirn knot written by hand in WebAssembly text, with nothing
;; between it and the ABI (docs/abi.md). negate(x: int) -> int returns -x.
;;
;; The module exports memory, pirn_abi_version, pirn_manifest and
;; pirn_invoke, and imports pirn.input, pirn.output and pirn.log. Its
;; manifest and its two error responses are constant CBOR in data
;; segments; the request is walked with a small CBOR reader ($head,
;; $skip), and the response {"ok": -x} is encoded in place.
;;
;; Build (make wasm does this): wat2wasm negate.wat -o negate.wasm
(module
  (import "pirn" "input" (func $input (param i32)))
  (import "pirn" "output" (func $output (param i32 i32)))
  (import "pirn" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)

  ;; The manifest, 144 bytes:
  ;; {"abi": 1, "name": "negate", "knots": [{"name": "negate", "doc": "...",
  ;;   "inputs": [{"name": "x", "type": "int", "doc": "the operand"}], "output": "int"}]}
  (data (i32.const 0) "\a3cabi\01dnamefnegateeknots\81\a4cdocx0Returns -x. Written by hand in WebAssembly text.dnamefnegatefinputs\81\a3cdockthe operanddnameaxdtypecintfoutputcint")
  ;; {"err": {"type": "InputError", "message": "input x is missing or not an int"}}, 64 bytes.
  ;; The host checks x against the manifest's type before the call, so
  ;; only a pipeline with validate_io: false can reach this.
  (data (i32.const 256) "\a1cerr\a2dtypejInputErrorgmessagex input x is missing or not an int")
  ;; {"err": {"type": "ValueError", "message": "-x overflows int64"}}, 49 bytes.
  (data (i32.const 384) "\a1cerr\a2dtypejValueErrorgmessager-x overflows int64")
  ;; A debug log line, 8 bytes.
  (data (i32.const 448) "negating")

  ;; The response is built at $out; the request is copied to $req.
  (global $out i32 (i32.const 512))
  (global $req i32 (i32.const 1024))
  ;; The reader's cursor, and the major type of the last head read.
  (global $p (mut i32) (i32.const 0))
  (global $major (mut i32) (i32.const 0))

  (func (export "pirn_abi_version") (result i32) (i32.const 1))

  (func (export "pirn_manifest") (result i32)
    (call $output (i32.const 0) (i32.const 144))
    (i32.const 0))

  ;; $head reads the CBOR head at $p: it sets $major and returns the
  ;; argument (for floats, their bits). Requests are always canonical
  ;; with definite lengths, so anything else traps.
  (func $head (result i64)
    (local $b i32) (local $ai i32) (local $n i32) (local $v i64)
    (local.set $b (i32.load8_u (global.get $p)))
    (global.set $p (i32.add (global.get $p) (i32.const 1)))
    (global.set $major (i32.shr_u (local.get $b) (i32.const 5)))
    (local.set $ai (i32.and (local.get $b) (i32.const 31)))
    (if (i32.lt_u (local.get $ai) (i32.const 24))
      (then (return (i64.extend_i32_u (local.get $ai)))))
    (if (i32.gt_u (local.get $ai) (i32.const 27)) (then unreachable))
    ;; 24, 25, 26, 27: 1, 2, 4, 8 big-endian bytes follow
    (local.set $n (i32.shl (i32.const 1) (i32.sub (local.get $ai) (i32.const 24))))
    (loop $bytes
      (local.set $v (i64.or (i64.shl (local.get $v) (i64.const 8))
                            (i64.load8_u (global.get $p))))
      (global.set $p (i32.add (global.get $p) (i32.const 1)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $bytes (local.get $n)))
    (local.get $v))

  ;; $skip moves $p past one value.
  (func $skip
    (local $n i64) (local $major i32)
    (local.set $n (call $head))
    (local.set $major (global.get $major))
    ;; byte and text strings: skip their content
    (if (i32.or (i32.eq (local.get $major) (i32.const 2)) (i32.eq (local.get $major) (i32.const 3)))
      (then (global.set $p (i32.add (global.get $p) (i32.wrap_i64 (local.get $n)))) (return)))
    ;; maps: twice as many values as entries
    (if (i32.eq (local.get $major) (i32.const 5))
      (then (local.set $n (i64.shl (local.get $n) (i64.const 1)))))
    (if (i32.or (i32.eq (local.get $major) (i32.const 4)) (i32.eq (local.get $major) (i32.const 5)))
      (then
        (block $done
          (loop $items
            (br_if $done (i64.eqz (local.get $n)))
            (call $skip)
            (local.set $n (i64.sub (local.get $n) (i64.const 1)))
            (br $items)))
        (return)))
    ;; tags are not in the data model
    (if (i32.eq (local.get $major) (i32.const 6)) (then unreachable)))
    ;; ints and simple values/floats are their head alone

  ;; $is6 reports whether the 6 bytes at $p spell "inputs" or "config".
  (func $is6 (result i32)
    (local $w i32)
    (local.set $w (i32.load align=1 (global.get $p)))
    (i32.or
      (i32.and (i32.eq (local.get $w) (i32.const 0x75706e69))                 ;; "inpu"
               (i32.eq (i32.load16_u offset=4 align=1 (global.get $p)) (i32.const 0x7374)))  ;; "ts"
      (i32.and (i32.eq (local.get $w) (i32.const 0x666e6f63))                 ;; "conf"
               (i32.eq (i32.load16_u offset=4 align=1 (global.get $p)) (i32.const 0x6769)))))  ;; "ig"

  ;; $findX walks the request's inputs and config maps and leaves $p at
  ;; the value of "x"; it returns 0 if there is none.
  (func $findX (result i32)
    (local $top i64) (local $n i64) (local $klen i64)
    (local.set $top (call $head)) ;; the request map
    (block $none
      (loop $keys
        (br_if $none (i64.eqz (local.get $top)))
        (local.set $top (i64.sub (local.get $top) (i64.const 1)))
        (local.set $klen (call $head)) ;; a text key
        (if (i32.and (i64.eq (local.get $klen) (i64.const 6)) (call $is6))
          (then
            (global.set $p (i32.add (global.get $p) (i32.const 6)))
            (local.set $n (call $head)) ;; the inputs or config map
            (block $next
              (loop $entries
                (br_if $next (i64.eqz (local.get $n)))
                (local.set $n (i64.sub (local.get $n) (i64.const 1)))
                (local.set $klen (call $head))
                (if (i32.and (i64.eq (local.get $klen) (i64.const 1))
                             (i32.eq (i32.load8_u (global.get $p)) (i32.const 0x78))) ;; "x"
                  (then (global.set $p (i32.add (global.get $p) (i32.const 1))) (return (i32.const 1))))
                (global.set $p (i32.add (global.get $p) (i32.wrap_i64 (local.get $klen))))
                (call $skip)
                (br $entries))))
          (else
            (global.set $p (i32.add (global.get $p) (i32.wrap_i64 (local.get $klen))))
            (call $skip)))
        (br $keys)))
    (i32.const 0))

  (func (export "pirn_invoke") (param $len i32) (result i32)
    (local $arg i64) (local $x i64) (local $neg i64) (local $q i32) (local $n i32)
    ;; make room for the request after $req
    (if (i32.gt_u (i32.add (local.get $len) (global.get $req)) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.lt_s (memory.grow (i32.add (i32.shr_u (local.get $len) (i32.const 16)) (i32.const 1))) (i32.const 0))
        (then unreachable))))
    (call $input (global.get $req))
    (call $log (i32.const 0) (i32.const 448) (i32.const 8))
    (global.set $p (global.get $req))
    (if (i32.eqz (call $findX))
      (then (call $output (i32.const 256) (i32.const 64)) (return (i32.const 0))))
    (local.set $arg (call $head))
    (if (i32.gt_u (global.get $major) (i32.const 1))
      (then (call $output (i32.const 256) (i32.const 64)) (return (i32.const 0))))
    ;; major 0 is arg, major 1 is -1 - arg; the host sends only int64s
    (if (i32.eqz (global.get $major))
      (then (local.set $x (local.get $arg)))
      (else (local.set $x (i64.sub (i64.const -1) (local.get $arg)))))
    (if (i64.eq (local.get $x) (i64.const 0x8000000000000000))
      (then (call $output (i32.const 384) (i32.const 49)) (return (i32.const 0))))
    (local.set $neg (i64.sub (i64.const 0) (local.get $x)))
    ;; {"ok": -x}: a1 62 "ok", then the head of -x in its shortest form
    (i32.store (global.get $out) (i32.const 0x6b6f62a1))
    (if (i64.ge_s (local.get $neg) (i64.const 0))
      (then (local.set $arg (local.get $neg)) (local.set $q (i32.const 0x00)))
      (else (local.set $arg (i64.sub (i64.const -1) (local.get $neg))) (local.set $q (i32.const 0x20))))
    ;; $n: how many argument bytes (0, 1, 2, 4 or 8)
    (if (i64.lt_u (local.get $arg) (i64.const 24))
      (then
        (i32.store8 offset=4 (global.get $out) (i32.or (local.get $q) (i32.wrap_i64 (local.get $arg))))
        (call $output (global.get $out) (i32.const 5))
        (return (i32.const 0))))
    (local.set $n (i32.const 8))
    (if (i64.le_u (local.get $arg) (i64.const 0xffffffff)) (then (local.set $n (i32.const 4))))
    (if (i64.le_u (local.get $arg) (i64.const 0xffff)) (then (local.set $n (i32.const 2))))
    (if (i64.le_u (local.get $arg) (i64.const 0xff)) (then (local.set $n (i32.const 1))))
    ;; additional info 24 + log2(n)
    (i32.store8 offset=4 (global.get $out)
      (i32.or (local.get $q) (i32.add (i32.const 24) (i32.ctz (local.get $n)))))
    ;; big-endian argument bytes at out+5 .. out+5+n
    (local.set $q (i32.add (global.get $out) (i32.add (i32.const 4) (local.get $n))))
    (loop $bytes
      (i64.store8 (local.get $q) (local.get $arg))
      (local.set $arg (i64.shr_u (local.get $arg) (i64.const 8)))
      (local.set $q (i32.sub (local.get $q) (i32.const 1)))
      (br_if $bytes (i32.gt_u (local.get $q) (i32.add (global.get $out) (i32.const 4)))))
    (call $output (global.get $out) (i32.add (i32.const 5) (local.get $n)))
    (i32.const 0))
)
