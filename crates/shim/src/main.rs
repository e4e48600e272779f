//! `containerd-shim-zygote-v1`, runtime type `io.containerd.zygote.v1`.
//!
//! Five modes, one binary:
//! * `-info` (containerd 2.x, before tasks): the runtime info and OCI
//!   features, answered before anything else runs: see [`info`].
//! * `start` / `delete` (containerd's shim protocol, parsed by the
//!   `containerd-shim` crate): see [`shim`].
//! * `__daemon <dir>`: the per-node daemon (`zygote-daemon`).
//! * `__monitor <task dir>`: a per-task monitor (`zygote-monitor`); it is
//!   dispatched before any thread exists, so it stays single-threaded.
//! * `__zygote <json>`: a warm zygote of the daemon's pool, which becomes a
//!   task's monitor when claimed (single-threaded too).

mod info;
mod shim;

use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().skip(1).any(|a| a == "-info" || a == "--info") {
        if let Err(e) = info::main() {
            eprintln!("{}: -info: {e:#}", shim::RUNTIME_ID);
            std::process::exit(1);
        }
        return;
    }
    match args.get(1).map(String::as_str) {
        Some("__monitor") if args.len() == 3 => {
            let _ = std::env::set_current_dir("/");
            init_logging(std::io::stderr);
            std::process::exit(zygote_monitor::run(Path::new(&args[2])));
        }
        Some("__zygote") if args.len() == 3 => {
            let _ = std::env::set_current_dir("/");
            init_logging(std::io::stderr);
            std::process::exit(zygote_monitor::run_zygote(&args[2]));
        }
        Some("__daemon") if args.len() == 3 => std::process::exit(daemon(Path::new(&args[2]))),
        _ => shim::main(),
    }
}

/// Logging for the long-lived modes. A log that cannot be written (its
/// filesystem is full) is skipped, never reported on stderr: a failed
/// `eprintln!` panics, and a monitor must not die of a full disk.
fn init_logging<W>(writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter())
        .log_internal_errors(false)
        .init();
}

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("ZYGOTE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

fn daemon(dir: &Path) -> i32 {
    let dir = zygote_contract::DaemonDir::at(dir);
    let _ = nix::unistd::setsid();
    // Do not pin the directory we were started in (a task's bundle).
    let _ = std::env::set_current_dir("/");
    let _ = std::fs::create_dir_all(dir.path());
    let log = match std::fs::OpenOptions::new().create(true).append(true).open(dir.log()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("zygote daemon: cannot open log in {}: {e}", dir.path().display());
            return 1;
        }
    };
    init_logging(std::sync::Mutex::new(log));
    // Few threads, and idle blocking threads go away quickly: the daemon's
    // footprint should not depend on what it did a minute ago.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start tokio");
            return 1;
        }
    };
    match rt.block_on(zygote_daemon::run(&dir)) {
        Ok(zygote_daemon::Outcome::AlreadyRunning) => {
            tracing::debug!("another daemon holds the lock");
            0
        }
        Ok(zygote_daemon::Outcome::Stopped) => 0,
        Err(e) => {
            tracing::error!(error = %zygote_daemon::chain(&e), "daemon failed");
            1
        }
    }
}
