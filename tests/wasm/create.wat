;; create.wasm PATH: creates PATH (relative to the preopen "/", fd 3) and
;; writes "written\n" into it. Prints "created" or "denied" and exits 0 or
;; with the WASI errno.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 256) "created\n")
  (data (i32.const 272) "denied\n")
  (data (i32.const 288) "written\n")
  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))
  (func $say (param $fd i32) (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (local $path i32) (local $err i32)
    (drop (call $args_get (i32.const 1024) (i32.const 8192)))
    (local.set $path (i32.load (i32.const 1028)))
    ;; oflags: CREAT|TRUNC = 1|8; rights: all.
    (local.set $err (call $path_open (i32.const 3) (i32.const 0)
      (local.get $path) (call $strlen (local.get $path))
      (i32.const 9) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 32)))
    (if (local.get $err)
      (then
        (call $say (i32.const 1) (i32.const 272) (i32.const 7))
        (call $proc_exit (local.get $err))))
    (call $say (i32.load (i32.const 32)) (i32.const 288) (i32.const 8))
    (call $say (i32.const 1) (i32.const 256) (i32.const 8))))
