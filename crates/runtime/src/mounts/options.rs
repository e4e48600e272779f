//! Mount option strings (`ro`, `rbind`, `rprivate`, `rro`, `size=64m`, ...)
//! split into `MS_*` flags, propagation changes, recursive mount attributes
//! and filesystem data. Used for containerd's rootfs mounts and for the
//! spec's `mounts[].options`, which share the vocabulary.

use nix::mount::MsFlags;

/// Fully parsed mount options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount(2) call itself, after applying every option in
    /// order (`ro` sets `MS_RDONLY`, a later `rw` clears it again).
    /// Never contains propagation bits.
    pub flags: MsFlags,
    /// Propagation changes in the order given, each a separate mount(2)
    /// call; the `r*` forms carry `MS_REC`.
    pub propagation: Vec<MsFlags>,
    /// Everything that is not a flag, comma-joined (e.g. `size=64m,mode=755`
    /// or overlay's `lowerdir=...`), passed as mount(2) data.
    pub data: String,
    /// `MOUNT_ATTR_*` bits to set recursively with mount_setattr(2)
    /// (`rro`, `rnosuid`, `rnoexec`, ...).
    pub attr_set: u64,
    /// `MOUNT_ATTR_*` bits to clear recursively (`rrw`, `rsuid`, ...).
    pub attr_clr: u64,
    /// `tmpcopyup` was given: copy the underlying directory's content into a
    /// freshly mounted tmpfs (implemented by the caller).
    pub tmpcopyup: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
            attr_set: 0,
            attr_clr: 0,
            tmpcopyup: false,
        }
    }
}

impl MountOptions {
    /// True if any recursive attribute change was requested.
    pub fn has_recursive_attrs(&self) -> bool {
        self.attr_set != 0 || self.attr_clr != 0
    }
}

enum Opt {
    Set(MsFlags),
    Clear(MsFlags),
    Propagation(MsFlags),
    /// (set, clear) `MOUNT_ATTR_*` bits.
    Attr(u64, u64),
    TmpCopyUp,
    Ignore,
}

fn lookup(name: &str) -> Option<Opt> {
    use Opt::*;
    let nosymfollow = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);
    Some(match name {
        "defaults" => Ignore,
        "ro" => Set(MsFlags::MS_RDONLY),
        "rw" => Clear(MsFlags::MS_RDONLY),
        "nosuid" => Set(MsFlags::MS_NOSUID),
        "suid" => Clear(MsFlags::MS_NOSUID),
        "nodev" => Set(MsFlags::MS_NODEV),
        "dev" => Clear(MsFlags::MS_NODEV),
        "noexec" => Set(MsFlags::MS_NOEXEC),
        "exec" => Clear(MsFlags::MS_NOEXEC),
        "sync" => Set(MsFlags::MS_SYNCHRONOUS),
        "async" => Clear(MsFlags::MS_SYNCHRONOUS),
        "dirsync" => Set(MsFlags::MS_DIRSYNC),
        "remount" => Set(MsFlags::MS_REMOUNT),
        "mand" => Set(MsFlags::MS_MANDLOCK),
        "nomand" => Clear(MsFlags::MS_MANDLOCK),
        "noatime" => Set(MsFlags::MS_NOATIME),
        "atime" => Clear(MsFlags::MS_NOATIME),
        "nodiratime" => Set(MsFlags::MS_NODIRATIME),
        "diratime" => Clear(MsFlags::MS_NODIRATIME),
        "relatime" => Set(MsFlags::MS_RELATIME),
        "norelatime" => Clear(MsFlags::MS_RELATIME),
        "strictatime" => Set(MsFlags::MS_STRICTATIME),
        "nostrictatime" => Clear(MsFlags::MS_STRICTATIME),
        "lazytime" => Set(MsFlags::MS_LAZYTIME),
        "nolazytime" => Clear(MsFlags::MS_LAZYTIME),
        "iversion" => Set(MsFlags::MS_I_VERSION),
        "noiversion" => Clear(MsFlags::MS_I_VERSION),
        "acl" => Set(MsFlags::MS_POSIXACL),
        "noacl" => Clear(MsFlags::MS_POSIXACL),
        "silent" => Set(MsFlags::MS_SILENT),
        "loud" => Clear(MsFlags::MS_SILENT),
        "nosymfollow" => Set(nosymfollow),
        "symfollow" => Clear(nosymfollow),
        "bind" => Set(MsFlags::MS_BIND),
        "rbind" => Set(MsFlags::MS_BIND | MsFlags::MS_REC),
        "private" => Propagation(MsFlags::MS_PRIVATE),
        "rprivate" => Propagation(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
        "shared" => Propagation(MsFlags::MS_SHARED),
        "rshared" => Propagation(MsFlags::MS_SHARED | MsFlags::MS_REC),
        "slave" => Propagation(MsFlags::MS_SLAVE),
        "rslave" => Propagation(MsFlags::MS_SLAVE | MsFlags::MS_REC),
        "unbindable" => Propagation(MsFlags::MS_UNBINDABLE),
        "runbindable" => Propagation(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
        "rro" => Attr(libc::MOUNT_ATTR_RDONLY, 0),
        "rrw" => Attr(0, libc::MOUNT_ATTR_RDONLY),
        "rnosuid" => Attr(libc::MOUNT_ATTR_NOSUID, 0),
        "rsuid" => Attr(0, libc::MOUNT_ATTR_NOSUID),
        "rnodev" => Attr(libc::MOUNT_ATTR_NODEV, 0),
        "rdev" => Attr(0, libc::MOUNT_ATTR_NODEV),
        "rnoexec" => Attr(libc::MOUNT_ATTR_NOEXEC, 0),
        "rexec" => Attr(0, libc::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => Attr(libc::MOUNT_ATTR_NODIRATIME, 0),
        "rdiratime" => Attr(0, libc::MOUNT_ATTR_NODIRATIME),
        "rrelatime" => Attr(libc::MOUNT_ATTR_RELATIME, libc::MOUNT_ATTR__ATIME),
        "rnoatime" => Attr(libc::MOUNT_ATTR_NOATIME, libc::MOUNT_ATTR__ATIME),
        "rstrictatime" => Attr(libc::MOUNT_ATTR_STRICTATIME, libc::MOUNT_ATTR__ATIME),
        "rnosymfollow" => Attr(libc::MOUNT_ATTR_NOSYMFOLLOW, 0),
        "rsymfollow" => Attr(0, libc::MOUNT_ATTR_NOSYMFOLLOW),
        "tmpcopyup" => TmpCopyUp,
        _ => return None,
    })
}

/// Parses options into [`MountOptions`], keeping everything: propagation in
/// order, recursive attributes (`rro`, ...) and `tmpcopyup`.
pub fn parse_mount_options_ext(opts: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data: Vec<&str> = Vec::new();
    for opt in opts {
        match lookup(opt) {
            Some(Opt::Set(f)) => out.flags.insert(f),
            Some(Opt::Clear(f)) => out.flags.remove(f),
            Some(Opt::Propagation(p)) => out.propagation.push(p),
            Some(Opt::Attr(set, clr)) => {
                out.attr_set = (out.attr_set & !clr) | set;
                out.attr_clr = (out.attr_clr & !set) | clr;
            }
            Some(Opt::TmpCopyUp) => out.tmpcopyup = true,
            Some(Opt::Ignore) => {}
            None if opt.is_empty() => {}
            None => data.push(opt),
        }
    }
    out.data = data.join(",");
    out
}

/// Splits mount options into `(flags, propagation, data)`.
///
/// `flags` are the `MS_*` flags for the mount call (no propagation bits);
/// `propagation` is the union of the requested propagation flags (apply it in
/// a separate `mount(NULL, target, NULL, propagation, NULL)` call; if several
/// propagation options are given, use [`parse_mount_options_ext`] to get them
/// in order, since the kernel accepts only one type per call); `data` is every
/// other option comma-joined (`size=`, `mode=`, `lowerdir=`, ...).
///
/// This tuple form cannot express recursive attributes, so the recursive
/// `r*` options (`rro`, `rnosuid`, ...) are approximated by their
/// non-recursive flag (`rro` -> `MS_RDONLY`: the mount itself becomes
/// read-only, sub-mounts do not); `tmpcopyup` is dropped. Use
/// [`parse_mount_options_ext`] for exact semantics.
pub fn parse_mount_options(opts: &[String]) -> (MsFlags, MsFlags, String) {
    let ext = parse_mount_options_ext(opts);
    let mut flags = ext.flags;
    let attr_to_flag = [
        (libc::MOUNT_ATTR_RDONLY, MsFlags::MS_RDONLY),
        (libc::MOUNT_ATTR_NOSUID, MsFlags::MS_NOSUID),
        (libc::MOUNT_ATTR_NODEV, MsFlags::MS_NODEV),
        (libc::MOUNT_ATTR_NOEXEC, MsFlags::MS_NOEXEC),
        (libc::MOUNT_ATTR_NODIRATIME, MsFlags::MS_NODIRATIME),
        (libc::MOUNT_ATTR_NOATIME, MsFlags::MS_NOATIME),
        (libc::MOUNT_ATTR_STRICTATIME, MsFlags::MS_STRICTATIME),
        (
            libc::MOUNT_ATTR_NOSYMFOLLOW,
            MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
        ),
    ];
    // Clears first, then sets: `rnoatime` clears the whole atime field and
    // sets NOATIME.
    for (attr, flag) in attr_to_flag {
        if ext.attr_clr & attr != 0 {
            flags.remove(flag);
        }
    }
    for (attr, flag) in attr_to_flag {
        if ext.attr_set & attr != 0 {
            flags.insert(flag);
        }
    }
    if ext.attr_clr & libc::MOUNT_ATTR__ATIME == libc::MOUNT_ATTR__ATIME
        && ext.attr_set & libc::MOUNT_ATTR__ATIME == libc::MOUNT_ATTR_RELATIME
    {
        flags.insert(MsFlags::MS_RELATIME);
    }
    let propagation = ext.propagation.iter().fold(MsFlags::empty(), |acc, p| acc | *p);
    (flags, propagation, ext.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn overlay_options_become_data() {
        let (flags, prop, data) =
            parse_mount_options(&s(&["index=off", "workdir=/w", "upperdir=/u", "lowerdir=/a:/b"]));
        assert!(flags.is_empty());
        assert!(prop.is_empty());
        assert_eq!(data, "index=off,workdir=/w,upperdir=/u,lowerdir=/a:/b");
    }

    #[test]
    fn bind_ro() {
        let (flags, prop, data) = parse_mount_options(&s(&["rbind", "ro"]));
        assert_eq!(flags, MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY);
        assert!(prop.is_empty());
        assert_eq!(data, "");
        let (flags, _, _) = parse_mount_options(&s(&["bind"]));
        assert_eq!(flags, MsFlags::MS_BIND);
    }

    #[test]
    fn later_options_override_earlier() {
        let (flags, _, _) = parse_mount_options(&s(&["ro", "nosuid", "rw", "suid", "noexec"]));
        assert_eq!(flags, MsFlags::MS_NOEXEC);
        let (flags, _, _) = parse_mount_options(&s(&["nodev", "dev", "nodev", "sync", "async"]));
        assert_eq!(flags, MsFlags::MS_NODEV);
    }

    #[test]
    fn atime_family_and_misc() {
        let (flags, _, data) = parse_mount_options(&s(&[
            "relatime",
            "noatime",
            "nodiratime",
            "strictatime",
            "remount",
            "defaults",
            "",
            "mode=755",
            "size=65536k",
        ]));
        assert_eq!(
            flags,
            MsFlags::MS_RELATIME
                | MsFlags::MS_NOATIME
                | MsFlags::MS_NODIRATIME
                | MsFlags::MS_STRICTATIME
                | MsFlags::MS_REMOUNT
        );
        assert_eq!(data, "mode=755,size=65536k");
    }

    #[test]
    fn propagation_is_separate() {
        let (flags, prop, _) = parse_mount_options(&s(&["rbind", "rprivate"]));
        assert_eq!(flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(prop, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        let ext = parse_mount_options_ext(&s(&["rslave", "shared", "unbindable", "runbindable"]));
        assert_eq!(
            ext.propagation,
            vec![
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                MsFlags::MS_SHARED,
                MsFlags::MS_UNBINDABLE,
                MsFlags::MS_UNBINDABLE | MsFlags::MS_REC
            ]
        );
        assert!(ext.flags.is_empty());
        let (_, prop, _) = parse_mount_options(&s(&["private", "slave"]));
        assert_eq!(prop, MsFlags::MS_PRIVATE | MsFlags::MS_SLAVE);
    }

    #[test]
    fn recursive_attrs() {
        let ext = parse_mount_options_ext(&s(&["rbind", "rro", "rnosuid", "rnoexec", "tmpcopyup", "mode=1777"]));
        assert_eq!(
            ext.attr_set,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOEXEC
        );
        assert_eq!(ext.attr_clr, 0);
        assert!(ext.tmpcopyup);
        assert!(ext.has_recursive_attrs());
        assert_eq!(ext.data, "mode=1777");
        // A later rrw cancels rro.
        let ext = parse_mount_options_ext(&s(&["rro", "rrw"]));
        assert_eq!(ext.attr_set, 0);
        assert_eq!(ext.attr_clr, libc::MOUNT_ATTR_RDONLY);
        let ext = parse_mount_options_ext(&s(&["rnoatime"]));
        assert_eq!(ext.attr_set, libc::MOUNT_ATTR_NOATIME);
        assert_eq!(ext.attr_clr, libc::MOUNT_ATTR__ATIME);
    }

    #[test]
    fn tuple_form_approximates_recursive_attrs() {
        let (flags, _, data) = parse_mount_options(&s(&["rbind", "rro", "tmpcopyup"]));
        assert_eq!(flags, MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY);
        assert_eq!(data, "");
        let (flags, _, _) = parse_mount_options(&s(&["ro", "rrw"]));
        assert_eq!(flags, MsFlags::empty());
        let (flags, _, _) = parse_mount_options(&s(&["strictatime", "rnoatime"]));
        assert_eq!(flags, MsFlags::MS_NOATIME);
        let (flags, _, _) = parse_mount_options(&s(&["noatime", "rrelatime"]));
        assert_eq!(flags, MsFlags::MS_RELATIME);
    }

    #[test]
    fn nosymfollow() {
        let (flags, _, _) = parse_mount_options(&s(&["nosymfollow"]));
        assert_eq!(flags.bits(), libc::MS_NOSYMFOLLOW);
    }
}
