//! Device rules (`linux.resources.devices` + runc's default allow list)
//! seen from inside a container, zygote side by side with runc.
//!
//! The container makes device nodes with `mknod` (allowed for any device by
//! the defaults' `c *:* m` / `b *:* m`) and opens them: nodes the rules do
//! not allow fail with EPERM from the device cgroup, the standard devices
//! open. Nothing here depends on the cgroup version: on a v1 host the
//! devices controller enforces, on a v2 host the BPF device program
//! (hack/vm/run.sh runs this file there).

use zygote_integration_tests::*;

/// Makes `/tmp/kmsg` (c 1:11) and `/tmp/sdp` (b 8:240, a SCSI disk no test machine has), then prints one line
/// per `r:`/`w:` case: `ok` or the error's last part (busybox prints
/// `sh: can't open '<path>': <strerror>`). Nothing is read or written.
const PROBE: &str = r#"mkdir -p /tmp
mknod /tmp/kmsg c 1 11 && mknod /tmp/sdp b 8 240 || exit 2
for c in r:/dev/null w:/dev/null r:/dev/zero w:/dev/full r:/dev/urandom r:/dev/tty w:/tmp/kmsg r:/tmp/sdp w:/tmp/sdp; do
  p=${c#*:}
  case $c in
    r:*) err=$( (true <"$p") 2>&1 ) ;;
    w:*) err=$( (true >>"$p") 2>&1 ) ;;
  esac
  if [ -n "$err" ]; then echo "$c ${err##*: }"; else echo "$c ok"; fi
done"#;

/// What the standard devices give in every case.
const STANDARD: &str = "r:/dev/null ok
w:/dev/null ok
r:/dev/zero ok
w:/dev/full ok
r:/dev/urandom ok
r:/dev/tty No such device or address
";

/// ctr's default spec: its device rules deny everything, the defaults
/// allow the standard devices (`/dev/tty` opens as far as the driver, which
/// says there is no controlling terminal), the made nodes stay closed.
#[test]
fn default_rules_deny_made_nodes_and_allow_standard_devices() {
    let expected = (
        0,
        format!(
            "{STANDARD}w:/tmp/kmsg Operation not permitted
r:/tmp/sdp Operation not permitted
w:/tmp/sdp Operation not permitted
"
        ),
    );
    both_expect("device rules: ctr's defaults", expected, |rt| {
        let c = Container::new("dev-default", rt);
        let out = Ctr::new().run_rm(rt, c.id(), &[], &["sh", "-c", PROBE]);
        (out.code(), out.stdout)
    });
}

/// A spec rule opens a hole (`c 1:11 w`, /dev/kmsg for writing) after a
/// deny-all; a later rule closes part of an earlier one (`b 8:240 rw`, then
/// `b 8:240 w` denied: the last match wins, reading stays allowed so the open
/// reaches the driver, which has no such disk: ENXIO).
#[test]
fn spec_rules_in_order_last_match_wins() {
    let expected = (
        0,
        format!(
            "{STANDARD}w:/tmp/kmsg ok
r:/tmp/sdp No such device or address
w:/tmp/sdp Operation not permitted
"
        ),
    );
    both_expect("device rules: spec holes", expected, |rt| {
        let c = Container::new("dev-rules", rt);
        let b = ConfigBundle::new(c.id(), &["sh", "-c", PROBE], |s| {
            s["linux"]["resources"]["devices"] = serde_json::json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"},
                {"allow": true, "type": "b", "major": 8, "minor": 240, "access": "rw"},
                {"allow": false, "type": "b", "major": 8, "minor": 240, "access": "w"}
            ]);
        });
        let out = Ctr::new().run_config(rt, &b, c.id());
        (out.code(), out.stdout)
    });
}

/// Rules without a leading deny-all still start from "deny everything"
/// (runc builds an allow-list whatever the rules say): the one hole is open,
/// the other made nodes stay closed.
#[test]
fn rules_without_a_deny_all_start_from_deny() {
    let expected = (
        0,
        format!(
            "{STANDARD}w:/tmp/kmsg ok
r:/tmp/sdp Operation not permitted
w:/tmp/sdp Operation not permitted
"
        ),
    );
    both_expect("device rules: no deny-all", expected, |rt| {
        let c = Container::new("dev-nodeny", rt);
        let b = ConfigBundle::new(c.id(), &["sh", "-c", PROBE], |s| {
            s["linux"]["resources"]["devices"] =
                serde_json::json!([{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}]);
        });
        let out = Ctr::new().run_config(rt, &b, c.id());
        (out.code(), out.stdout)
    });
}
