;; meter: code shapes that run without end, for the metering of
;; host/meter.go. Plain exports, not a pirn knot: the tests call them
;; directly. Each must be stopped by its timeout.
;;
;; Build (make wasm does this): wat2wasm --debug-names meter.wat -o meter.wasm
(module
  (memory (export "memory") 1)
  (global $n (mut i64) (i64.const 0))

  ;; spin: a loop without end.
  (func (export "spin")
    (loop $l (br $l)))

  ;; tree: 2^60 calls and no loop; wazero's own loop checks never fire.
  (func $tree (param $d i32)
    (if (local.get $d) (then
      (call $tree (i32.sub (local.get $d) (i32.const 1)))
      (call $tree (i32.sub (local.get $d) (i32.const 1))))))
  (func (export "tree") (call $tree (i32.const 60)))

  ;; count: counts to $k in a loop, then returns it (a guest that ends).
  (func (export "count") (param $k i64) (result i64)
    (global.set $n (i64.const 0))
    (block $done
      (loop $l
        (br_if $done (i64.ge_u (global.get $n) (local.get $k)))
        (global.set $n (i64.add (global.get $n) (i64.const 1)))
        (br $l)))
    (global.get $n))

  ;; indirect: reaches $tree through a table (element segment renumbered).
  (table 1 funcref)
  (elem (i32.const 0) $tree)
  (type $t (func (param i32)))
  (func (export "indirect")
    (call_indirect (type $t) (i32.const 60) (i32.const 0)))
)
