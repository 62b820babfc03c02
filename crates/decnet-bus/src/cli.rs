//! Library side of the operator commands `decnet bus`, `decnet bus publish`, `decnet bus subscribe`.

use std::future::Future;
use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value};

use crate::Error;
use crate::broker::{Broker, BrokerOptions};
use crate::bus::Bus;
use crate::client::{ClientOptions, SocketClient};
use crate::envelope::Envelope;
use crate::topic::{Pattern, Topic};

/// `decnet bus`: binds the socket and serves until `shutdown` (wire SIGTERM/SIGINT to it).
///
/// The socket's parent directory must exist (systemd's tmpfiles creates `/run/decnet`);
/// stopping removes only the socket. Readiness is reported to systemd when
/// `opts.notify_systemd` is set.
///
/// # Errors
/// As [`Broker::bind`] and [`Broker::run`].
pub async fn run_broker(
    opts: BrokerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    Broker::bind(opts)?.run(shutdown).await
}

/// Whether systemd asked for readiness notification (`NOTIFY_SOCKET` is set); read once
/// by the binary at start-up and passed as [`BrokerOptions::notify_systemd`].
pub fn systemd_notify_requested() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some_and(|v| !v.is_empty())
}

/// `decnet bus publish <topic> <json>`: publishes one event whose payload is `json` (an
/// object) and whose type is the topic's last token; returns the envelope sent.
///
/// # Errors
/// [`Error::InvalidTopic`], [`Error::PayloadNotObject`] (also for text that is not JSON),
/// [`Error::NotConnected`] when no broker answers on `socket`.
pub async fn publish_once(socket: &Path, topic: &str, json: &str) -> Result<Envelope, Error> {
    let topic = Topic::new(topic)?;
    let payload: Map<String, Value> = match serde_json::from_str(json) {
        Ok(Value::Object(m)) => m,
        _ => return Err(Error::PayloadNotObject),
    };
    let client = SocketClient::new(socket, ClientOptions::new(cli_name("publish")));
    client.connect().await?;
    let envelope = Envelope::new(topic.clone(), topic.leaf(), payload);
    client.publish(envelope.clone()).await?;
    client.close().await;
    Ok(envelope)
}

/// `decnet bus subscribe <pattern> [--count N]`: prints one JSON envelope per line to
/// `out` until `count` events were printed (or forever); returns how many were printed.
///
/// # Errors
/// [`Error::InvalidPattern`], [`Error::NotConnected`] / [`Error::AckTimeout`] when the
/// broker does not register the subscription, [`Error::Output`] when writing fails.
pub async fn subscribe_print(
    socket: &Path,
    pattern: &str,
    count: Option<u64>,
    mut out: impl Write,
) -> Result<u64, Error> {
    let pattern = Pattern::new(pattern)?;
    let client = SocketClient::new(socket, ClientOptions::new(cli_name("subscribe")));
    client.connect().await?;
    let mut sub = client.subscribe(pattern).await?;
    let mut printed = 0u64;
    while count.is_none_or(|c| printed < c) {
        let Some(envelope) = sub.recv().await else {
            break;
        };
        let mut line = envelope.to_json();
        line.push(b'\n');
        out.write_all(&line).map_err(Error::Output)?;
        out.flush().map_err(Error::Output)?;
        printed += 1;
    }
    drop(sub);
    client.close().await;
    Ok(printed)
}

fn cli_name(what: &str) -> String {
    format!("decnet-bus-{what}[{}]", std::process::id())
}
