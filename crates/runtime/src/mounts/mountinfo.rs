//! Minimal `/proc/<pid>/mountinfo` parser (see proc(5)), shared with the
//! cgroups module for hierarchy discovery. Works on bytes so mount points
//! that are not UTF-8 survive unchanged.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Unique mount id (field 1).
    pub id: u32,
    /// Parent mount id (field 2).
    pub parent: u32,
    /// Root of the mount inside its filesystem (field 4), unescaped.
    pub root: PathBuf,
    /// Mount point relative to the process root (field 5), unescaped.
    pub mount_point: PathBuf,
    /// Per-mount options (field 6).
    pub mount_options: String,
    /// Filesystem type, e.g. `overlay`, `cgroup`, `cgroup2`.
    pub fstype: String,
    /// Mount source, unescaped (lossily converted to UTF-8).
    pub source: String,
    /// Per-superblock options, e.g. `rw,memory` for a v1 cgroup hierarchy.
    pub super_options: String,
}

/// Parses the whole content of a mountinfo file; malformed lines are skipped
/// (the kernel never produces them, and failing hard here would turn a
/// kernel format extension into an outage).
pub fn parse(text: &[u8]) -> Vec<MountInfo> {
    text.split(|&b| b == b'\n').filter_map(parse_line).collect()
}

/// Parses a single mountinfo line.
pub fn parse_line(line: &[u8]) -> Option<MountInfo> {
    let sep = line.windows(3).position(|w| w == b" - ")?;
    let (pre, post) = (&line[..sep], &line[sep + 3..]);
    let mut pre_fields = pre.split(|&b| b == b' ');
    let id = text(pre_fields.next()?).parse().ok()?;
    let parent = text(pre_fields.next()?).parse().ok()?;
    let _dev = pre_fields.next()?;
    let root = unescape(pre_fields.next()?);
    let mount_point = unescape(pre_fields.next()?);
    let mount_options = text(pre_fields.next()?);
    let mut post_fields = post.split(|&b| b == b' ');
    let fstype = text(post_fields.next()?);
    let source = String::from_utf8_lossy(&unescape(post_fields.next()?)).into_owned();
    let super_options = post_fields.next().map(text).unwrap_or_default();
    Some(MountInfo {
        id,
        parent,
        root: PathBuf::from(OsString::from_vec(root)),
        mount_point: PathBuf::from(OsString::from_vec(mount_point)),
        mount_options,
        fstype,
        source,
        super_options,
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Reads and parses `/proc/self/mountinfo`.
pub fn read_self() -> std::io::Result<Vec<MountInfo>> {
    Ok(parse(&std::fs::read("/proc/self/mountinfo")?))
}

/// Undoes the kernel's octal escaping (`\040` for space, `\011`, `\012`, `\134`).
pub fn unescape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = u32::from(oct[0] - b'0') * 64 + u32::from(oct[1] - b'0') * 8 + u32::from(oct[2] - b'0');
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_with_optional_fields() {
        let text = b"\
22 27 0:21 / /proc rw,relatime - proc proc rw
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:7 master:1 - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
garbage line
90 27 0:50 /sub /mnt/with\\040space rw - overlay overlay rw,lowerdir=/a:/b,upperdir=/u,workdir=/w
91 27 0:51 / /mnt/\xff\xfe rw - tmpfs tmpfs rw
";
        let v = parse(text);
        assert_eq!(v.len(), 5);
        assert_eq!(v[1].mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(v[1].fstype, "cgroup");
        assert_eq!(v[1].super_options, "rw,memory");
        assert_eq!(v[1].parent, 31);
        assert_eq!(v[3].mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(v[3].root, PathBuf::from("/sub"));
        assert_eq!(v[3].source, "overlay");
        assert_eq!(v[3].id, 90);
        assert_eq!(
            v[4].mount_point,
            PathBuf::from(OsString::from_vec(b"/mnt/\xff\xfe".to_vec()))
        );
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(b"a\\040b\\011c\\012d\\134e"), b"a b\tc\nd\\e");
        assert_eq!(unescape(b"trailing\\04"), b"trailing\\04");
        assert_eq!(unescape(b"\\999"), b"\\999");
        assert_eq!(unescape(b"plain"), b"plain");
    }
}
