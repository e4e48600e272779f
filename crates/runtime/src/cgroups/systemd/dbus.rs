//! The D-Bus side of the systemd driver: systemd's `Manager` interface on
//! the system bus through `zbus`, starting and stopping a transient scope and
//! waiting for each job's `JobRemoved` signal.

use std::time::Duration;

use futures_util::StreamExt;
use oci_spec::runtime::LinuxResources;
use zbus::zvariant::{OwnedObjectPath, Value};

use super::Scope;

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a job may take (runc waits 30 s as well).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a D-Bus conversation with systemd failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BusError {
    #[error("D-Bus: {0}")]
    Bus(#[from] zbus::Error),
    #[error("job {job} ended with result {result:?}")]
    Job { job: String, result: String },
    #[error("no JobRemoved for job {0} within {JOB_TIMEOUT:?}")]
    Timeout(String),
    #[error("the signal stream ended before job {0} was removed")]
    StreamEnded(String),
}

/// A transient unit's properties, `a(sv)`.
pub(crate) struct Properties {
    unit: String,
    list: Vec<(&'static str, Value<'static>)>,
}

impl Properties {
    /// runc's properties for a container scope plus the limits systemd
    /// manages itself (a `daemon-reload` would otherwise reset them).
    pub(crate) fn for_scope(scope: &Scope, pid: u32, resources: Option<&LinuxResources>) -> Properties {
        let mut list: Vec<(&'static str, Value<'static>)> = vec![
            ("Description", Value::from(format!("zygote container {}", scope.unit))),
            ("Slice", Value::from(scope.slice.clone())),
            ("Delegate", Value::from(true)),
            ("PIDs", Value::from(vec![pid])),
            ("MemoryAccounting", Value::from(true)),
            ("CPUAccounting", Value::from(true)),
            ("TasksAccounting", Value::from(true)),
            ("IOAccounting", Value::from(true)),
            ("DefaultDependencies", Value::from(false)),
        ];
        if let Some(r) = resources {
            if let Some(limit) = r.memory().as_ref().and_then(|m| m.limit()).filter(|l| *l > 0) {
                list.push(("MemoryMax", Value::from(limit as u64)));
            }
            if let Some(limit) = r.pids().as_ref().map(|p| p.limit()).filter(|l| *l > 0) {
                list.push(("TasksMax", Value::from(limit as u64)));
            }
            if let Some(cpu) = r.cpu() {
                if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
                    // runc's (and the kernel's) shares -> weight mapping.
                    let weight = 1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142;
                    list.push(("CPUWeight", Value::from(weight)));
                }
                if let Some(quota) = cpu.quota().filter(|q| *q > 0) {
                    let period = cpu.period().filter(|p| *p > 0).unwrap_or(100_000);
                    // systemd counts per second, rounded up to 10 ms as runc does.
                    let per_sec = (quota as u64 * 1_000_000).div_ceil(period).div_ceil(10_000) * 10_000;
                    list.push(("CPUQuotaPerSecUSec", Value::from(per_sec)));
                }
            }
        }
        Properties {
            unit: scope.unit.clone(),
            list,
        }
    }
}

/// systemd's manager object on the system bus.
pub(crate) struct Systemd {
    manager: zbus::Proxy<'static>,
}

impl Systemd {
    pub(crate) async fn connect() -> Result<Systemd, BusError> {
        let conn = zbus::Connection::system().await?;
        let manager = zbus::Proxy::new(&conn, DEST, PATH, MANAGER).await?;
        // Job signals go to subscribed clients.
        manager.call_method("Subscribe", &()).await?;
        Ok(Systemd { manager })
    }

    /// StartTransientUnit; when a unit of that name exists it is reset
    /// (a failed leftover) and the start tried once more, as runc does.
    pub(crate) async fn start(&self, props: &Properties) -> Result<(), BusError> {
        let aux: Vec<(&str, Vec<(&str, Value<'_>)>)> = Vec::new();
        let body = (props.unit.as_str(), "replace", &props.list, &aux);
        let mut signals = self.manager.receive_signal("JobRemoved").await?;
        let job = match self.manager.call_method("StartTransientUnit", &body).await {
            Err(zbus::Error::MethodError(name, _, _)) if name.as_str() == "org.freedesktop.systemd1.UnitExists" => {
                // A leftover failed unit of that name: reset it so systemd
                // drops it, and retry once (runc does the same).
                tracing::debug!(unit = %props.unit, "unit exists: reset it and start again");
                self.reset_failed(&props.unit).await;
                signals = self.manager.receive_signal("JobRemoved").await?;
                self.manager.call_method("StartTransientUnit", &body).await?
            }
            other => other?,
        };
        let job: OwnedObjectPath = job.body().deserialize()?;
        wait_job(&mut signals, &job).await?;
        tracing::debug!(unit = %props.unit, job = %job.as_str(), "transient scope started");
        Ok(())
    }

    /// StopUnit and wait for its job, then ResetFailedUnit.
    pub(crate) async fn stop(&self, unit: &str) -> Result<(), BusError> {
        let r = self.stop_unit(unit).await;
        self.reset_failed(unit).await;
        r
    }

    async fn stop_unit(&self, unit: &str) -> Result<(), BusError> {
        let mut signals = self.manager.receive_signal("JobRemoved").await?;
        let job = match self.manager.call_method("StopUnit", &(unit, "replace")).await {
            Err(zbus::Error::MethodError(name, _, _)) if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" => {
                return Ok(())
            }
            other => other?,
        };
        let job: OwnedObjectPath = job.body().deserialize()?;
        match wait_job(&mut signals, &job).await {
            Err(BusError::Job { result, .. }) if result == "canceled" => Ok(()),
            other => other,
        }
    }

    async fn reset_failed(&self, unit: &str) {
        if let Err(e) = self.manager.call_method("ResetFailedUnit", &(unit,)).await {
            tracing::trace!(unit, error = %e, "ResetFailedUnit (not failed)");
        }
    }
}

/// Waits for `JobRemoved(id, job, unit, result)` of `job`; `done` is success.
async fn wait_job(signals: &mut zbus::proxy::SignalStream<'_>, job: &OwnedObjectPath) -> Result<(), BusError> {
    let wait = async {
        while let Some(msg) = signals.next().await {
            let (_id, path, _unit, result): (u32, OwnedObjectPath, String, String) = msg.body().deserialize()?;
            if path == *job {
                if result == "done" {
                    return Ok(());
                }
                return Err(BusError::Job {
                    job: job.to_string(),
                    result,
                });
            }
        }
        Err(BusError::StreamEnded(job.to_string()))
    };
    tokio::time::timeout(JOB_TIMEOUT, wait)
        .await
        .unwrap_or_else(|_| Err(BusError::Timeout(job.to_string())))
}
