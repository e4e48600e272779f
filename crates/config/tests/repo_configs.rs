//! The configuration files the repository ships (test passes, benchmark)
//! load and say what the tests and the benchmark rely on.

use std::path::Path;

use zygote_config::Config;

/// The Landlock ABI of the machines the test passes run on (Linux >= 6.15).
const LANDLOCK_ABI: u32 = 7;

fn load(rel: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    Config::load(Some(&path), LANDLOCK_ABI).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn test_pass_configs_differ_only_in_pool_sizes() {
    let warm = load("tests/integration/config/warm.toml");
    let cold = load("tests/integration/config/cold.toml");
    assert_eq!(
        warm.profiles.keys().collect::<Vec<_>>(),
        ["churn", "default", "locked", "open", "wasm"]
    );
    assert_eq!(
        cold.profiles.keys().collect::<Vec<_>>(),
        ["churn", "default", "locked", "open", "wasm"]
    );
    for (name, w) in &warm.profiles {
        let c = &cold.profiles[name];
        assert!(w.pool.initial > 0, "{name}: warm pass must fill the pool");
        assert_eq!(c.pool.max, 0, "{name}: cold pass must disable the pool");
        assert_eq!(
            (&w.landlock, &w.seccomp, &w.namespaces),
            (&c.landlock, &c.seccomp, &c.namespaces),
            "{name}"
        );
    }
    assert!(warm.profiles["locked"].landlock.is_some() && warm.profiles["locked"].seccomp.is_some());
}

#[test]
fn bench_config_has_a_warm_default_and_a_cold_profile() {
    let c = load("hack/bench/zygote.toml");
    assert!(c.profiles["default"].pool.initial > 0);
    assert_eq!(c.profiles["cold"].pool.max, 0);
}
