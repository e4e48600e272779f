//! CRI tests: every test runs its scenario through handler `runc` and
//! handler `zygote` (see `for_each_handler`) with the same assertions.
//! One test binary, so one CRI containerd serves them all.

mod pods {
    mod confinement;
    mod exec_logs;
    mod lifecycle;
    mod namespaces;
    mod profiles;
    mod resources;
    mod seccomp;
    mod security;
    mod streaming;
}
