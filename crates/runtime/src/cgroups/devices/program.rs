//! The device-filter program: OCI device rules turned into eBPF
//! instructions for `BPF_PROG_TYPE_CGROUP_DEVICE`, and the handful of
//! instruction encodings the program needs.
//!
//! The kernel calls the program with a `struct bpf_cgroup_dev_ctx`
//! (`u32 access_type` = device type in the low 16 bits, requested access in
//! the high 16; `u32 major`; `u32 minor`) and lets the access through when
//! it returns 1.
//!
//! Semantics are those of the v1 devices controller fed the same rules in
//! order (what runc and crun emulate): the **last matching rule wins**,
//! decided per access bit. The program walks the rules from the last to the
//! first, keeping the requested bits not yet decided in `r3`: a matching
//! deny rule that names an undecided bit denies, a matching allow rule
//! decides the bits it names and allows once none are left; bits no rule
//! decided are denied (allow-list default, as runc's emulator starts from).
//! Deciding per bit also gets two allow rules for the same device (`r`,
//! then `w`) right for a read-write open, which v1 merges into one entry.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::cgroups::{CgroupError, Result};

/// `BPF_DEVCG_DEV_BLOCK` / `BPF_DEVCG_DEV_CHAR` from `<linux/bpf.h>`.
pub(crate) const DEV_BLOCK: u32 = 1;
pub(crate) const DEV_CHAR: u32 = 2;
/// `BPF_DEVCG_ACC_*` from `<linux/bpf.h>`.
pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
pub(crate) const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// One device rule in the program's terms. `None` fields are wildcards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) allow: bool,
    /// [`DEV_BLOCK`] or [`DEV_CHAR`]; `None` for type `a` (every device).
    pub(crate) kind: Option<u32>,
    pub(crate) major: Option<u32>,
    pub(crate) minor: Option<u32>,
    /// `ACC_*` bits, never 0.
    pub(crate) access: u8,
}

impl Rule {
    /// The rule for an OCI `linux.resources.devices` entry; `None` for
    /// type `p` (FIFOs are not device-controlled, as on v1).
    pub(crate) fn from_oci(r: &LinuxDeviceCgroup) -> Result<Option<Rule>> {
        let kind = match r.typ() {
            None | Some(LinuxDeviceType::A) => None,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Some(DEV_CHAR),
            Some(LinuxDeviceType::B) => Some(DEV_BLOCK),
            Some(LinuxDeviceType::P) => return Ok(None),
        };
        let access = parse_access(r.access().as_deref().unwrap_or(""))?;
        let (major, minor) = match kind {
            // v1 writes `a *:*` whatever numbers the rule carries.
            None => (None, None),
            Some(_) => (number("major", r.major())?, number("minor", r.minor())?),
        };
        Ok(Some(Rule {
            allow: r.allow(),
            kind,
            major,
            minor,
            access,
        }))
    }

    /// An allow rule in the v1 file syntax (`c 1:3 rwm`, `c 136:* rwm`).
    pub(crate) fn parse_allow(line: &str) -> Result<Rule> {
        let bad = || {
            invalid(
                &format!("device rule {line:?}"),
                "is not `<a|b|c> <major|*>:<minor|*> <rwm>`",
            )
        };
        let mut words = line.split_whitespace();
        let (Some(t), Some(nums), Some(acc), None) = (words.next(), words.next(), words.next(), words.next()) else {
            return Err(bad());
        };
        let kind = match t {
            "a" => None,
            "c" => Some(DEV_CHAR),
            "b" => Some(DEV_BLOCK),
            _ => return Err(bad()),
        };
        let (maj, min) = nums.split_once(':').ok_or_else(bad)?;
        let num = |s: &str| match s {
            "*" => Ok(None),
            s => s.parse::<u32>().map(Some).map_err(|_| bad()),
        };
        Ok(Rule {
            allow: true,
            kind,
            major: num(maj)?,
            minor: num(min)?,
            access: parse_access(acc)?,
        })
    }

    fn is_unconditional(&self) -> bool {
        self.kind.is_none() && self.major.is_none() && self.minor.is_none() && self.access == ACC_ALL
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidResource {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// `rwm` letters to `ACC_*` bits; empty means all (as the v1 path writes).
fn parse_access(s: &str) -> Result<u8> {
    if s.is_empty() {
        return Ok(ACC_ALL);
    }
    s.chars().try_fold(0, |acc, c| match c {
        'r' => Ok(acc | ACC_READ),
        'w' => Ok(acc | ACC_WRITE),
        'm' => Ok(acc | ACC_MKNOD),
        _ => Err(invalid(
            "linux.resources.devices[].access",
            format!("{s:?} has {c:?}, expected only r, w and m"),
        )),
    })
}

/// A major/minor number: negative or missing is the wildcard. Numbers the
/// instruction's signed 32-bit immediate cannot hold are refused (Linux
/// majors have 12 bits, minors 20).
fn number(what: &str, n: Option<i64>) -> Result<Option<u32>> {
    match n {
        None => Ok(None),
        Some(v) if v < 0 => Ok(None),
        Some(v) => i32::try_from(v).map(|v| Some(v as u32)).map_err(|_| {
            invalid(
                &format!("linux.resources.devices[].{what}"),
                format!("{v} is out of range"),
            )
        }),
    }
}

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn` (on a
/// little-endian machine the destination register is the low nibble).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    pub(crate) code: u8,
    pub(crate) regs: u8,
    pub(crate) off: i16,
    pub(crate) imm: i32,
}

/// Opcodes used (class | operation | source), from `<linux/bpf_common.h>`.
pub(crate) mod op {
    /// `BPF_LDX | BPF_MEM | BPF_W`: dst = *(u32 *)(src + off).
    pub(crate) const LDX_W: u8 = 0x61;
    /// `BPF_ALU | BPF_AND | BPF_K`: dst32 &= imm.
    pub(crate) const AND32_IMM: u8 = 0x54;
    /// `BPF_ALU | BPF_RSH | BPF_K`: dst32 >>= imm.
    pub(crate) const RSH32_IMM: u8 = 0x74;
    /// `BPF_ALU | BPF_MOV | BPF_K`: dst32 = imm.
    pub(crate) const MOV32_IMM: u8 = 0xb4;
    /// `BPF_ALU | BPF_MOV | BPF_X`: dst32 = src32.
    pub(crate) const MOV32_REG: u8 = 0xbc;
    /// `BPF_JMP | BPF_JNE | BPF_K`: if dst != imm goto pc + 1 + off.
    pub(crate) const JNE_IMM: u8 = 0x55;
    /// `BPF_JMP | BPF_JEQ | BPF_K`: if dst == imm goto pc + 1 + off.
    pub(crate) const JEQ_IMM: u8 = 0x15;
    /// `BPF_JMP | BPF_EXIT`: return r0.
    pub(crate) const EXIT: u8 = 0x95;
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// Placeholder offset of a jump to the next rule's block.
const TO_NEXT: i16 = i16::MAX;

/// The program for `rules` in spec order (the last matching rule wins).
pub(crate) fn build(rules: &[Rule]) -> Vec<Insn> {
    // r2 = device type, r3 = undecided access bits, r4 = major, r5 = minor.
    let mut prog = vec![
        insn(op::LDX_W, 2, 1, 0, 0),
        insn(op::AND32_IMM, 2, 0, 0, 0xffff),
        insn(op::LDX_W, 3, 1, 0, 0),
        insn(op::RSH32_IMM, 3, 0, 0, 16),
        insn(op::LDX_W, 4, 1, 4, 0),
        insn(op::LDX_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        prog.extend(block(rule));
        if rule.is_unconditional() {
            // Every request is decided here; earlier rules never run.
            break;
        }
    }
    // No rule decided some requested bit: deny.
    prog.extend([insn(op::MOV32_IMM, 0, 0, 0, 0), insn(op::EXIT, 0, 0, 0, 0)]);
    prog
}

/// One rule's instructions; falls through to the next block when the rule
/// does not decide the request.
fn block(rule: &Rule) -> Vec<Insn> {
    let mut b = Vec::with_capacity(8);
    if let Some(kind) = rule.kind {
        b.push(insn(op::JNE_IMM, 2, 0, TO_NEXT, kind as i32));
    }
    if let Some(major) = rule.major {
        b.push(insn(op::JNE_IMM, 4, 0, TO_NEXT, major as i32));
    }
    if let Some(minor) = rule.minor {
        b.push(insn(op::JNE_IMM, 5, 0, TO_NEXT, minor as i32));
    }
    let access = i32::from(rule.access);
    if rule.allow {
        // The rule decides its bits; allow when no requested bit is left.
        b.push(insn(op::AND32_IMM, 3, 0, 0, !access));
        b.push(insn(op::JNE_IMM, 3, 0, TO_NEXT, 0));
        b.push(insn(op::MOV32_IMM, 0, 0, 0, 1));
    } else {
        // Deny when it names any bit still undecided (r1 is free scratch).
        b.push(insn(op::MOV32_REG, 1, 3, 0, 0));
        b.push(insn(op::AND32_IMM, 1, 0, 0, access));
        b.push(insn(op::JEQ_IMM, 1, 0, TO_NEXT, 0));
        b.push(insn(op::MOV32_IMM, 0, 0, 0, 0));
    }
    b.push(insn(op::EXIT, 0, 0, 0, 0));
    let len = b.len();
    for (i, ins) in b.iter_mut().enumerate() {
        if ins.off == TO_NEXT {
            ins.off = (len - i - 1) as i16;
        }
    }
    b
}
