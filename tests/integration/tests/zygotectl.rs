//! `zygotectl` against real daemons: `status` and `profiles` (tables and
//! `--json`) of the test containerd's daemon, compared with its
//! `pools.json` and config; `profiles check` on good and bad files; the
//! "no daemon" message; and live reload (`zygotectl reload` and SIGHUP,
//! good and refused) on the daemon of a private containerd whose config is a
//! file of the test's own, so the shared test config is never touched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use zygote_integration_tests::*;

const Z: Runtime = Runtime::Zygote;

/// `zygotectl --address <test containerd> <args>`.
fn ctl(args: &[&str]) -> Output {
    zygotectl(&[&["--address", &env().address], args].concat())
}

fn test_config() -> PathBuf {
    PathBuf::from(std::env::var("ZYGOTE_CONFIG").expect("hack/test.sh sets ZYGOTE_CONFIG"))
}

#[test]
fn status_matches_the_daemon_and_pools_json() {
    if !require_runtime(Z, "status_matches_the_daemon_and_pools_json") {
        return;
    }
    ensure_daemon();
    let id = unique_id("ctl-status", Z);
    Ctr::new().run_detached(Z, &id, &[], &["sleep", "60"]);
    let dir = daemon_dir().expect("daemon dir");
    let daemon_pid: u32 = std::fs::read_to_string(dir.join("daemon.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let st = json_of(&ctl(&["status", "--json"]));
    let s = &st;
    assert_eq!(st["pid"], daemon_pid, "{s}");
    assert_eq!(st["version"], env!("CARGO_PKG_VERSION"), "{s}");
    assert!(st["tasks_running"].as_u64().unwrap() >= 1, "our sleeper runs: {s}");
    assert!(st["tasks"].as_u64() >= st["tasks_running"].as_u64(), "{s}");
    assert_eq!(st["config"], test_config().to_string_lossy().as_ref(), "{s}");
    assert!(
        st.get("metrics_url").is_some(),
        "status carries the metrics URL field: {s}"
    );
    // Every profile's claims and fallbacks are pools.json's (the file is
    // written shortly after a change: wait for the two to agree).
    let agree = wait_until(Duration::from_secs(10), || {
        let st = json_of(&ctl(&["status", "--json"]))["pools"].clone();
        let file = pools_json()["profiles"].clone();
        let names = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
        names(&st) == names(&file)
            && file.as_object().unwrap().iter().all(|(name, p)| {
                st[name]["claims"] == p["claimed"]
                    && st[name]["fallbacks"] == p["fallbacks"]
                    && st[name]["target"] == p["target"]
            })
    });
    assert!(
        agree,
        "status pools differ from pools.json:\n{}\n{}",
        ctl(&["status", "--json"]).stdout,
        pools_json()
    );
    for p in ["default", "locked", "open", "churn", "wasm"] {
        assert!(st["pools"][p]["pressure"].is_null(), "no PSI yet: {s}");
    }

    let table = ctl(&["status"]);
    assert!(table.success(), "{}", table.describe());
    assert!(table.stdout.contains(&format!("pid {daemon_pid}")), "{}", table.stdout);
    assert!(
        table.stdout.contains("PROFILE") && table.stdout.contains("PRESSURE"),
        "{}",
        table.stdout
    );
    for p in ["default", "locked", "open", "churn", "wasm"] {
        assert!(
            table.stdout.lines().any(|l| l.split_whitespace().next() == Some(p)),
            "no row for {p}: {}",
            table.stdout
        );
    }
    Ctr::new().cleanup(&id);
    assert_no_leftovers(&id);
}

#[test]
fn profiles_lists_the_config_in_force() {
    if !require_runtime(Z, "profiles_lists_the_config_in_force") {
        return;
    }
    ensure_daemon();
    let loaded = json_of(&ctl(&["profiles", "--json"]));
    let checked = json_of(&zygotectl(&[
        "profiles",
        "check",
        "--json",
        &test_config().to_string_lossy(),
    ]));
    assert_eq!(loaded, checked, "the daemon's profiles are the file's");
    assert!(loaded["error"].is_null(), "{loaded}");
    let names: Vec<&str> = loaded["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["churn", "default", "locked", "open", "wasm"]);
    assert_eq!(loaded["default_profile"], "default");
    let locked = &loaded["profiles"][2];
    assert_eq!(
        (locked["landlock"].as_bool(), locked["seccomp"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(loaded["profiles"][4]["mode"], "wasm");

    let table = ctl(&["profiles"]);
    assert!(table.success(), "{}", table.describe());
    let row = |name: &str| {
        table
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row {name}: {}", table.stdout))
            .to_string()
    };
    assert!(row("locked").contains("landlock, seccomp"), "{}", table.stdout);
    assert!(row("default (default)").contains("namespace"), "{}", table.stdout);
    assert!(row("wasm").contains("wasm"), "{}", table.stdout);
}

#[test]
fn profiles_check_names_file_profile_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.toml");
    std::fs::write(
        &good,
        "[profiles.default]\n[profiles.fast.pool]\nmin = 1\ninitial = 2\nmax = 4\n",
    )
    .unwrap();
    let out = zygotectl(&["profiles", "check", &good.to_string_lossy()]);
    assert!(out.success(), "{}", out.describe());
    assert!(out.stdout.contains("ok, 2 profile(s)"), "{}", out.describe());
    assert!(
        out.stdout.lines().any(|l| l.starts_with("fast") && l.contains("1/2/4")),
        "{}",
        out.stdout
    );

    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[profiles.default]\n[profiles.fast.pool]\ninitial = 5\nmax = 2\n").unwrap();
    let out = zygotectl(&["profiles", "check", &bad.to_string_lossy()]);
    assert_eq!(out.code(), 1, "{}", out.describe());
    let msg = out.stderr.trim();
    assert!(
        msg.contains(&*bad.to_string_lossy()) && msg.contains("profile \"fast\"") && msg.contains("pool.initial"),
        "the message names file, profile and field: {msg}"
    );
    let unknown = tmp.path().join("unknown.toml");
    std::fs::write(&unknown, "[profiles.fast.pool]\nmni = 1\n").unwrap();
    let out = zygotectl(&["profiles", "check", "--json", &unknown.to_string_lossy()]);
    assert_eq!(out.code(), 1, "{}", out.describe());
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["profiles"], serde_json::json!([]));
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains(&*unknown.to_string_lossy()) && e.contains("fast") && e.contains("mni"),
        "{e}"
    );
}

#[test]
fn no_daemon_is_said_with_the_socket_tried() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_string_lossy().into_owned();
    let out = zygotectl(&["--state-dir", &root, "--address", "/nowhere/containerd.sock", "status"]);
    assert_eq!(out.code(), 3, "{}", out.describe());
    let dir = std::fs::read_dir(tmp.path()).unwrap().count();
    assert_eq!(dir, 0, "zygotectl created nothing");
    assert!(
        out.stderr.contains("no zygote daemon answers at")
            && out.stderr.contains(&format!("{root}/"))
            && out.stderr.contains("/ctl.sock")
            && out.stderr.contains("/nowhere/containerd.sock.ttrpc"),
        "{}",
        out.describe()
    );
}

const BEFORE: &str = "[profiles.default.pool]\nmin = 0\ninitial = 1\nmax = 2\n\
                      [profiles.gone.pool]\nmin = 0\ninitial = 1\nmax = 2\n";
const AFTER: &str = "[profiles.default.pool]\nmin = 0\ninitial = 2\nmax = 3\n\
                     [profiles.fresh.pool]\nmin = 0\ninitial = 1\nmax = 2\n";
const BAD: &str = "[profiles.default.pool]\ninitial = 5\nmax = 2\n";
const HUP: &str = "[profiles.default.pool]\nmin = 0\ninitial = 2\nmax = 3\n\
                   [profiles.fresh.pool]\nmin = 0\ninitial = 1\nmax = 2\n\
                   [profiles.hup.pool]\nmin = 0\ninitial = 1\nmax = 1\n";

#[test]
fn reload_applies_a_good_config_and_refuses_a_bad_one() {
    if !require_runtime(Z, "reload_applies_a_good_config_and_refuses_a_bad_one") {
        return;
    }
    let node = ControlledNode::start(BEFORE);
    let ctr = node.containerd.ctr();
    // The daemon starts with the first task; this one runs across the reloads.
    let survivor = unique_id("ctl-survivor", Z);
    let (out, survivor_bundle) = node.run(
        &survivor,
        "default",
        &["sh", "-c", "while [ ! -e /go ]; do sleep 0.1; done; exit 7"],
        true,
    );
    assert!(out.success(), "{}", out.describe());
    let dir = node.daemon_dir();
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join("ctl.sock")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the control socket is root-only");
    assert!(
        wait_until(Duration::from_secs(20), || node.idle("gone").len() == 1),
        "profile gone's pool fills: {}",
        node.status()
    );
    let gone = node.idle("gone");
    let gone_cgroups: Vec<String> = daemon_pool_cgroups(&dir)
        .into_iter()
        .filter(|c| gone.iter().any(|z| pool_cgroup_pid(Path::new(c)) == Some(z.child)))
        .collect();

    // A good reload: gone removed, fresh added, default's max changed.
    std::fs::write(&node.config, AFTER).unwrap();
    let r = json_of(&node.ctl(&["reload", "--json"]));
    assert_eq!(r["added"], serde_json::json!(["fresh"]), "{r}");
    assert_eq!(r["removed"], serde_json::json!(["gone"]), "{r}");
    assert_eq!(r["changed"], serde_json::json!(["default"]), "{r}");
    assert!(r["zygotes_drained"].as_u64().unwrap() >= 1, "{r}");
    for z in &gone {
        assert!(
            wait_proc_gone(z.pid as u32, Duration::from_secs(10)),
            "zygote {z:?} of a removed profile still runs"
        );
        assert!(
            wait_proc_gone(z.child as u32, Duration::from_secs(10)),
            "its child still runs: {z:?}"
        );
    }
    let left: Vec<String> = daemon_pool_cgroups(&dir)
        .into_iter()
        .filter(|c| gone_cgroups.contains(c))
        .collect();
    assert!(left.is_empty(), "pool cgroups of the removed profile left: {left:?}");
    assert!(node.idle("gone").is_empty());
    let st = node.status();
    assert!(st["pools"].get("gone").is_none(), "{st}");
    // default's new bounds (initial 1 -> 2) apply to its pool.
    assert!(
        wait_until(Duration::from_secs(20), || node.idle("default").len() == 2),
        "default's pool grows to its new initial: {}",
        node.status()
    );
    assert!(
        wait_until(Duration::from_secs(20), || node.idle("fresh").len() == 1),
        "the new profile's pool fills: {}",
        node.status()
    );
    let warm = unique_id("ctl-fresh", Z);
    let (out, _b) = node.run(&warm, "fresh", &["echo", "fresh"], false);
    assert!(out.success() && out.stdout == "fresh\n", "{}", out.describe());
    assert_eq!(
        node.timing_path(&warm).as_deref(),
        Some("warm"),
        "a task of the new profile runs warm"
    );
    let _ = ctr.run(&["container", "delete", &warm]);

    // A bad config is refused with the load message; the old one stays.
    std::fs::write(&node.config, BAD).unwrap();
    let check = node.ctl(&["profiles", "check", &node.config.to_string_lossy()]);
    assert_eq!(check.code(), 1, "{}", check.describe());
    let refused = node.ctl(&["reload"]);
    assert_eq!(refused.code(), 1, "{}", refused.describe());
    let load_message = check.stderr.trim().trim_start_matches("zygotectl: ");
    assert!(
        load_message.contains("pool.initial") && refused.stderr.contains(load_message),
        "the refusal carries the load message\nreload: {}\ncheck: {}",
        refused.stderr,
        check.stderr
    );
    let profiles = json_of(&node.ctl(&["profiles", "--json"]));
    let names: Vec<&str> = profiles["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "fresh"], "the config in force stays: {profiles}");
    assert!(wait_until(Duration::from_secs(20), || node.idle("fresh").len() == 1));
    let again = unique_id("ctl-fresh2", Z);
    let (out, _b2) = node.run(&again, "fresh", &["echo", "still"], false);
    assert!(out.success() && out.stdout == "still\n", "{}", out.describe());
    assert_eq!(node.timing_path(&again).as_deref(), Some("warm"));
    let _ = ctr.run(&["container", "delete", &again]);

    // SIGHUP reloads too.
    std::fs::write(&node.config, HUP).unwrap();
    let pid: i32 = std::fs::read_to_string(dir.join("daemon.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(send_signal(pid as u32, libc::SIGHUP));
    assert!(
        wait_until(Duration::from_secs(20), || node.idle("hup").len() == 1),
        "SIGHUP added profile hup: {}",
        node.status()
    );
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("configuration reloaded") && l.contains("SIGHUP")),
        "the reload is logged"
    );
    assert!(log.contains("configuration refused"), "the refusal is logged");

    // The task that ran through all of it is untouched and exits normally.
    assert_eq!(
        ctr.wait_status(&survivor, "RUNNING", Duration::from_secs(5)).status,
        "RUNNING"
    );
    std::fs::write(survivor_bundle.rootfs.join("go"), b"").unwrap();
    ctr.wait_status(&survivor, "STOPPED", Duration::from_secs(20));
    assert_eq!(ctr.delete_task_exit_status(&survivor), Ok(7));
    let _ = ctr.run(&["container", "delete", &survivor]);
    drop(node);
    assert!(
        daemon_pool_cgroups(&dir).is_empty(),
        "pool cgroups left after stop: {:?}",
        daemon_pool_cgroups(&dir)
    );
}
