;; cat.wasm PATH: opens PATH (relative to the preopen "/", fd 3) and copies
;; it to stdout. On failure prints "open failed" to stderr and exits with
;; the WASI errno.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 256) "open failed\n")
  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))
  (func (export "_start")
    (local $path i32) (local $err i32) (local $fd i32)
    (drop (call $args_get (i32.const 1024) (i32.const 8192)))
    (local.set $path (i32.load (i32.const 1028)))
    (local.set $err (call $path_open (i32.const 3) (i32.const 1)
      (local.get $path) (call $strlen (local.get $path))
      (i32.const 0) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 32)))
    (if (local.get $err)
      (then
        (i32.store (i32.const 0) (i32.const 256))
        (i32.store (i32.const 4) (i32.const 12))
        (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
        (call $proc_exit (local.get $err))))
    (local.set $fd (i32.load (i32.const 32)))
    (block $eof
      (loop $copy
        (i32.store (i32.const 0) (i32.const 16384))
        (i32.store (i32.const 4) (i32.const 4096))
        (drop (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 40)))
        (br_if $eof (i32.eqz (i32.load (i32.const 40))))
        (i32.store (i32.const 4) (i32.load (i32.const 40)))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (br $copy)))))
