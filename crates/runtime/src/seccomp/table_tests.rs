//! Syscall-table coverage.

use super::*;

// ---------------------------------------------------------------------------
// Syscall table.

#[test]
fn syscall_table_basics() {
    #[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
    {
        assert_eq!(syscall_number("read"), Some(0));
        assert_eq!(syscall_number("write"), Some(1));
        assert_eq!(syscall_number("mkdir"), Some(83));
        assert_eq!(syscall_number("clone3"), Some(435));
        assert_eq!(syscall_number("cachestat"), Some(451));
        assert_eq!(syscall_number("io_pgetevents"), Some(333));
    }
    assert_eq!(syscall_number("no_such_syscall"), None);
    assert_eq!(syscall_number("SYS_read"), None);
    let mut seen = std::collections::HashMap::new();
    for (name, nr) in syscalls::all() {
        assert!(nr >= 0, "{name}");
        if let Some(prev) = seen.insert(name, nr) {
            panic!("{name} listed twice ({prev} and {nr})");
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
#[test]
fn x86_64_table_has_no_gaps() {
    let known: std::collections::HashSet<i64> = syscalls::all().map(|(_, nr)| nr).collect();
    let missing: Vec<i64> = (0..=335).chain(424..=466).filter(|nr| !known.contains(nr)).collect();
    assert!(missing.is_empty(), "x86_64 syscall numbers without a name: {missing:?}");
}

/// Names of Docker's/containerd's default profile that exist on x86_64.
#[rustfmt::skip]
#[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
pub(super) const DOCKER_X86_64: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "clock_adjtime", "clock_getres", "clock_gettime",
    "clock_nanosleep", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fallocate", "fanotify_mark",
    "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstatfs",
    "fsync", "ftruncate", "futex", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake",
    "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "geteuid", "getgid",
    "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
    "gettimeofday", "getuid", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
    "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents",
    "ioprio_get", "ioprio_set", "io_setup", "io_submit", "io_uring_enter", "io_uring_register",
    "io_uring_setup", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lgetxattr", "link", "linkat", "listen", "listxattr",
    "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise", "map_shadow_stack",
    "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod",
    "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify",
    "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget",
    "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
    "nanosleep", "newfstatat", "open", "openat", "openat2", "pause", "pidfd_getfd", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
    "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
    "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat",
    "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
    "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsuid", "setgid",
    "setgroups", "setitimer", "setpgid", "setpriority", "setregid", "setresgid", "setresuid",
    "setreuid", "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area",
    "set_tid_address", "setuid", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
    "sigaltstack", "signalfd", "signalfd4", "socket", "socketpair", "splice", "stat", "statfs",
    "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee",
    "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times", "tkill",
    "truncate", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat", "utimes", "vfork",
    "vmsplice", "wait4", "waitid", "write", "writev",
    // Capability- or kernel-version-gated entries.
    "process_vm_readv", "process_vm_writev", "ptrace", "personality", "arch_prctl", "modify_ldt",
    "clone", "clone3", "chroot", "bpf", "perf_event_open", "fanotify_init", "lookup_dcookie",
    "mount", "umount2", "fsconfig", "fsmount", "fsopen", "fspick", "move_mount", "open_tree",
    "mount_setattr", "open_by_handle_at", "pivot_root", "quotactl", "quotactl_fd",
    "setdomainname", "sethostname", "setns", "syslog", "unshare", "kcmp", "delete_module",
    "init_module", "finit_module", "acct", "reboot", "settimeofday", "clock_settime", "vhangup",
    "iopl", "ioperm", "create_module", "get_kernel_syms", "query_module", "get_mempolicy",
    "mbind", "set_mempolicy", "set_mempolicy_home_node", "move_pages", "kexec_file_load",
    "kexec_load", "userfaultfd", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl", "swapon",
    "swapoff",
];

#[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
#[test]
fn table_covers_docker_default_profile() {
    let missing: Vec<&str> = DOCKER_X86_64
        .iter()
        .copied()
        .filter(|n| syscall_number(n).is_none())
        .collect();
    assert!(missing.is_empty(), "missing from the x86_64 table: {missing:?}");
    // 32-bit-only names in the same profile are unknown here and get skipped.
    for n in [
        "chown32",
        "_llseek",
        "_newselect",
        "fcntl64",
        "mmap2",
        "socketcall",
        "clock_gettime64",
    ] {
        assert_eq!(syscall_number(n), None, "{n}");
    }
}
