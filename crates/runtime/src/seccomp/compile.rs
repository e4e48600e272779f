//! [`compile`]: an OCI `linux.seccomp` profile to stacked seccompiler
//! filters (one per action, see the module docs of [`super`]), plus the
//! hand-written x32 guard.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

use super::{syscall_number, CompiledSeccomp, SeccompError};

/// Rules per syscall number; `None` means "unconditionally".
type RuleSet = BTreeMap<i64, Option<Vec<SeccompRule>>>;

fn add_rule(set: &mut RuleSet, nr: i64, rule: Option<&SeccompRule>) {
    match (set.get_mut(&nr), rule) {
        (Some(None), _) => {}
        (Some(slot), None) => *slot = None,
        (Some(Some(rules)), Some(r)) => rules.push(r.clone()),
        (None, r) => {
            set.insert(nr, r.map(|r| vec![r.clone()]));
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
const NATIVE: (Arch, TargetArch, &str) = (Arch::ScmpArchX86_64, TargetArch::x86_64, "x86_64");
#[cfg(target_arch = "aarch64")]
const NATIVE: (Arch, TargetArch, &str) = (Arch::ScmpArchAarch64, TargetArch::aarch64, "aarch64");

/// Compiles an OCI seccomp profile into BPF programs (see the module docs
/// for how actions are mapped onto stacked filters).
pub fn compile(seccomp: &LinuxSeccomp) -> Result<CompiledSeccomp, SeccompError> {
    let (native_arch, target, native_name) = NATIVE;
    if let Some(listed) = seccomp.architectures().as_ref().filter(|a| !a.is_empty()) {
        if !listed.iter().any(|a| *a == native_arch || *a == Arch::ScmpArchNative) {
            return Err(SeccompError::NativeArchMissing {
                listed: listed.clone(),
                native: native_name,
            });
        }
        let ignored: Vec<&Arch> = listed
            .iter()
            .filter(|a| **a != native_arch && **a != Arch::ScmpArchNative)
            .collect();
        if !ignored.is_empty() {
            tracing::debug!(?ignored, "seccomp: ignoring non-native architectures");
        }
    }

    let default = to_action(seccomp.default_action(), seccomp.default_errno_ret(), "defaultAction")?;

    let mut union = RuleSet::new();
    let mut groups: Vec<(SeccompAction, RuleSet)> = Vec::new();
    let mut unknown: Vec<&str> = Vec::new();
    for (gi, sc) in seccomp.syscalls().iter().flatten().enumerate() {
        let action = to_action(sc.action(), sc.errno_ret(), &format!("syscalls[{gi}].action"))?;
        let rule = build_rule(gi, sc)?;
        let group = match groups.iter().position(|(a, _)| *a == action) {
            Some(i) => i,
            None => {
                groups.push((action, RuleSet::new()));
                groups.len() - 1
            }
        };
        for name in sc.names() {
            let Some(nr) = syscall_number(name) else {
                unknown.push(name);
                continue;
            };
            add_rule(&mut union, nr, rule.as_ref());
            add_rule(&mut groups[group].1, nr, rule.as_ref());
        }
    }
    if !unknown.is_empty() {
        unknown.sort_unstable();
        unknown.dedup();
        tracing::warn!(
            arch = native_name,
            syscalls = ?unknown,
            "seccomp: ignoring syscalls unknown on this architecture (like runc)"
        );
    }

    let seccomp_action = isolate_seccomp_syscall(&default, &mut union, &mut groups)?;

    let mut programs = Vec::new();
    if default != SeccompAction::Allow {
        programs.push(build_filter(
            union,
            default.clone(),
            SeccompAction::Allow,
            target,
            "default",
        )?);
    }
    for (action, set) in groups {
        if action == SeccompAction::Allow || set.is_empty() {
            continue;
        }
        let what = format!("{action:?}");
        programs.push(build_filter(set, SeccompAction::Allow, action, target, &what)?);
    }
    if seccomp_action != SeccompAction::Allow {
        let mut only = RuleSet::new();
        only.insert(SECCOMP_NR, None);
        programs.push(build_filter(
            only,
            SeccompAction::Allow,
            seccomp_action,
            target,
            "seccomp(2)",
        )?);
    }
    #[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
    if !programs.is_empty() {
        programs.insert(0, x32_guard());
    }

    let mut flags: libc::c_ulong = 0;
    for f in seccomp.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        };
    }
    tracing::debug!(
        filters = programs.len(),
        lengths = ?programs.iter().map(Vec::len).collect::<Vec<_>>(),
        flags,
        "seccomp profile compiled"
    );
    Ok(CompiledSeccomp { programs, flags })
}

/// Number of the seccomp(2) syscall itself.
const SECCOMP_NR: i64 = libc::SYS_seccomp;

/// Severity of an action as the kernel orders them (lower is stronger).
fn severity(a: &SeccompAction) -> i32 {
    (u32::from(a.clone()) & 0xffff_0000) as i32
}

/// Installing several filters takes several seccomp(2) calls, so no filter
/// but the last may block seccomp(2). This takes the seccomp syscall out of
/// every filter (the default filter allows it, group filters no longer
/// match it) and returns the action the profile wants for it, which
/// `compile` installs as a one-syscall filter at the end. Conditional rules
/// on seccomp itself cannot be handled this way and are rejected.
fn isolate_seccomp_syscall(
    default: &SeccompAction,
    union: &mut RuleSet,
    groups: &mut [(SeccompAction, RuleSet)],
) -> Result<SeccompAction, SeccompError> {
    let mut matched: Option<SeccompAction> = None;
    for (action, set) in groups.iter_mut() {
        match set.remove(&SECCOMP_NR) {
            None => {}
            Some(Some(_)) => return Err(SeccompError::ConditionalSeccompRule),
            // Equal severity: the later group wins, as when stacked.
            Some(None) if !matches!(&matched, Some(m) if severity(action) > severity(m)) => {
                matched = Some(action.clone());
            }
            Some(None) => {}
        }
    }
    union.insert(SECCOMP_NR, None);
    Ok(matched.unwrap_or_else(|| default.clone()))
}

fn to_action(action: LinuxSeccompAction, errno_ret: Option<u32>, field: &str) -> Result<SeccompAction, SeccompError> {
    let eperm = libc::EPERM as u32;
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno => SeccompAction::Errno(errno_ret.unwrap_or(eperm)),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => SeccompAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        // Like runc: the errno value doubles as the tracer message.
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(errno_ret.unwrap_or(eperm)),
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::NotifyUnsupported {
                field: field.to_string(),
            })
        }
    })
}

/// The AND of a group's argument conditions, or `None` if it has none.
fn build_rule(gi: usize, sc: &LinuxSyscall) -> Result<Option<SeccompRule>, SeccompError> {
    let args = sc.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return Ok(None);
    }
    let mut conds = Vec::with_capacity(args.len());
    for arg in args {
        let bad_index = || SeccompError::InvalidArgIndex {
            group: gi,
            syscall: sc.names().join(","),
            index: arg.index(),
        };
        let index = u8::try_from(arg.index()).map_err(|_| bad_index())?;
        // OCI/libseccomp: for MASKED_EQ, `value` is the mask and `valueTwo`
        // the expected result of `arg & mask`.
        let (op, value) = match arg.op() {
            LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
            LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
            LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
            LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
            LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
            LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
            LinuxSeccompOperator::ScmpCmpMaskedEq => {
                (SeccompCmpOp::MaskedEq(arg.value()), arg.value_two().unwrap_or(0))
            }
        };
        // Full 64-bit comparison, like libseccomp.
        conds.push(SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value).map_err(|_| bad_index())?);
    }
    SeccompRule::new(conds).map(Some).map_err(|source| SeccompError::Build {
        what: format!("syscalls[{gi}]"),
        source,
    })
}

fn build_filter(
    set: RuleSet,
    mismatch: SeccompAction,
    matched: SeccompAction,
    target: TargetArch,
    what: &str,
) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let rules: BTreeMap<i64, Vec<SeccompRule>> = set
        .into_iter()
        .map(|(nr, rules)| (nr, rules.unwrap_or_default()))
        .collect();
    let build_err = |source| SeccompError::Build {
        what: what.to_string(),
        source,
    };
    let filter = SeccompFilter::new(rules, mismatch, matched, target).map_err(build_err)?;
    let prog: BpfProgram = filter.try_into().map_err(|e| match e {
        seccompiler::BackendError::FilterTooLarge(len) => SeccompError::TooLarge {
            what: what.to_string(),
            len,
        },
        other => build_err(other),
    })?;
    Ok(prog
        .into_iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

/// Hand-written filter: on x86_64, syscall numbers with the x32 bit set get
/// ENOSYS; everything else is left to the other filters.
#[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
fn x32_guard() -> Vec<libc::sock_filter> {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    vec![
        ins(LD_W_ABS, 0, 0, 4), // A = seccomp_data.arch
        ins(JEQ_K, 0, 3, AUDIT_ARCH_X86_64),
        ins(LD_W_ABS, 0, 0, 0), // A = seccomp_data.nr
        ins(JGE_K, 0, 1, X32_SYSCALL_BIT),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}
