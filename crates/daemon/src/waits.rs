//! `Wait` requests that outlive a daemon.
//!
//! A `Wait` stays pending in the daemon for as long as the process runs. If
//! the daemon is killed meanwhile, containerd's connection stays open (the
//! task's monitor holds it, see [`crate::adopt`]) but the request is gone
//! with the daemon, and a foreground `ctr run` would never return. So each
//! pending `Wait` is written down (`TaskDir::waits`: which
//! connection, which ttrpc stream, which process) until it is answered; a
//! restarted daemon answers the ones it finds once their process has
//! stopped, writing the ttrpc response frame for that stream straight onto
//! containerd's connection, between the frames of its own replies.
//!
//! Connections are named by the inode of containerd's socket. A connection
//! a restarted daemon serves through a proxy reaches the ttrpc server from a
//! local socket bound to an abstract name carrying that inode
//! ([`proxy_name`]), so a `Wait` arriving through it is recorded under
//! containerd's connection, not the proxy's.

use std::os::fd::RawFd;
use zygote_contract::TaskDir;

use containerd_shim_protos::api::WaitResponse;
use containerd_shim_protos::protobuf::Message as _;
use containerd_shim_protos::ttrpc;
use serde::{Deserialize, Serialize};

/// One `Wait` containerd is waiting on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingWait {
    /// Inode of containerd's connection.
    pub(crate) conn: u64,
    /// The request's ttrpc stream.
    pub(crate) stream: u32,
    /// `""` for the init process.
    pub(crate) exec_id: String,
}

/// Reads the pending waits of the task in `dir` (none if absent or unreadable).
pub(crate) fn load(dir: &TaskDir) -> Vec<PendingWait> {
    zygote_contract::state::read(&dir.waits()).unwrap_or_default()
}

/// Writes the pending waits of the task in `dir` (removes the file when empty).
pub(crate) fn save(dir: &TaskDir, waits: &[PendingWait]) {
    let path = dir.waits();
    let r = if waits.is_empty() {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
            _ => Ok(()),
        }
    } else {
        zygote_contract::state::write_atomic(&path, &waits).map_err(|e| zygote_contract::proto::error_chain(&e))
    };
    if let Err(e) = r {
        tracing::warn!(path = %path.display(), error = %e, "cannot record pending waits");
    }
}

/// The abstract socket name a proxy's local end is bound to: the daemon's
/// pid (names are per network namespace, shared with other daemons), a
/// sequence number, and the inode of containerd's connection it serves.
pub(crate) fn proxy_name(conn: u64, seq: u64) -> String {
    format!("zygote-proxy/{}/{seq}/{conn}", std::process::id())
}

/// The inode of containerd's connection behind the ttrpc connection `fd`:
/// its own, or, when it is one of our proxies, the one in its name.
pub(crate) fn connection_id(fd: RawFd) -> Option<u64> {
    use nix::sys::socket::{getpeername, UnixAddr};
    if let Ok(peer) = getpeername::<UnixAddr>(fd) {
        if let Some(name) = peer.as_abstract() {
            let name = String::from_utf8_lossy(name);
            let prefix = format!("zygote-proxy/{}/", std::process::id());
            if let Some(rest) = name.strip_prefix(&prefix) {
                return rest.rsplit('/').next().and_then(|ino| ino.parse().ok());
            }
        }
    }
    nix::sys::stat::fstat(fd).ok().map(|st| st.st_ino)
}

/// True when `fd` is the local end of one of our own proxies.
pub(crate) fn is_proxied(fd: RawFd) -> bool {
    use nix::sys::socket::{getpeername, UnixAddr};
    getpeername::<UnixAddr>(fd)
        .ok()
        .and_then(|peer| {
            peer.as_abstract()
                .map(|n| n.starts_with(format!("zygote-proxy/{}/", std::process::id()).as_bytes()))
        })
        .unwrap_or(false)
}

/// The complete ttrpc frame answering stream `stream` with `resp`.
pub(crate) fn response_frame(stream: u32, resp: &WaitResponse) -> Result<Vec<u8>, String> {
    let mut r = ttrpc::Response::new();
    r.payload = resp.write_to_bytes().map_err(|e| e.to_string())?;
    let mut status = ttrpc::Status::new();
    status.code = ttrpc::Code::OK.into();
    r.status = Some(status).into();
    let body = r.write_to_bytes().map_err(|e| e.to_string())?;
    let mut frame: Vec<u8> = ttrpc::MessageHeader::new_response(stream, body.len() as u32).into();
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Length of the first complete ttrpc frame in `buf`, if there is one.
pub(crate) fn complete_frame(buf: &[u8]) -> Option<usize> {
    const HEADER: usize = 10;
    if buf.len() < HEADER {
        return None;
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    (buf.len() >= HEADER + len).then_some(HEADER + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_at_their_boundaries() {
        let resp = WaitResponse {
            exit_status: 7,
            ..Default::default()
        };
        let a = response_frame(5, &resp).unwrap();
        let b = response_frame(7, &resp).unwrap();
        let mut buf = a.clone();
        buf.extend_from_slice(&b[..4]);
        assert_eq!(complete_frame(&buf), Some(a.len()));
        assert_eq!(complete_frame(&buf[a.len()..]), None);
        let header = ttrpc::MessageHeader::from(&a[..10]);
        assert_eq!(
            (header.stream_id, header.type_, header.length as usize),
            (5, 2, a.len() - 10)
        );
        let r = ttrpc::Response::parse_from_bytes(&a[10..]).unwrap();
        assert_eq!(WaitResponse::parse_from_bytes(&r.payload).unwrap().exit_status, 7);
    }

    #[test]
    fn waits_round_trip_and_vanish_when_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = TaskDir::at(tmp.path());
        assert!(load(&dir).is_empty());
        let w = vec![PendingWait {
            conn: 42,
            stream: 9,
            exec_id: String::new(),
        }];
        save(&dir, &w);
        assert_eq!(load(&dir), w);
        save(&dir, &[]);
        assert!(!dir.waits().exists());
    }

    #[test]
    fn proxy_names_carry_the_connection() {
        let name = proxy_name(123456, 3);
        assert!(name.ends_with("/3/123456"), "{name}");
    }
}
