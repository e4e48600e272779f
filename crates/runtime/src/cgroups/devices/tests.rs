//! Generator tests: the program is run by a small interpreter of the
//! opcodes it uses and compared with the rules' meaning (last match wins,
//! per access bit, default deny).

use oci_spec::runtime::LinuxDeviceCgroup;
use proptest::prelude::*;
use serde_json::json;

use super::program::{build, op, Insn, Rule, ACC_ALL, ACC_MKNOD, ACC_READ, ACC_WRITE, DEV_BLOCK, DEV_CHAR};
use super::rules;

/// Runs `prog` on a `bpf_cgroup_dev_ctx`; panics on anything the
/// generator should never emit (unknown opcode, jump out of the program).
fn run(prog: &[Insn], kind: u32, access: u8, major: u32, minor: u32) -> bool {
    let ctx = [kind | (u32::from(access) << 16), major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..10_000 {
        let i = prog[pc];
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        let imm32 = i.imm as u32;
        let mut next = pc + 1;
        let jump = |cond: bool| {
            if cond {
                (pc as i64 + 1 + i64::from(i.off)) as usize
            } else {
                pc + 1
            }
        };
        match i.code {
            op::LDX_W => {
                assert_eq!(src, 1, "loads only from the context");
                r[dst] = u64::from(ctx[(i.off / 4) as usize]);
            }
            op::AND32_IMM => r[dst] = u64::from(r[dst] as u32 & imm32),
            op::RSH32_IMM => r[dst] = u64::from((r[dst] as u32) >> imm32),
            op::MOV32_IMM => r[dst] = u64::from(imm32),
            op::MOV32_REG => r[dst] = u64::from(r[src] as u32),
            op::JNE_IMM => next = jump(r[dst] != i.imm as i64 as u64),
            op::JEQ_IMM => next = jump(r[dst] == i.imm as i64 as u64),
            op::EXIT => return r[0] == 1,
            c => panic!("unexpected opcode {c:#x} at {pc}"),
        }
        assert!(next < prog.len(), "jump out of the program at {pc}");
        pc = next;
    }
    panic!("program did not finish");
}

/// The rules' meaning, straight from the definition.
fn reference(rules: &[Rule], kind: u32, access: u8, major: u32, minor: u32) -> bool {
    (0..3).map(|b| 1u8 << b).filter(|bit| access & bit != 0).all(|bit| {
        rules
            .iter()
            .rev()
            .find(|r| {
                r.access & bit != 0
                    && r.kind.is_none_or(|k| k == kind)
                    && r.major.is_none_or(|m| m == major)
                    && r.minor.is_none_or(|m| m == minor)
            })
            .is_some_and(|r| r.allow)
    })
}

fn oci(v: serde_json::Value) -> Vec<LinuxDeviceCgroup> {
    serde_json::from_value(v).unwrap()
}

fn allowed(spec: serde_json::Value, kind: u32, access: u8, major: u32, minor: u32) -> bool {
    let rules = rules(&oci(spec)).unwrap();
    let prog = build(&rules);
    let got = run(&prog, kind, access, major, minor);
    assert_eq!(
        got,
        reference(&rules, kind, access, major, minor),
        "interpreter vs reference"
    );
    got
}

const RW: u8 = ACC_READ | ACC_WRITE;

#[test]
fn defaults_only_allow_the_standard_devices() {
    let none = json!([]);
    for (maj, min) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (10, 200),
        (136, 4),
    ] {
        assert!(allowed(none.clone(), DEV_CHAR, RW, maj, min), "c {maj}:{min}");
    }
    assert!(!allowed(none.clone(), DEV_CHAR, ACC_READ, 1, 11), "/dev/kmsg");
    assert!(!allowed(none.clone(), DEV_BLOCK, ACC_READ, 8, 0), "/dev/sda");
    assert!(
        !allowed(none.clone(), DEV_BLOCK, ACC_READ, 1, 3),
        "block 1:3 is not /dev/null"
    );
    // mknod of anything is allowed (c *:* m, b *:* m); the node is useless.
    assert!(allowed(none.clone(), DEV_CHAR, ACC_MKNOD, 1, 11));
    assert!(allowed(none.clone(), DEV_BLOCK, ACC_MKNOD, 8, 0));
    assert!(!allowed(none, DEV_BLOCK, ACC_MKNOD | ACC_READ, 8, 0));
}

#[test]
fn last_matching_rule_wins() {
    let allow_then_deny = json!([
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"},
        {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "w"}
    ]);
    assert!(allowed(allow_then_deny.clone(), DEV_CHAR, ACC_READ, 1, 11));
    assert!(!allowed(allow_then_deny.clone(), DEV_CHAR, ACC_WRITE, 1, 11));
    assert!(!allowed(allow_then_deny, DEV_CHAR, RW, 1, 11));
    let deny_then_allow = json!([
        {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"}
    ]);
    assert!(allowed(deny_then_allow.clone(), DEV_CHAR, RW, 1, 11));
    assert!(
        allowed(deny_then_allow, DEV_CHAR, ACC_MKNOD, 1, 11),
        "c *:* m from the defaults"
    );
}

#[test]
fn wildcards_and_type_a() {
    // Docker's privileged form: allow everything.
    let all = json!([{"allow": true, "access": "rwm"}]);
    assert!(allowed(all.clone(), DEV_BLOCK, RW, 8, 0));
    assert!(allowed(all, DEV_CHAR, RW | ACC_MKNOD, 4095, 1048575));
    // The usual spec: deny all first, then holes.
    let holes = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "b", "major": 8, "access": "r"},
        {"allow": true, "type": "c", "minor": 42, "access": "rw"},
        {"allow": true, "type": "c", "major": 7, "minor": -1, "access": "rw"}
    ]);
    assert!(allowed(holes.clone(), DEV_BLOCK, ACC_READ, 8, 16), "b 8:* r");
    assert!(!allowed(holes.clone(), DEV_BLOCK, RW, 8, 16), "b 8:* is read-only");
    assert!(!allowed(holes.clone(), DEV_CHAR, ACC_READ, 8, 16), "type matters");
    assert!(allowed(holes.clone(), DEV_CHAR, RW, 99, 42), "c *:42");
    assert!(allowed(holes.clone(), DEV_CHAR, RW, 7, 3), "c 7:* (minor -1)");
    assert!(!allowed(holes, DEV_CHAR, RW, 6, 3));
    // Type a ignores the numbers, as on v1.
    let deny_a = json!([{"allow": false, "type": "a", "major": 1, "minor": 3, "access": "rwm"}]);
    assert!(!allowed(deny_a.clone(), DEV_BLOCK, ACC_READ, 8, 0));
    assert!(allowed(deny_a, DEV_CHAR, ACC_READ, 1, 3), "the defaults come after");
}

#[test]
fn access_combinations() {
    let spec = |access: &str| json!([{"allow": true, "type": "b", "major": 8, "minor": 0, "access": access}]);
    for (access, bits) in [
        ("r", ACC_READ),
        ("w", ACC_WRITE),
        ("m", ACC_MKNOD),
        ("rw", RW),
        ("rwm", ACC_ALL),
    ] {
        for want in 1..=ACC_ALL {
            let expect = want & !bits & !ACC_MKNOD == 0; // m is always allowed
            assert_eq!(
                allowed(spec(access), DEV_BLOCK, want, 8, 0),
                expect,
                "{access} vs {want:#b}"
            );
        }
    }
    // Bits granted by separate rules add up.
    let split = json!([
        {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"},
        {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "w"}
    ]);
    assert!(allowed(split, DEV_BLOCK, RW, 8, 0));
    // An empty access string means rwm, as on v1.
    assert!(allowed(spec(""), DEV_BLOCK, RW, 8, 0));
}

#[test]
fn fifo_rules_are_skipped_and_bad_rules_refused() {
    assert_eq!(rules(&oci(json!([{"allow": true, "type": "p"}]))).unwrap().len(), 12);
    let bad_access = oci(json!([{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rx"}]));
    let err = rules(&bad_access).unwrap_err().to_string();
    assert!(err.contains("access") && err.contains('x'), "{err}");
    let big = oci(json!([{"allow": true, "type": "c", "major": 1, "minor": 3_000_000_000i64, "access": "r"}]));
    assert!(rules(&big).unwrap_err().to_string().contains("minor"));
    assert!(Rule::parse_allow("c 1:3").is_err());
    assert!(Rule::parse_allow("x 1:3 rwm").is_err());
    assert_eq!(
        Rule::parse_allow("c 136:* rwm").unwrap(),
        Rule {
            allow: true,
            kind: Some(DEV_CHAR),
            major: Some(136),
            minor: None,
            access: ACC_ALL
        }
    );
}

#[test]
fn rules_before_an_unconditional_one_are_not_emitted() {
    let deny_null = Rule::from_oci(&oci(json!([{"allow": false, "type": "c", "major": 1, "minor": 3}]))[0])
        .unwrap()
        .unwrap();
    let allow_all = Rule::parse_allow("a *:* rwm").unwrap();
    assert_eq!(build(&[deny_null, deny_null, allow_all]), build(&[allow_all]));
    assert!(build(&[allow_all, deny_null]).len() > build(&[allow_all]).len());
    assert!(!run(&build(&[allow_all, deny_null]), DEV_CHAR, ACC_READ, 1, 3));
    assert!(run(&build(&[deny_null, allow_all]), DEV_CHAR, ACC_READ, 1, 3));
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    (
        any::<bool>(),
        prop_oneof![Just(None), Just(Some(DEV_BLOCK)), Just(Some(DEV_CHAR))],
        prop::option::of(0u32..3),
        prop::option::of(0u32..3),
        1u8..=ACC_ALL,
    )
        .prop_map(|(allow, kind, major, minor, access)| Rule {
            allow,
            kind,
            major: major.filter(|_| kind.is_some()),
            minor: minor.filter(|_| kind.is_some()),
            access,
        })
}

proptest! {
    #[test]
    fn program_matches_the_rules(
        rules in prop::collection::vec(arb_rule(), 0..8),
        kind in prop_oneof![Just(DEV_BLOCK), Just(DEV_CHAR)],
        access in 1u8..=ACC_ALL,
        major in 0u32..3,
        minor in 0u32..3,
    ) {
        let prog = build(&rules);
        prop_assert_eq!(run(&prog, kind, access, major, minor), reference(&rules, kind, access, major, minor));
    }
}
