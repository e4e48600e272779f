//! Compilation semantics, checked with a small BPF interpreter.

use serde_json::json;

use oci_spec::runtime::LinuxSeccomp;

use super::*;

// ---------------------------------------------------------------------------
// A tiny classic-BPF interpreter mirroring the kernel's evaluation of stacked
// seccomp filters, so semantics can be checked for inputs the host cannot
// produce (x32 numbers, foreign architectures).

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

#[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
const NATIVE_AUDIT: u32 = AUDIT_ARCH_X86_64;
#[cfg(target_arch = "aarch64")]
const NATIVE_AUDIT: u32 = AUDIT_ARCH_AARCH64;

fn seccomp_data(nr: i64, arch: u32, args: [u64; 6]) -> Vec<u8> {
    let mut d = Vec::with_capacity(64);
    d.extend_from_slice(&(nr as i32).to_ne_bytes());
    d.extend_from_slice(&arch.to_ne_bytes());
    d.extend_from_slice(&0u64.to_ne_bytes());
    for a in args {
        d.extend_from_slice(&a.to_ne_bytes());
    }
    d
}

fn run_bpf(prog: &[libc::sock_filter], data: &[u8]) -> u32 {
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        let code = u32::from(i.code);
        let jump = |cond: bool| 1 + usize::from(if cond { i.jt } else { i.jf });
        pc += match code {
            c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                let off = i.k as usize;
                a = u32::from_ne_bytes(data[off..off + 4].try_into().unwrap());
                1
            }
            c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => {
                a &= i.k;
                1
            }
            c if c == libc::BPF_JMP | libc::BPF_JA => 1 + i.k as usize,
            c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => jump(a == i.k),
            c if c == libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K => jump(a > i.k),
            c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => jump(a >= i.k),
            c if c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K => jump(a & i.k != 0),
            c if c == libc::BPF_RET | libc::BPF_K => return i.k,
            other => panic!("unsupported BPF opcode {other:#x}"),
        };
    }
}

/// The kernel's rule: run every filter, newest first; keep the result with
/// the lowest (signed) action, the first one seen on ties.
fn eval_arch(c: &CompiledSeccomp, nr: i64, arch: u32, args: [u64; 6]) -> u32 {
    let data = seccomp_data(nr, arch, args);
    let mut ret = libc::SECCOMP_RET_ALLOW;
    for prog in c.programs().iter().rev() {
        let cur = run_bpf(prog, &data);
        if ((cur & 0xffff_0000) as i32) < ((ret & 0xffff_0000) as i32) {
            ret = cur;
        }
    }
    ret
}

fn eval(c: &CompiledSeccomp, name: &str, args: [u64; 6]) -> u32 {
    eval_arch(c, syscall_number(name).unwrap(), NATIVE_AUDIT, args)
}

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e as u32
}

pub(super) fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("profile fixture deserialises")
}

// ---------------------------------------------------------------------------
// Compilation semantics, checked with the interpreter.

#[test]
fn allow_default_with_denied_mkdir() {
    let c = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    })))
    .unwrap();
    assert_eq!(eval(&c, "mkdir", [0; 6]), errno(libc::EPERM));
    assert_eq!(eval(&c, "mkdirat", [0; 6]), errno(libc::EPERM));
    assert_eq!(eval(&c, "read", [0; 6]), ALLOW);
    // Foreign ABI: killed by the arch check.
    assert_eq!(
        eval_arch(&c, 39, AUDIT_ARCH_I386, [0; 6]),
        libc::SECCOMP_RET_KILL_PROCESS
    );
    #[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
    {
        // x32 numbers cannot be used to sidestep the deny list.
        let x32_mkdir = 0x4000_0000 + syscall_number("mkdir").unwrap();
        assert_eq!(eval_arch(&c, x32_mkdir, AUDIT_ARCH_X86_64, [0; 6]), errno(libc::ENOSYS));
        assert_eq!(c.program_lengths().len(), 2);
    }
}

#[test]
fn deny_default_with_allow_list_and_errno_values() {
    let c = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 13,
        "syscalls": [
            {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["uname"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["not_a_real_syscall"], "action": "SCMP_ACT_ALLOW"}
        ]
    })))
    .unwrap();
    assert_eq!(eval(&c, "read", [0; 6]), ALLOW);
    assert_eq!(eval(&c, "exit_group", [0; 6]), ALLOW);
    assert_eq!(eval(&c, "mkdir", [0; 6]), errno(13));
    assert_eq!(eval(&c, "clone3", [0; 6]), errno(38));
    assert_eq!(eval(&c, "uname", [0; 6]), errno(libc::EPERM));
}

#[test]
fn argument_conditions() {
    let c = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_GT"},
                      {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getpriority"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_LE"}]},
            {"names": ["setpriority"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 2, "value": 5, "op": "SCMP_CMP_LT"}]},
            {"names": ["dup3"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 2, "value": 0, "op": "SCMP_CMP_NE"}]},
            {"names": ["lseek"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 4294967296u64, "op": "SCMP_CMP_GE"}]}
        ]
    })))
    .unwrap();
    let e = errno(libc::EPERM);
    assert_eq!(eval(&c, "personality", [0, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(eval(&c, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(eval(&c, "personality", [8, 0, 0, 0, 0, 0]), e);
    // 64-bit comparison: upper half matters.
    assert_eq!(eval(&c, "personality", [1 << 32, 0, 0, 0, 0, 0]), e);
    assert_eq!(eval(&c, "clone", [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(eval(&c, "clone", [libc::CLONE_NEWNS as u64, 0, 0, 0, 0, 0]), e);
    // Multiple args on one rule are ANDed.
    assert_eq!(eval(&c, "kill", [11, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(eval(&c, "kill", [11, 9, 0, 0, 0, 0]), e);
    assert_eq!(eval(&c, "kill", [10, 0, 0, 0, 0, 0]), e);
    assert_eq!(eval(&c, "getpriority", [2, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(eval(&c, "getpriority", [3, 0, 0, 0, 0, 0]), e);
    assert_eq!(eval(&c, "setpriority", [0, 0, 4, 0, 0, 0]), ALLOW);
    assert_eq!(eval(&c, "setpriority", [0, 0, 5, 0, 0, 0]), e);
    assert_eq!(eval(&c, "dup3", [0, 1, 1, 0, 0, 0]), ALLOW);
    assert_eq!(eval(&c, "dup3", [0, 1, 0, 0, 0, 0]), e);
    assert_eq!(eval(&c, "lseek", [0, 1 << 32, 0, 0, 0, 0]), ALLOW);
    assert_eq!(eval(&c, "lseek", [0, 0xffff_ffff, 0, 0, 0, 0]), e);
}

/// The kernel evaluates the filters installed so far on each later
/// seccomp(2) call, so every proper prefix must allow that call; the full
/// set must give the profile's answer for it.
#[test]
fn seccomp_syscall_stays_allowed_until_the_last_filter() {
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}),
            errno(13),
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["seccomp", "read"], "action": "SCMP_ACT_ALLOW"},
                             {"names": ["mkdir"], "action": "SCMP_ACT_KILL"}]}),
            ALLOW,
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["seccomp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                             {"names": ["seccomp"], "action": "SCMP_ACT_KILL_PROCESS"},
                             {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
            libc::SECCOMP_RET_KILL_PROCESS,
        ),
    ];
    let nr = syscall_number("seccomp").unwrap();
    for (p, want) in cases {
        let c = compile(&profile(p.clone())).unwrap();
        let progs = c.programs();
        for k in 0..progs.len() {
            let prefix = CompiledSeccomp {
                programs: progs[..k].to_vec(),
                flags: 0,
            };
            assert_eq!(eval(&prefix, "seccomp", [1, 0, 0, 0, 0, 0]), ALLOW, "{p} prefix {k}");
        }
        assert_eq!(eval_arch(&c, nr, NATIVE_AUDIT, [1, 0, 0, 0, 0, 0]), want, "{p}");
        // Other syscalls keep their meaning.
        assert_ne!(eval(&c, "mkdir", [0; 6]), ALLOW, "{p}");
    }
    let err = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["seccomp"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]})))
    .unwrap_err();
    assert!(matches!(err, SeccompError::ConditionalSeccompRule), "{err}");
}

#[test]
fn unconditional_entry_wins_over_conditional_one() {
    let c = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW"}
        ]
    })))
    .unwrap();
    assert_eq!(eval(&c, "personality", [7, 0, 0, 0, 0, 0]), ALLOW);
}

#[test]
fn every_action_kind() {
    let c = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_LOG",
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["getpid"], "action": "SCMP_ACT_KILL"},
            {"names": ["gettid"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["getuid"], "action": "SCMP_ACT_TRAP"},
            {"names": ["getgid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            {"names": ["geteuid"], "action": "SCMP_ACT_TRACE"}
        ]
    })))
    .unwrap();
    assert_eq!(eval(&c, "read", [0; 6]), ALLOW);
    assert_eq!(eval(&c, "write", [0; 6]), libc::SECCOMP_RET_LOG);
    assert_eq!(eval(&c, "getppid", [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
    assert_eq!(eval(&c, "getpid", [0; 6]), libc::SECCOMP_RET_KILL_THREAD);
    assert_eq!(eval(&c, "gettid", [0; 6]), libc::SECCOMP_RET_KILL_THREAD);
    assert_eq!(eval(&c, "getuid", [0; 6]), libc::SECCOMP_RET_TRAP);
    assert_eq!(eval(&c, "getgid", [0; 6]), libc::SECCOMP_RET_TRACE | 7);
    assert_eq!(
        eval(&c, "geteuid", [0; 6]),
        libc::SECCOMP_RET_TRACE | libc::EPERM as u32
    );
}

#[test]
fn overlapping_groups_resolve_to_most_restrictive() {
    let c = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_LOG"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 6}
        ]
    })))
    .unwrap();
    assert_eq!(eval(&c, "mkdir", [0; 6]), errno(5));
    // Equal severity: the later group (installed last, evaluated first) wins.
    assert_eq!(eval(&c, "rmdir", [0; 6]), errno(6));
}

#[test]
fn allow_everything_installs_nothing() {
    let c = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]
    })))
    .unwrap();
    assert!(c.is_empty());
    c.apply().unwrap();
}

#[test]
fn rejects_notify_and_missing_native_arch() {
    let err = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "linux.seccomp: syscalls[0].action action SCMP_ACT_NOTIFY is not supported"
    );
    let foreign = if NATIVE_AUDIT == AUDIT_ARCH_X86_64 {
        "SCMP_ARCH_AARCH64"
    } else {
        "SCMP_ARCH_X86_64"
    };
    let err = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": [foreign, "SCMP_ARCH_ARM"]
    })))
    .unwrap_err();
    assert!(matches!(err, SeccompError::NativeArchMissing { .. }), "{err}");
    assert!(
        err.to_string().contains("does not include the host architecture"),
        "{err}"
    );
    compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_NATIVE"]}),
    ))
    .unwrap();
}

#[test]
fn flags_are_mapped() {
    let c = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    })))
    .unwrap();
    assert_eq!(
        c.flags(),
        libc::SECCOMP_FILTER_FLAG_TSYNC | libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
    );
}

#[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
#[test]
fn docker_sized_profile_fits() {
    let mut syscalls = vec![json!({"names": super::table_tests::DOCKER_X86_64, "action": "SCMP_ACT_ALLOW"})];
    syscalls.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}));
    syscalls.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
    syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}));
    syscalls.push(json!({"names": ["chown32", "_llseek", "socketcall"], "action": "SCMP_ACT_ALLOW"}));
    let c = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls
    })))
    .unwrap();
    assert!(c.program_lengths().iter().all(|&l| l < 4096), "{c:?}");
    assert_eq!(eval(&c, "read", [0; 6]), ALLOW);
    assert_eq!(eval(&c, "clone3", [0; 6]), errno(38));
}
