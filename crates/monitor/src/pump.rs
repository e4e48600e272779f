//! Non-blocking byte pumps driven by the monitor's poll loop.
//!
//! A [`Pump`] moves bytes from one descriptor to another with a bounded
//! buffer: while the buffer is empty it waits for its source to be
//! readable, while it holds data it waits for its destination to be
//! writable (backpressure instead of unbounded memory). End of input (read
//! returning 0, or `EIO` from a pty master whose slave is gone) drains the
//! buffer, then drops the destination so the reader downstream sees EOF.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::PollFlags;

const BUF: usize = 32 * 1024;

/// Sets `O_NONBLOCK` on a descriptor.
pub fn set_nonblocking(fd: &impl AsFd) -> nix::Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    let flags = OFlag::from_bits_truncate(fcntl(raw, FcntlArg::F_GETFL)?);
    fcntl(raw, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

pub struct Pump {
    src: Option<OwnedFd>,
    dst: Option<OwnedFd>,
    buf: Vec<u8>,
    pos: usize,
}

impl Pump {
    /// Both descriptors are switched to non-blocking mode.
    pub fn new(src: OwnedFd, dst: OwnedFd) -> nix::Result<Self> {
        set_nonblocking(&src)?;
        set_nonblocking(&dst)?;
        Ok(Pump {
            src: Some(src),
            dst: Some(dst),
            buf: Vec::with_capacity(BUF),
            pos: 0,
        })
    }

    /// True once all input was copied and the destination closed.
    pub fn done(&self) -> bool {
        self.dst.is_none()
    }

    /// The descriptor and events this pump waits for now.
    pub fn interest(&self) -> Option<(RawFd, PollFlags)> {
        if self.pos < self.buf.len() {
            self.dst.as_ref().map(|d| (d.as_raw_fd(), PollFlags::POLLOUT))
        } else {
            self.src.as_ref().map(|s| (s.as_raw_fd(), PollFlags::POLLIN))
        }
    }

    /// Makes progress without blocking, at most a few buffers' worth, so a
    /// fast producer cannot keep the monitor's loop from its other work.
    pub fn step(&mut self) {
        for _ in 0..8 {
            if self.pos < self.buf.len() {
                let Some(dst) = &self.dst else { return };
                match nix::unistd::write(dst, &self.buf[self.pos..]) {
                    Ok(n) => self.pos += n,
                    Err(Errno::EINTR) => continue,
                    Err(Errno::EAGAIN) => return,
                    Err(_) => {
                        // Reader gone: drop what we have, keep draining the
                        // source so the writer upstream never blocks on us.
                        self.pos = self.buf.len();
                    }
                }
                continue;
            }
            let Some(src) = &self.src else {
                self.dst = None;
                return;
            };
            self.buf.resize(BUF, 0);
            self.pos = 0;
            match nix::unistd::read(src.as_raw_fd(), &mut self.buf) {
                Ok(0) | Err(Errno::EIO) => {
                    self.buf.clear();
                    self.src = None;
                }
                Ok(n) => self.buf.truncate(n),
                Err(Errno::EINTR) => self.buf.clear(),
                Err(Errno::EAGAIN) => {
                    self.buf.clear();
                    return;
                }
                Err(_) => {
                    self.buf.clear();
                    self.src = None;
                }
            }
        }
        // Out of budget: a finished pump must not wait for a poll that has
        // nothing left to watch.
        if self.src.is_none() && self.pos >= self.buf.len() {
            self.dst = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_until_eof_then_closes_destination() {
        let (r1, w1) = nix::unistd::pipe().unwrap();
        let (r2, w2) = nix::unistd::pipe().unwrap();
        let mut p = Pump::new(r1, w2).unwrap();
        nix::unistd::write(&w1, b"hello").unwrap();
        drop(w1);
        for _ in 0..4 {
            p.step();
        }
        assert!(p.done());
        let mut out = [0u8; 16];
        let n = nix::unistd::read(r2.as_raw_fd(), &mut out).unwrap();
        assert_eq!(&out[..n], b"hello");
        assert_eq!(nix::unistd::read(r2.as_raw_fd(), &mut out).unwrap(), 0);
    }
}
