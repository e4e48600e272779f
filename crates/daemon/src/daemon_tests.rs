//! The daemon's task table without root: a daemon built from [`Settings`]
//! by hand, tasks whose "monitor" is the far end of a socketpair.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use containerd_shim_protos::api::{CreateTaskRequest, ExecProcessRequest, Status as ApiStatus};
use containerd_shim_protos::ttrpc::{self, Code};
use tokio::sync::mpsc;
use zygote_contract::proto::{self, Event, Failure, FailureKind, Message, Reply, Request};
use zygote_contract::state::{ProcState, TaskConfig};
use zygote_contract::zygote::ZygoteConfig;
use zygote_contract::{DaemonDir, TaskDir};
use zygote_runtime::cgroups::{Cgroup, Layout};

use super::{Daemon, Settings};
use crate::error::DaemonError;
use crate::monitor_client::MonitorClient;
use crate::pool::set::Warm;
use crate::pool::Spawner;
use crate::task::{ProcInfo, Task};

struct NoZygotes;

#[async_trait]
impl Spawner for NoZygotes {
    async fn spawn(&self, _cfg: &ZygoteConfig) -> Result<Warm, crate::pool::SpawnError> {
        Err(crate::pool::SpawnError::Timeout(Duration::ZERO))
    }
}

fn daemon(tmp: &std::path::Path) -> Arc<Daemon> {
    Arc::new(Daemon::new(Settings {
        dir: DaemonDir::at(tmp),
        exe: "/nonexistent/shim".into(),
        ttrpc_address: "/nonexistent/containerd.sock".into(),
        profiles: crate::profiles::Profiles::from_config(Err("no configuration in unit tests".into())),
        pre_place: false,
        wasm_cache_dir: Some(tmp.join("wasm")),
        pressure: crate::pressure::Pressure::manual().1,
        spawner: Arc::new(NoZygotes),
    }))
}

/// Puts task `id` in the table, its init in `state`, its monitor the far
/// end of a socketpair (returned).
fn add_task(d: &Arc<Daemon>, id: &str, state: ProcState) -> OwnedFd {
    let cfg: TaskConfig = serde_json::from_value(serde_json::json!({
        "id": id, "namespace": "ns", "bundle": "/b", "rootfs": "/b/rootfs", "rootfs_mounted": false,
        "stdio": { "stdin": "", "stdout": "", "stderr": "", "terminal": false },
        "ttrpc_address": "/nonexistent/containerd.sock", "daemon_dir": d.dir.path(), "exe": "/x"
    }))
    .unwrap();
    let dir = d.dir.task(id);
    std::fs::create_dir_all(dir.path()).unwrap();
    let cg = Cgroup::new(Layout::V2("/nonexistent".into()), &format!("/ns/{id}"), id).unwrap();
    let task = Arc::new(Task::new(cfg, TaskDir::at(dir.path()), cg));
    let (ours, theirs) = proto::pair().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    task.set_monitor(Some(MonitorClient::new(ours, tx).unwrap()));
    task.set_init(ProcInfo {
        state,
        stdio: Default::default(),
    });
    d.tasks.write().unwrap().insert(id.into(), task.clone());
    d.watch(task, rx);
    theirs
}

fn code(e: DaemonError) -> Code {
    match ttrpc::Error::from(e) {
        ttrpc::Error::RpcStatus(s) => s.code(),
        other => panic!("{other:?}"),
    }
}

/// The fake monitor answers the next request with `reply`, on a thread.
fn answer(monitor: &OwnedFd, reply: Reply) -> std::thread::JoinHandle<Request> {
    let fd = monitor.try_clone().unwrap();
    std::thread::spawn(move || {
        let (req, _) = proto::recv::<Request>(fd.as_fd()).unwrap();
        proto::send(fd.as_fd(), &Message::Reply { reply }, &[]).unwrap();
        req
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tasks_are_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let d = daemon(tmp.path());
    assert_eq!(d.task_count(), 0);
    let e = d.get("nope").err().unwrap();
    assert_eq!(e.to_string(), "task nope not found");
    assert_eq!(code(e), Code::NOT_FOUND);
    let _m = add_task(&d, "t", ProcState::created(7));
    assert_eq!(d.task_count(), 1);
    assert!(d.get("t").is_ok());
    assert_eq!(code(d.state("t", "e1").err().unwrap()), Code::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_refuses_bad_and_duplicate_ids_before_doing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let d = daemon(tmp.path());
    let _m = add_task(&d, "t", ProcState::created(7));
    let req = |id: &str| CreateTaskRequest {
        id: id.into(),
        bundle: "/nonexistent/bundle".into(),
        ..Default::default()
    };
    let e = d.create(&req("a/b"), "ns".into(), -1).await.err().unwrap();
    assert!(matches!(e, DaemonError::InvalidId(_)), "{e:?}");
    assert_eq!(code(e), Code::INVALID_ARGUMENT);
    let e = d.create(&req("t"), "ns".into(), -1).await.err().unwrap();
    assert_eq!(code(e), Code::ALREADY_EXISTS);
    // A Create that failed leaves no trace in the table.
    let e = d.create(&req("u"), "ns".into(), -1).await.err().unwrap();
    assert!(matches!(e, DaemonError::Spec(_)), "{e}");
    assert_eq!(code(e), Code::INVALID_ARGUMENT);
    assert_eq!(d.task_count(), 1);
    assert!(d.creating.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_reported_by_the_monitor_ends_wait_and_shows_in_state() {
    let tmp = tempfile::tempdir().unwrap();
    let d = daemon(tmp.path());
    let mut running = ProcState::created(7);
    running.status = zygote_contract::state::Status::Running;
    let m = add_task(&d, "t", running);
    assert_eq!(
        d.state("t", "").unwrap().status.enum_value_or_default(),
        ApiStatus::RUNNING
    );
    let waiter = {
        let d = d.clone();
        tokio::spawn(async move { d.wait("t", "").await })
    };
    let exited = Event::Exited {
        exec_id: None,
        pid: 7,
        status: 3,
        exited_at_ns: 1_000_000_000,
    };
    proto::send(m.as_fd(), &Message::Event { event: exited }, &[]).unwrap();
    let w = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("wait ends")
        .unwrap()
        .unwrap();
    assert_eq!(w.exit_status, 3);
    let st = d.state("t", "").unwrap();
    assert_eq!(
        (st.status.enum_value_or_default(), st.exit_status),
        (ApiStatus::STOPPED, 3)
    );
    // A finished process cannot be signalled, and the monitor is not asked.
    assert_eq!(code(d.kill("t", "", 15, false).await.err().unwrap()), Code::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_goes_through_the_monitor_and_its_failures_keep_kind_and_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let d = daemon(tmp.path());
    let m = add_task(&d, "t", ProcState::created(7));
    let fake = answer(&m, Reply::Pid { pid: 7, at_ns: 0 });
    assert_eq!(d.start("t", "").await.unwrap(), 7);
    assert!(matches!(fake.join().unwrap(), Request::Start { exec_id: None }));
    assert_eq!(
        d.state("t", "").unwrap().status.enum_value_or_default(),
        ApiStatus::RUNNING
    );
    // A running process cannot be deleted.
    let e = d.delete("t", "").await.err().unwrap();
    assert_eq!(e.to_string(), "cannot delete running process t");
    assert_eq!(code(e), Code::FAILED_PRECONDITION);
    // The monitor's failure: its kind decides the code, its chain the text.
    let failure = Failure {
        kind: FailureKind::InvalidSignal,
        chain: vec!["invalid signal 99".into()],
    };
    let fake = answer(&m, Reply::Error { failure });
    let e = d.kill("t", "", 99, false).await.err().unwrap();
    fake.join().unwrap();
    assert_eq!(e.to_string(), "monitor of task t: invalid signal 99");
    match ttrpc::Error::from(e) {
        ttrpc::Error::RpcStatus(s) => {
            assert_eq!(s.code(), Code::INVALID_ARGUMENT);
            assert_eq!(s.message, "invalid signal 99");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_checks_its_process_spec_before_asking_the_monitor() {
    let tmp = tempfile::tempdir().unwrap();
    let d = daemon(tmp.path());
    let _m = add_task(&d, "t", ProcState::created(7));
    let mut req = ExecProcessRequest {
        id: "t".into(),
        exec_id: "e1".into(),
        ..Default::default()
    };
    req.spec = Some(containerd_shim_protos::protobuf::well_known_types::any::Any {
        value: b"{not json".to_vec(),
        ..Default::default()
    })
    .into();
    let e = d.exec(&req).await.err().unwrap();
    assert!(e.to_string().starts_with("exec e1: malformed process spec"), "{e}");
    assert_eq!(code(e), Code::INVALID_ARGUMENT);
    req.spec.as_mut().unwrap().value = br#"{"cwd": "/", "user": {"uid": 0, "gid": 0}}"#.to_vec();
    let e = d.exec(&req).await.err().unwrap();
    assert_eq!(e.to_string(), "exec e1: process.args must not be empty");
}
