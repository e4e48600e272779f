//! End-to-end tests of the container-init sequence: real namespaces, mounts,
//! cgroups and a busybox rootfs. Root required (the tests fail without it).
//! See `common/mod.rs` for how each scenario gets a single-threaded monitor.

mod common;

use common::{isolated, read_pty, read_two, wait_status, Outcome, TestContainer};
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{pipe2, Pid};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespace, LinuxNamespaceType, Process, Spec};
use zygote_runtime::container::{create_container, exec_process, Stdio};

fn set_process(spec: &mut Spec, f: impl FnOnce(&mut Process)) {
    let mut p = spec.process().clone().unwrap();
    f(&mut p);
    spec.set_process(Some(p));
}

fn assert_clean(out: &Outcome) {
    assert!(
        out.leftover_procs.is_empty(),
        "processes left in the cgroup: {:?}",
        out.leftover_procs
    );
}

#[test]
fn echo_hello() {
    let out = isolated("echo_hello", |tmp| {
        TestContainer::new(tmp, "echo", &["echo", "hello"], |_| {}).run()
    });
    assert_eq!(out.create_error, None);
    assert_eq!(out.start_error, None);
    assert_eq!(out.stdout, "hello\n", "stderr: {}", out.stderr);
    assert_eq!(out.status, 0);
    assert_clean(&out);
    eprintln!(
        "create_container: {}µs, start: {}µs",
        out.notes["create_us"], out.notes["start_us"]
    );
}

#[test]
fn exit_code_is_propagated() {
    let out = isolated("exit_code_is_propagated", |tmp| {
        TestContainer::new(tmp, "exit3", &["sh", "-c", "exit 3"], |_| {}).run()
    });
    assert_eq!(out.status, 3, "{out:?}");
    assert_clean(&out);
}

#[test]
fn hostname_is_set() {
    let out = isolated("hostname_is_set", |tmp| {
        TestContainer::new(tmp, "host", &["hostname"], |_| {}).run()
    });
    assert_eq!(out.stdout, "zygote-test\n", "{out:?}");
}

#[test]
fn user_and_additional_groups() {
    let out = isolated("user_and_additional_groups", |tmp| {
        TestContainer::new(tmp, "user", &["id"], |spec| {
            set_process(spec, |p| {
                let mut u = p.user().clone();
                u.set_uid(1000);
                u.set_gid(1000);
                u.set_additional_gids(Some(vec![10, 20]));
                p.set_user(u);
            })
        })
        .run()
    });
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.starts_with("uid=1000 gid=1000 groups="), "{out:?}");
    let groups = out.stdout.trim().rsplit('=').next().unwrap();
    let groups: Vec<&str> = groups.split(',').map(|g| g.split('(').next().unwrap()).collect();
    assert_eq!(groups, ["10", "20"], "{out:?}");
}

#[test]
fn cwd_is_created_and_used() {
    let out = isolated("cwd_is_created_and_used", |tmp| {
        TestContainer::new(tmp, "cwd", &["pwd"], |spec| {
            set_process(spec, |p| {
                p.set_cwd("/work/dir".into());
            })
        })
        .run()
    });
    assert_eq!(out.stdout, "/work/dir\n", "{out:?}");
}

#[test]
fn env_is_process_env_plus_home() {
    let out = isolated("env_is_process_env_plus_home", |tmp| {
        TestContainer::new(tmp, "env", &["env"], |spec| {
            set_process(spec, |p| {
                p.set_env(Some(vec!["PATH=/bin".into(), "FOO=bar baz".into()]));
            })
        })
        .run()
    });
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort();
    // Like runc, HOME is added when missing, from the rootfs's /etc/passwd.
    assert_eq!(lines, ["FOO=bar baz", "HOME=/root", "PATH=/bin"], "{out:?}");
}

#[test]
fn readonly_root() {
    let out = isolated("readonly_root", |tmp| {
        TestContainer::new(tmp, "ro", &["touch", "/x"], |spec| {
            let mut root = spec.root().clone().unwrap();
            root.set_readonly(Some(true));
            spec.set_root(Some(root));
        })
        .run()
    });
    assert_ne!(out.status, 0, "{out:?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
}

#[test]
fn missing_executable_fails_create() {
    let out = isolated("missing_executable_fails_create", |tmp| {
        let c = TestContainer::new(tmp, "missing", &["nonexistent"], |_| {});
        let mut out = c.run();
        // Nothing may be left to reap: create_container reaped the child.
        let left = nix::sys::wait::waitpid(Pid::from_raw(-1), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        out.notes.insert("waitpid".into(), format!("{left:?}"));
        out
    });
    assert_eq!(
        out.create_error.as_deref(),
        Some(r#"exec: "nonexistent": executable file not found in $PATH"#)
    );
    assert_eq!(out.notes["waitpid"], "Err(ECHILD)");
    assert_clean(&out);
}

#[test]
fn init_is_pid_one() {
    let out = isolated("init_is_pid_one", |tmp| {
        TestContainer::new(tmp, "pid1", &["sh", "-c", "echo $$"], |_| {}).run()
    });
    assert_eq!(out.stdout, "1\n", "{out:?}");
}

#[test]
fn masked_and_readonly_paths() {
    let out = isolated("masked_and_readonly_paths", |tmp| {
        // /proc/kcore does not exist on every kernel (it does not here), so
        // existing masked paths are checked too: a file (/proc/timer_list,
        // non-empty on the host) and a directory (/sys/firmware).
        let script = "cat /proc/kcore 2>/dev/null | wc -c; \
                      test -e /proc/timer_list && wc -c < /proc/timer_list; \
                      test -d /sys/firmware && ls -A /sys/firmware | wc -l; \
                      echo 1 > /proc/sys/kernel/ns_last_pid && echo WRITABLE || echo READONLY";
        TestContainer::new(tmp, "masked", &["sh", "-c", script], |_| {}).run()
    });
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(lines, ["0", "0", "0", "READONLY"], "{out:?}");
    assert!(std::fs::read_to_string("/proc/timer_list").is_ok_and(|s| !s.is_empty()));
}

#[test]
fn cgroup_mount_shows_own_cgroup() {
    let out = isolated("cgroup_mount_shows_own_cgroup", |tmp| {
        let script = "cat /sys/fs/cgroup/pids/cgroup.procs; touch /sys/fs/cgroup/pids/x 2>/dev/null || echo RO";
        TestContainer::new(tmp, "cgmount", &["sh", "-c", script], |_| {}).run()
    });
    // The container's own pids cgroup: sh (pid 1) and cat (pid 2), read-only.
    assert_eq!(out.stdout, "1\n2\nRO\n", "{out:?}");
}

#[test]
fn rlimit_and_oom_score_adj_are_clamped() {
    let out = isolated("rlimit_and_oom_score_adj_are_clamped", |tmp| {
        let (_, cur_hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let mut out = TestContainer::new(
            tmp,
            "clamp",
            &["sh", "-c", "ulimit -Hn; cat /proc/self/oom_score_adj"],
            |spec| {
                set_process(spec, |p| {
                    let rl = serde_json::from_value(serde_json::json!(
                        [{"type": "RLIMIT_NOFILE", "hard": cur_hard + 1_000_000, "soft": 2048}]
                    ))
                    .unwrap();
                    p.set_rlimits(Some(rl));
                    p.set_oom_score_adj(Some(-999));
                })
            },
        )
        .run();
        out.notes.insert("cur_hard".into(), cur_hard.to_string());
        let sys_resource = caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_RESOURCE).unwrap();
        out.notes.insert("sys_resource".into(), sys_resource.to_string());
        out.notes.insert(
            "our_oom".into(),
            std::fs::read_to_string("/proc/self/oom_score_adj")
                .unwrap()
                .trim()
                .into(),
        );
        out
    });
    assert_eq!(out.create_error, None, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let cur_hard: u64 = out.notes["cur_hard"].parse().unwrap();
    if out.notes["sys_resource"] == "false" {
        // Clamped to what we have, never a failure.
        assert_eq!(lines, [cur_hard.to_string(), out.notes["our_oom"].clone()], "{out:?}");
    } else {
        assert_eq!(
            lines,
            [(cur_hard + 1_000_000).to_string(), "-999".to_string()],
            "{out:?}"
        );
    }
}

#[test]
fn seccomp_filter_is_applied() {
    let out = isolated("seccomp_filter_is_applied", |tmp| {
        TestContainer::new(
            tmp,
            "seccomp",
            &["sh", "-c", "mkdir /tmp/d && echo MADE || echo DENIED"],
            |spec| {
                let mut linux = spec.linux().clone().unwrap();
                let seccomp = serde_json::from_value(serde_json::json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
                }))
                .unwrap();
                linux.set_seccomp(Some(seccomp));
                spec.set_linux(Some(linux));
            },
        )
        .run()
    });
    assert_eq!(out.stdout, "DENIED\n", "{out:?}");
}

/// Add a new user namespace mapping container 0..65536 to host 100000..
/// (the rootfs must be owned by host uid 100000, see `userns_rootfs`).
fn user_namespace(spec: &mut Spec) {
    let mut linux = spec.linux().clone().unwrap();
    let mut ns = linux.namespaces().clone().unwrap();
    let mut user = LinuxNamespace::default();
    user.set_typ(LinuxNamespaceType::User);
    ns.push(user);
    linux.set_namespaces(Some(ns));
    let map = serde_json::from_value::<LinuxIdMapping>(serde_json::json!(
        {"containerID": 0, "hostID": 100000, "size": 65536}
    ))
    .unwrap();
    linux.set_uid_mappings(Some(vec![map]));
    linux.set_gid_mappings(Some(vec![map]));
    spec.set_linux(Some(linux));
}

/// The mapped root (host uid 100000) must be able to reach and own the
/// rootfs, as containerd arranges for user-namespaced containers.
fn userns_rootfs(tmp: &std::path::Path) {
    std::fs::set_permissions(tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let rootfs = common::busybox_rootfs(tmp);
    common::chown_tree(&rootfs, 100000, 100000);
}

#[test]
fn user_namespace_with_mappings() {
    let out = isolated("user_namespace_with_mappings", |tmp| {
        userns_rootfs(tmp);
        let args = ["sh", "-c", "id; cat /proc/self/uid_map"];
        TestContainer::new(tmp, "userns", &args, user_namespace).run()
    });
    assert_eq!(out.create_error, None, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("uid=0"), "{out:?}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"], "{out:?}");
}

#[test]
fn terminal_gets_a_pty() {
    let out = isolated("terminal_gets_a_pty", |tmp| {
        let c = TestContainer::new(
            tmp,
            "tty",
            &["sh", "-c", "test -t 0 && test -t 1 && echo TTY-OK; tty"],
            |spec| {
                set_process(spec, |p| {
                    p.set_terminal(Some(true));
                })
            },
        );
        let mut out = Outcome::default();
        match create_container(&c.cfg, &c.cgroup, Stdio::Terminal) {
            Err(e) => out.create_error = Some(e.to_string()),
            Ok(mut pending) => {
                let master = pending.pty_master.take().expect("pty master");
                let pid = pending.pid;
                out.start_error = common::start(pending);
                out.stdout = read_pty(master);
                out.status = wait_status(pid);
            }
        }
        c.finish(&mut out);
        out
    });
    assert_eq!(out.create_error, None, "{out:?}");
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.contains("TTY-OK"), "{out:?}");
    assert!(out.stdout.contains("/dev/pts/0"), "{out:?}");
}

#[test]
fn exec_joins_the_pid_namespace() {
    let out = isolated("exec_joins_the_pid_namespace", |tmp| {
        let c = TestContainer::new(tmp, "exec", &["sleep", "5"], |_| {});
        let mut out = Outcome::default();
        let init = create_container(
            &c.cfg,
            &c.cgroup,
            Stdio::Fds {
                stdin: None,
                stdout: None,
                stderr: None,
            },
        )
        .expect("create init");
        let init_pid = init.pid;
        init.start().expect("start init");

        let mut process = c.cfg.spec.process().clone().unwrap();
        process.set_args(Some(vec![
            "sh".into(),
            "-c".into(),
            "readlink /proc/self/ns/pid; echo $$; hostname".into(),
        ]));
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let stdio = Stdio::Fds {
            stdin: None,
            stdout: Some(out_w),
            stderr: Some(err_w),
        };
        match exec_process(&c.cfg, init_pid, &c.cgroup, &process, stdio) {
            Err(e) => out.create_error = Some(e.to_string()),
            Ok(pending) => {
                let pid = pending.pid;
                out.notes.insert(
                    "exec_in_cgroup".into(),
                    c.cgroup.procs().unwrap().contains(&pid).to_string(),
                );
                out.start_error = common::start(pending);
                let (o, e) = read_two(out_r, err_r);
                out.stdout = o;
                out.stderr = e;
                out.status = wait_status(pid);
            }
        }
        out.notes.insert(
            "init_ns".into(),
            std::fs::read_link(format!("/proc/{init_pid}/ns/pid"))
                .unwrap()
                .display()
                .to_string(),
        );
        kill(Pid::from_raw(init_pid), Signal::SIGKILL).unwrap();
        wait_status(init_pid);
        c.finish(&mut out);
        out
    });
    assert_eq!(out.create_error, None, "{out:?}");
    assert_eq!(out.status, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert_eq!(lines[0], out.notes["init_ns"], "{out:?}");
    assert_ne!(lines[1], "1", "exec'd process must not be pid 1: {out:?}");
    assert_eq!(lines[2], "zygote-test", "{out:?}");
    assert_eq!(out.notes["exec_in_cgroup"], "true");
    assert_clean(&out);
}

fn add_namespace(spec: &mut Spec, typ: LinuxNamespaceType, path: Option<String>) {
    let mut linux = spec.linux().clone().unwrap();
    let mut list = linux.namespaces().clone().unwrap();
    list.retain(|n| n.typ() != typ);
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns.set_path(path.map(Into::into));
    list.push(ns);
    linux.set_namespaces(Some(list));
    spec.set_linux(Some(linux));
}

#[test]
fn join_namespaces_by_path() {
    let out = isolated("join_namespaces_by_path", |tmp| {
        let a = TestContainer::new(tmp, "ns-a", &["sleep", "5"], |_| {});
        let init = create_container(
            &a.cfg,
            &a.cgroup,
            Stdio::Fds {
                stdin: None,
                stdout: None,
                stderr: None,
            },
        )
        .expect("create container a");
        let a_pid = init.pid;
        init.start().expect("start a");

        // b: a's pid namespace (pre-clone join through an intermediate) and
        // network namespace (joined by the child), new mount/ipc/uts.
        let b_tmp = tmp.join("b");
        std::fs::create_dir(&b_tmp).unwrap();
        let script = "readlink /proc/self/ns/net; readlink /proc/self/ns/pid; echo $$; cat /proc/1/comm";
        let b = TestContainer::new(&b_tmp, "ns-b", &["sh", "-c", script], |spec| {
            add_namespace(spec, LinuxNamespaceType::Pid, Some(format!("/proc/{a_pid}/ns/pid")));
            add_namespace(spec, LinuxNamespaceType::Network, Some(format!("/proc/{a_pid}/ns/net")));
        });
        let links: Vec<(String, String)> = ["net", "pid"]
            .iter()
            .map(|ns| {
                let link = std::fs::read_link(format!("/proc/{a_pid}/ns/{ns}")).unwrap();
                (ns.to_string(), link.display().to_string())
            })
            .collect();
        let mut out = b.run();
        out.notes.extend(links);
        kill(Pid::from_raw(a_pid), Signal::SIGKILL).unwrap();
        wait_status(a_pid);
        a.finish(&mut out);
        out
    });
    assert_eq!(out.create_error, None, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out:?}");
    assert_eq!(lines[0], out.notes["net"], "{out:?}");
    assert_eq!(lines[1], out.notes["pid"], "{out:?}");
    assert_ne!(lines[2], "1", "{out:?}");
    assert_eq!(lines[3], "sleep", "pid 1 of the joined namespace is a's init: {out:?}");
    assert_clean(&out);
}

#[test]
fn host_network_with_file_binds() {
    let out = isolated("host_network_with_file_binds", |tmp| {
        let hosts = tmp.join("hosts");
        std::fs::write(&hosts, "127.0.0.1 zygote-host\n").unwrap();
        let script = "cat /etc/hosts; (echo x >> /etc/hosts) 2>/dev/null || echo RO; readlink /proc/self/ns/net";
        let mut out = TestContainer::new(tmp, "nethost", &["sh", "-c", script], |spec| {
            let mut linux = spec.linux().clone().unwrap();
            let mut list = linux.namespaces().clone().unwrap();
            list.retain(|n| n.typ() != LinuxNamespaceType::Network);
            linux.set_namespaces(Some(list));
            spec.set_linux(Some(linux));
            let mut mounts = spec.mounts().clone().unwrap();
            mounts.push(
                serde_json::from_value(serde_json::json!({
                    "destination": "/etc/hosts", "type": "bind", "source": hosts, "options": ["rbind", "ro"]
                }))
                .unwrap(),
            );
            spec.set_mounts(Some(mounts));
        })
        .run();
        out.notes.insert(
            "host_net".into(),
            std::fs::read_link("/proc/self/ns/net").unwrap().display().to_string(),
        );
        out
    });
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["127.0.0.1 zygote-host", "RO", out.notes["host_net"].as_str()],
        "{out:?}"
    );
}

#[test]
fn cgroup_namespace() {
    let out = isolated("cgroup_namespace", |tmp| {
        let script = "grep -c -v ':/$' /proc/self/cgroup; cat /sys/fs/cgroup/pids/cgroup.procs";
        TestContainer::new(tmp, "cgns", &["sh", "-c", script], |spec| {
            add_namespace(spec, LinuxNamespaceType::Cgroup, None);
        })
        .run()
    });
    // Every /proc/self/cgroup line is the namespace root; the fresh pids
    // hierarchy mount shows the container's cgroup as its root.
    // (busybox sh execs its last command, so cat is pid 1.)
    assert_eq!(out.stdout, "0\n1\n", "{out:?}");
}

#[test]
fn sysctls_are_written() {
    let out = isolated("sysctls_are_written", |tmp| {
        TestContainer::new(
            tmp,
            "sysctl",
            &[
                "cat",
                "/proc/sys/net/ipv4/ip_forward",
                "/proc/sys/kernel/shm_rmid_forced",
            ],
            |spec| {
                let mut linux = spec.linux().clone().unwrap();
                let sysctl = [("net.ipv4.ip_forward", "1"), ("kernel.shm_rmid_forced", "1")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                linux.set_sysctl(Some(sysctl));
                spec.set_linux(Some(linux));
            },
        )
        .run()
    });
    assert_eq!(out.stdout, "1\n1\n", "{out:?}");
}

#[test]
fn bad_mount_is_reported_with_context() {
    let out = isolated("bad_mount_is_reported_with_context", |tmp| {
        TestContainer::new(tmp, "badmount", &["true"], |spec| {
            let mut mounts = spec.mounts().clone().unwrap();
            mounts.push(
                serde_json::from_value(serde_json::json!({
                    "destination": "/mnt/x", "type": "bind", "source": "/nonexistent/zygote", "options": ["rbind"]
                }))
                .unwrap(),
            );
            spec.set_mounts(Some(mounts));
        })
        .run()
    });
    let err = out.create_error.as_deref().unwrap_or_default();
    assert!(
        err.contains("/nonexistent/zygote") && err.contains("/mnt/x") && err.contains("ENOENT"),
        "{out:?}"
    );
    assert_clean(&out);
}

#[test]
fn dropping_pending_ends_the_child() {
    let out = isolated("dropping_pending_ends_the_child", |tmp| {
        let c = TestContainer::new(tmp, "drop", &["true"], |_| {});
        let pending = create_container(
            &c.cfg,
            &c.cgroup,
            Stdio::Fds {
                stdin: None,
                stdout: None,
                stderr: None,
            },
        )
        .expect("create");
        let pid = pending.pid;
        drop(pending);
        let mut out = Outcome {
            status: wait_status(pid),
            ..Outcome::default()
        };
        c.finish(&mut out);
        out
    });
    assert_eq!(out.status, 1, "{out:?}");
    assert_clean(&out);
}

#[test]
fn exec_with_terminal() {
    let out = isolated("exec_with_terminal", |tmp| {
        let c = TestContainer::new(tmp, "exectty", &["sleep", "5"], |_| {});
        let init = create_container(
            &c.cfg,
            &c.cgroup,
            Stdio::Fds {
                stdin: None,
                stdout: None,
                stderr: None,
            },
        )
        .expect("create init");
        let init_pid = init.pid;
        init.start().expect("start init");
        let mut process = c.cfg.spec.process().clone().unwrap();
        process.set_terminal(Some(true));
        process.set_args(Some(vec!["sh".into(), "-c".into(), "test -t 0 && tty".into()]));
        let mut out = Outcome::default();
        match exec_process(&c.cfg, init_pid, &c.cgroup, &process, Stdio::Terminal) {
            Err(e) => out.create_error = Some(e.to_string()),
            Ok(mut pending) => {
                let master = pending.pty_master.take().expect("pty master");
                let pid = pending.pid;
                out.start_error = common::start(pending);
                out.stdout = read_pty(master);
                out.status = wait_status(pid);
            }
        }
        kill(Pid::from_raw(init_pid), Signal::SIGKILL).unwrap();
        wait_status(init_pid);
        c.finish(&mut out);
        out
    });
    assert_eq!(out.create_error, None, "{out:?}");
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.trim().starts_with("/dev/pts/"), "{out:?}");
}

#[test]
fn exec_into_user_namespace() {
    let out = isolated("exec_into_user_namespace", |tmp| {
        userns_rootfs(tmp);
        let c = TestContainer::new(tmp, "execuserns", &["sleep", "5"], user_namespace);
        let init = create_container(
            &c.cfg,
            &c.cgroup,
            Stdio::Fds {
                stdin: None,
                stdout: None,
                stderr: None,
            },
        )
        .expect("create init");
        let init_pid = init.pid;
        init.start().expect("start init");
        let mut process = c.cfg.spec.process().clone().unwrap();
        process.set_args(Some(vec![
            "sh".into(),
            "-c".into(),
            "id -u; readlink /proc/self/ns/user".into(),
        ]));
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let stdio = Stdio::Fds {
            stdin: None,
            stdout: Some(out_w),
            stderr: Some(err_w),
        };
        let mut out = Outcome::default();
        match exec_process(&c.cfg, init_pid, &c.cgroup, &process, stdio) {
            Err(e) => out.create_error = Some(e.to_string()),
            Ok(pending) => {
                let pid = pending.pid;
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
                let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
                out.notes
                    .insert("host_uid".into(), uid.split_whitespace().next().unwrap().into());
                out.start_error = common::start(pending);
                let (o, e) = read_two(out_r, err_r);
                out.stdout = o;
                out.stderr = e;
                out.status = wait_status(pid);
            }
        }
        let userns = std::fs::read_link(format!("/proc/{init_pid}/ns/user")).unwrap();
        out.notes.insert("init_userns".into(), userns.display().to_string());
        kill(Pid::from_raw(init_pid), Signal::SIGKILL).unwrap();
        wait_status(init_pid);
        c.finish(&mut out);
        out
    });
    assert_eq!(out.create_error, None, "{out:?}");
    assert_eq!(out.status, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["0", out.notes["init_userns"].as_str()], "{out:?}");
    assert_eq!(out.notes["host_uid"], "100000", "{out:?}");
}

#[test]
fn multi_threaded_caller_is_refused() {
    // The libtest harness thread: at least two threads in this process.
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = common::busybox_rootfs(tmp.path());
    let spec = common::default_spec(&rootfs, "mt", &["true"]);
    let cgroup = zygote_runtime::cgroups::Cgroup::from_spec(&spec, "mt").unwrap();
    let cfg = zygote_runtime::container::ContainerConfig {
        id: "mt".into(),
        bundle: tmp.path().into(),
        rootfs,
        security: zygote_runtime::security::Security::default(),
        spec,
        guest: None,
    };
    let stdio = Stdio::Fds {
        stdin: None,
        stdout: None,
        stderr: None,
    };
    let err = create_container(&cfg, &cgroup, stdio).unwrap_err().to_string();
    assert!(err.contains("single-threaded"), "{err}");
}
