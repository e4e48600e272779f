//! Where the daemon is: the same derivation as `containerd-shim-zygote-v1
//! start` (crates/shim/src/shim.rs). containerd gives its shims
//! `TTRPC_ADDRESS`, its gRPC address plus `.ttrpc`; the daemon's directory is
//! `$ZYGOTE_STATE_DIR` (default `/run/zygote`) joined with a hash of that
//! address (`zygote_contract::DaemonDir::for_containerd`), and its control
//! socket is `ctl.sock` there. Every part can be given by a flag.

use std::path::PathBuf;

use zygote_contract::DaemonDir;

/// containerd's default gRPC socket (as `ctr`'s `--address`).
pub(crate) const DEFAULT_ADDRESS: &str = "/run/containerd/containerd.sock";

/// How the daemon was looked for (said in the "no daemon" message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub(crate) dir: DaemonDir,
    /// `None` when the directory was given with `--daemon-dir`.
    pub(crate) ttrpc_address: Option<String>,
    pub(crate) state_root: Option<PathBuf>,
}

/// The daemon directory from the flags: `daemon_dir` wins; else the state
/// root (`state_dir`, else `$ZYGOTE_STATE_DIR` or `/run/zygote` as the shim
/// reads it) and containerd's ttrpc address (`ttrpc_address`, else
/// `address` + `.ttrpc`, as containerd derives it).
pub(crate) fn locate(
    daemon_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    address: &str,
    ttrpc_address: Option<String>,
) -> Located {
    if let Some(d) = daemon_dir {
        return Located {
            dir: DaemonDir::at(d),
            ttrpc_address: None,
            state_root: None,
        };
    }
    let root = match state_dir {
        Some(d) if d.is_absolute() => d,
        Some(d) => std::env::current_dir().map(|c| c.join(&d)).unwrap_or(d),
        None => zygote_contract::layout::state_root(),
    };
    let ttrpc = ttrpc_address.unwrap_or_else(|| {
        let grpc = address.strip_prefix("unix://").unwrap_or(address);
        format!("{grpc}.ttrpc")
    });
    Located {
        dir: DaemonDir::for_containerd(&root, &ttrpc),
        ttrpc_address: Some(ttrpc),
        state_root: Some(root),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn same_directory_as_the_shim() {
        let l = locate(None, Some("/s".into()), "/x/containerd.sock", None);
        assert_eq!(
            l.dir,
            DaemonDir::for_containerd(Path::new("/s"), "/x/containerd.sock.ttrpc")
        );
        let u = locate(None, Some("/s".into()), "unix:///x/containerd.sock", None);
        assert_eq!(u.dir, l.dir);
        let t = locate(
            None,
            Some("/s".into()),
            "ignored",
            Some("/x/containerd.sock.ttrpc".into()),
        );
        assert_eq!(t.dir, l.dir);
        let d = locate(Some("/d/0123".into()), Some("/s".into()), "a", None);
        assert_eq!(d.dir.path(), Path::new("/d/0123"));
    }
}
