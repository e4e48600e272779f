//! Publishing task events to containerd.
//!
//! One [`RemotePublisher`] (from the `containerd-shim` crate: a queue that
//! retries each event up to five times with back-off, reconnecting as
//! needed) per containerd ttrpc address. If containerd is down when the
//! first event for it is published (it is being restarted), connecting is
//! retried in the background for a minute so the event still arrives.

use std::collections::HashMap;
use std::time::Duration;

use containerd_shim::asynchronous::publisher::RemotePublisher;
use containerd_shim_protos::protobuf::MessageDyn;
use containerd_shim_protos::ttrpc::context::Context;
use tokio::sync::mpsc;
use tracing::{debug, warn};

struct Item {
    address: String,
    namespace: String,
    topic: &'static str,
    event: Box<dyn MessageDyn>,
}

/// Ordered event sink: one worker forwards events in the order they were
/// published (TaskCreate before TaskStart before TaskExit).
#[derive(Clone)]
pub(crate) struct Events {
    tx: mpsc::UnboundedSender<Item>,
}

impl Events {
    /// Starts the worker; needs a tokio runtime.
    pub(crate) fn start() -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Item>();
        tokio::spawn(async move {
            let mut publishers: HashMap<String, RemotePublisher> = HashMap::new();
            while let Some(item) = rx.recv().await {
                let mut attempt = 0;
                while !publishers.contains_key(&item.address) && attempt < 60 {
                    match RemotePublisher::new(&item.address).await {
                        Ok(p) => {
                            publishers.insert(item.address.clone(), p);
                        }
                        Err(e) => {
                            debug!(address = %item.address, error = %e, "containerd unreachable; retrying");
                            attempt += 1;
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
                let Some(p) = publishers.get(&item.address) else {
                    warn!(topic = item.topic, address = %item.address, "dropped event: containerd unreachable for 60s");
                    continue;
                };
                if let Err(e) = p
                    .publish(Context::default(), item.topic, &item.namespace, item.event)
                    .await
                {
                    warn!(topic = item.topic, error = %e, "cannot queue event");
                }
            }
        });
        Events { tx }
    }

    /// Publishes `event` on `topic`; never blocks and never fails the RPC
    /// that caused it.
    pub(crate) fn publish(&self, address: &str, namespace: &str, topic: &'static str, event: Box<dyn MessageDyn>) {
        let item = Item {
            address: address.into(),
            namespace: namespace.into(),
            topic,
            event,
        };
        if self.tx.send(item).is_err() {
            warn!(topic, "event worker stopped");
        }
    }
}
