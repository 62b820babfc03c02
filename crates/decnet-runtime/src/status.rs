//! Observed health: the one aggregation rule (used by `decnet status`, the swarm agent's
//! `/status` and the reconciler) and the per-decky runtime map.

use std::collections::BTreeMap;

use decnet_core::{DeckyConfig, DecnetConfig};
use serde::Serialize;

use crate::engine::{Engine, EngineError, ObservedContainer};
use crate::spec::Project;

/// The health of one decky.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeckyState {
    /// Every expected container runs.
    Running,
    /// Some expected containers run, some do not (or are missing).
    Degraded,
    /// Containers exist but none of them runs.
    Failed,
    /// None of the expected containers exists.
    TornDown,
}

impl DeckyState {
    /// The state's name as stored and published (`running`, `degraded`, `failed`,
    /// `torn_down`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeckyState::Running => "running",
            DeckyState::Degraded => "degraded",
            DeckyState::Failed => "failed",
            DeckyState::TornDown => "torn_down",
        }
    }
}

/// The aggregation rule. `expected` is the status of every container a decky should have
/// (its base and one per service): `None` when the container is absent, else its Docker
/// state. Only `running` counts as up.
///
/// `torn_down` when none is observed; `running` when every one runs; `failed` when none of
/// the observed ones runs; `degraded` otherwise.
pub fn aggregate<'a>(expected: impl IntoIterator<Item = Option<&'a str>>) -> DeckyState {
    let (mut total, mut observed, mut running) = (0usize, 0usize, 0usize);
    for status in expected {
        total += 1;
        if let Some(s) = status {
            observed += 1;
            if s == "running" {
                running += 1;
            }
        }
    }
    if observed == 0 {
        DeckyState::TornDown
    } else if running == total {
        DeckyState::Running
    } else if running == 0 {
        DeckyState::Failed
    } else {
        DeckyState::Degraded
    }
}

/// Placeholder status of a container that does not exist.
pub const ABSENT: &str = "absent";

/// One decky as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeckyRuntime {
    /// True when the decky is [`DeckyState::Running`].
    pub running: bool,
    /// The aggregate.
    pub state: DeckyState,
    /// Status of the base container, or `absent`.
    pub base: String,
    /// Status of each service container (by service slug), or `absent`.
    pub services: BTreeMap<String, String>,
}

/// Indexes observed containers by (decky, service) from their labels (FL-5): the base
/// container has no service.
pub fn index(
    observed: &[ObservedContainer],
) -> BTreeMap<(String, Option<String>), &ObservedContainer> {
    observed
        .iter()
        .filter_map(|c| {
            let decky = c.decky()?;
            Some(((decky.to_owned(), c.service().map(str::to_owned)), c))
        })
        .collect()
}

/// The runtime view of `decky` given the observed containers.
pub fn decky_runtime(decky: &DeckyConfig, observed: &[ObservedContainer]) -> DeckyRuntime {
    let idx = index(observed);
    decky_runtime_indexed(decky, &idx)
}

fn decky_runtime_indexed(
    decky: &DeckyConfig,
    idx: &BTreeMap<(String, Option<String>), &ObservedContainer>,
) -> DeckyRuntime {
    let name = decky.name.to_string();
    let state_of = |service: Option<&str>| {
        idx.get(&(name.clone(), service.map(str::to_owned)))
            .map(|c| c.state.as_str())
    };
    let base = state_of(None);
    let services: Vec<(String, Option<&str>)> = decky
        .services
        .iter()
        .map(|s| (s.clone(), state_of(Some(s))))
        .collect();
    let state = aggregate(std::iter::once(base).chain(services.iter().map(|(_, s)| *s)));
    DeckyRuntime {
        running: state == DeckyState::Running,
        state,
        base: base.unwrap_or(ABSENT).to_owned(),
        services: services
            .into_iter()
            .map(|(s, st)| (s, st.unwrap_or(ABSENT).to_owned()))
            .collect(),
    }
}

/// The runtime map of a fleet, keyed by decky name.
pub type RuntimeMap = BTreeMap<String, DeckyRuntime>;

/// Observes the engine once and builds the runtime map of `config` in `project`.
///
/// # Errors
/// The engine's error: callers report the runtime as unknown, never as "all gone".
pub async fn runtime_map(
    engine: &dyn Engine,
    config: &DecnetConfig,
    project: &Project,
) -> Result<RuntimeMap, EngineError> {
    let observed = engine.list_managed(project.as_str()).await?;
    let idx = index(&observed);
    Ok(config
        .deckies
        .iter()
        .map(|d| (d.name.to_string(), decky_runtime_indexed(d, &idx)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::container_name;

    #[test]
    fn truth_table() {
        use DeckyState::*;
        let cases: &[(&[Option<&str>], DeckyState)] = &[
            (&[None, None, None], TornDown),
            (
                &[Some("running"), Some("running"), Some("running")],
                Running,
            ),
            (
                &[Some("running"), Some("exited"), Some("running")],
                Degraded,
            ),
            // A missing container with every observed one running: not all expected run.
            (&[Some("running"), None, Some("running")], Degraded),
            (&[Some("exited"), Some("exited"), None], Failed),
            (
                &[Some("created"), Some("restarting"), Some("paused")],
                Failed,
            ),
            (&[None, Some("dead"), None], Failed),
            (&[Some("running"), None, None], Degraded),
            // Every non-running status counts as down.
            (&[Some("running"), Some("removing")], Degraded),
            (&[Some("running")], Running),
            (&[], TornDown),
        ];
        for (input, want) in cases {
            assert_eq!(aggregate(input.iter().copied()), *want, "{input:?}");
        }
    }

    fn observed(decky: &str, service: &str, state: &str) -> ObservedContainer {
        ObservedContainer {
            id: format!("id-{decky}-{service}"),
            name: if service.is_empty() {
                decky.to_owned()
            } else {
                container_name(decky, service)
            },
            image_id: "sha256:x".into(),
            state: state.into(),
            status: state.into(),
            labels: BTreeMap::from([
                ("decnet.managed".into(), "true".into()),
                ("decnet.decky".into(), decky.into()),
                ("decnet.service".into(), service.into()),
            ]),
        }
    }

    #[test]
    fn labels_not_names_decide() {
        let cfg: DecnetConfig = serde_json::from_value(serde_json::json!({
            "mode": "unihost", "interface": "eth0", "subnet": "10.0.0.0/24", "gateway": "10.0.0.1",
            "deckies": [{
                "name": "d", "ip": "10.0.0.10", "services": ["smtp_relay", "ssh"], "distro": "debian",
                "base_image": "debian:bookworm-slim", "hostname": "h"
            }]
        }))
        .unwrap();
        let mut obs = vec![
            observed("d", "", "running"),
            observed("d", "smtp_relay", "running"),
            observed("d", "ssh", "exited"),
            // Another decky's containers do not count.
            observed("e", "ssh", "running"),
        ];
        // A renamed container is still found by its labels.
        obs[1].name = "something-else".into();
        let rt = decky_runtime(&cfg.deckies[0], &obs);
        assert_eq!(rt.state, DeckyState::Degraded);
        assert!(!rt.running);
        assert_eq!(rt.services["smtp_relay"], "running");
        assert_eq!(rt.services["ssh"], "exited");
        assert_eq!(rt.base, "running");
        obs[2].state = "running".into();
        assert_eq!(
            decky_runtime(&cfg.deckies[0], &obs).state,
            DeckyState::Running
        );
        // The base counts toward health (FL-5).
        obs[0].state = "exited".into();
        assert_eq!(
            decky_runtime(&cfg.deckies[0], &obs).state,
            DeckyState::Degraded
        );
        let rt = decky_runtime(&cfg.deckies[0], &[]);
        assert_eq!(rt.state, DeckyState::TornDown);
        assert_eq!(rt.base, ABSENT);
        assert_eq!(rt.services["ssh"], ABSENT);
    }
}
