//! containerd events: `ctr events` running in the background for a test
//! ([`Events`]) and the parser of its lines ([`parse_event_line`]).

use std::thread;
use std::time::{Duration, Instant};

use crate::command::Background;
use crate::ctr::Ctr;
use crate::env::env;

/// One line of `ctr events`: `<date> <time> <tz> <tz> <namespace> <topic> <json>`.
#[derive(Debug, Clone)]
pub struct Event {
    pub namespace: String,
    pub topic: String,
    pub payload: serde_json::Value,
}

pub fn parse_event_line(line: &str) -> Option<Event> {
    let f: Vec<&str> = line.splitn(7, ' ').collect();
    if f.len() < 6 || !f[5].starts_with('/') {
        return None;
    }
    let payload = f
        .get(6)
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or(serde_json::Value::Null);
    Some(Event {
        namespace: f[4].to_string(),
        topic: f[5].to_string(),
        payload,
    })
}

/// `ctr events` running in the background for the duration of a test.
pub struct Events {
    bg: Background,
}

impl Events {
    /// Subscribes and waits a moment so that following actions are seen.
    pub fn start() -> Events {
        let mut bg = Ctr::new().spawn(&["events"]);
        thread::sleep(Duration::from_millis(500));
        if !bg.running() {
            panic!("`ctr events` exited early: stderr {:?}", bg.stderr_so_far());
        }
        Events { bg }
    }

    pub fn all(&self) -> Vec<Event> {
        self.bg.stdout_so_far().lines().filter_map(parse_event_line).collect()
    }

    /// Events of the test namespace concerning container `id`.
    pub fn for_container(&self, id: &str) -> Vec<Event> {
        let ns = &env().namespace;
        self.all()
            .into_iter()
            .filter(|e| {
                &e.namespace == ns
                    && (e.payload.get("container_id").and_then(|v| v.as_str()) == Some(id)
                        || e.payload.get("id").and_then(|v| v.as_str()) == Some(id))
            })
            .collect()
    }

    pub fn wait_for(&self, id: &str, topic: &str, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.for_container(id).into_iter().find(|e| e.topic == topic) {
                return Some(e);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `exit_status` of the init process' `/tasks/exit` event (absent in
    /// the JSON means 0).
    pub fn exit_status(&self, id: &str, timeout: Duration) -> Option<i64> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .for_container(id)
                .into_iter()
                .find(|e| e.topic == "/tasks/exit" && e.payload.get("id").and_then(|v| v.as_str()) == Some(id));
            if let Some(e) = found {
                return Some(e.payload.get("exit_status").and_then(|v| v.as_i64()).unwrap_or(0));
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events() {
        let l = r#"2026-11-24 21:51:43.193682814 +0000 UTC zt /tasks/oom {"container_id":"oom1"}"#;
        let e = parse_event_line(l).unwrap();
        assert_eq!(e.namespace, "zt");
        assert_eq!(e.topic, "/tasks/oom");
        assert_eq!(e.payload["container_id"], "oom1");
        let l = r#"2026-11-24 21:51:35.293460754 +0000 UTC zt /tasks/exit {"container_id":"d1","id":"d1","pid":7974,"exit_status":7}"#;
        assert_eq!(parse_event_line(l).unwrap().payload["exit_status"], 7);
    }
}
