//! Unix socket addresses that fit whatever the path's length.
//!
//! A `sockaddr_un` holds at most 107 bytes of path. A task's monitor socket
//! lives at `<state root>/<16 hex>/tasks/<id>/monitor.sock`, and CRI ids are
//! 64 hex characters: under `/run/zygote` that is 112 bytes, so binding or
//! connecting by the plain path fails with `ENAMETOOLONG`. Here the socket's
//! directory is opened (`O_PATH`) and the socket named through the
//! process's own descriptor, `/proc/self/fd/<n>/<name>`: at most 40 bytes,
//! whatever the depth of the state dir or the length of the id. The file
//! still appears at its real path, with the directory's permissions.
//!
//! containerd dials the daemon's own socket (`daemon.sock`) by the address
//! `shim start` prints, so that one cannot use this trick; see
//! [`check_dialable`].

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use std::os::unix::fs::OpenOptionsExt;

use nix::sys::socket::UnixAddr;

/// The longest path a `sockaddr_un` can hold (108 bytes with the NUL).
pub const SUN_PATH_MAX: usize = 107;

/// Why a socket address could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    #[error("socket path {path} has no parent directory or file name")]
    NoName { path: PathBuf },
    #[error("open the socket's directory {dir}")]
    OpenDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("socket address for {path}")]
    Addr {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error(
        "socket path {path} is {len} bytes, longer than the {SUN_PATH_MAX} bytes a Unix socket address holds; \
         set {env} to a shorter directory (at most {max_root} bytes)"
    )]
    TooLong {
        path: PathBuf,
        len: usize,
        env: &'static str,
        max_root: usize,
    },
}

/// The address of the socket at `path`, named through a descriptor of its
/// directory. Keep it alive until `bind`/`connect` returned: the name is
/// only valid while the descriptor is open.
#[derive(Debug)]
pub struct ShortAddr {
    _dir: OwnedFd,
    addr: UnixAddr,
}

impl ShortAddr {
    pub fn new(path: &Path) -> Result<ShortAddr, AddrError> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(AddrError::NoName { path: path.into() });
        };
        // O_PATH: a name for the directory, no access to its contents.
        let dir_fd: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(dir)
            .map_err(|source| AddrError::OpenDir {
                dir: dir.into(),
                source,
            })?
            .into();
        let short = Path::new("/proc/self/fd")
            .join(dir_fd.as_raw_fd().to_string())
            .join(name);
        let addr = UnixAddr::new(&short).map_err(|source| AddrError::Addr {
            path: path.into(),
            source,
        })?;
        Ok(ShortAddr { _dir: dir_fd, addr })
    }

    pub fn addr(&self) -> &UnixAddr {
        &self.addr
    }
}

/// Checks that a socket that another program dials by its path (the
/// daemon's `daemon.sock`, dialed by containerd) fits in a socket address;
/// `root` and `env` name the setting that decides its length.
pub fn check_dialable(path: &Path, root: &Path, env: &'static str) -> Result<(), AddrError> {
    let len = path.as_os_str().len();
    if len <= SUN_PATH_MAX {
        return Ok(());
    }
    let below_root = len - root.as_os_str().len();
    Err(AddrError::TooLong {
        path: path.into(),
        len,
        env,
        max_root: SUN_PATH_MAX.saturating_sub(below_root),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{bind, connect, listen, socket, AddressFamily, Backlog, SockFlag, SockType};

    #[test]
    fn binds_and_connects_far_beyond_sun_path() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("d".repeat(120)).join("e".repeat(120));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("monitor.sock");
        assert!(path.as_os_str().len() > 2 * SUN_PATH_MAX);

        let server = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None).unwrap();
        bind(server.as_raw_fd(), ShortAddr::new(&path).unwrap().addr()).unwrap();
        listen(&server, Backlog::new(1).unwrap()).unwrap();
        assert!(path.exists(), "the socket file is at its real path");

        let client = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None).unwrap();
        connect(client.as_raw_fd(), ShortAddr::new(&path).unwrap().addr()).unwrap();
    }

    #[test]
    fn missing_directory_is_named() {
        let e = ShortAddr::new(Path::new("/nonexistent-zygote-dir/monitor.sock")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent-zygote-dir"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn too_long_daemon_socket_names_the_setting() {
        let root = PathBuf::from(format!("/{}", "r".repeat(90)));
        let sock = root.join("0123456789abcdef").join("daemon.sock");
        let e = check_dialable(&sock, &root, "ZYGOTE_STATE_DIR")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ZYGOTE_STATE_DIR") && e.contains("at most 78 bytes"), "{e}");
        assert!(check_dialable(
            Path::new("/run/zygote/0123456789abcdef/daemon.sock"),
            Path::new("/run/zygote"),
            "X"
        )
        .is_ok());
    }
}
