//! In-memory doubles of [`Engine`] and [`HostNetwork`] for tests: they keep the same
//! guarantees as the real ones (labels, idempotent removals, a base container must run
//! before a service joins its network namespace), record every mutating call, and fail
//! on demand. Container output and events are scriptable: tests push lines
//! ([`FakeEngine::push_log`]) and events, and starts, stops and removals emit the events
//! Docker would.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use futures::StreamExt as _;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::Error;
use crate::engine::{
    Engine, EngineError, ErrorKind, ImageInfo, NetworkInfo, NetworkSpec, ObservedContainer,
};
use crate::hairpin::{HairpinPlan, HostNetwork};
use crate::logs::{
    ContainerAction, ContainerEvent, ContainerEvents, LogLine, LogLines, LogStream, cut_line,
};
use crate::spec::{ContainerSpec, Networking, Project, Role, labels};

/// A failure to inject: calls of `op` (`create`, `start`, `remove`, `build`, …) on
/// `target` (a container name, `*` for any) fail with `kind`, `times` times.
#[derive(Debug, Clone)]
pub struct FailRule {
    /// Operation name.
    pub op: String,
    /// Container name or `*`.
    pub target: String,
    /// Error kind returned.
    pub kind: ErrorKind,
    /// Remaining failures.
    pub times: u32,
}

/// One fake container.
#[derive(Debug, Clone)]
pub struct FakeContainer {
    /// What it was created from.
    pub spec: ContainerSpec,
    /// What `list_managed` reports.
    pub observed: ObservedContainer,
}

/// The fake's whole state, public so tests can arrange and inspect it.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Images by reference.
    pub images: BTreeMap<String, ImageInfo>,
    /// Networks by name.
    pub networks: BTreeMap<String, NetworkInfo>,
    /// Containers by id.
    pub containers: BTreeMap<String, FakeContainer>,
    /// Mutating calls, in order (`create web-01`, `start web-01`, `remove web-01-ssh`).
    pub calls: Vec<String>,
    /// Failures to inject.
    pub fail: Vec<FailRule>,
    /// Containers that start but exit at once (observed `exited`).
    pub exit_after_start: BTreeSet<String>,
    /// When false every call fails as unreachable.
    pub unreachable: bool,
    /// Every line each container wrote, by container id.
    pub logs: BTreeMap<String, Vec<LogLine>>,
    /// The fake clock stamping pushed lines (Unix nanoseconds).
    pub clock_nanos: i128,
    followers: BTreeMap<String, Vec<UnboundedSender<LogLine>>>,
    event_subscribers: Vec<UnboundedSender<ContainerEvent>>,
    next_id: u64,
}

/// Where the fake clock starts: 2023-11-14T22:13:20Z.
pub const FAKE_CLOCK_START: i128 = 1_700_000_000_000_000_000;

/// The in-memory engine.
#[derive(Debug, Default)]
pub struct FakeEngine {
    state: Mutex<FakeState>,
}

impl FakeEngine {
    /// An empty engine.
    pub fn new() -> Self {
        FakeEngine::default()
    }

    /// Locks the state for arranging or inspecting.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a local image.
    pub fn add_image(&self, reference: &str) {
        let mut st = self.state();
        let id = format!("sha256:{reference}");
        st.images.insert(
            reference.to_owned(),
            ImageInfo {
                id,
                labels: BTreeMap::new(),
            },
        );
    }

    /// Makes `op` on `target` fail `times` times with `kind`.
    pub fn fail(&self, op: &str, target: &str, kind: ErrorKind, times: u32) {
        self.state().fail.push(FailRule {
            op: op.to_owned(),
            target: target.to_owned(),
            kind,
            times,
        });
    }

    /// Mutating calls so far, and forgets them.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.state().calls)
    }

    /// Container names by state.
    pub fn container_states(&self) -> BTreeMap<String, String> {
        self.state()
            .containers
            .values()
            .map(|c| (c.observed.name.clone(), c.observed.state.clone()))
            .collect()
    }

    /// Adds a container directly (no image or network needed) with `labels`, in state
    /// `running` or `created`; a running one emits a start event. Returns its id.
    pub fn insert_container(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        running: bool,
    ) -> String {
        let mut st = self.state();
        st.next_id += 1;
        let id = format!("c{:04}", st.next_id);
        let spec = ContainerSpec {
            name: name.to_owned(),
            decky: labels.get(labels::DECKY).cloned().unwrap_or_default(),
            role: Role::Base,
            image: "fake".to_owned(),
            command: Vec::new(),
            hostname: None,
            networking: Networking::Lan {
                network: "fake".to_owned(),
                ip: std::net::Ipv4Addr::UNSPECIFIED,
                mac: String::new(),
            },
            env: BTreeMap::new(),
            labels: labels.clone(),
            sysctls: BTreeMap::new(),
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            read_only: true,
            no_new_privileges: true,
            user: None,
            memory: None,
            pids: None,
            volumes: Vec::new(),
            tmpfs: Vec::new(),
        };
        let (state, status) = if running {
            ("running", "Up 1 second")
        } else {
            ("created", "Created")
        };
        st.containers.insert(
            id.clone(),
            FakeContainer {
                spec,
                observed: ObservedContainer {
                    id: id.clone(),
                    name: name.to_owned(),
                    image_id: "sha256:fake".to_owned(),
                    state: state.to_owned(),
                    status: status.to_owned(),
                    labels,
                },
            },
        );
        if running {
            st.emit(&id, ContainerAction::Start);
        }
        id
    }

    /// A container writes `line` on `stream`, stamped by the fake clock (which advances
    /// by one millisecond per line); returns the timestamp.
    ///
    /// # Panics
    /// When no container has that id or name (a mistake in the test).
    pub fn push_log(&self, container: &str, stream: LogStream, line: &str) -> i128 {
        let ts = {
            let mut st = self.state();
            if st.clock_nanos == 0 {
                st.clock_nanos = FAKE_CLOCK_START;
            }
            st.clock_nanos += 1_000_000;
            st.clock_nanos
        };
        self.push_log_at(container, ts, stream, line);
        ts
    }

    /// A container writes `line` with Docker timestamp `ts_nanos`.
    ///
    /// # Panics
    /// When no container has that id or name (a mistake in the test).
    #[allow(clippy::panic)]
    pub fn push_log_at(&self, container: &str, ts_nanos: i128, stream: LogStream, line: &str) {
        let mut st = self.state();
        let Some(id) = st.find(container) else {
            panic!("push_log: no container {container}");
        };
        let (text, truncated) = cut_line(line.to_owned());
        let line = LogLine {
            ts_nanos,
            stream,
            line: text,
            truncated,
        };
        st.clock_nanos = st.clock_nanos.max(ts_nanos);
        if let Some(followers) = st.followers.get_mut(&id) {
            followers.retain(|f| f.send(line.clone()).is_ok());
        }
        st.logs.entry(id).or_default().push(line);
    }

    /// Ends every open log stream of a container, as a dropped connection would (the
    /// container keeps running).
    pub fn end_logs(&self, container: &str) {
        let mut st = self.state();
        if let Some(id) = st.find(container) {
            st.followers.remove(&id);
        }
    }

    /// Open log streams of a container.
    pub fn log_followers(&self, container: &str) -> usize {
        let mut st = self.state();
        let Some(id) = st.find(container) else {
            return 0;
        };
        st.followers.get_mut(&id).map_or(0, |f| {
            f.retain(|s| !s.is_closed());
            f.len()
        })
    }

    /// Sends `event` to every open event stream.
    pub fn push_event(&self, event: ContainerEvent) {
        self.state()
            .event_subscribers
            .retain(|s| s.send(event.clone()).is_ok());
    }

    /// Ends every open event stream (a daemon restart).
    pub fn end_events(&self) {
        self.state().event_subscribers.clear();
    }

    /// Open event streams.
    pub fn event_streams(&self) -> usize {
        let mut st = self.state();
        st.event_subscribers.retain(|s| !s.is_closed());
        st.event_subscribers.len()
    }

    /// Sets a container's observed state (e.g. `exited`, to simulate a crash).
    pub fn set_state(&self, name: &str, state: &str) {
        let mut st = self.state();
        for c in st.containers.values_mut() {
            if c.observed.name == name {
                c.observed.state = state.to_owned();
            }
        }
    }
}

impl FakeState {
    fn check(&mut self, op: &str, target: &str) -> Result<(), EngineError> {
        if self.unreachable {
            return Err(EngineError::new(
                ErrorKind::Unreachable,
                op,
                "cannot connect to the Docker daemon",
            ));
        }
        for rule in &mut self.fail {
            if rule.op == op && (rule.target == "*" || rule.target == target) && rule.times > 0 {
                rule.times -= 1;
                return Err(EngineError::new(
                    rule.kind,
                    format!("{op} {target}"),
                    "injected failure",
                ));
            }
        }
        Ok(())
    }

    fn find(&self, id_or_name: &str) -> Option<String> {
        if self.containers.contains_key(id_or_name) {
            return Some(id_or_name.to_owned());
        }
        self.containers
            .iter()
            .find(|(_, c)| c.observed.name == id_or_name)
            .map(|(id, _)| id.clone())
    }

    /// Emits `action` for container `id` when it is managed.
    fn emit(&mut self, id: &str, action: ContainerAction) {
        let Some(c) = self.containers.get(id) else {
            return;
        };
        if c.observed.labels.get(labels::MANAGED).map(String::as_str) != Some("true") {
            return;
        }
        let mut attributes = c.observed.labels.clone();
        attributes.insert("name".to_owned(), c.observed.name.clone());
        let event = ContainerEvent {
            id: id.to_owned(),
            action,
            attributes,
            time_nanos: self.clock_nanos,
        };
        self.event_subscribers
            .retain(|s| s.send(event.clone()).is_ok());
    }

    fn name_of(&self, id_or_name: &str) -> String {
        self.find(id_or_name)
            .and_then(|id| self.containers.get(&id))
            .map_or_else(|| id_or_name.to_owned(), |c| c.observed.name.clone())
    }
}

#[async_trait]
impl Engine for FakeEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.state().check("ping", "")
    }

    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        let mut st = self.state();
        st.check("image", reference)?;
        Ok(st.images.get(reference).cloned())
    }

    async fn build_image(
        &self,
        tag: &str,
        context: Vec<u8>,
        _no_cache: bool,
    ) -> Result<String, EngineError> {
        let mut st = self.state();
        st.check("build", tag)?;
        st.calls.push(format!("build {tag}"));
        st.next_id += 1;
        let id = format!("sha256:built{}-{}", st.next_id, context.len());
        // Like Docker, the image carries the Dockerfile's binary checksum label.
        let mut labels = BTreeMap::new();
        let marker = format!("{}=\"", crate::image::BIN_SHA_LABEL);
        if let Some(at) = String::from_utf8_lossy(&context).find(&marker) {
            let text = String::from_utf8_lossy(&context[at + marker.len()..]).into_owned();
            let sha: String = text.chars().take_while(char::is_ascii_hexdigit).collect();
            labels.insert(crate::image::BIN_SHA_LABEL.to_owned(), sha);
        }
        st.images.insert(
            tag.to_owned(),
            ImageInfo {
                id: id.clone(),
                labels,
            },
        );
        Ok(id)
    }

    async fn network(&self, name: &str) -> Result<Option<NetworkInfo>, EngineError> {
        let mut st = self.state();
        st.check("network", name)?;
        Ok(st.networks.get(name).cloned())
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<(), EngineError> {
        let mut st = self.state();
        st.check("create_network", &spec.name)?;
        if st.networks.contains_key(&spec.name) {
            return Err(EngineError::new(
                ErrorKind::Conflict,
                format!("create network {}", spec.name),
                "network with name already exists",
            ));
        }
        st.calls.push(format!("create_network {}", spec.name));
        st.next_id += 1;
        let id = format!("net{}", st.next_id);
        let mut options = BTreeMap::from([("parent".to_owned(), spec.parent.clone())]);
        if spec.driver == crate::engine::Driver::Ipvlan {
            options.insert("ipvlan_mode".to_owned(), "l2".to_owned());
        }
        st.networks.insert(
            spec.name.clone(),
            NetworkInfo {
                id,
                name: spec.name.clone(),
                driver: spec.driver.as_str().to_owned(),
                options,
                subnet: Some(spec.subnet.to_string()),
                gateway: Some(spec.gateway.to_string()),
                ip_range: spec.ip_range.map(|r| r.to_string()),
                labels: spec.labels.clone(),
                containers: Vec::new(),
            },
        );
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        let mut st = self.state();
        st.check("remove_network", name)?;
        if let Some(net) = st.networks.get(name)
            && !net.containers.is_empty()
        {
            return Err(EngineError::new(
                ErrorKind::Failed,
                format!("remove network {name}"),
                "network has active endpoints",
            ));
        }
        if st.networks.remove(name).is_some() {
            st.calls.push(format!("remove_network {name}"));
        }
        Ok(())
    }

    async fn list_managed(&self, project: &str) -> Result<Vec<ObservedContainer>, EngineError> {
        let mut st = self.state();
        st.check("list", "")?;
        Ok(st
            .containers
            .values()
            .filter(|c| {
                let l = &c.observed.labels;
                l.get(labels::MANAGED).map(String::as_str) == Some("true")
                    && l.get(labels::COMPOSE_PROJECT).map(String::as_str) == Some(project)
            })
            .map(|c| c.observed.clone())
            .collect())
    }

    async fn list_labelled(&self) -> Result<Vec<ObservedContainer>, EngineError> {
        let mut st = self.state();
        st.check("list", "")?;
        Ok(st
            .containers
            .values()
            .filter(|c| c.observed.labels.get(labels::MANAGED).map(String::as_str) == Some("true"))
            .map(|c| c.observed.clone())
            .collect())
    }

    fn follow_logs(&self, id: &str, since_unix_secs: i64) -> LogLines {
        let mut st = self.state();
        let name = st.name_of(id);
        if let Err(e) = st.check("logs", &name) {
            return failed(e);
        }
        let Some(key) = st.find(id) else {
            return failed(EngineError::new(
                ErrorKind::NotFound,
                format!("follow logs of {id}"),
                "no such container",
            ));
        };
        let since = i128::from(since_unix_secs) * 1_000_000_000;
        let stored: Vec<Result<LogLine, EngineError>> = st
            .logs
            .get(&key)
            .map(|lines| {
                lines
                    .iter()
                    .filter(|l| l.ts_nanos >= since)
                    .cloned()
                    .map(Ok)
                    .collect()
            })
            .unwrap_or_default();
        let stored = futures::stream::iter(stored);
        let running = st
            .containers
            .get(&key)
            .is_some_and(|c| c.observed.state == "running");
        if !running {
            return Box::pin(stored);
        }
        let (tx, rx) = unbounded_channel();
        st.followers.entry(key).or_default().push(tx);
        Box::pin(stored.chain(receiver_stream(rx).map(Ok)))
    }

    fn container_events(&self) -> ContainerEvents {
        let mut st = self.state();
        if let Err(e) = st.check("events", "") {
            return failed(e);
        }
        let (tx, rx) = unbounded_channel();
        st.event_subscribers.push(tx);
        Box::pin(receiver_stream(rx).map(Ok))
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        let mut st = self.state();
        st.check("create", &spec.name)?;
        let op = format!("create container {}", spec.name);
        if st.find(&spec.name).is_some() {
            return Err(EngineError::new(
                ErrorKind::Conflict,
                op,
                "the container name is already in use",
            ));
        }
        let Some(image) = st.images.get(&spec.image).cloned() else {
            return Err(EngineError::new(
                ErrorKind::NotFound,
                op,
                format!("no such image: {}", spec.image),
            ));
        };
        match &spec.networking {
            Networking::Lan { network, .. } => {
                if !st.networks.contains_key(network) {
                    return Err(EngineError::new(
                        ErrorKind::NotFound,
                        op,
                        format!("network {network} not found"),
                    ));
                }
            }
            Networking::Container(base) => {
                if st.find(base).is_none() {
                    return Err(EngineError::new(
                        ErrorKind::NotFound,
                        op,
                        format!("no such container: {base}"),
                    ));
                }
            }
        }
        st.calls.push(format!("create {}", spec.name));
        st.next_id += 1;
        let id = format!("c{:04}", st.next_id);
        if let Networking::Lan { network, .. } = &spec.networking
            && let Some(net) = st.networks.get_mut(network)
        {
            net.containers.push(id.clone());
        }
        st.containers.insert(
            id.clone(),
            FakeContainer {
                spec: spec.clone(),
                observed: ObservedContainer {
                    id: id.clone(),
                    name: spec.name.clone(),
                    image_id: image.id,
                    state: "created".to_owned(),
                    status: "Created".to_owned(),
                    labels: spec.labels.clone(),
                },
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        let mut st = self.state();
        let name = st.name_of(id);
        st.check("start", &name)?;
        let op = format!("start container {name}");
        let Some(key) = st.find(id) else {
            return Err(EngineError::new(
                ErrorKind::NotFound,
                op,
                "no such container",
            ));
        };
        if let Some(Networking::Container(base)) =
            st.containers.get(&key).map(|c| c.spec.networking.clone())
        {
            let base_running = st
                .find(&base)
                .and_then(|b| st.containers.get(&b))
                .is_some_and(|b| b.observed.state == "running");
            if !base_running {
                return Err(EngineError::new(
                    ErrorKind::Failed,
                    op,
                    format!("cannot join network of a non running container: {base}"),
                ));
            }
        }
        st.calls.push(format!("start {name}"));
        let exits = st.exit_after_start.contains(&name);
        if let Some(c) = st.containers.get_mut(&key) {
            if exits {
                c.observed.state = "exited".to_owned();
                c.observed.status = "Exited (2) 1 second ago".to_owned();
            } else {
                c.observed.state = "running".to_owned();
                c.observed.status = "Up 1 second".to_owned();
            }
        }
        st.emit(&key, ContainerAction::Start);
        if exits {
            st.emit(&key, ContainerAction::Die);
        }
        Ok(())
    }

    async fn stop_container(&self, id: &str) -> Result<(), EngineError> {
        let mut st = self.state();
        let name = st.name_of(id);
        st.check("stop", &name)?;
        let Some(key) = st.find(id) else {
            return Err(EngineError::new(
                ErrorKind::NotFound,
                format!("stop container {name}"),
                "no such container",
            ));
        };
        st.calls.push(format!("stop {name}"));
        let mut was_running = false;
        if let Some(c) = st.containers.get_mut(&key) {
            was_running = c.observed.state == "running";
            c.observed.state = "exited".to_owned();
            c.observed.status = "Exited (0) 1 second ago".to_owned();
        }
        st.followers.remove(&key);
        if was_running {
            st.emit(&key, ContainerAction::Die);
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let mut st = self.state();
        let name = st.name_of(id);
        st.check("remove", &name)?;
        let Some(key) = st.find(id) else {
            return Ok(());
        };
        st.calls.push(format!("remove {name}"));
        st.followers.remove(&key);
        if st
            .containers
            .get(&key)
            .is_some_and(|c| c.observed.state == "running")
        {
            st.emit(&key, ContainerAction::Die);
        }
        st.emit(&key, ContainerAction::Destroy);
        st.logs.remove(&key);
        st.containers.remove(&key);
        for net in st.networks.values_mut() {
            net.containers.retain(|c| c != &key);
        }
        Ok(())
    }
}

fn failed<T: Send + 'static>(
    err: EngineError,
) -> futures::stream::BoxStream<'static, Result<T, EngineError>> {
    Box::pin(futures::stream::once(async move { Err(err) }))
}

fn receiver_stream<T: Send + 'static>(
    rx: UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    })
}

/// The in-memory host network: remembers the hairpin it was asked for.
#[derive(Debug, Default)]
pub struct FakeHostNetwork {
    /// The current hairpin, if any.
    pub hairpin: Mutex<Option<HairpinPlan>>,
    /// Number of `ensure_hairpin` calls.
    pub ensures: Mutex<u32>,
}

impl FakeHostNetwork {
    /// The current hairpin.
    pub fn current(&self) -> Option<HairpinPlan> {
        self.hairpin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl HostNetwork for FakeHostNetwork {
    async fn ensure_hairpin(&self, plan: &HairpinPlan) -> Result<(), Error> {
        *self.ensures.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        *self.hairpin.lock().unwrap_or_else(PoisonError::into_inner) = Some(plan.clone());
        Ok(())
    }

    async fn remove_hairpin(&self, project: &Project) -> Result<bool, Error> {
        let mut current = self.hairpin.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|h| h.project == *project) {
            *current = None;
            return Ok(true);
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn managed(decky: &str, service: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (labels::MANAGED.to_owned(), "true".to_owned()),
            (labels::DECKY.to_owned(), decky.to_owned()),
            (labels::SERVICE.to_owned(), service.to_owned()),
        ])
    }

    #[tokio::test]
    async fn follow_gives_stored_lines_since_the_second_then_live_ones_until_stop() {
        let engine = FakeEngine::new();
        let id = engine.insert_container("a-ssh", managed("a", "ssh"), true);
        engine.push_log_at(&id, 5_000_000_000, LogStream::Stdout, "old");
        engine.push_log_at(&id, 6_500_000_000, LogStream::Stderr, "same second");
        let mut lines = engine.follow_logs(&id, 6);
        let first = lines.next().await.unwrap().unwrap();
        assert_eq!(
            (first.ts_nanos, first.stream, first.line.as_str()),
            (6_500_000_000, LogStream::Stderr, "same second")
        );
        assert_eq!(engine.log_followers("a-ssh"), 1);
        let ts = engine.push_log("a-ssh", LogStream::Stdout, &"z".repeat(70_000));
        let live = lines.next().await.unwrap().unwrap();
        assert_eq!(live.ts_nanos, ts);
        assert!(live.truncated);
        assert_eq!(live.line.len(), crate::logs::MAX_LOG_LINE);
        engine.stop_container(&id).await.unwrap();
        assert!(lines.next().await.is_none());
        // A stopped container's stream ends after its stored lines.
        assert_eq!(engine.follow_logs(&id, 0).count().await, 3);
    }

    #[tokio::test]
    async fn lifecycle_emits_events_of_managed_containers_only() {
        let engine = FakeEngine::new();
        let mut events = engine.container_events();
        let id = engine.insert_container("a-http", managed("a", "http"), true);
        engine.insert_container("other", BTreeMap::new(), true);
        engine.remove_container(&id).await.unwrap();
        let got: Vec<_> = events
            .by_ref()
            .take(3)
            .map(|e| {
                let e = e.unwrap();
                (e.id, e.action, e.attributes[labels::SERVICE].clone())
            })
            .collect()
            .await;
        let want = |a| (id.clone(), a, "http".to_owned());
        assert_eq!(
            got,
            vec![
                want(ContainerAction::Start),
                want(ContainerAction::Die),
                want(ContainerAction::Destroy)
            ]
        );
        assert_eq!(engine.list_labelled().await.unwrap().len(), 0);
        engine.end_events();
        assert!(events.next().await.is_none());
    }
}
