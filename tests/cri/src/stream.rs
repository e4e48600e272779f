//! The Kubernetes streaming protocols over WebSocket ([`Stream`]), as a
//! client of containerd's streaming server speaks them to the URLs CRI's
//! `Exec`, `Attach` and `PortForward` answer (the server is kubelet's,
//! embedded in containerd). WebSocket itself is `tokio-tungstenite`'s.
//!
//! Every binary frame starts with a channel byte. remotecommand (exec,
//! attach): 0 stdin, 1 stdout, 2 stderr, 3 error (under `v4.channel.k8s.io`
//! a JSON `Status` carrying the exit code), 4 resize (JSON `{"Width",
//! "Height"}`); `v5.channel.k8s.io` adds the half-close signal
//! `[255, channel]`. port-forward (`v4.channel.k8s.io` too): channels
//! `2i` (data) and `2i+1` (error) for the i-th port of the URL's `?port=`,
//! and the server's first frame on each carries the port, 2 bytes
//! little-endian ([`Received::ports`]).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// remotecommand subprotocols offered, the server picks the first it
/// knows: v5 (stdin can be closed) where containerd has it, else v4.
pub const REMOTECOMMAND: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];
/// The port-forward subprotocol over WebSocket.
pub const PORTFORWARD: &[&str] = &["v4.channel.k8s.io"];

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5's half-close signal: `[CLOSE, channel]`.
const CLOSE: u8 = 255;

/// How long one frame may take to come: a guard against a hung test, not
/// an assertion on speed.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// What the server sent so far, per channel.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub channels: BTreeMap<u8, Vec<u8>>,
    /// The port each channel announced in its first frame (port-forward).
    pub ports: BTreeMap<u8, u16>,
    /// The server closed the connection.
    pub closed: bool,
}

impl Received {
    pub fn channel(&self, ch: u8) -> &[u8] {
        self.channels.get(&ch).map_or(&[], |v| v.as_slice())
    }

    pub fn text(&self, ch: u8) -> String {
        String::from_utf8_lossy(self.channel(ch)).into_owned()
    }

    /// The v4 `Status` on the error channel, once the command ended.
    pub fn status(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(self.channel(ERROR)).ok()
    }

    /// The command's exit code from the v4 `Status`: 0 for `Success`, the
    /// `ExitCode` cause of a `NonZeroExitCode` failure.
    pub fn exit_code(&self) -> Option<i32> {
        let st = self.status()?;
        if st["status"] == "Success" {
            return Some(0);
        }
        st["details"]["causes"]
            .as_array()?
            .iter()
            .find(|c| c["reason"] == "ExitCode")
            .and_then(|c| c["message"].as_str()?.parse().ok())
    }
}

/// One streaming session (a WebSocket on a URL of containerd's streaming
/// server), driven by blocking calls on a small runtime of its own.
pub struct Stream {
    rt: tokio::runtime::Runtime,
    ws: WebSocketStream<TcpStream>,
    protocol: String,
    /// Port-forward: the first frame of each channel is its port.
    port_prefix: bool,
    got: Received,
}

impl Stream {
    /// Exec or attach: connects to `url` (CRI's `http://...`) offering
    /// [`REMOTECOMMAND`].
    pub fn remotecommand(url: &str) -> Stream {
        Stream::connect(url, REMOTECOMMAND, false)
    }

    /// Port-forward: connects to `url` with `?port=<port>` appended.
    pub fn port_forward(url: &str, port: u16) -> Stream {
        let sep = if url.contains('?') { '&' } else { '?' };
        Stream::connect(&format!("{url}{sep}port={port}"), PORTFORWARD, true)
    }

    fn connect(url: &str, protocols: &[&str], port_prefix: bool) -> Stream {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let ws_url = url
            .strip_prefix("http://")
            .map(|rest| format!("ws://{rest}"))
            .unwrap_or_else(|| panic!("streaming URL {url} is not http://"));
        let mut req = ws_url.as_str().into_client_request().expect("WebSocket request");
        let offered = HeaderValue::from_str(&protocols.join(", ")).expect("header value");
        req.headers_mut().insert("Sec-WebSocket-Protocol", offered);
        let authority = req.uri().authority().expect("host:port in the URL").to_string();
        let (ws, resp) = rt
            .block_on(async {
                let tcp = TcpStream::connect(&authority).await?;
                tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::client_async(req, tcp))
                    .await
                    .map_err(|_| std::io::Error::other("WebSocket handshake timed out"))?
                    .map_err(std::io::Error::other)
            })
            .unwrap_or_else(|e| panic!("WebSocket to {ws_url}: {e}"));
        let protocol = resp
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        Stream {
            rt,
            ws,
            protocol,
            port_prefix,
            got: Received::default(),
        }
    }

    /// The subprotocol the server chose.
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// Sends `data` on channel `ch`.
    pub fn send(&mut self, ch: u8, data: &[u8]) {
        let mut frame = Vec::with_capacity(data.len() + 1);
        frame.push(ch);
        frame.extend_from_slice(data);
        self.rt
            .block_on(self.ws.send(Message::binary(frame)))
            .unwrap_or_else(|e| panic!("send on channel {ch}: {e}"));
    }

    /// A terminal size on the resize channel.
    pub fn resize(&mut self, width: u16, height: u16) {
        let msg = serde_json::json!({ "Width": width, "Height": height }).to_string();
        self.send(RESIZE, msg.as_bytes());
    }

    /// Closes channel `ch` (stdin: the process reads EOF). Only
    /// `v5.channel.k8s.io` has the signal; false under older protocols.
    pub fn close_channel(&mut self, ch: u8) -> bool {
        if self.protocol != "v5.channel.k8s.io" {
            return false;
        }
        self.rt
            .block_on(self.ws.send(Message::binary(vec![CLOSE, ch])))
            .unwrap_or_else(|e| panic!("close channel {ch}: {e}"));
        true
    }

    /// Reads frames until `done` holds for what was received or the server
    /// closes the connection; panics if no frame comes for 30 s.
    pub fn read_until(&mut self, done: impl Fn(&Received) -> bool) -> Received {
        while !done(&self.got) && !self.got.closed {
            let ws = &mut self.ws;
            let next = self
                .rt
                .block_on(async { tokio::time::timeout(FRAME_TIMEOUT, ws.next()).await });
            let msg = match next {
                Err(_) => panic!(
                    "no frame within {FRAME_TIMEOUT:?} (protocol {:?}); so far: {:?}",
                    self.protocol, self.got
                ),
                // The streaming server closes the TCP connection without a
                // close frame: an error here is the end of the stream.
                Ok(None) | Ok(Some(Err(_))) => {
                    self.got.closed = true;
                    break;
                }
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Binary(b) => self.take(&b),
                Message::Text(t) => self.take(t.as_bytes()),
                Message::Close(_) => self.got.closed = true,
                _ => {}
            }
        }
        self.got.clone()
    }

    /// Reads until the server closes the connection (the command ended).
    pub fn wait_closed(&mut self) -> Received {
        self.read_until(|_| false)
    }

    fn take(&mut self, frame: &[u8]) {
        let Some((&ch, mut data)) = frame.split_first() else {
            return;
        };
        if self.port_prefix && !self.got.ports.contains_key(&ch) && data.len() >= 2 {
            self.got.ports.insert(ch, u16::from_le_bytes([data[0], data[1]]));
            data = &data[2..];
        }
        self.got.channels.entry(ch).or_default().extend_from_slice(data);
    }
}
