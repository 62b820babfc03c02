//! [`Engine`] over the Docker Engine API (bollard, `/var/run/docker.sock`): no `docker`
//! CLI, no compose, no registry.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::{
    Config, CreateContainerOptions, ListContainersOptions, LogOutput, LogsOptions,
    NetworkingConfig, RemoveContainerOptions, StopContainerOptions,
};
use bollard::image::BuildImageOptions;
use bollard::models::{
    EndpointIpamConfig, EndpointSettings, HostConfig, HostConfigLogConfig, Ipam, IpamConfig,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::network::{CreateNetworkOptions, InspectNetworkOptions};
use bollard::system::EventsOptions;
use futures::{Stream, StreamExt as _};

use crate::engine::{
    Driver, Engine, EngineError, ErrorKind, ImageInfo, NetworkInfo, NetworkSpec, ObservedContainer,
};
use crate::logs::{
    ContainerAction, ContainerEvent, ContainerEvents, LineAssembler, LogLine, LogLines, LogStream,
};
use crate::spec::{
    ContainerSpec, LOG_DRIVER, LOG_MAX_FILE, LOG_MAX_SIZE, Networking, RESTART_POLICY, labels,
};

/// Default Docker socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// Seconds a container gets to stop before it is killed (the decky binary exits on
/// SIGTERM at once).
const STOP_TIMEOUT_SECS: i64 = 5;
/// Per-request timeout in seconds (an image build of a static binary takes a second or
/// two; a stuck daemon must not hang a deploy forever).
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// Largest log excerpt [`DockerEngine::logs`] returns.
pub const MAX_LOG_BYTES: usize = 4 * 1024 * 1024;

/// The real engine.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    docker: Docker,
}

fn classify(op: &str, err: bollard::errors::Error) -> EngineError {
    use bollard::errors::Error as B;
    let (kind, message) = match err {
        B::DockerResponseServerError {
            status_code,
            message,
        } => (ErrorKind::from_status(status_code), message),
        B::SocketNotFoundError(path) => (
            ErrorKind::Unreachable,
            format!("no Docker socket at {path} (is dockerd running?)"),
        ),
        B::HyperLegacyError { err } if err.is_connect() => (
            ErrorKind::Unreachable,
            format!("cannot connect to the Docker daemon: {err}"),
        ),
        B::RequestTimeoutError => (ErrorKind::Transient, "request timed out".to_owned()),
        e @ (B::HyperLegacyError { .. } | B::HyperResponseError { .. } | B::IOError { .. }) => {
            (ErrorKind::Transient, e.to_string())
        }
        e => (ErrorKind::Failed, e.to_string()),
    };
    EngineError::new(kind, op, message)
}

fn to_btree(map: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default().into_iter().collect()
}

fn observed(c: bollard::models::ContainerSummary) -> ObservedContainer {
    ObservedContainer {
        id: c.id.unwrap_or_default(),
        name: c
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default(),
        image_id: c.image_id.unwrap_or_default(),
        state: c.state.unwrap_or_default(),
        status: c.status.unwrap_or_default(),
        labels: to_btree(c.labels),
    }
}

/// Docker's log frames as bounded lines ([`LineAssembler`]). At the normal end of the
/// stream a partial last line is handed on; after an error it is dropped (the caller
/// re-reads it from its cursor).
fn assemble<S>(inner: S, op: String) -> impl Stream<Item = Result<LogLine, EngineError>>
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send + Unpin + 'static,
{
    futures::stream::unfold(
        (inner, LineAssembler::new(), false, op),
        |(mut inner, mut asm, mut ended, op)| async move {
            loop {
                if let Some(line) = asm.pop() {
                    return Some((Ok(line), (inner, asm, ended, op)));
                }
                if ended {
                    return None;
                }
                match inner.next().await {
                    Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                        asm.push_frame(LogStream::Stdout, &message);
                    }
                    Some(Ok(LogOutput::StdErr { message })) => {
                        asm.push_frame(LogStream::Stderr, &message);
                    }
                    Some(Ok(LogOutput::StdIn { .. })) => {}
                    Some(Err(e)) => {
                        let err = classify(&op, e);
                        return Some((Err(err), (inner, LineAssembler::new(), true, op)));
                    }
                    None => {
                        asm.finish();
                        ended = true;
                    }
                }
            }
        },
    )
}

fn container_event(msg: bollard::models::EventMessage) -> Option<ContainerEvent> {
    let action = ContainerAction::from_docker(msg.action.as_deref()?)?;
    let actor = msg.actor?;
    Some(ContainerEvent {
        id: actor.id?,
        action,
        attributes: to_btree(actor.attributes),
        time_nanos: msg.time_nano.map_or(0, i128::from),
    })
}

impl DockerEngine {
    /// Connects to `socket` (default [`DEFAULT_SOCKET`]) and negotiates the API version
    /// down to what the daemon speaks (Debian 12's Docker 20.10 speaks 1.41).
    ///
    /// # Errors
    /// [`ErrorKind::Unreachable`] when no daemon answers.
    pub async fn connect(socket: Option<&str>) -> Result<Self, EngineError> {
        let path = socket.unwrap_or(DEFAULT_SOCKET);
        let docker =
            Docker::connect_with_socket(path, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
                .map_err(|e| classify("connect", e))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| classify("negotiate API version", e))?;
        Ok(DockerEngine { docker })
    }

    /// The last `tail` lines a container wrote (stdout and stderr), at most
    /// [`MAX_LOG_BYTES`].
    ///
    /// # Errors
    /// When the container does not exist or the daemon fails.
    pub async fn logs(&self, container: &str, tail: usize) -> Result<String, EngineError> {
        let mut stream = self.docker.logs(
            container,
            Some(LogsOptions::<String> {
                stdout: true,
                stderr: true,
                tail: tail.to_string(),
                ..Default::default()
            }),
        );
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| classify(&format!("logs of {container}"), e))?;
            let bytes = match &chunk {
                LogOutput::StdOut { message }
                | LogOutput::StdErr { message }
                | LogOutput::Console { message }
                | LogOutput::StdIn { message } => message,
            };
            if out.len() + bytes.len() > MAX_LOG_BYTES {
                break;
            }
            out.extend_from_slice(bytes);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Managed containers (any project) matching the extra `filters` too.
    async fn list_filtered(
        &self,
        mut filters: Vec<(String, Vec<String>)>,
    ) -> Result<Vec<ObservedContainer>, EngineError> {
        filters.push((
            "label".to_owned(),
            vec![format!("{}=true", labels::MANAGED)],
        ));
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions::<String> {
                all: true,
                filters: filters.into_iter().collect(),
                ..Default::default()
            }))
            .await
            .map_err(|e| classify("list containers", e))?;
        Ok(list.into_iter().map(observed).collect())
    }

    /// The bollard client, for callers that need an API this trait does not cover.
    pub fn client(&self) -> &Docker {
        &self.docker
    }
}

/// The create request for `spec`: the one translation of a [`ContainerSpec`] into the
/// Docker API.
pub fn container_config(spec: &ContainerSpec) -> Config<String> {
    let (network_mode, mac_address, networking_config) = match &spec.networking {
        Networking::Lan { network, ip, mac } => (
            network.clone(),
            Some(mac.clone()),
            Some(NetworkingConfig {
                endpoints_config: HashMap::from([(
                    network.clone(),
                    EndpointSettings {
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: Some(ip.to_string()),
                            ..Default::default()
                        }),
                        // API >= 1.44 reads the MAC here, older ones at the top level.
                        mac_address: Some(mac.clone()),
                        ..Default::default()
                    },
                )]),
            }),
        ),
        Networking::Container(base) => (format!("container:{base}"), None, None),
    };
    let host_config = HostConfig {
        network_mode: Some(network_mode),
        sysctls: (!spec.sysctls.is_empty()).then(|| {
            spec.sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
        cap_drop: (!spec.cap_drop.is_empty()).then(|| spec.cap_drop.clone()),
        readonly_rootfs: Some(spec.read_only),
        security_opt: spec
            .no_new_privileges
            .then(|| vec!["no-new-privileges:true".to_owned()]),
        memory: spec.memory,
        // Same as the memory cap: no swap on top of it.
        memory_swap: spec.memory,
        pids_limit: spec.pids,
        binds: (!spec.volumes.is_empty()).then(|| {
            spec.volumes
                .iter()
                .map(|(host, inside)| format!("{}:{inside}:rw", host.display()))
                .collect()
        }),
        tmpfs: (!spec.tmpfs.is_empty()).then(|| spec.tmpfs.iter().cloned().collect()),
        restart_policy: Some(RestartPolicy {
            name: Some(match RESTART_POLICY {
                "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
                "always" => RestartPolicyNameEnum::ALWAYS,
                _ => RestartPolicyNameEnum::NO,
            }),
            maximum_retry_count: None,
        }),
        log_config: Some(HostConfigLogConfig {
            typ: Some(LOG_DRIVER.to_owned()),
            config: Some(HashMap::from([
                ("max-size".to_owned(), LOG_MAX_SIZE.to_owned()),
                ("max-file".to_owned(), LOG_MAX_FILE.to_owned()),
            ])),
        }),
        ..Default::default()
    };
    Config {
        image: Some(spec.image.clone()),
        cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
        hostname: spec.hostname.clone(),
        user: spec.user.clone(),
        env: (!spec.env.is_empty())
            .then(|| spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(
            spec.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        mac_address,
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

#[async_trait]
impl Engine for DockerEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| classify("ping", e))
    }

    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(img) => Ok(Some(ImageInfo {
                id: img.id.unwrap_or_default(),
                labels: to_btree(img.config.and_then(|c| c.labels)),
            })),
            Err(e) => {
                let e = classify(&format!("inspect image {reference}"), e);
                if e.kind == ErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn build_image(
        &self,
        tag: &str,
        context: Vec<u8>,
        no_cache: bool,
    ) -> Result<String, EngineError> {
        let op = format!("build image {tag}");
        let options = BuildImageOptions::<String> {
            dockerfile: "Dockerfile".to_owned(),
            t: tag.to_owned(),
            nocache: no_cache,
            rm: true,
            forcerm: true,
            // Never contact a registry: the Dockerfile is FROM scratch.
            pull: false,
            ..Default::default()
        };
        let mut stream = self.docker.build_image(options, None, Some(context.into()));
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| classify(&op, e))?;
            if let Some(error) = info.error {
                return Err(EngineError::new(ErrorKind::Failed, op, error));
            }
            if let Some(line) = info.stream.as_deref().map(str::trim)
                && !line.is_empty()
            {
                tracing::debug!(build = %line, "Image build");
            }
        }
        match self.image(tag).await? {
            Some(img) => Ok(img.id),
            None => Err(EngineError::new(
                ErrorKind::Failed,
                op,
                "the build finished but the image is missing",
            )),
        }
    }

    async fn network(&self, name: &str) -> Result<Option<NetworkInfo>, EngineError> {
        let net = match self
            .docker
            .inspect_network(name, None::<InspectNetworkOptions<String>>)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                let e = classify(&format!("inspect network {name}"), e);
                return if e.kind == ErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        // Inspect also matches id prefixes; only an exact name is ours.
        if net.name.as_deref() != Some(name) {
            return Ok(None);
        }
        let pool = net
            .ipam
            .and_then(|i| i.config)
            .and_then(|c| c.into_iter().next())
            .unwrap_or_default();
        let mut containers: Vec<String> = net.containers.unwrap_or_default().into_keys().collect();
        containers.sort();
        Ok(Some(NetworkInfo {
            id: net.id.unwrap_or_default(),
            name: name.to_owned(),
            driver: net.driver.unwrap_or_default(),
            options: to_btree(net.options),
            subnet: pool.subnet,
            gateway: pool.gateway,
            ip_range: pool.ip_range,
            labels: to_btree(net.labels),
            containers,
        }))
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<(), EngineError> {
        let mut options = HashMap::from([("parent".to_owned(), spec.parent.clone())]);
        match spec.driver {
            Driver::Macvlan => {
                options.insert("macvlan_mode".to_owned(), "bridge".to_owned());
            }
            Driver::Ipvlan => {
                options.insert("ipvlan_mode".to_owned(), "l2".to_owned());
            }
        }
        let request = CreateNetworkOptions::<String> {
            name: spec.name.clone(),
            check_duplicate: true,
            driver: spec.driver.as_str().to_owned(),
            ipam: Ipam {
                driver: Some("default".to_owned()),
                config: Some(vec![IpamConfig {
                    subnet: Some(spec.subnet.to_string()),
                    gateway: Some(spec.gateway.to_string()),
                    ip_range: spec.ip_range.map(|r| r.to_string()),
                    auxiliary_addresses: None,
                }]),
                options: None,
            },
            options,
            labels: spec
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map(|_| ())
            .map_err(|e| classify(&format!("create network {}", spec.name), e))
    }

    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = classify(&format!("remove network {name}"), e);
                if e.kind == ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn list_managed(&self, project: &str) -> Result<Vec<ObservedContainer>, EngineError> {
        // Several label filters: Docker returns containers carrying all of them.
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{}=true", labels::MANAGED),
                format!("{}={project}", labels::COMPOSE_PROJECT),
            ],
        )]);
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions::<String> {
                all: true,
                filters,
                ..Default::default()
            }))
            .await
            .map_err(|e| classify("list containers", e))?;
        Ok(list.into_iter().map(observed).collect())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        self.docker
            .create_container(
                Some(CreateContainerOptions {
                    name: spec.name.clone(),
                    platform: None,
                }),
                container_config(spec),
            )
            .await
            .map(|r| r.id)
            .map_err(|e| classify(&format!("create container {}", spec.name), e))
    }

    async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker
            .start_container::<String>(id, None)
            .await
            .map_err(|e| classify(&format!("start container {id}"), e))
    }

    async fn stop_container(&self, id: &str) -> Result<(), EngineError> {
        match self
            .docker
            .stop_container(
                id,
                Some(StopContainerOptions {
                    t: STOP_TIMEOUT_SECS,
                }),
            )
            .await
        {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(classify(&format!("stop container {id}"), e)),
        }
    }

    async fn list_labelled(&self) -> Result<Vec<ObservedContainer>, EngineError> {
        self.list_filtered(Vec::new()).await
    }

    async fn labelled(&self, id: &str) -> Result<Option<ObservedContainer>, EngineError> {
        // The id filter matches prefixes: keep the exact one.
        Ok(self
            .list_filtered(vec![("id".to_owned(), vec![id.to_owned()])])
            .await?
            .into_iter()
            .find(|c| c.id == id))
    }

    fn follow_logs(&self, id: &str, since_unix_secs: i64) -> LogLines {
        let inner = self.docker.logs(
            id,
            Some(LogsOptions::<String> {
                follow: true,
                stdout: true,
                stderr: true,
                since: since_unix_secs.max(0),
                timestamps: true,
                tail: "all".to_owned(),
                ..Default::default()
            }),
        );
        Box::pin(assemble(inner, format!("follow logs of {id}")))
    }

    fn container_events(&self) -> ContainerEvents {
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            (
                "label".to_owned(),
                vec![format!("{}=true", labels::MANAGED)],
            ),
            (
                "event".to_owned(),
                [
                    ContainerAction::Start,
                    ContainerAction::Die,
                    ContainerAction::Destroy,
                ]
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            ),
        ]);
        let inner = self.docker.events(Some(EventsOptions::<String> {
            filters,
            ..Default::default()
        }));
        Box::pin(inner.filter_map(|item| async move {
            match item {
                Ok(msg) => container_event(msg).map(Ok),
                Err(e) => Some(Err(classify("container events", e))),
            }
        }))
    }

    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        match self
            .docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    link: false,
                }),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = classify(&format!("remove container {id}"), e);
                if e.kind == ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{SpecOptions, fleet_containers, tests::config};

    #[test]
    fn docker_events_become_container_events() {
        use bollard::models::{EventActor, EventMessage};
        let msg = |action: &str| EventMessage {
            action: Some(action.to_owned()),
            actor: Some(EventActor {
                id: Some("abc".to_owned()),
                attributes: Some(HashMap::from([
                    (labels::DECKY.to_owned(), "web-01".to_owned()),
                    ("name".to_owned(), "web-01-http".to_owned()),
                ])),
            }),
            time_nano: Some(1_700_000_000_123_456_789),
            ..Default::default()
        };
        let ev = container_event(msg("die")).unwrap();
        assert_eq!(ev.id, "abc");
        assert_eq!(ev.action, ContainerAction::Die);
        assert_eq!(ev.attributes[labels::DECKY], "web-01");
        assert_eq!(ev.time_nanos, 1_700_000_000_123_456_789);
        // Other actions, and events without an actor id, are not ours.
        assert!(container_event(msg("exec_start: sh")).is_none());
        let mut anonymous = msg("start");
        anonymous.actor = None;
        assert!(container_event(anonymous).is_none());
    }

    #[tokio::test]
    async fn frames_are_assembled_into_lines_and_errors_end_the_stream() {
        let frames: Vec<Result<LogOutput, bollard::errors::Error>> = vec![
            Ok(LogOutput::StdOut {
                message: b"2024-05-01T10:00:00.000000001Z part one ".to_vec().into(),
            }),
            Ok(LogOutput::StdErr {
                message: b"2024-05-01T10:00:00.000000002Z err\n".to_vec().into(),
            }),
            Ok(LogOutput::StdOut {
                message: b"2024-05-01T10:00:00.000000003Z part two\n".to_vec().into(),
            }),
            Ok(LogOutput::StdOut {
                message: b"2024-05-01T10:00:01.000000000Z cut by the error"
                    .to_vec()
                    .into(),
            }),
            Err(bollard::errors::Error::RequestTimeoutError),
        ];
        let out: Vec<_> = assemble(futures::stream::iter(frames), "op".to_owned())
            .collect()
            .await;
        assert_eq!(out.len(), 3);
        let err_line = out[0].as_ref().unwrap();
        assert_eq!(
            (err_line.stream, err_line.line.as_str()),
            (LogStream::Stderr, "err")
        );
        let joined = out[1].as_ref().unwrap();
        assert_eq!(joined.line, "part one part two");
        assert_eq!(joined.ts_nanos, 1_714_557_600_000_000_001);
        // The partial line before the error is dropped (re-read from the cursor).
        assert_eq!(out[2].as_ref().unwrap_err().kind, ErrorKind::Transient);
    }

    #[test]
    fn create_request_carries_the_spec() {
        let cfg = config();
        let specs = fleet_containers(&cfg, &SpecOptions::new("i:1".into(), "/a".into(), None));
        let base = container_config(&specs[0]);
        let host = base.host_config.as_ref().unwrap();
        assert_eq!(
            host.network_mode.as_deref(),
            Some(crate::spec::NETWORK_NAME)
        );
        assert_eq!(
            base.mac_address.as_deref(),
            match &specs[0].networking {
                Networking::Lan { mac, .. } => Some(mac.as_str()),
                Networking::Container(_) => None,
            }
        );
        let ep =
            &base.networking_config.as_ref().unwrap().endpoints_config[crate::spec::NETWORK_NAME];
        assert_eq!(
            ep.ipam_config.as_ref().unwrap().ipv4_address.as_deref(),
            Some("10.0.0.10")
        );
        assert_eq!(
            host.sysctls.as_ref().unwrap()["net.ipv4.ip_default_ttl"],
            "128"
        );
        let ssh = container_config(&specs[2]);
        let host = ssh.host_config.as_ref().unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("container:web-01"));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop.as_deref(), Some(&["ALL".to_owned()][..]));
        assert_eq!(
            host.security_opt.as_deref(),
            Some(&["no-new-privileges:true".to_owned()][..])
        );
        assert_eq!(
            host.restart_policy.as_ref().unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        assert_eq!(
            host.log_config.as_ref().unwrap().config.as_ref().unwrap()["max-file"],
            "5"
        );
        assert_eq!(
            host.binds.as_ref().unwrap()[0],
            "/a/web-01/ssh:/artifacts:rw"
        );
        assert!(host.tmpfs.as_ref().unwrap().contains_key("/tmp"));
        assert!(ssh.networking_config.is_none());
        assert_eq!(ssh.labels.as_ref().unwrap()[labels::SERVICE], "ssh");
    }
}
