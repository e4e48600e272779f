//! Node labelling: the one step of the installer that talks to the Kubernetes API.
//!
//! Owns the `--label KEY=VALUE` syntax (Kubernetes label key/value rules, checked when the
//! command line is parsed) and two thin calls of kube-rs, the client the field maintains:
//! `install` sets the labels with a JSON merge patch on `/api/v1/nodes/<name>` once the
//! handlers work (probe passed); `uninstall` removes them (the same patch with `null`
//! values) before the handlers go, so no new pod is scheduled onto a node losing them.
//!
//! The client comes from `kube::Client::try_default()`: in a pod the service account's
//! in-cluster config, by hand `KUBECONFIG` / `~/.kube/config`. The chart's ClusterRole allows
//! `get`/`patch` on nodes, nothing more.
//!
//! Checked against a recording stand-in HTTP server (crates/installer/tests/node.rs), not a
//! live API server: the path, content type and body of the request and the error of a 403.
//! Built only with the default-on cargo feature `kube`; without it `--node-name` is refused.

use std::fmt;
use std::str::FromStr;

/// One `KEY=VALUE` node label, validated like the API server does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub key: String,
    pub value: String,
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// A label name segment or value: at most 63 characters, alphanumerics at both ends,
/// `-`, `_`, `.` between.
fn name_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A DNS-1123 subdomain (the optional key prefix): at most 253 characters, dot-separated
/// lowercase labels of alphanumerics and `-`, alphanumerics at both ends.
fn prefix_ok(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

impl FromStr for Label {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("label {s:?} is not KEY=VALUE"))?;
        let name = match key.split_once('/') {
            Some((prefix, name)) => {
                if !prefix_ok(prefix) {
                    return Err(format!(
                        "label key {key:?}: prefix {prefix:?} is not a DNS subdomain \
                         (lowercase alphanumerics, '-', '.', at most 253 characters)"
                    ));
                }
                name
            }
            None => key,
        };
        if !name_ok(name) {
            return Err(format!(
                "label key {key:?}: name {name:?} must be 1-63 characters, alphanumerics at both ends, \
                 '-', '_', '.' between"
            ));
        }
        if !value.is_empty() && !name_ok(value) {
            return Err(format!(
                "label {key:?}: value {value:?} must be empty or 1-63 characters, alphanumerics at both \
                 ends, '-', '_', '.' between"
            ));
        }
        Ok(Label {
            key: key.to_string(),
            value: value.to_string(),
        })
    }
}

/// The merge patch setting `labels` (`set`) or removing their keys (`null`).
pub fn patch_body(labels: &[Label], set: bool) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|l| {
            let v = if set {
                serde_json::Value::String(l.value.clone())
            } else {
                serde_json::Value::Null
            };
            (l.key.clone(), v)
        })
        .collect();
    serde_json::json!({ "metadata": { "labels": map } })
}

/// A failed label patch, naming the node, the labels and the API's answer.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("no Kubernetes client config (in-cluster service account or KUBECONFIG): {0}")]
    Config(String),
    #[error("{action} labels [{labels}] on node {node:?} through the Kubernetes API")]
    Patch {
        action: &'static str,
        node: String,
        labels: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[cfg(feature = "kube")]
mod client {
    use super::{patch_body, Label, NodeError};
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, Patch, PatchParams};

    /// The client of the environment: in-cluster service account, else `KUBECONFIG`.
    pub async fn default_client() -> Result<kube::Client, NodeError> {
        kube::Client::try_default()
            .await
            .map_err(|e| NodeError::Config(e.to_string()))
    }

    /// A client from one kubeconfig file (tests and running by hand).
    pub async fn client_from(path: &std::path::Path) -> Result<kube::Client, NodeError> {
        let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| NodeError::Config(e.to_string()))?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .map_err(|e| NodeError::Config(e.to_string()))?;
        kube::Client::try_from(cfg).map_err(|e| NodeError::Config(e.to_string()))
    }

    /// Sets (`set`) or removes the labels on `node` with one merge patch.
    pub async fn patch_labels(client: kube::Client, node: &str, labels: &[Label], set: bool) -> Result<(), NodeError> {
        let api: Api<Node> = Api::all(client);
        let body = patch_body(labels, set);
        api.patch(node, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map_err(|e| NodeError::Patch {
                action: if set { "setting" } else { "removing" },
                node: node.to_string(),
                labels: labels.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", "),
                source: Box::new(e),
            })?;
        tracing::info!(node, labels = ?labels.iter().map(|l| l.to_string()).collect::<Vec<_>>(), set, "node labels patched");
        Ok(())
    }
}

#[cfg(feature = "kube")]
pub use client::{client_from, default_client, patch_labels};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_syntax() {
        let l: Label = "zygote.dev/ready=true".parse().unwrap();
        assert_eq!((l.key.as_str(), l.value.as_str()), ("zygote.dev/ready", "true"));
        assert_eq!("a=".parse::<Label>().unwrap().value, "");
        for bad in [
            "noequals",
            "=v",
            "Zygote.dev/x=1",
            "a/b/c=1",
            "k=-v",
            "k=a b",
            "-k=v",
            "x/=v",
        ] {
            assert!(bad.parse::<Label>().is_err(), "{bad} accepted");
        }
        assert!(format!("k={}", "a".repeat(64)).parse::<Label>().is_err());
    }

    #[test]
    fn patch_bodies() {
        let l = vec!["zygote.dev/ready=true".parse::<Label>().unwrap()];
        assert_eq!(
            patch_body(&l, true).to_string(),
            r#"{"metadata":{"labels":{"zygote.dev/ready":"true"}}}"#
        );
        assert_eq!(
            patch_body(&l, false).to_string(),
            r#"{"metadata":{"labels":{"zygote.dev/ready":null}}}"#
        );
    }
}
